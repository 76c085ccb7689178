"""Guided filter (He et al.), exactly as the original White-box Cartoonization TF1 code computes it.

docs/fidelity.md §3: a *per-channel* guided filter (guide channel c steers output channel c only) whose box
filter is a depthwise convolution with a (2r+1)² kernel of 1/(2r+1)², stride 1 and zero 'SAME'
padding; dividing by N = box(1) turns the zero-padded sums into means over the in-image part of
each window.

Where it is used (docs/fidelity.md §3.3), all on [-1, 1] BGR tensors:

* inference output: ``guided_filter(photo, G(photo), r=1, eps=5e-3)``;
* training output: ``guided_filter(photo, G(photo), r=1, eps=1e-2)``;
* surface representation: ``guided_filter(x, x, r=5, eps=0.2)``.

Everything here is plain TF ops, differentiable, and converts to TFLite builtins
(``DEPTHWISE_CONV_2D``, ``MUL``, ``SUB``, ``DIV``, ``ADD``).
"""

import keras
import numpy as np
import tensorflow as tf

from wbc_tf.config import InferenceConfig


def box_filter(x, r):
    """Mean-free box sum: depthwise conv of ``x`` (B, H, W, C) with a (2r+1)² kernel of 1/(2r+1)².

    Zero 'SAME' padding, so border windows sum fewer pixels; divide by ``box_filter(ones, r)``
    to get the in-image window mean. C must be static.
    """
    k = int(2 * r + 1)
    channels = x.shape[-1]
    if channels is None:
        raise ValueError("box_filter needs a static channel count; got shape %s" % (x.shape,))
    # float32(1/k²) like the original, which builds the kernel in NumPy float64 and casts.
    kernel = np.full((k, k, channels, 1), 1.0 / (k * k), dtype=np.float64).astype(
        x.dtype.as_numpy_dtype if hasattr(x.dtype, "as_numpy_dtype") else np.float32)
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")


def guided_filter(x, y, r, eps):
    """Guided filter of input ``y`` with guide ``x`` (both (B, H, W, C), same C).

    With box(·) the box sum and N = box(1) (computed on a (1, H, W, 1) ones tensor)::

        mean_x = box(x)/N            mean_y = box(y)/N
        cov_xy = box(x·y)/N − mean_x·mean_y
        var_x  = box(x·x)/N − mean_x²
        A = cov_xy / (var_x + eps)   b = mean_y − A·mean_x
        out = (box(A)/N)·x + box(b)/N

    ``eps`` is in the units of the data ([-1, 1] in this package, a range of 2).
    """
    x = tf.convert_to_tensor(x)
    y = tf.convert_to_tensor(y, dtype=x.dtype)
    shape = tf.shape(x)
    n = box_filter(tf.ones((1, shape[1], shape[2], 1), dtype=x.dtype), r)  # (1, H, W, 1)

    mean_x = box_filter(x, r) / n
    mean_y = box_filter(y, r) / n
    cov_xy = box_filter(x * y, r) / n - mean_x * mean_y
    var_x = box_filter(x * x, r) / n - mean_x * mean_x

    a = cov_xy / (var_x + eps)
    b = mean_y - a * mean_x

    mean_a = box_filter(a, r) / n
    mean_b = box_filter(b, r) / n
    return mean_a * x + mean_b


class GuidedFilter(keras.layers.Layer):
    """Keras layer wrapper of `guided_filter`: ``layer([guide, image]) -> filtered image``.

    Args:
        radius: box radius r (window 2r+1).
        eps: regulariser, in data units ([-1, 1] images: a range of 2).
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
        >>> out = GuidedFilter(radius=1, eps=5e-3)([photo, generator(photo)])

    Reference: He, Sun, Tang, "Guided Image Filtering" (TPAMI 2013); per-channel form of the
    White-box Cartoonization code (docs/fidelity.md §3).
    """

    def __init__(self, radius=InferenceConfig.gf_radius, eps=InferenceConfig.gf_eps, **kwargs):
        super().__init__(**kwargs)
        self.radius = radius
        self.eps = eps

    def call(self, inputs):
        guide, image = inputs
        return guided_filter(guide, image, self.radius, self.eps)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        config = super().get_config()
        config.update({"radius": self.radius, "eps": self.eps})
        return config
