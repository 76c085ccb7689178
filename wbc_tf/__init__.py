"""wbc_tf: White-box Cartoonization (Wang & Yu, CVPR 2020) in TensorFlow 2 / Keras 3, faithful to the TF1 code.

Quick use::

    import wbc_tf
    cartoonizer = wbc_tf.Cartoonizer.from_pretrained()   # bundled release weights (CC BY-NC-SA 4.0)
    cartoon = cartoonizer.cartoonize(photo_rgb)          # uint8 (H, W, 3) RGB in and out

Public names are imported lazily, so ``import wbc_tf`` is cheap and command-line tools can quieten
TensorFlow's start-up logging before TensorFlow is loaded.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "build_generator": "wbc_tf.generator",
    "GuidedFilter": "wbc_tf.guided_filter",
    "box_filter": "wbc_tf.guided_filter",
    "guided_filter": "wbc_tf.guided_filter",
    "load_generator_weights": "wbc_tf.weights",
    "WeightConversionError": "wbc_tf.weights",
    "Cartoonizer": "wbc_tf.inference",
    "InferenceConfig": "wbc_tf.config",
    "TrainConfig": "wbc_tf.config",
    "WhiteBoxGAN": "wbc_tf.gan",
    "GeneratorPretrainer": "wbc_tf.gan",
    "build_white_box_gan": "wbc_tf.gan",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wbc_tf' has no attribute {name!r}")


def __dir__():
    return __all__
