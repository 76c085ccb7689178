"""The White-box Cartoonization generator: ``unet_generator`` of the original, layer by layer (docs/fidelity.md §2).

Input and output are (B, H, W, 3) float32 **BGR** in [-1, 1] (the output is unbounded: the last
conv is linear, no tanh, no clip). H and W must be multiples of 4.

Fidelity points (each one a known drift in other ports):

* LeakyReLU slope 0.2 (``tf.nn.leaky_relu`` default; Keras' layer defaults to 0.3);
* TF 'SAME' padding, asymmetric (0 before, 1 after) for the 3×3 stride-2 convs on even sizes;
* legacy TF1 bilinear ×2 resize (align_corners=False, half_pixel_centers=False);
* additive skips (not concatenation), no activation after the residual add, linear 7×7 output.

Layer names follow the TF1 variable scopes: ``Conv``, ``Conv_1`` … ``Conv_9`` and
``block_i/conv1|conv2``, so `wbc_tf.weights` maps the checkpoint one line per layer.
"""

import keras
import tensorflow as tf

from wbc_tf.config import TrainConfig
from wbc_tf.precision import float32_island

LEAKY_SLOPE = 0.2  # tf.nn.leaky_relu default used by the original


class LegacyBilinearUpsample(keras.layers.Layer):
    """×2 bilinear resize with TF1 ``tf.image.resize_bilinear`` defaults.

    align_corners=False and half_pixel_centers=False: out[2i] = x[i], out[2i+1] = (x[i] + x[i+1]) / 2,
    with the last row/column repeated. `keras.layers.UpSampling2D` and ``tf.image.resize`` use
    half-pixel centres and differ by up to ~1.35 on N(0, 1) data, so they must not be used.
    The raw ``ResizeBilinear`` op is what the TF1 graph ran; it converts to TFLite
    ``RESIZE_BILINEAR``.
    """

    def call(self, x):
        size = tf.shape(x)[1:3] * 2
        # The op returns float32 for any input; a 16-bit input is upcast first because the XLA
        # lowering of its gradient returns float32 where TensorFlow expects the input's dtype.
        out = tf.raw_ops.ResizeBilinear(
            images=tf.cast(x, tf.float32), size=size, align_corners=False, half_pixel_centers=False)
        return tf.cast(out, x.dtype)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)


class ResBlock(keras.layers.Layer):
    """``y = conv2(lrelu(conv1(x))) + x`` with two 3×3 convs; no activation after the add.

    Args:
        channels: channel count of input, both convs and output.
        **kwargs: forwarded to `keras.layers.Layer` (the name is the TF1 scope, ``block_i``).
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        # sub-layers take the block's policy (Keras does not pass it down)
        self.conv1 = keras.layers.Conv2D(channels, 3, padding="same", name="conv1", dtype=self.dtype_policy)
        self.conv2 = keras.layers.Conv2D(channels, 3, padding="same", name="conv2", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        self.conv2.build(input_shape[:-1] + (self.channels,))

    def call(self, x):
        y = tf.nn.leaky_relu(self.conv1(x), alpha=LEAKY_SLOPE)
        return self.conv2(y) + x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config


class SizeCheck(keras.layers.Layer):
    """Identity that raises a clear ValueError when a static H or W is not a multiple of ``multiple``.

    With dynamic (None) sizes inside a traced graph nothing can be checked statically; callers
    that accept arbitrary sizes (`wbc_tf.inference`, `wbc_tf.export`) pad or crop first.
    """

    def __init__(self, multiple=4, **kwargs):
        super().__init__(**kwargs)
        self.multiple = multiple

    def call(self, x):
        h, w = x.shape[1], x.shape[2]
        for name, n in (("height", h), ("width", w)):
            if n is not None and n % self.multiple:
                raise ValueError(
                    f"The generator needs an input {name} that is a multiple of {self.multiple} "
                    f"(got {h}x{w}). Crop or pad the image first; wbc_tf.Cartoonizer does this for you.")
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"multiple": self.multiple})
        return config


def _conv(filters, kernel, name, strides=1, dtype=None):
    # slim.convolution2d: SAME padding, bias, Glorot-uniform kernel, zero bias, no activation.
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name, dtype=dtype)


def _lrelu(name, dtype=None):
    return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name, dtype=dtype)


def build_generator(channels=TrainConfig.channels, num_blocks=TrainConfig.num_blocks, name="generator",
                    dtype=None):
    """Build the U-Net generator of docs/fidelity.md §2.1 as a Keras functional model.

    Args:
        channels: base width (32 in the release). Stages use c, 2c, 4c.
        num_blocks: residual blocks at H/4 (4 in the release).
        name: model name (TF1 scope ``generator``).
        dtype: layer dtype policy (`wbc_tf.precision.dtype_policy`); None follows the global policy.
            Under a mixed policy the last conv stays float32, so the output is float32.

    Returns:
        `keras.Model` mapping (B, H, W, 3) → (B, H, W, 3), both BGR in [-1, 1]; 1,467,075
        parameters with the defaults.
    """
    c = channels
    d = dtype
    inputs = keras.Input(shape=(None, None, 3), name="photo")
    x = SizeCheck(4, name="size_check", dtype=d)(inputs)

    x0 = _lrelu("lrelu_0", d)(_conv(c, 7, "Conv", dtype=d)(x))                  # (B, H, W, c)
    x = _lrelu("lrelu_1", d)(_conv(c, 3, "Conv_1", strides=2, dtype=d)(x0))     # (B, H/2, W/2, c)
    x1 = _lrelu("lrelu_2", d)(_conv(2 * c, 3, "Conv_2", dtype=d)(x))            # (B, H/2, W/2, 2c)
    x = _lrelu("lrelu_3", d)(_conv(2 * c, 3, "Conv_3", strides=2, dtype=d)(x1))  # (B, H/4, W/4, 2c)
    x = _lrelu("lrelu_4", d)(_conv(4 * c, 3, "Conv_4", dtype=d)(x))             # (B, H/4, W/4, 4c)

    for i in range(num_blocks):
        x = ResBlock(4 * c, name=f"block_{i}", dtype=d)(x)

    x = _lrelu("lrelu_5", d)(_conv(2 * c, 3, "Conv_5", dtype=d)(x))             # (B, H/4, W/4, 2c)
    x = LegacyBilinearUpsample(name="upsample_1", dtype=d)(x)                    # (B, H/2, W/2, 2c)
    x = keras.layers.Add(name="skip_1", dtype=d)([x, x1])
    x = _lrelu("lrelu_6", d)(_conv(2 * c, 3, "Conv_6", dtype=d)(x))
    x = _lrelu("lrelu_7", d)(_conv(c, 3, "Conv_7", dtype=d)(x))                 # (B, H/2, W/2, c)
    x = LegacyBilinearUpsample(name="upsample_2", dtype=d)(x)                    # (B, H, W, c)
    x = keras.layers.Add(name="skip_0", dtype=d)([x, x0])
    x = _lrelu("lrelu_8", d)(_conv(c, 3, "Conv_8", dtype=d)(x))
    # linear, unbounded; float32 under a mixed policy (the guided filter and the losses read it)
    outputs = _conv(3, 7, "Conv_9", dtype=float32_island(d))(x)
    return keras.Model(inputs, outputs, name=name)
