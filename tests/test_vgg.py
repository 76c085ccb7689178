"""VGG19 conv4_4 pre-ReLU extractor: reference conv stack, weight sources, offline error (docs/fidelity.md §7.2, §9)."""

import keras
import numpy as np
import pytest

from tests import helpers, reference
from wbc_tf import vgg as vgg_module
from wbc_tf.vgg import KERAS_NOTOP_FILE, LAYER_NAMES, build_vgg, load_vgg_weights, vgg_to_dict
from wbc_tf.weights import WeightConversionError


@pytest.fixture(scope="module")
def npy_weights():
    return helpers.random_vgg_weights(np.random.default_rng(0))


@pytest.fixture(scope="module")
def bgr_batch():
    return np.random.default_rng(3).uniform(-1, 1, size=(2, 32, 24, 3)).astype("float32")


def test_matches_reference_stack_from_npy_file(tmp_path, npy_weights, bgr_batch):
    path = tmp_path / "vgg19_no_fc.npy"
    np.save(path, npy_weights, allow_pickle=True)        # the original's pickled-dict layout
    model = build_vgg(str(path))
    out = model(bgr_batch).numpy()
    assert out.shape == (2, 4, 3, 512)
    ref = reference.vgg_conv4_4(bgr_batch, npy_weights)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # pre-ReLU: the returned conv4_4 has negative values (a post-ReLU block4_conv4 would not)
    assert (out < 0).mean() > 0.2
    # a channel flip (RGB input) would change the features
    flipped = model(bgr_batch[..., ::-1].copy()).numpy()
    assert np.abs(flipped - ref).max() > 1e-2 * np.abs(ref).max()


def test_keras_key_names_and_round_trip(npy_weights, bgr_batch):
    keras_named = {f"block{k[4]}_conv{k[6]}": v for k, v in npy_weights.items()}
    a, b = build_vgg(npy_weights), build_vgg(keras_named)
    np.testing.assert_array_equal(a(bgr_batch).numpy(), b(bgr_batch).numpy())
    back = vgg_to_dict(a)
    assert list(back) == list(LAYER_NAMES) and len(back) == 12
    np.testing.assert_array_equal(back["conv4_4"][0], npy_weights["conv4_4"][0])


def test_frozen_and_random_weights_option(bgr_batch):
    model = build_vgg(None)
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 24  # 12 convs
    assert model.get_layer("conv4_4").activation is keras.activations.linear
    assert model.get_layer("conv4_3").activation is keras.activations.relu
    assert model(bgr_batch).shape == (2, 4, 3, 512)


def test_local_keras_h5(tmp_path, npy_weights, bgr_batch):
    """A local copy of the Keras ``*_notop.h5`` (legacy h5 layout, block{b}_conv{i} layer names)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    app = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    for name, (k, b) in npy_weights.items():
        app.get_layer(f"block{name[4]}_conv{name[6]}").set_weights([k, b])
    path = tmp_path / KERAS_NOTOP_FILE
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, app)
    model = build_vgg(str(path))
    np.testing.assert_allclose(model(bgr_batch).numpy(), build_vgg(npy_weights)(bgr_batch).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_missing_download_names_file_and_flag(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- no network")

    monkeypatch.setattr(vgg_module.keras.applications, "VGG19", offline)
    with pytest.raises(WeightConversionError) as info:
        build_vgg("imagenet")
    message = str(info.value)
    assert KERAS_NOTOP_FILE in message and "--vgg-weights" in message and "vgg19_no_fc.npy" in message


def test_strict_errors(npy_weights, tmp_path):
    partial = dict(npy_weights)
    del partial["conv3_2"]
    with pytest.raises(WeightConversionError, match="conv3_2"):
        build_vgg(partial)
    bad = dict(npy_weights)
    bad["conv1_1"] = [np.zeros((3, 3, 4, 64), "float32"), np.zeros(64, "float32")]
    with pytest.raises(WeightConversionError, match="shape mismatch conv1_1"):
        load_vgg_weights(build_vgg(None), bad)
    with pytest.raises(WeightConversionError, match="no such VGG weights file"):
        build_vgg(str(tmp_path / "nope.npy"))


def test_dict_values_with_tf1_style_keys(npy_weights, bgr_batch):
    as_mappings = {k: {"weights": v[0], "biases": v[1]} for k, v in npy_weights.items()}
    np.testing.assert_array_equal(build_vgg(as_mappings)(bgr_batch).numpy(),
                                  build_vgg(npy_weights)(bgr_batch).numpy())
