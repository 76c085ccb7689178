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


def _root(a, n, steps=3):
    """``a ** (1/n)`` for float32 a > 0: a first guess from the exponent bits, then Newton steps.

    Vectorises under XLA (``tf.pow`` and exp/log do not, on CPU); 3 steps reach float32 accuracy.
    """
    one = 0x3F800000                                                              # bits of 1.0f
    y = tf.bitcast((tf.bitcast(a, tf.int32) - one) // n + one, tf.float32)
    for _ in range(steps):
        power = y
        for _ in range(n - 2):
            power = power * y                  # y^(n−1) by products: ``**`` is a slow pow under XLA
        y = ((n - 1) * y + a / power) / n
    return y


def rgb_to_lab(rgb):
    """CIE Lab (D65, 2°) of channel-first (3, ...) float sRGB values, like scikit-image's ``rgb2lab``.

    Values are not clipped: negatives take the linear branch of the sRGB curve, as in scikit-image.
    """
    u = (tf.maximum(rgb, 0.04045) + 0.055) / 1.055
    linear = tf.where(rgb > 0.04045, u * u * _root(u * u, 5), rgb / 12.92)       # u^2.4 = u²·(u²)^(1/5)
    f = []
    for row, white in zip(_XYZ_FROM_RGB, _WHITE_D65):
        t = (row[0] * linear[0] + row[1] * linear[1] + row[2] * linear[2]) / white
        f.append(tf.where(t > 0.008856, _root(tf.maximum(t, 0.008856), 3), 7.787 * t + 16.0 / 116.0))
    fx, fy, fz = f
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)])


def _loop(n, body, state):
    """``state = body(state)`` n times in a `tf.while_loop`: under XLA each round's result is
    materialised, instead of the next round's shifted reads fusing (and recomputing) it."""
    return tf.while_loop(lambda i, _: i < n, lambda i, x: (i + 1, body(x)), (0, state))[1]


# --- cell layout ---------------------------------------------------------------------------------
#
# Pixel data live as "planes" (sy, sx, C, B, G): plane (ry, rx) holds, for every image b and cell g
# of the G = gh·gw cells, the pixel at row ry, column rx inside that cell. Every per-cell quantity
# is then a (B, G) array that broadcasts against the planes, and a per-cell reduction is a sum of
# planes: both fuse into plain loops over contiguous (B, G) vectors under XLA (no batched tiny
# matmuls, no scatters). Pixel-major order keeps one plane's channels together for the reductions.

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
        self.cells = self.gh * self.gw
        iy, ix = [a.ravel() for a in np.meshgrid(np.arange(self.gh), np.arange(self.gw), indexing="ij")]
        # (G, 2): cell origins and initial centres (the scikit-image grid), in units of step
        self.origin = np.stack([iy * sy, ix * sx], -1).astype(np.float32) / self.step
        self.seeds = np.stack([y0 + iy * sy, x0 + ix * sx], -1).astype(np.float32) / self.step
        self.has_seed = (iy < ny) & (ix < nx)                                     # (G,)
        ry, rx = np.meshgrid(np.arange(sy), np.arange(sx), indexing="ij")
        # (sy, sx, 2, 1, 1): position of each plane inside its cell, units of step
        self.local = (np.stack([ry, rx], -1) / self.step).astype(np.float32)[..., None, None]
        inside = (iy * sy + ry[..., None] < height) & (ix * sx + rx[..., None] < width)
        self.inside = inside[:, :, None, :]                                       # (sy, sx, 1, G)

    def to_planes(self, planes):
        """(C, B, H, W) -> (sy, sx, C, B, G); the padding replicates the border (it is masked)."""
        c = planes.shape[0]
        x = tf.pad(planes, [[0, 0], [0, 0], [0, self.gh * self.sy - self.height],
                            [0, self.gw * self.sx - self.width]], mode="SYMMETRIC")
        x = tf.reshape(x, [c, -1, self.gh, self.sy, self.gw, self.sx])
        x = tf.transpose(x, [3, 5, 0, 1, 2, 4])
        return tf.reshape(x, [self.sy, self.sx, c, -1, self.cells])

    def from_planes(self, planes):
        """(sy, sx, C, B, G) -> (B, H, W, C)."""
        c = planes.shape[2]
        x = tf.reshape(planes, [self.sy, self.sx, c, -1, self.gh, self.gw])
        x = tf.transpose(x, [3, 4, 0, 5, 1, 2])
        x = tf.reshape(x, [-1, self.gh * self.sy, self.gw * self.sx, c])
        return x[:, :self.height, :self.width]

    def neighbours(self, cells, fill):
        """(B, G, F) per-cell values -> (9, F, B, G): the values of the 3×3 neighbouring cells."""
        gh, gw = self.gh, self.gw
        x = tf.reshape(cells, [-1, gh, gw, cells.shape[-1]])
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=fill)
        near = tf.stack([x[:, 1 + dy:1 + dy + gh, 1 + dx:1 + dx + gw] for dy, dx in _OFFSETS])
        return tf.transpose(tf.reshape(near, [9, -1, self.cells, cells.shape[-1]]), [0, 3, 1, 2])

    def to_centres(self, per_offset):
        """(9, F, B, G) sums of each pixel cell per chosen offset -> (B, G, F) sums per centre cell.

        Entry [o, :, b, g] is what the pixels of cell g gave to the centre of cell g + offset o; the
        centre of cell (I, J) collects entry o of cell (I, J) − offset o.
        """
        gh, gw = self.gh, self.gw
        x = tf.reshape(tf.transpose(per_offset, [0, 2, 3, 1]), [9, -1, gh, gw, per_offset.shape[1]])
        x = tf.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1], [0, 0]])
        total = tf.add_n([x[o, :, 1 - dy:1 - dy + gh, 1 - dx:1 - dx + gw]
                          for o, (dy, dx) in enumerate(_OFFSETS)])
        return tf.reshape(total, [-1, self.cells, per_offset.shape[1]])


def _offset_sums(choice, planes):
    """(9, F, B, G) sums of ``planes`` (ty, tx, F, B, G) over the pixels of each cell, per choice.

    ``choice`` (ty, tx, B, G) int32 in 0..8, or 9 for pixels that count nowhere (padding).
    """
    terms = []
    offsets = tf.reshape(tf.range(9, dtype=choice.dtype), [1, 9, 1, 1])
    for rx in range(choice.shape[1]):
        # one column of planes at a time: each term is used once, so XLA fuses the one-hot,
        # the product and the sum into one loop instead of materialising (ty, tx, 9, F, B, G)
        hit = tf.cast(choice[:, rx, None] == offsets, planes.dtype)               # (ty, 9, B, G)
        terms.append(hit[:, :, None] * planes[:, rx, None])                       # (ty, 9, F, B, G)
    return tf.reduce_sum(tf.add_n(terms), axis=0)


# --- k-means -------------------------------------------------------------------------------------

def _assign(colour, local, inside, layout, centres, valid):
    """Index (ty, tx, B, G) in 0..8 of the nearest of the 9 neighbouring centres (9 outside the image).

    Args:
        colour: (ty, tx, 3, B, G) planes of Lab / compactness.
        local: (ty, tx, 2, 1, 1) positions inside the cell; inside: (ty, tx, 1, G) bool.
        centres: (B, G, 5) colour and global position (units of step) of each centre.
        valid: (B, G) bool, the centre exists.
    """
    near = layout.neighbours(centres, 0.0)                                        # (9, 5, B, G)
    near_valid = layout.neighbours(tf.cast(valid, tf.float32)[..., None], 0.0)[:, 0] > 0.5
    # positions relative to the pixel's own cell keep the numbers small in the expansion below
    origin = tf.constant(np.concatenate([np.zeros((layout.cells, 3), np.float32),
                                         layout.origin], -1).T[:, None])           # (5, 1, G)
    near = near - origin
    # |p − c|² = |p|² − 2 p·c + |c|²; |p|² is the same for the 9 candidates and dropped
    norm = tf.where(near_valid, tf.reduce_sum(near * near, 1), _INVALID)          # (9, B, G)
    features = [colour[:, :, 0], colour[:, :, 1], colour[:, :, 2], local[:, :, 0], local[:, :, 1]]
    best = choice = None
    for o in range(9):
        dist = norm[o] - 2.0 * tf.add_n([f * near[o, k] for k, f in enumerate(features)])
        if best is None:
            best, choice = dist, tf.zeros_like(dist, tf.int32)
        else:
            closer = dist < best           # strict: ties keep the lower centre index
            best, choice = tf.where(closer, dist, best), tf.where(closer, o, choice)
    return tf.where(inside, choice, 9)


def _update(choice, colour, local, layout):
    """Centres (B, G, 5) = mean colour and global position of their pixels, and validity (B, G)."""
    shape = tf.shape(colour[:, :, :2])
    planes = tf.concat([colour, tf.broadcast_to(local, shape), tf.ones_like(colour[:, :, :1])], 2)
    sums = _offset_sums(choice, planes)                                           # (9, 6, B, G)
    # local positions -> global: each counted pixel adds its own cell's origin
    origin = tf.constant(layout.origin.T[:, None])                                # (2, 1, G)
    sums = tf.concat([sums[:, :3], sums[:, 3:5] + sums[:, 5:] * origin, sums[:, 5:]], 1)
    sums = layout.to_centres(sums)                                                # (B, G, 6)
    count = sums[..., 5:]
    return sums[..., :5] / tf.maximum(count, 1.0), count[..., 0] > 0.5


def _slic(images, n_segments, compactness, sigma, iterations, update_stride):
    """The k-means part of SLIC: ``(choice, layout)``.

    choice: (sy, sx, B, G) int32 in 0..8, the `_OFFSETS` index of the chosen centre's cell (9 on
    padding); layout: the `_Layout`.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    layout = _Layout(images.shape[1], images.shape[2], n_segments)
    lab = rgb_to_lab(gaussian_blur(tf.transpose(images, [3, 0, 1, 2]), sigma))   # BGR read as RGB
    # centre the colours (the argmin is shift-invariant) to keep the float32 expansion accurate
    lab = lab - tf.reduce_mean(lab, axis=[2, 3], keepdims=True)
    colour = layout.to_planes(lab / compactness)                                  # (sy, sx, 3, B, G)
    local, inside = tf.constant(layout.local), tf.constant(layout.inside)
    sub = (local[::update_stride, ::update_stride], inside[::update_stride, ::update_stride])
    batch = tf.shape(images)[0]
    # seeds have colour 0: the colour term is then equal for all candidates, so the first
    # assignment is purely spatial (scikit-image starts the same way)
    seeds = np.concatenate([np.zeros((layout.cells, 3), np.float32), layout.seeds], -1)
    centres = tf.tile(tf.constant(seeds)[None], [batch, 1, 1])
    valid = tf.tile(tf.constant(layout.has_seed)[None], [batch, 1])
    if iterations > 1:
        def body(choice, sampled, colour):
            centres, valid = _update(choice, sampled, sub[0], layout)
            return _assign(sampled, *sub, layout, centres, valid), sampled, colour

        # Loop-carried tensors are materialised: the assignment is computed once per round, not
        # again inside each of the update's reductions, and the planes once, not in every reader.
        sampled = colour[::update_stride, ::update_stride]
        choice = _assign(sampled, *sub, layout, centres, valid)
        choice, sampled, colour = _loop(iterations - 2, lambda state: body(*state), (choice, sampled, colour))
        centres, valid = _update(choice, sampled, sub[0], layout)
    return _assign(colour, local, inside, layout, centres, valid), layout


def _choice_to_labels(choice, layout):
    """(sy, sx, B, G) offsets -> (B, H, W) int32 labels b·G + index of the chosen centre's cell."""
    dy = choice // 3 - 1
    dx = choice % 3 - 1
    g = layout.gh * layout.gw
    cells = tf.range(g, dtype=tf.int32) + dy * layout.gw + dx                     # (sy, sx, B, G)
    cells = cells + g * tf.range(tf.shape(choice)[2], dtype=tf.int32)[:, None]     # distinct per image
    return layout.from_planes(cells[:, :, None])[..., 0]


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


def _same_label(labels):
    """Per direction of `_NEIGHBOURS`, (B, H, W) bool: that neighbour has the same label."""
    return [tf.equal(labels, _shift(labels, axis, step, -1)) for axis, step in _NEIGHBOURS]


def _component_roots(labels, rounds):
    """Per pixel, the smallest flat pixel index reachable through 4-neighbours of the same label.

    ``rounds`` rounds of neighbour-minimum, each with one pointer jump; a component whose
    root is farther than that may still be split into pieces (see `merge_fragments`).

    Args:
        labels: (B, H, W) int32.

    Returns:
        ``(roots, labels)``: (B, H, W) int32 flat indices into the (B·H·W) pixels, and ``labels``
        as it came out of the loop (materialised: see the comment below).
    """
    n = tf.size(labels)

    def round_(state):
        roots, labels = state
        lowest = roots
        for same, (axis, step) in zip(_same_label(labels), _NEIGHBOURS):
            lowest = tf.minimum(lowest, tf.where(same, _shift(roots, axis, step, n), n))
        # pointer jump through the *incoming* roots: the same fixed point, and under XLA the
        # gather then reads a materialised operand instead of recomputing the minimum per element
        return tf.gather(tf.reshape(roots, [-1]), lowest), labels

    # the labels ride through the loop so that XLA materialises them once, instead of fusing the
    # whole assignment that produced them into each of their shifted readers
    roots = tf.reshape(tf.range(n, dtype=tf.int32), tf.shape(labels))
    return _loop(rounds, round_, (roots, labels))


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
    roots, labels = _component_roots(labels, rounds)
    # a piece is unresolved when a same-label neighbour carries another root
    unresolved = tf.reduce_any(tf.stack([same & tf.not_equal(roots, _shift(roots, axis, step, -1))
                                         for same, (axis, step) in zip(_same_label(labels), _NEIGHBOURS)]),
                               axis=0)
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


def slic_cells(height, width, n_segments=_SEGMENTS):
    """G, the label values per image of `slic_labels_tf` on (H, W) images: b·G + cell < (b + 1)·G."""
    return _Layout(height, width, n_segments).cells


def _min_size(layout, min_size_factor):
    """scikit-image's minimum segment size: ``int(factor · H·W / number of initial centres)``."""
    return int(min_size_factor * layout.height * layout.width / int(layout.has_seed.sum()))


def slic_labels_tf(images, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, iterations=10,
                   update_stride=1, min_size_factor=0.5, connectivity_rounds=8):
    """SLIC labels of (B, H, W, 3) BGR [-1, 1] images, in TF ops only.

    Args:
        images: (B, H, W, 3) float32 BGR in [-1, 1], static H and W.
        n_segments: approximate number of segments (sets the grid, as scikit-image does).
        compactness: weight of the spatial term, in Lab units.
        sigma: Gaussian smoothing before the Lab conversion (0 = none).
        iterations: assignment rounds (scikit-image's ``max_iter``); the first is purely spatial.
        update_stride: the centre updates read every ``update_stride``-th row and column of each cell
            (1 = every pixel); the final assignment always uses every pixel.
        min_size_factor: fragments smaller than this fraction of H·W / (number of centres) are merged
            into a neighbour (`merge_fragments`, scikit-image's ``min_size_factor``); 0 = keep them.
        connectivity_rounds: propagation rounds of `merge_fragments`.

    Returns:
        (B, H, W) int32 labels ``b·G + cell index of the segment's centre`` (G cells per image):
        distinct across the batch, not consecutive.
    """
    choice, layout = _slic(images, n_segments, compactness, sigma, iterations, update_stride)
    labels = _choice_to_labels(choice, layout)
    if min_size_factor > 0:
        labels = merge_fragments(labels, _min_size(layout, min_size_factor), connectivity_rounds)
    return labels


def segment_means_tf(images, labels, segments):
    """Paint every pixel with the per-channel mean of its segment (``label2rgb(kind='avg')``).

    Args:
        images: (B, H, W, C) float32.
        labels: (B, H, W) int32 in [0, segments), distinct across the batch (as `slic_labels_tf`).
        segments: the number of label values (B·G for `slic_labels_tf`).

    Returns:
        (B, H, W, C) float32.
    """
    flat = tf.reshape(labels, [-1])
    pixels = tf.reshape(images, [-1, images.shape[-1]])
    # one pass over the pixels: per-segment sums of (values, 1), then every pixel reads its mean
    sums = tf.math.unsorted_segment_sum(tf.concat([pixels, tf.ones_like(pixels[:, :1])], -1), flat, segments)
    means = sums[:, :-1] / tf.maximum(sums[:, -1:], 1.0)
    return tf.reshape(tf.gather(means, flat), tf.shape(images))


def superpixel_batch_tf(images, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, iterations=10,
                        update_stride=1, min_size_factor=0.5, connectivity_rounds=8):
    """Structure target: the `slic_labels_tf` segments painted with their mean colour.

    The TF counterpart of `wbc_tf.representations.structure_representation` with
    ``colouring='mean'``: each segment gets the per-channel mean of the un-smoothed input.

    Args:
        images: (B, H, W, 3) float32 BGR in [-1, 1], static H and W.
        n_segments, compactness, sigma, iterations, update_stride, min_size_factor,
            connectivity_rounds: as `slic_labels_tf`.

    Returns:
        (B, H, W, 3) float32, a constant target (no gradient flows through it).
    """
    images = tf.stop_gradient(tf.convert_to_tensor(images, tf.float32))
    labels = slic_labels_tf(images, n_segments, compactness, sigma, iterations, update_stride,
                            min_size_factor, connectivity_rounds)
    segments = tf.shape(images)[0] * slic_cells(images.shape[1], images.shape[2], n_segments)
    return tf.stop_gradient(segment_means_tf(images, labels, segments))


# The structure target of an uncompiled train step (``--superpixel tf`` without ``--jit-compile``):
# XLA-compiled on its own, because TF's kernels run these loops of small element-wise ops about 4x
# slower (docs/benchmarks.md). Inside a compiled step it is inlined into the step's XLA cluster.
superpixel_batch_compiled = tf.function(superpixel_batch_tf, jit_compile=True)
