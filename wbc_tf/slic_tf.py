"""SLIC superpixels and the mean-coloured structure target in TensorFlow ops only.

A graph-native alternative to `wbc_tf.representations.structure_representation` (scikit-image behind
a `tf.numpy_function`): no host round trip, runs on any device and compiles under XLA. Same
convention: (B, H, W, 3) float32 **BGR** in [-1, 1] in, the same shape and dtype out, each
superpixel painted with the per-channel mean of the un-smoothed input.

The steps follow the scikit-image path the original uses (0.14.5 semantics): a Gaussian (σ, reflect,
truncate 4) on the raw values, ``rgb2lab`` of the BGR data read as RGB, the distance
|ΔLab|²/compactness² + |Δyx|²/step² with step the grid step of ``regular_grid``, centres started
on that grid with colour 0 (so the first assignment is purely spatial, as in scikit-image), a fixed
number of assignment/update rounds.

What differs, by design (a dense formulation instead of per-centre windows and scatters):

* the image is a grid of cells, one per initial centre (padded to whole cells); a pixel is compared
  with the centres of the 3×3 cells around its own cell only (scikit-image scans a window of
  ±2·step around each current centre);
* a centre update gathers, for each of the 9 offsets, the pixels of the neighbouring cell that
  chose it: a masked dense reduction per cell (a small batched matmul), shifted and added;
* the connectivity step of scikit-image (a raster-order BFS) is replaced by the fragment handling
  described at `superpixel_labels_tf`.
"""

import numpy as np
import tensorflow as tf

from wbc_tf.config import TrainConfig

_SEGMENTS = TrainConfig.superpixel_segments
_COMPACTNESS = TrainConfig.superpixel_compactness
_SIGMA = TrainConfig.superpixel_sigma

# sRGB (D65) -> XYZ and the D65 2° white point, as scikit-image's rgb2lab uses them.
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                 (0.212671, 0.715160, 0.072169),
                 (0.019334, 0.119193, 0.950227))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
# The 3x3 neighbouring cells, in raster order so that argmin's first-index tie break prefers the
# lower centre index, like scikit-image's strict ``>`` while it visits centres in order.
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
_INVALID = 1e10   # distance of a missing centre (empty or padding cell)


# --- grid, smoothing, colour -----------------------------------------------------------------------

def slic_grid(height, width, n_segments):
    """Grid of initial centres, as scikit-image's ``regular_grid((1, H, W), n_segments)`` places it.

    Returns:
        ``((start_y, start_x), (step_y, step_x))`` in pixels (Python ints).
    """
    shape = np.array([1, height, width])
    order = np.argsort(np.argsort(shape))       # rank of each axis when sorted by size
    dims = np.sort(shape).astype(np.float64)
    size = float(np.prod(shape))
    if size <= n_segments:
        return (0, 0), (1, 1)
    steps = np.full(3, (size / n_segments) ** (1.0 / 3.0))
    if (dims < steps).any():
        # an axis too short for the step keeps its full length; the others share the rest
        for dim in range(3):
            steps[dim] = dims[dim]
            rest = float(np.prod(dims[dim + 1:]))
            steps[dim + 1:] = (rest / n_segments) ** (1.0 / (3 - dim - 1))
            if (dims >= steps).all():
                break
    starts = (steps // 2).astype(int)[order]
    steps = np.round(steps).astype(int)[order]
    return (int(starts[1]), int(starts[2])), (int(steps[1]), int(steps[2]))


def gaussian_blur(planes, sigma, truncate=4.0):
    """Gaussian over the last two axes (H, W) of ``planes``, like scipy's ``gaussian_filter(mode='reflect')``.

    The kernel has radius ``int(truncate·σ + 0.5)``; the border is mirrored with the edge pixel
    repeated (scipy's 'reflect', TF's 'SYMMETRIC'); radius <= H, W. Channel-first data keep W as
    the contiguous axis, which is what makes the shifted sums below vectorise.
    """
    if sigma <= 0:
        return planes
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = taps / taps.sum()
    h, w = planes.shape[-2], planes.shape[-1]
    pad = [[0, 0]] * (planes.shape.rank - 2) + [[radius, radius], [radius, radius]]
    x = tf.pad(planes, pad, mode="SYMMETRIC")
    x = tf.add_n([float(t) * x[..., k:k + h, :] for k, t in enumerate(taps)])   # separable: rows,
    return tf.add_n([float(t) * x[..., k:k + w] for k, t in enumerate(taps)])   # then columns


def _power(x, exponent):
    """``x ** exponent`` for x > 0 as exp(exponent·log x): vectorises under XLA, unlike ``tf.pow``."""
    return tf.exp(exponent * tf.math.log(x))


def rgb_to_lab(rgb):
    """CIE Lab (D65, 2°) of channel-first (3, ...) float sRGB values, like scikit-image's ``rgb2lab``.

    Values are not clipped: negatives take the linear branch of the sRGB curve, as in scikit-image.
    """
    linear = tf.where(rgb > 0.04045, _power((tf.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4), rgb / 12.92)
    f = []
    for row, white in zip(_XYZ_FROM_RGB, _WHITE_D65):
        t = (row[0] * linear[0] + row[1] * linear[1] + row[2] * linear[2]) / white
        f.append(tf.where(t > 0.008856, _power(tf.maximum(t, 0.008856), 1.0 / 3.0), 7.787 * t + 16.0 / 116.0))
    fx, fy, fz = f
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)])


# --- cell layout ---------------------------------------------------------------------------------
#
# Pixel data live as "planes" (C, sy, sx, B, G): plane (ry, rx) holds, for every image b and cell g
# of the G = gh·gw cells, the pixel at row ry, column rx inside that cell. Every per-cell quantity
# is then a (B, G) array that broadcasts against the planes, and a per-cell reduction is a sum of
# planes: both fuse into plain vectorised loops under XLA (no batched tiny matmuls, no scatters).

class _Layout:
    """Static geometry of the cell grid for an (H, W) image and ``n_segments``."""

    def __init__(self, height, width, n_segments):
        (y0, x0), (sy, sx) = slic_grid(height, width, n_segments)
        self.height, self.width, self.sy, self.sx = height, width, sy, sx
        self.step = float(max(sy, sx))             # scikit-image: spatial weight 1 / max(steps)²
        ny = len(range(y0, height, sy))            # centres per column / row
        nx = len(range(x0, width, sx))
        self.gh = max(ny, -(-height // sy))        # cells, padded to cover the image
        self.gw = max(nx, -(-width // sx))
        iy, ix = [a.ravel() for a in np.meshgrid(np.arange(self.gh), np.arange(self.gw), indexing="ij")]
        # (G, 2): cell origins and initial centres (the scikit-image grid), in units of step
        self.origin = np.stack([iy * sy, ix * sx], -1).astype(np.float32) / self.step
        self.seeds = np.stack([y0 + iy * sy, x0 + ix * sx], -1).astype(np.float32) / self.step
        self.has_seed = (iy < ny) & (ix < nx)                                     # (G,)
        ry, rx = np.meshgrid(np.arange(sy), np.arange(sx), indexing="ij")
        # (2, sy, sx, 1, 1): position of each plane inside its cell, units of step
        self.local = (np.stack([ry, rx]) / self.step).astype(np.float32)[..., None, None]
        inside = (iy * sy + ry[..., None] < height) & (ix * sx + rx[..., None] < width)
        self.inside = inside[:, :, None, :]                                       # (sy, sx, 1, G)

    def to_planes(self, planes):
        """(C, B, H, W) -> (C, sy, sx, B, G); the padding replicates the border (it is masked)."""
        c = planes.shape[0]
        x = tf.pad(planes, [[0, 0], [0, 0], [0, self.gh * self.sy - self.height],
                            [0, self.gw * self.sx - self.width]], mode="SYMMETRIC")
        x = tf.reshape(x, [c, -1, self.gh, self.sy, self.gw, self.sx])
        x = tf.transpose(x, [0, 3, 5, 1, 2, 4])
        return tf.reshape(x, [c, self.sy, self.sx, -1, self.gh * self.gw])

    def from_planes(self, planes):
        """(C, sy, sx, B, G) -> (B, H, W, C)."""
        c = planes.shape[0]
        x = tf.reshape(planes, [c, self.sy, self.sx, -1, self.gh, self.gw])
        x = tf.transpose(x, [3, 4, 1, 5, 2, 0])
        x = tf.reshape(x, [-1, self.gh * self.sy, self.gw * self.sx, c])
        return x[:, :self.height, :self.width]

    def neighbours(self, cells, fill):
        """(B, G, F) per-cell values -> (9, F, B, G): the values of the 3×3 neighbouring cells."""
        gh, gw = self.gh, self.gw
        x = tf.reshape(cells, [-1, gh, gw, cells.shape[-1]])
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=fill)
        near = tf.stack([x[:, 1 + dy:1 + dy + gh, 1 + dx:1 + dx + gw] for dy, dx in _OFFSETS])
        return tf.transpose(tf.reshape(near, [9, -1, gh * gw, cells.shape[-1]]), [0, 3, 1, 2])

    def to_centres(self, per_offset):
        """(9, F, B, G) sums of each pixel cell per chosen offset -> (B, G, F) sums per centre cell.

        Entry [o, :, b, g] is what the pixels of cell g gave to the centre of cell g + offset o; the
        centre of cell (I, J) collects entry o of cell (I, J) − offset o.
        """
        gh, gw = self.gh, self.gw
        x = tf.reshape(tf.transpose(per_offset, [0, 2, 3, 1]), [9, -1, gh, gw, per_offset.shape[1]])
        x = tf.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1], [0, 0]])
        total = tf.add_n([x[o, :, 1 - dy:1 - dy + gh, 1 - dx:1 - dx + gw] for o, (dy, dx) in enumerate(_OFFSETS)])
        return tf.reshape(total, [-1, gh * gw, per_offset.shape[1]])


def _offset_sums(choice, planes):
    """(9, F, B, G) sums of the F ``planes`` (F, ty, tx, B, G) over the pixels of each cell, per choice.

    ``choice`` (ty, tx, B, G) int32 in 0..8, or 9 for pixels that count nowhere (padding).
    """
    terms = []
    offsets = tf.reshape(tf.range(9, dtype=choice.dtype), [9, 1, 1, 1])
    for rx in range(choice.shape[1]):
        # one column of planes at a time: each term is used once, so XLA fuses the one-hot,
        # the product and the sum into one loop instead of materialising (9, F, ty, tx, B, G)
        hit = tf.cast(choice[None, :, rx] == offsets, planes.dtype)               # (9, ty, B, G)
        terms.append(hit[:, None] * planes[None, :, :, rx])                        # (9, F, ty, B, G)
    return tf.reduce_sum(tf.add_n(terms), axis=2)


# --- k-means -------------------------------------------------------------------------------------

def _assign(colour, local, inside, layout, centres, valid):
    """Index (ty, tx, B, G) in 0..8 of the nearest of the 9 neighbouring centres (9 outside the image).

    Args:
        colour: (3, ty, tx, B, G) planes of Lab / compactness.
        local: (2, ty, tx, 1, 1) positions inside the cell; inside: (ty, tx, 1, G) bool.
        centres: (B, G, 5) colour and global position (units of step) of each centre.
        valid: (B, G) bool, the centre exists.
    """
    near = layout.neighbours(centres, 0.0)                                        # (9, 5, B, G)
    near_valid = layout.neighbours(tf.cast(valid, tf.float32)[..., None], 0.0)[:, 0] > 0.5
    # positions relative to the pixel's own cell keep the numbers small in the expansion below
    origin = tf.constant(np.concatenate([np.zeros((layout.gh * layout.gw, 3), np.float32),
                                         layout.origin], -1).T[:, None])           # (5, 1, G)
    near = near - origin
    # |p − c|² = |p|² − 2 p·c + |c|²; |p|² is the same for the 9 candidates and dropped
    norm = tf.where(near_valid, tf.reduce_sum(near * near, 1), _INVALID)          # (9, B, G)
    features = [colour[0], colour[1], colour[2], local[0], local[1]]
    dist = tf.stack([norm[o] - 2.0 * tf.add_n([f * near[o, k] for k, f in enumerate(features)])
                     for o in range(9)])
    choice = tf.argmin(dist, axis=0, output_type=tf.int32)
    return tf.where(inside, choice, 9)


def _update(choice, colour, local, layout):
    """Centres (B, G, 5) = mean colour and global position of their pixels, and validity (B, G)."""
    ones = tf.ones_like(colour[:1])
    planes = tf.concat([colour, tf.broadcast_to(local, tf.shape(colour[:2])), ones], 0)
    sums = _offset_sums(choice, planes)                                           # (9, 6, B, G)
    # local positions -> global: each counted pixel adds its own cell's origin
    origin = tf.constant(layout.origin.T[:, None])                                # (2, 1, G)
    sums = tf.concat([sums[:, :3], sums[:, 3:5] + sums[:, 5:] * origin, sums[:, 5:]], 1)
    sums = layout.to_centres(sums)                                                # (B, G, 6)
    count = sums[..., 5:]
    return sums[..., :5] / tf.maximum(count, 1.0), count[..., 0] > 0.5


def _slic(images, n_segments, compactness, sigma, iterations, stride):
    """The k-means part of SLIC: ``(choice, layout)``.

    choice: (sy, sx, B, G) int32 in 0..8, the `_OFFSETS` index of the chosen centre's cell (9 on
    padding); layout: the `_Layout`.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    layout = _Layout(images.shape[1], images.shape[2], n_segments)
    channels_first = tf.transpose(images, [3, 0, 1, 2])                           # (3, B, H, W)
    lab = rgb_to_lab(gaussian_blur(channels_first, sigma))                        # BGR read as RGB
    # centre the colours (the argmin is shift-invariant) to keep the float32 expansion accurate
    lab = lab - tf.reduce_mean(lab, axis=[2, 3], keepdims=True)
    colour = layout.to_planes(lab / compactness)                                  # (3, sy, sx, B, G)
    local, inside = tf.constant(layout.local), tf.constant(layout.inside)
    sub_local, sub_inside = local[:, ::stride, ::stride], inside[::stride, ::stride]
    batch = tf.shape(images)[0]
    # seeds have colour 0: the colour term is then equal for all candidates, so the first
    # assignment is purely spatial (scikit-image starts the same way)
    seeds = np.concatenate([np.zeros((layout.gh * layout.gw, 3), np.float32), layout.seeds], -1)
    centres = tf.tile(tf.constant(seeds)[None], [batch, 1, 1])
    valid = tf.tile(tf.constant(layout.has_seed)[None], [batch, 1])

    def body(i, centres, valid, sub, colour):
        choice = _assign(sub, sub_local, sub_inside, layout, centres, valid)
        centres, valid = _update(choice, sub, sub_local, layout)
        return i + 1, centres, valid, sub, colour

    # The planes ride through the loop unchanged: loop-carried tensors are materialised once, so
    # XLA cannot fuse the plane transposes into every consumer and recompute them there.
    state = (0, centres, valid, colour[:, ::stride, ::stride], colour)
    _, centres, valid, _, colour = tf.while_loop(lambda i, *_: i < iterations - 1, body, state)
    return _assign(colour, local, inside, layout, centres, valid), layout


def _choice_to_labels(choice, layout):
    """(sy, sx, B, G) offsets -> (B, H, W) int32 labels b·G + index of the chosen centre's cell."""
    dy = choice // 3 - 1
    dx = choice % 3 - 1
    g = layout.gh * layout.gw
    cells = tf.range(g, dtype=tf.int32) + dy * layout.gw + dx                     # (sy, sx, B, G)
    cells = cells + g * tf.range(tf.shape(choice)[2], dtype=tf.int32)[:, None]     # distinct per image
    return layout.from_planes(cells[None])[..., 0]


# --- fragments -----------------------------------------------------------------------------------

_NEIGHBOURS = ((1, 1), (1, -1), (2, 1), (2, -1))   # (axis, step) of the 4-neighbourhood


def _shift(x, axis, step, fill):
    """``x`` moved by ``step`` (±1) along ``axis`` (1 = rows, 2 = columns) of a (B, H, W) tensor."""
    n = x.shape[axis]
    pad = [[0, 0], [0, 0], [0, 0]]
    if step > 0:   # out[i] = x[i − 1]
        pad[axis] = [1, 0]
        body = x[:, :n - 1] if axis == 1 else x[:, :, :n - 1]
    else:          # out[i] = x[i + 1]
        pad[axis] = [0, 1]
        body = x[:, 1:] if axis == 1 else x[:, :, 1:]
    return tf.pad(body, pad, constant_values=fill)


def _loop(n, body, state):
    """``state = body(state)`` n times in a `tf.while_loop`: under XLA each round's result is
    materialised, instead of the next round's shifted reads fusing (and recomputing) it."""
    return tf.while_loop(lambda i, _: i < n, lambda i, x: (i + 1, body(x)), (0, state))[1]


def _component_roots(labels, same, rounds):
    """Per pixel, the smallest flat pixel index reachable through 4-neighbours of the same label.

    ``rounds`` rounds of neighbour-minimum, each followed by one pointer jump; a component whose
    root is farther than that may still be split into pieces (see `merge_fragments`).

    Args:
        labels: (B, H, W) int32.
        same: per direction of `_NEIGHBOURS`, (B, H, W) bool, the neighbour has the same label.

    Returns:
        (B, H, W) int32 flat indices into the (B·H·W) pixels.
    """
    n = tf.size(labels)

    def round_(roots):
        candidates = [tf.where(m, _shift(roots, axis, step, n), n) for m, (axis, step) in zip(same, _NEIGHBOURS)]
        roots = tf.reduce_min(tf.stack([roots] + candidates), axis=0)
        return tf.gather(tf.reshape(roots, [-1]), roots)                          # pointer jump

    return _loop(rounds, round_, tf.reshape(tf.range(n, dtype=tf.int32), tf.shape(labels)))


def merge_fragments(labels, min_size, rounds=8, chain=4):
    """Merge connected fragments smaller than ``min_size`` pixels into the segment above (or left of) them.

    scikit-image's connectivity step scans in raster order and gives a small component the label of
    an already visited neighbour; here each small component takes the final label of the pixel
    above its first (raster-order) pixel, or left of it on the top row. Chains of small components
    are followed for up to 2^``chain`` links (pointer doubling). Components not resolved within
    ``rounds`` propagation rounds keep their label.

    Args:
        labels: (B, H, W) int32 segment labels, distinct across images.

    Returns:
        (B, H, W) int32 labels.
    """
    width = labels.shape[2]
    hw = labels.shape[1] * width
    same = [tf.equal(labels, _shift(labels, axis, step, -1)) for axis, step in _NEIGHBOURS]
    roots = _component_roots(labels, same, rounds)
    # a piece is unresolved when a same-label neighbour carries another root
    unresolved = tf.reduce_any(tf.stack([m & tf.not_equal(roots, _shift(roots, axis, step, -1))
                                         for m, (axis, step) in zip(same, _NEIGHBOURS)]), axis=0)
    flat_roots = tf.reshape(roots, [-1])
    counts = tf.math.unsorted_segment_sum(
        tf.stack([tf.ones_like(flat_roots), tf.cast(tf.reshape(unresolved, [-1]), tf.int32)], -1),
        flat_roots, tf.size(flat_roots))                                           # (B·H·W, 2)
    per_pixel = tf.gather(counts, roots)                                           # (B, H, W, 2)
    small = (per_pixel[..., 0] < min_size) & (per_pixel[..., 1] == 0)
    inside = roots % hw
    above_or_left = tf.where(inside >= width, roots - width, tf.where(inside % width > 0, roots - 1, roots))
    # follow small -> target links; a pixel of a kept component points to itself
    pointer = tf.where(small, above_or_left, tf.reshape(tf.range(tf.size(labels), dtype=tf.int32),
                                                        tf.shape(labels)))
    pointer = _loop(chain, lambda p: tf.gather(tf.reshape(p, [-1]), p), pointer)
    return tf.gather(tf.reshape(labels, [-1]), pointer)


def _min_size(layout, min_size_factor):
    """scikit-image's minimum segment size: ``int(factor · H·W / number of initial centres)``."""
    return int(min_size_factor * layout.height * layout.width / int(layout.has_seed.sum()))


def _labels(images, n_segments, compactness, sigma, iterations, stride, min_size_factor, rounds):
    choice, layout = _slic(images, n_segments, compactness, sigma, iterations, stride)
    labels = _choice_to_labels(choice, layout)
    if min_size_factor > 0:
        labels = merge_fragments(labels, _min_size(layout, min_size_factor), rounds)
    return labels, layout


def slic_labels_tf(images, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, iterations=10,
                   stride=1, min_size_factor=0.5, rounds=8):
    """SLIC labels (B, H, W) int32 of (B, H, W, 3) BGR [-1, 1] images (distinct across the batch,
    not consecutive)."""
    return _labels(images, n_segments, compactness, sigma, iterations, stride, min_size_factor, rounds)[0]


def superpixel_batch_tf(images, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, iterations=10,
                        stride=1, min_size_factor=0.5, rounds=8):
    """Structure target: SLIC segments of ``images`` painted with their mean colour, in TF ops only.

    Args:
        images: (B, H, W, 3) float32 BGR in [-1, 1] (static H, W), as for
            `wbc_tf.representations.structure_representation`.

    Returns:
        (B, H, W, 3) float32, no gradient.
    """
    images = tf.stop_gradient(tf.convert_to_tensor(images, tf.float32))
    labels, layout = _labels(images, n_segments, compactness, sigma, iterations, stride, min_size_factor,
                             rounds)
    flat = tf.reshape(labels, [-1])
    n = tf.shape(images)[0] * layout.gh * layout.gw
    pixels = tf.reshape(images, [-1, 3])
    sums = tf.math.unsorted_segment_sum(tf.concat([pixels, tf.ones_like(pixels[:, :1])], -1), flat, n)
    means = sums[:, :3] / tf.maximum(sums[:, 3:], 1.0)
    return tf.stop_gradient(tf.reshape(tf.gather(means, flat), tf.shape(images)))
