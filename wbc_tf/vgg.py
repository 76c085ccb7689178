"""Frozen VGG19 feature extractor: ``conv4_4`` **before** its ReLU, like ``Vgg19.build_conv4_4`` (§7.2, §9).

Input: (B, H, W, 3) float32 **BGR** in [-1, 1]. Preprocessing is the original's: t = (x + 1)·127.5,
minus the Caffe means [103.939, 116.779, 123.68] in B, G, R order, **no channel flip** (the data is
already BGR) and no /255. Then conv1_1 … conv4_4 (3×3, SAME, bias, ReLU after every conv but the
last), with 2×2/2 max-pools (SAME) after conv1_2, conv2_2 and conv3_4. Output: (B, H/8, W/8, 512),
the linear conv4_4 output; 32×32×512 for 256² inputs.

Weights (``weights=`` of `build_vgg`):

* ``"imagenet"``: `keras.applications.VGG19` ImageNet weights, downloaded once by Keras into
  ``~/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``. Same Oxford/Caffe
  provenance as the original ``vgg19_no_fc.npy``; Keras' ``block{b}_conv{i}`` is ``conv{b}_{i}``.
* a path to a Keras ``.h5`` (that ``*_notop.h5`` file, for machines without network);
* a path to the original ``vgg19_no_fc.npy`` (a pickled dict ``conv1_1 → [HWIO kernel, bias]``);
* a dict in that layout (``conv{b}_{i}`` or ``block{b}_conv{i}`` keys);
* ``None``: random Glorot weights, for tests only.

The model is frozen (``trainable = False``); nothing in training ever updates it.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from wbc_tf.precision import float32_island
from wbc_tf.weights import WeightConversionError

VGG_MEAN_BGR = (103.939, 116.779, 123.68)  # Caffe ImageNet means, B, G, R
KERAS_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_NOTOP_FILE)
# (block, convs in block) up to conv4_4; pool after blocks 1–3
_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4))
LAYER_NAMES = tuple(f"conv{b}_{i}" for b, n in _BLOCKS for i in range(1, n + 1))  # conv1_1 … conv4_4


class CaffePreprocess(keras.layers.Layer):
    """[-1, 1] BGR → Caffe input: ``(x + 1)·127.5 − [103.939, 116.779, 123.68]``; no channel flip.

    Args:
        **kwargs: forwarded to `keras.layers.Layer`.
    """

    def call(self, x):
        mean = tf.constant(VGG_MEAN_BGR, dtype=x.dtype)
        return (x + 1.0) * 127.5 - mean

    def compute_output_shape(self, input_shape):
        return input_shape


def build_vgg(weights=None, name="vgg19_conv4_4", dtype=None):
    """Build the frozen pre-ReLU conv4_4 extractor and load ``weights`` (see the module docstring).

    Args:
        weights: see the module docstring.
        name: model name.
        dtype: layer dtype policy (`wbc_tf.precision.dtype_policy`); None follows the global policy.
            Under a mixed policy the Caffe preprocessing stays float32 and the features are 16-bit.

    Returns:
        `keras.Model` (B, H, W, 3) BGR [-1, 1] → (B, H/8, W/8, 512), ``trainable=False``.
    """
    inputs = keras.Input(shape=(None, None, 3), name="bgr")
    x = CaffePreprocess(name="caffe_preprocess", dtype=float32_island(dtype))(inputs)
    for b, n in _BLOCKS:
        for i in range(1, n + 1):
            last = (b, i) == (4, 4)
            # conv4_4 stays linear: the original returns the conv output before its ReLU
            x = keras.layers.Conv2D(64 * 2 ** min(b - 1, 3), 3, padding="same", dtype=dtype,
                                    activation=None if last else "relu", name=f"conv{b}_{i}")(x)
        if b < 4:  # SAME like the original
            x = keras.layers.MaxPooling2D(2, 2, padding="same", name=f"pool{b}", dtype=dtype)(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_vgg_weights(model, weights)
    model.trainable = False
    return model


def read_vgg_npy(path):
    """Read the original ``vgg19_no_fc.npy``: a pickled dict ``name → [kernel HWIO, bias]``."""
    return np.load(os.fspath(path), encoding="latin1", allow_pickle=True).item()


def keras_cache_dir():
    """Where Keras caches downloaded weights: ``$KERAS_HOME/models`` (default ``~/.keras/models``)."""
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")


def _keras_imagenet_weights(path=None):
    """``{conv{b}_{i}: [kernel, bias]}`` from `keras.applications.VGG19` (ImageNet or a local .h5)."""
    source = "imagenet" if path is None else os.fspath(path)
    try:
        ref = keras.applications.VGG19(include_top=False, weights=source, input_shape=(None, None, 3))
    except Exception as e:  # URL / HTTP / OS errors from keras.utils.get_file, or a bad file
        if path is None:
            cache = keras_cache_dir()
            raise WeightConversionError(
                f"Could not get the VGG19 ImageNet weights ({type(e).__name__}: {e}).\n"
                f"Fetch {KERAS_NOTOP_FILE} from\n  {KERAS_NOTOP_URL}\n"
                f"on a machine with network access and either copy it to {cache}/ or pass its path "
                f"(vgg_weights='/path/{KERAS_NOTOP_FILE}', CLI flag --vgg-weights). The original "
                f"vgg19_no_fc.npy works too (vgg_weights='/path/vgg19_no_fc.npy').") from e
        raise WeightConversionError(f"cannot load VGG19 weights from {source!r}: {e}") from e
    return {f"conv{b}_{i}": [w.numpy() for w in ref.get_layer(f"block{b}_conv{i}").weights]
            for b, n in _BLOCKS for i in range(1, n + 1)}


def _normalise_keys(tensors):
    out = {}
    for key, value in tensors.items():
        if key.startswith("block") and "_conv" in key:      # Keras block{b}_conv{i} → conv{b}_{i}
            b, i = key[len("block"):].split("_conv")
            key = f"conv{b}_{i}"
        out[key] = value
    return out


def vgg_weights_dict(weights):
    """Resolve ``weights`` ("imagenet", .h5 / .npy path or dict) to ``{conv{b}_{i}: [kernel, bias]}``."""
    if isinstance(weights, dict):
        return _normalise_keys(weights)
    if isinstance(weights, str) and weights == "imagenet":
        return _keras_imagenet_weights()
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise WeightConversionError(
            f"no such VGG weights file: {path!r} (expected {KERAS_NOTOP_FILE} or vgg19_no_fc.npy)")
    if path.endswith(".npy"):
        return _normalise_keys(read_vgg_npy(path))
    return _keras_imagenet_weights(path)


def _kernel_and_bias(value):
    """``[kernel, bias]`` (the npy layout) or a ``{weights|kernel, biases|bias}`` mapping."""
    if isinstance(value, dict):
        return (value["weights"] if "weights" in value else value["kernel"],
                value["biases"] if "biases" in value else value["bias"])
    return value[0], value[1]


def check_vgg_weights(tensors):
    """Check ``{conv{b}_{i}: [kernel, bias]}`` against VGG19's conv1_1 … conv4_4 without building a model.

    Extra layers (conv5_*, fc*) are ignored, like `load_vgg_weights`, which performs the same check.

    Raises:
        WeightConversionError: naming every missing, malformed or mis-shaped layer.
    """
    problems, channels = [], 3
    for b, n in _BLOCKS:
        width = 64 * 2 ** min(b - 1, 3)                                   # as build_vgg
        for i in range(1, n + 1):
            name, want = f"conv{b}_{i}", ((3, 3, channels, width), (width,))
            channels = width
            if name not in tensors:
                problems.append(f"missing: {name}")
                continue
            try:
                got = tuple(tuple(np.shape(t)) for t in _kernel_and_bias(tensors[name]))
            except (KeyError, IndexError, TypeError):
                problems.append(f"malformed {name}: expected [kernel, bias]")
                continue
            if got != want:
                problems.append(f"shape mismatch {name}: {got[0]}/{got[1]} vs {want[0]}/{want[1]}")
    if problems:
        raise WeightConversionError("VGG weights do not match conv1_1…conv4_4:\n  " + "\n  ".join(problems))


def load_vgg_weights(model, weights):
    """Assign VGG weights to a `build_vgg` model, strictly for conv1_1 … conv4_4.

    Extra layers in the source (conv5_*, fc*) are ignored; a missing or mis-shaped conv raises
    `WeightConversionError` naming it.
    """
    tensors = vgg_weights_dict(weights)
    problems, assignments = [], []
    for name in LAYER_NAMES:
        layer = model.get_layer(name)
        if name not in tensors:
            problems.append(f"missing: {name}")
            continue
        kernel, bias = (np.asarray(t, dtype=np.float32) for t in _kernel_and_bias(tensors[name]))
        if kernel.shape != tuple(layer.kernel.shape) or bias.shape != tuple(layer.bias.shape):
            problems.append(f"shape mismatch {name}: {kernel.shape}/{bias.shape} vs "
                            f"{tuple(layer.kernel.shape)}/{tuple(layer.bias.shape)}")
            continue
        assignments += [(layer.kernel, kernel), (layer.bias, bias)]
    if problems:
        raise WeightConversionError("VGG weights do not match conv1_1…conv4_4:\n  " + "\n  ".join(problems))
    for var, value in assignments:
        var.assign(value)
    return model


def vgg_to_dict(model):
    """``{conv{b}_{i}: [kernel, bias]}`` of a `build_vgg` model (the ``vgg19_no_fc.npy`` layout)."""
    return {name: [model.get_layer(name).kernel.numpy(), model.get_layer(name).bias.numpy()]
            for name in LAYER_NAMES}
