"""Independent references written from the spec (original_spec.md §2–§3), for the tests.

Nothing here imports wbc_tf layers: convolutions use explicit TF1 'SAME' padding (pad, then
VALID), the ×2 resize is the closed-form legacy rule in NumPy, and the guided filter is NumPy
with an explicit valid-window mean.
"""

import numpy as np
import tensorflow as tf


def same_pads(n, k, s):
    """TF 'SAME' split along one axis (spec §2.2): out = ceil(n/s), pad_before = floor(total/2)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_same(x, kernel, bias, stride=1):
    """Conv with explicit TF-SAME padding: tf.pad(before, after) then a VALID conv, plus bias."""
    k = kernel.shape[0]
    ph = same_pads(x.shape[1], k, stride)
    pw = same_pads(x.shape[2], k, stride)
    x = tf.pad(x, [[0, 0], list(ph), list(pw), [0, 0]])
    return tf.nn.conv2d(x, kernel, stride, "VALID") + bias


def legacy_upsample2x(x):
    """Closed-form TF1 bilinear ×2 (align_corners=False, half_pixel_centers=False), NumPy, NHWC."""
    x = np.asarray(x, np.float64)

    def along(a, axis):
        n = a.shape[axis]
        nxt = np.take(a, np.minimum(np.arange(n) + 1, n - 1), axis=axis)
        odd = 0.5 * (a + nxt)
        out = np.stack([a, odd], axis=axis + 1)  # interleave even/odd
        shape = list(a.shape)
        shape[axis] = 2 * n
        return out.reshape(shape)

    return along(along(x, 1), 2)


def lrelu(x):
    return tf.maximum(x, 0.2 * x)  # alpha 0.2, written without tf.nn.leaky_relu


def generator_forward(tensors, x):
    """U-Net of spec §2.1 from a {tf1_name: array} dict; x is (B, H, W, 3) float32 BGR [-1, 1]."""
    def conv(scope, h, stride=1):
        return conv_same(h, tensors[f"generator/{scope}/weights"], tensors[f"generator/{scope}/biases"], stride)

    def up(h):
        return tf.constant(legacy_upsample2x(h.numpy()).astype(np.float32))

    x = tf.constant(x, tf.float32)
    x0 = lrelu(conv("Conv", x))
    h = lrelu(conv("Conv_1", x0, 2))
    x1 = lrelu(conv("Conv_2", h))
    h = lrelu(conv("Conv_3", x1, 2))
    h = lrelu(conv("Conv_4", h))
    i = 0
    while f"generator/block_{i}/conv1/weights" in tensors:
        h = conv(f"block_{i}/conv2", lrelu(conv(f"block_{i}/conv1", h))) + h
        i += 1
    h = lrelu(conv("Conv_5", h))
    h = up(h) + x1
    h = lrelu(conv("Conv_6", h))
    h = lrelu(conv("Conv_7", h))
    h = up(h) + x0
    h = lrelu(conv("Conv_8", h))
    return conv("Conv_9", h).numpy()


def box_mean(x, r):
    """Mean over the in-image part of each (2r+1)² window, per channel; x is (B, H, W, C)."""
    x = np.asarray(x, np.float64)
    _, h, w, _ = x.shape
    # Integral image with a zero row/column in front.
    s = np.pad(x, [(0, 0), (1, 0), (1, 0), (0, 0)]).cumsum(1).cumsum(2)
    i0 = np.clip(np.arange(h) - r, 0, h)
    i1 = np.clip(np.arange(h) + r + 1, 0, h)
    j0 = np.clip(np.arange(w) - r, 0, w)
    j1 = np.clip(np.arange(w) + r + 1, 0, w)
    total = (s[:, i1][:, :, j1] - s[:, i0][:, :, j1] - s[:, i1][:, :, j0] + s[:, i0][:, :, j0])
    count = ((i1 - i0)[:, None] * (j1 - j0)[None, :])[None, :, :, None]
    return total / count


def guided_filter_np(x, y, r, eps):
    """Per-channel guided filter (He et al.) with valid-window means, float64 NumPy."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mx, my = box_mean(x, r), box_mean(y, r)
    a = (box_mean(x * y, r) - mx * my) / (box_mean(x * x, r) - mx * mx + eps)
    b = my - a * mx
    return box_mean(a, r) * x + box_mean(b, r)
