"""The spectral-norm PatchGAN discriminator ``disc_sn`` of the original (docs/fidelity.md §5.1).

Six 3×3 SN convs (strides 2, 1, 2, 1, 2, 1; channels c, c, 2c, 2c, 4c, 4c; LeakyReLU 0.2) and a
1×1 SN conv to one channel of raw logits (no sigmoid): a (B, H/8, W/8, 1) patch map, 32×32 for
256² inputs. Two instances are used in training (docs/fidelity.md §5.3):

* ``disc_blur``, the surface discriminator, on 3-channel guided-filtered images;
* ``disc_gray``, the texture discriminator, on 1-channel colour-shifted images.

Layer names follow the TF1 scopes (``conv0_1`` … ``conv2_2``, ``conv_out``), so
`wbc_tf.weights.discriminator_name_table` maps ``disc_blur/conv0_1/kernel|bias|u`` one line per layer.
``training=True`` advances every layer's ``u`` by one power iteration (see
`wbc_tf.spectral_norm.SpectralNormConv2D`).
"""

import keras

from wbc_tf.config import TrainConfig
from wbc_tf.precision import float32_island
from wbc_tf.spectral_norm import SpectralNormConv2D

LEAKY_SLOPE = 0.2  # tf.nn.leaky_relu default used by the original

# (TF1 scope, stride, channel multiplier); kernel 3×3 (docs/fidelity.md §5.1 table)
_BODY = (("conv0_1", 2, 1), ("conv0_2", 1, 1), ("conv1_1", 2, 2),
         ("conv1_2", 1, 2), ("conv2_1", 2, 4), ("conv2_2", 1, 4))
LAYER_NAMES = tuple(name for name, _, _ in _BODY) + ("conv_out",)
SURFACE_SCOPE = "disc_blur"
TEXTURE_SCOPE = "disc_gray"


def build_discriminator(in_channels, channels=TrainConfig.disc_channels, name=SURFACE_SCOPE, dtype=None):
    """Build ``disc_sn(patch=True)`` as a Keras functional model.

    Args:
        in_channels: 3 for the surface discriminator, 1 for the texture discriminator.
        channels: base width (32 in the original).
        name: model name, the TF1 scope (``disc_blur`` or ``disc_gray``).
        dtype: layer dtype policy (`wbc_tf.precision.dtype_policy`); None follows the global policy.
            Under a mixed policy ``conv_out`` stays float32, so the logits are float32.

    Returns:
        `keras.Model` mapping (B, H, W, in_channels) → (B, ⌈H/8⌉, ⌈W/8⌉, 1) raw logits;
        287,137 trainable parameters for in_channels=3, 286,561 for 1 (channels=32).
    """
    inputs = keras.Input(shape=(None, None, in_channels), name="image")
    x = inputs
    for scope, stride, mult in _BODY:
        x = SpectralNormConv2D(channels * mult, 3, strides=stride, name=scope, dtype=dtype)(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{scope}_lrelu", dtype=dtype)(x)
    logits = SpectralNormConv2D(1, 1, name="conv_out", dtype=float32_island(dtype))(x)  # (B, H/8, W/8, 1)
    return keras.Model(inputs, logits, name=name)


def build_surface_discriminator(channels=TrainConfig.disc_channels, dtype=None):
    """``disc_blur``: D_s, sees GF(x, x, r=5, eps=0.2) of 3-channel BGR images."""
    return build_discriminator(3, channels, name=SURFACE_SCOPE, dtype=dtype)


def build_texture_discriminator(channels=TrainConfig.disc_channels, dtype=None):
    """``disc_gray``: D_t, sees the 1-channel random colour shift of BGR images."""
    return build_discriminator(1, channels, name=TEXTURE_SCOPE, dtype=dtype)

