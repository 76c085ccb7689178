"""``cv2.resize(..., interpolation=cv2.INTER_AREA)`` for shrinking, in TensorFlow ops, bit for bit.

The SavedModel's ``serving_default`` applies the shorter-side rule of ``wbc-cartoonize``
(`wbc_tf.inference.resized_size`, then INTER_AREA) inside the graph, so a served photo is resized
exactly as the command line resizes it. ``tf.image.resize(method='area')`` is close but not equal
(max |Δ| 1 on 0.1 % of the values at non-integer factors, on 11 % at exactly 2x), so this module
re-implements what OpenCV (4.x/5.x, ``imgproc/src/resize.cpp``) computes for uint8 when both factors
are >= 1:

* **Integer factors** (``resizeAreaFast_``): the integer sum of each fy x fx block, then
  ``saturate_cast<uchar>(sum * (1.f / area))`` (round half to even); at exactly 2x2, OpenCV's SIMD
  kernel computes ``(sum + 2) >> 2`` (half up) instead.
* **Other factors** (``resizeArea_``): per axis a table of (source index, float32 weight) from
  ``computeResizeAreaTab`` (cell = min(scale, size − dx·scale); a partial first and last source
  pixel when the cell edge is more than 1e-3 inside it), a horizontal pass accumulating
  ``S[sx]·alpha`` in table order into a float32 row, a vertical pass accumulating ``beta·row`` the
  same way, then round half to even. The same float32 operations in the same order give the same
  bits (checked against ``cv2.resize`` on random and photo images, tests/test_export.py).

Upscaling (a factor < 1 on either axis) is not implemented: the shorter-side rule only shrinks.
Memory: the passes gather one weighted term at a time (float32 at the output width), never a float
copy of the whole source image.
"""

import tensorflow as tf

_DBL_EPSILON = 2.220446049250313e-16


def short_side_size(height, width, short_side):
    """`wbc_tf.inference.resized_size` without ``max_size``, on int64 scalars: the same integers.

    When the shorter side is larger than ``short_side`` (a Python int; 0 = never) it becomes
    ``short_side`` and the longer one ``int(short_side * long / short)``: float64 division of exact
    integers, then truncation, exactly like the Python expression.
    """
    height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    if not short_side:
        return height, width
    s = tf.constant(short_side, tf.int64)

    def scaled(long, short):
        return tf.cast(tf.floor(tf.cast(s * long, tf.float64) / tf.cast(short, tf.float64)), tf.int64)

    shrink = tf.minimum(height, width) > s
    portrait = height > width
    new_h = tf.where(shrink, tf.where(portrait, scaled(height, width), s), height)
    new_w = tf.where(shrink, tf.where(portrait, s, scaled(width, height)), width)
    return new_h, new_w


def _scale(source, target):
    # OpenCV: inv_scale = (double)dsize / ssize, scale = 1. / inv_scale (not ssize / dsize: one more
    # rounding, which can change the last bit).
    return 1.0 / (tf.cast(target, tf.float64) / tf.cast(source, tf.float64))


def _area_table(source, target, scale):
    """``computeResizeAreaTab`` as dense (target, K) tables: source index (int32) and float32 weight.

    Each output pixel's terms are in OpenCV's order; missing terms at the end have weight 0 (adding
    0·x leaves a float32 sum unchanged) and index 0.
    """
    size = tf.cast(source, tf.float64)
    fsx1 = tf.cast(tf.range(target), tf.float64) * scale
    fsx2 = fsx1 + scale
    cell = tf.minimum(scale, size - fsx1)
    sx2 = tf.minimum(tf.floor(fsx2), size - 1)
    sx1 = tf.minimum(tf.math.ceil(fsx1), sx2)
    has_first = (sx1 - fsx1) > 1e-3
    has_last = (fsx2 - sx2) > 1e-3
    terms = tf.cast(tf.math.ceil(scale), tf.int32) + 2          # at most: partial, full ..., partial
    k = tf.cast(tf.range(terms), tf.float64)[tf.newaxis]        # (1, K)
    first = tf.cast(has_first, tf.float64)[:, tf.newaxis]
    index = sx1[:, tf.newaxis] - first + k                      # consecutive source pixels
    is_first = has_first[:, tf.newaxis] & tf.equal(k, 0)
    is_full = (index >= sx1[:, tf.newaxis]) & (index < sx2[:, tf.newaxis])
    is_last = has_last[:, tf.newaxis] & tf.equal(index, sx2[:, tf.newaxis])
    w_first = tf.cast((sx1 - fsx1) / cell, tf.float32)[:, tf.newaxis]
    w_full = tf.cast(1.0 / cell, tf.float32)[:, tf.newaxis]
    w_last = tf.cast(tf.minimum(tf.minimum(fsx2 - sx2, 1.0), cell) / cell, tf.float32)[:, tf.newaxis]
    weight = tf.where(is_first, w_first, tf.where(is_full, w_full, tf.where(is_last, w_last, 0.0)))
    used = is_first | is_full | is_last
    index = tf.where(used, index, tf.zeros_like(index))
    return tf.cast(index, tf.int32), weight


def _weighted_sum(source, index, weight, axis):
    """``sum_k source[index[:, k]] · weight[:, k]`` along ``axis`` (0 or 1), accumulated in k order."""
    target = tf.shape(index)[0]
    out_shape = tf.tensor_scatter_nd_update(tf.shape(source), [[axis]], [target])
    w_shape = [-1, 1, 1] if axis == 0 else [1, -1, 1]

    def body(k, acc):
        term = tf.cast(tf.gather(source, index[:, k], axis=axis), tf.float32)
        return k + 1, acc + term * tf.reshape(weight[:, k], w_shape)

    _, acc = tf.while_loop(lambda k, acc: k < tf.shape(index)[1], body,
                           (tf.constant(0), tf.zeros(out_shape, tf.float32)))
    return acc


def _generic(image, height, width):
    shape = tf.shape(image)
    x_index, x_weight = _area_table(shape[1], width, _scale(shape[1], width))
    y_index, y_weight = _area_table(shape[0], height, _scale(shape[0], height))
    rows = _weighted_sum(image, x_index, x_weight, axis=1)     # (H, width, C) float32
    out = _weighted_sum(rows, y_index, y_weight, axis=0)       # (height, width, C)
    return tf.cast(tf.clip_by_value(tf.math.rint(out), 0, 255), tf.uint8)


def _block_sum(image, factor, axis):
    """Integer sum of ``factor`` consecutive rows (axis 0) or columns (axis 1): int32."""
    def body(k, acc):
        part = image[k::factor] if axis == 0 else image[:, k::factor]
        return k + 1, acc + tf.cast(part, tf.int32)

    first = tf.cast(image[::factor] if axis == 0 else image[:, ::factor], tf.int32)
    _, acc = tf.while_loop(lambda k, acc: k < factor, body, (tf.constant(1), first))
    return acc


def _integer(image, fy, fx):
    sums = _block_sum(_block_sum(image, fy, axis=0), fx, axis=1)
    area = fy * fx
    # OpenCV's 2x2 SIMD kernel rounds half up; the scalar loop multiplies by the float 1/area.
    half_up = tf.bitwise.right_shift(sums + 2, 2)
    scaled = tf.math.rint(tf.cast(sums, tf.float32) * (1.0 / tf.cast(area, tf.float32)))
    out = tf.where(tf.equal(area, 4) & tf.equal(fy, 2), half_up, tf.cast(scaled, tf.int32))
    return tf.cast(tf.clip_by_value(out, 0, 255), tf.uint8)


def resize_area(image, height, width):
    """Shrink an (H, W, C) uint8 image to (height, width) exactly like ``cv2.resize`` with INTER_AREA.

    Args:
        image: (H, W, C) uint8 tensor.
        height, width: int scalars (tensors), at most H and W (no upscaling); equal sizes return the
            image unchanged, as OpenCV does.
    """
    shape = tf.shape(image)
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    sy, sx = _scale(shape[0], height), _scale(shape[1], width)
    iy, ix = tf.round(sy), tf.round(sx)
    integer = (tf.abs(sy - iy) < _DBL_EPSILON) & (tf.abs(sx - ix) < _DBL_EPSILON)
    same = tf.equal(shape[0], height) & tf.equal(shape[1], width)
    out = tf.cond(same, lambda: tf.identity(image),
                  lambda: tf.cond(integer,
                                  lambda: _integer(image, tf.cast(iy, tf.int32), tf.cast(ix, tf.int32)),
                                  lambda: _generic(image, height, width)))
    out.set_shape([None, None, image.shape[-1]])
    return out
