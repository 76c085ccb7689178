"""Full-resolution inference in bounded memory: the network on overlapping tiles, blended at the seams.

Receptive field. Output pixel ``j`` of the generator depends on input pixels ``j - 56 … j + 62`` (at
most; the extent depends on ``j mod 4``), the guided filter adds its radius twice (r = 1: ``j - 58 …
j + 64``). `dependency` derives these numbers from the layer list of `wbc_tf.generator`; the tests
confirm them by perturbing one input pixel. The extents are asymmetric because TF 'SAME' pads the
stride-2 convs 0 before / 1 after and the legacy ×2 resize reads pixels ``i`` and ``i + 1``.

Tiling. The network's input (multiples of 8) is cut into a grid of tiles whose starts are multiples
of 8, so the two stride-2 levels see the same sampling grid as the whole image. The inputs of two
neighbouring tiles share ``overlap`` px; of that shared part each tile drops the outer
``(overlap − BLEND) / 2`` px, where it lacks context, and both are blended over the central `BLEND`
(16) px with a cosine ramp (weights ``w`` and ``1 − w``; elsewhere the weight is exactly 1 and a
pixel is one tile's value). Every kept pixel then lies at least ``(overlap − 16) / 2`` px inside its
tile: from ``overlap = 2 · 64 + 16 = 144`` (the default) it reads exactly the pixels it reads in the
whole image, and tiled equals untiled up to float rounding, seams included. A smaller overlap trades
exactness at the seams for less work: the error of a tile's output decays with the distance from
its edge (measured on photos, float max: 0.77 at the edge, 0.10 at 32 px, 0.01 at 48 px, 0 at 64 px).

Memory. The untiled network's peak grows linearly with the pixel count: `NETWORK_BYTES_PER_PIXEL`
(measured with ``benchmarks/bench_inference.py --memory``, docs/benchmarks.md). `plan_tiles` picks the
largest tiles whose estimate fits the budget. `check_memory` refuses a network call whose estimate
exceeds what the process can still get (free RAM and swap, its cgroup's limit, ``ulimit -v``): the
alternative is not an exception but the kernel's OOM killer or, under ``ulimit -v``, a segfault
inside oneDNN.
"""

import dataclasses
import math
import resource

import numpy as np

from wbc_tf.config import MULTIPLE, InferenceConfig, TrainConfig

# Peak-RSS growth of the untiled generator + guided filter per input pixel on a CPU, float32, the
# output array included: 341 B at 0.26 MP, 434 B at 0.92 MP, 447 B at 2.1 and at 4.2 MP
# (benchmarks/bench_inference.py --memory); rounded up.
NETWORK_BYTES_PER_PIXEL = 480
# Tiles are never made smaller than this (px) to meet a budget: the overlap would dominate the work.
MIN_TILE = 256
# Width (px) of the blended band at the centre of two tiles' overlap.
BLEND = 16


# --------------------------------------------------------------------------------------------
# Receptive field
# --------------------------------------------------------------------------------------------

def _conv(span, kernel, stride=1):
    # Input pixels read by output pixels [lo, hi] of a TF 'SAME' conv on an even-sized input.
    lo, hi = span
    if stride == 1:
        return lo - kernel // 2, hi + kernel // 2
    return stride * lo, stride * hi + kernel - 1  # stride 2: padding 0 before, 1 after


def _upsample(span):
    # Legacy ×2 bilinear: out[2i] = in[i], out[2i+1] = (in[i] + in[i+1]) / 2.
    lo, hi = span
    return lo // 2, (hi + 1) // 2


def _union(a, b):
    return min(a[0], b[0]), max(a[1], b[1])


def dependency(lo, hi, gf_radius, num_blocks=TrainConfig.num_blocks):
    """Input pixels ``(first, last)`` that output pixels ``lo … hi`` (one axis) of the network read.

    Walks `wbc_tf.generator.build_generator` backwards: Conv_9 (7×7) and Conv_8 at full resolution,
    upsample, Conv_7, Conv_6 at H/2, upsample, Conv_5, the residual blocks, Conv_4 at H/4, the
    stride-2 Conv_3 into the H/2 skip ``x1``, Conv_2 and the stride-2 Conv_1 into the full-resolution
    skip ``x0``, and the 7×7 Conv. ``gf_radius`` > 0 adds the guided filter (two box filters); 0:
    the generator alone.
    """
    span = (lo - 2 * gf_radius, hi + 2 * gf_radius)
    full = _conv(_conv(span, 7), 3)                     # Conv_9, Conv_8: reads skip_0 = up(·) + x0
    half = _conv(_conv(_upsample(full), 3), 3)          # Conv_7, Conv_6: reads skip_1 = up(·) + x1
    quarter = _conv(_upsample(half), 3)                 # Conv_5
    for _ in range(2 * num_blocks):                     # two 3×3 convs per residual block
        quarter = _conv(quarter, 3)
    quarter = _conv(quarter, 3)                         # Conv_4
    x1 = _union(half, _conv(quarter, 3, stride=2))      # Conv_3 reads x1
    x0 = _union(full, _conv(_conv(x1, 3), 3, stride=2))  # Conv_2, Conv_1 read x0
    return _conv(x0, 7)                                 # Conv


def receptive_field(gf_radius=InferenceConfig.gf_radius, num_blocks=TrainConfig.num_blocks):
    """``(before, after)``: output pixel j reads input pixels ``j - before … j + after`` at most.

    The maximum over the four phases ``j mod 4``: (56, 62) for the generator alone, (58, 64) with the
    guided filter (r = 1).
    """
    pixels = range(4 * MULTIPLE, 5 * MULTIPLE)  # every phase, away from the border
    spans = [dependency(j, j, gf_radius, num_blocks) for j in pixels]
    return max(j - s[0] for j, s in zip(pixels, spans)), max(s[1] - j for j, s in zip(pixels, spans))


def receptive_radius(gf_radius=InferenceConfig.gf_radius, num_blocks=TrainConfig.num_blocks):
    """The larger side of `receptive_field` (64 px): the overlap at which tiles equal the whole image."""
    return max(receptive_field(gf_radius, num_blocks))


# --------------------------------------------------------------------------------------------
# Tile plan
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Span:
    """One tile along one axis.

    The network reads pixels ``[start, stop)``; the tile's output is kept on ``[keep_start, keep_stop)``
    (the rest is too near an inner edge), with blend ramps of ``ramp_in`` / ``ramp_out`` px at the
    ends of that range (0 at the image borders).
    """

    start: int
    stop: int
    keep_start: int
    keep_stop: int
    ramp_in: int
    ramp_out: int


def split_axis(length, tile, overlap):
    """Cut ``length`` px (a multiple of 8) into the fewest `Span` s of at most ``tile`` px.

    The cores (a partition of the axis in whole 8 px blocks, sizes within one block of each other)
    are extended on each inner side so that two neighbours' inputs share ``overlap`` px and starts
    stay multiples of 8. Of the shared part, each tile drops the outer ``(overlap - BLEND) / 2`` px
    and both blend the central `BLEND` px. ``tile >= 3 * overlap`` keeps a tile's two overlaps apart.
    """
    if length <= tile:
        return [Span(0, length, 0, length, 0, 0)]
    blocks, overlap_blocks = length // MULTIPLE, overlap // MULTIPLE
    after = overlap_blocks // 2 * MULTIPLE             # px of the overlap after a core boundary
    before = overlap - after                           # px of the overlap before it
    band = min(BLEND, overlap)
    margin = (overlap - band) // 2                     # px dropped at each inner edge
    n = math.ceil(blocks / (tile // MULTIPLE - overlap_blocks))
    cuts = [i * blocks // n * MULTIPLE for i in range(n + 1)]  # core boundaries, px
    spans = []
    for i in range(n):
        first, last = i == 0, i == n - 1
        start = cuts[i] - (0 if first else before)
        stop = cuts[i + 1] + (0 if last else after)
        spans.append(Span(start, stop, start + (0 if first else margin), stop - (0 if last else margin),
                          0 if first else band, 0 if last else band))
    return spans


def _ramp(n):
    """Cosine ramp of n float32 weights rising from near 0 to near 1: 0.5 − 0.5·cos(π(p + ½)/n)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def axis_weights(span):
    """(keep_stop − keep_start,) float32 weights of one `Span`: ramps in its bands, exactly 1 elsewhere.

    A tile's rising ramp ``w`` and its neighbour's falling ramp ``1 − w`` over the same band add up
    to 1 (to float rounding).
    """
    w = np.ones(span.keep_stop - span.keep_start, np.float32)
    if span.ramp_in:
        w[:span.ramp_in] = _ramp(span.ramp_in)
    if span.ramp_out:
        w[w.size - span.ramp_out:] = np.float32(1) - _ramp(span.ramp_out)
    return w


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """Tiles of an (height, width) network input: the grid is ``rows × cols`` `Span` s."""

    height: int
    width: int
    rows: tuple
    cols: tuple

    def __len__(self):
        return len(self.rows) * len(self.cols)


def estimate_network_bytes(height, width, batch=1):
    """Estimated peak memory of the untiled network on a (batch, height, width, 3) float32 input."""
    return NETWORK_BYTES_PER_PIXEL * batch * height * width


def tile_shape_for_budget(height, width, budget_bytes, overlap):
    """(tile_h, tile_w): the largest tiles (multiples of 8) whose network estimate fits ``budget_bytes``.

    Square tiles by default; when one side of the image is shorter than that square, the tiles span
    that side and grow along the other. Never below ``max(MIN_TILE, 3 * overlap)``.
    """
    pixels = budget_bytes // NETWORK_BYTES_PER_PIXEL
    floor = max(MIN_TILE, 3 * overlap)
    side = max(floor, int(math.isqrt(pixels)) // MULTIPLE * MULTIPLE)
    if height <= side:
        return height, max(floor, pixels // height // MULTIPLE * MULTIPLE)
    if width <= side:
        return max(floor, pixels // width // MULTIPLE * MULTIPLE), width
    return side, side


def plan_tiles(height, width, config=InferenceConfig(), batch=1):
    """The `TilePlan` for a (batch, height, width, 3) network input under ``config``, or None: untiled.

    ``config.tile`` > 0 forces tiles of at most that size; otherwise an input whose
    `estimate_network_bytes` exceeds ``config.memory_budget`` is tiled to fit it.
    """
    overlap = config.tile_overlap
    if config.tile:
        tile_h = tile_w = config.tile
    elif estimate_network_bytes(height, width, batch) <= config.memory_budget_bytes:
        return None
    else:
        tile_h, tile_w = tile_shape_for_budget(height, width, config.memory_budget_bytes // batch, overlap)
    if height <= tile_h and width <= tile_w:
        return None
    return TilePlan(height, width, tuple(split_axis(height, tile_h, overlap)),
                    tuple(split_axis(width, tile_w, overlap)))


def run_tiled(network, x, plan):
    """Run ``network`` tile by tile on ``x`` and blend: the tiled equivalent of ``network(x)``.

    Args:
        network: (B, h, w, 3) float32 NumPy → (B, h, w, C) float32 NumPy, for any h, w that are
            multiples of 8.
        x: (B, H, W, 3) float32 NumPy, H and W = ``plan.height``, ``plan.width``.
        plan: a `TilePlan`.

    Returns:
        (B, H, W, C) float32 NumPy. Outside the blend bands each pixel is one tile's value, unchanged.
    """
    out = None
    for rows in plan.rows:
        wy = axis_weights(rows)
        for cols in plan.cols:
            y = network(np.ascontiguousarray(x[:, rows.start:rows.stop, cols.start:cols.stop]))
            if out is None:
                out = np.zeros(x.shape[:3] + y.shape[3:], np.float32)
            y = y[:, rows.keep_start - rows.start:rows.keep_stop - rows.start,
                  cols.keep_start - cols.start:cols.keep_stop - cols.start]
            if rows.ramp_in or rows.ramp_out or cols.ramp_in or cols.ramp_out:
                y = y * (wy[:, None] * axis_weights(cols)[None, :])[None, :, :, None]
            out[:, rows.keep_start:rows.keep_stop, cols.keep_start:cols.keep_stop] += y
    return out


# --------------------------------------------------------------------------------------------
# Memory left
# --------------------------------------------------------------------------------------------

def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_kib(path):
    """``{key: kB}`` of a /proc file of ``Key:  123 kB`` lines ({} if unreadable)."""
    try:
        with open(path) as f:
            rows = [line.split() for line in f]
    except OSError:
        return {}
    return {row[0].rstrip(":"): int(row[1]) for row in rows if len(row) >= 2 and row[1].isdigit()}


def _cgroup_dirs():
    """This process's memory cgroup folders (v2 and v1), its own first, then the mount roots."""
    dirs = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controllers == "":
                    dirs.append("/sys/fs/cgroup" + path)
                elif "memory" in controllers.split(","):
                    dirs.append("/sys/fs/cgroup/memory" + path)
    except (OSError, ValueError):
        pass
    return dirs + ["/sys/fs/cgroup", "/sys/fs/cgroup/memory"]


def available_memory():
    """Bytes this process can still allocate, or None where nothing can be read (not Linux).

    The tightest of: free RAM plus free swap (``MemAvailable + SwapFree``), the memory cgroup's limit
    minus its usage (v2 ``memory.max``, v1 ``memory.limit_in_bytes``), and the address-space limit
    (``ulimit -v``) minus the current address space.
    """
    limits = []
    meminfo = _read_kib("/proc/meminfo")
    if "MemAvailable" in meminfo:
        limits.append((meminfo["MemAvailable"] + meminfo.get("SwapFree", 0)) * 1024)
    for folder in _cgroup_dirs():
        for limit_name, usage_name in (("memory.max", "memory.current"),
                                       ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            limit, usage = _read_int(f"{folder}/{limit_name}"), _read_int(f"{folder}/{usage_name}")
            if limit is not None and usage is not None and limit < 2 ** 60:  # 'max' / 2^63: no limit
                limits.append(limit - usage)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    size = _read_kib("/proc/self/status").get("VmSize")
    if soft != resource.RLIM_INFINITY and size is not None:
        limits.append(soft - size * 1024)
    return max(0, min(limits)) if limits else None


def check_memory(needed_bytes):
    """Raise MemoryError if ``needed_bytes`` exceeds `available_memory` (when that can be read)."""
    available = available_memory()
    if available is not None and needed_bytes > available:
        raise MemoryError(f"the network needs about {needed_bytes / 2 ** 30:.1f} GB, "
                          f"{available / 2 ** 30:.1f} GB are available")
