"""Tiled inference (`wbc_tf.tiling`): the receptive field, the tile plan, tiled == untiled, peak memory.

The receptive field is derived from the layer list and confirmed by perturbing one input pixel of the
bundled generator; the tiled network is compared with the untiled one on a photo-like image with
forced small tiles; the slow test cartoonizes a 6000x4000 photo with ``--short-side 0`` in a child
process and measures its peak RSS.
"""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from wbc_tf import tiling
from wbc_tf.config import MULTIPLE, InferenceConfig
from wbc_tf.inference import Cartoonizer, OutOfMemoryError, denormalize, normalize


def _photo_like(rgb, h, w, seed=0):
    """A real scikit-image photo upscaled (cubic) to (h, w), with sensor-like noise: uint8 BGR."""
    big = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (w, h), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(seed).integers(-6, 7, big.shape, dtype=np.int16)
    return np.clip(big + noise, 0, 255).astype(np.uint8)


# ---- receptive field ------------------------------------------------------------------------------

def test_receptive_field_numbers():
    assert tiling.receptive_field(gf_radius=0) == (56, 62)  # the generator alone
    assert tiling.receptive_field() == (58, 64)             # + the guided filter, r = 1, twice
    assert tiling.receptive_radius() == 64
    # The default overlap keeps every kept pixel a full radius away from its tile's inner edges.
    config = InferenceConfig()
    assert config.tile_overlap % MULTIPLE == 0
    assert config.tile_overlap >= 2 * tiling.receptive_radius() + tiling.BLEND


@pytest.mark.parametrize("with_filter", [False, True], ids=["generator", "generator+guided_filter"])
def test_receptive_field_matches_one_pixel_perturbation(cartoonizer, with_filter):
    """Change one input pixel at each of the four phases mod 4; exactly the predicted outputs move."""
    size, gf_radius = 192, 1 if with_filter else 0
    x = np.random.default_rng(1).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)

    def network(z):
        if with_filter:
            return cartoonizer.forward(tf.constant(z)).numpy()[0]
        return cartoonizer.generator(z, training=False).numpy()[0]

    base = network(x)
    for p in range(92, 96):
        x2 = x.copy()
        x2[0, p, p] = -x2[0, p, p] + 0.5               # a large change, so no output rounds it away
        changed = np.abs(network(x2) - base).max(axis=2) > 0
        rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
        # Outputs j whose dependency span contains p.
        expected = [j for j in range(size) if tiling.dependency(j, j, gf_radius=gf_radius)[0] <= p
                    <= tiling.dependency(j, j, gf_radius=gf_radius)[1]]
        assert rows.tolist() == expected and cols.tolist() == expected, (p, rows, cols)


# ---- the plan -------------------------------------------------------------------------------------

@pytest.mark.parametrize("length, tile, overlap", [
    (904, 432, 144), (4000, 1480, 144), (6000, 1344, 144), (440, 432, 144), (2000, 512, 0),
    (1200, 256, 64), (1208, 192, 64), (800, 96, 8), (4096, 1024, 144)])
def test_split_axis_covers_the_axis_with_aligned_overlapping_tiles(length, tile, overlap):
    spans = tiling.split_axis(length, tile, overlap)
    assert spans[0].start == spans[0].keep_start == 0 and spans[-1].stop == spans[-1].keep_stop == length
    assert len(spans) == max(1, -(-(length // 8) // (tile // 8 - overlap // 8)))
    weight = np.zeros(length, np.float64)
    for a, b in zip(spans, spans[1:]):
        assert a.stop - b.start == overlap                       # neighbours share `overlap` px
        assert a.keep_stop - b.keep_start == min(tiling.BLEND, overlap) == a.ramp_out == b.ramp_in
    for i, s in enumerate(spans):
        assert s.start % MULTIPLE == 0 and s.stop % MULTIPLE == 0 and s.stop - s.start <= tile
        assert s.start <= s.keep_start < s.keep_stop <= s.stop
        if i + 2 < len(spans):
            assert s.stop <= spans[i + 2].start                  # never three tiles on one pixel
        margin = min(s.keep_start - s.start if i else np.inf, s.stop - s.keep_stop if i + 1 < len(spans)
                     else np.inf)
        if len(spans) > 1:
            assert margin == (overlap - min(tiling.BLEND, overlap)) // 2
        w = tiling.axis_weights(s)
        assert w.dtype == np.float32 and w.shape == (s.keep_stop - s.keep_start,)
        assert np.all(w[s.ramp_in:w.size - s.ramp_out] == 1)     # exactly one outside the bands
        weight[s.keep_start:s.keep_stop] += w
    np.testing.assert_allclose(weight, 1, atol=1e-6)             # the ramps add up to one


def test_plan_tiles_untiled_under_budget_tiled_above():
    default = InferenceConfig()
    assert tiling.plan_tiles(720, 1280, default) is None             # the default path never tiles
    assert tiling.plan_tiles(1080, 1920, default) is None            # a full-HD frame at --short-side 0
    plan = tiling.plan_tiles(4000, 6000, default)
    assert plan is not None and len(plan) > 1
    for rows in plan.rows:
        for cols in plan.cols:
            assert tiling.estimate_network_bytes(rows.stop - rows.start, cols.stop - cols.start) \
                <= default.memory_budget_bytes
    # A wide panorama: tiles span its height and grow along its width.
    plan = tiling.plan_tiles(720, 20000, default)
    assert len(plan.rows) == 1 and len(plan.cols) > 1
    # Forced tiles: any image larger than one tile; a smaller one runs whole.
    forced = InferenceConfig(tile=432)
    assert tiling.plan_tiles(432, 432, forced) is None
    plan = tiling.plan_tiles(440, 432, forced)
    assert (len(plan.rows), len(plan.cols)) == (2, 1)
    # A tiny budget still gives workable tiles: the smallest allowed, 3x the overlap.
    assert tiling.tile_shape_for_budget(2000, 2000, 10 * 2 ** 20, 144) == (432, 432)
    tiny = tiling.plan_tiles(2000, 2000, InferenceConfig(memory_budget="10MB"))
    assert max(s.stop - s.start for s in tiny.rows + tiny.cols) == 432


def test_memory_budget_and_tile_options_are_validated():
    assert InferenceConfig(memory_budget="1.5GB").memory_budget_bytes == 3 * 2 ** 29
    assert InferenceConfig(memory_budget=800).memory_budget_bytes == 800 * 2 ** 20
    for bad in ({"memory_budget": "lots"}, {"memory_budget": 0}, {"memory_budget": "-1GB"},
                {"tile": 100}, {"tile": 424}, {"tile_overlap": 12}, {"tile_overlap": -8}):
        with pytest.raises(ValueError):
            InferenceConfig(**bad)
    InferenceConfig(tile=432)
    InferenceConfig(tile=192, tile_overlap=64)


# ---- tiled == untiled -----------------------------------------------------------------------------

def _band_mask(plan):
    """True on the pixels that two or more tiles blend (the seams)."""
    band = np.zeros((plan.height, plan.width), bool)
    for s in plan.rows[1:]:
        band[s.keep_start:s.keep_start + s.ramp_in] = True
    for s in plan.cols[1:]:
        band[:, s.keep_start:s.keep_start + s.ramp_in] = True
    return band


@pytest.fixture(scope="module")
def photo_960x720(astronaut_rgb):
    return _photo_like(astronaut_rgb, 720, 960)


@pytest.fixture(scope="module")
def untiled_960x720(cartoonizer, photo_960x720):
    whole = Cartoonizer(cartoonizer.generator, InferenceConfig(short_side=0))
    return whole.cartoonize_float(photo_960x720)


def test_tiled_output_equals_untiled(cartoonizer, photo_960x720, untiled_960x720):
    """Forced 432 px tiles (12 of them), default overlap: max |d| <= 1 off the seams, <= 2 on them."""
    tiled = Cartoonizer(cartoonizer.generator, InferenceConfig(short_side=0, tile=432))
    plan = tiled.tile_plan(1, 720, 960)
    assert (len(plan.rows), len(plan.cols)) == (3, 4)
    got_float = tiled.cartoonize_float(photo_960x720)  # its denormalize() is cartoonize_bgr's output
    diff = np.abs(denormalize(got_float).astype(np.int16) - denormalize(untiled_960x720).astype(np.int16))
    diff, band = diff.max(axis=2), _band_mask(plan)
    float_diff = np.abs(got_float - untiled_960x720).max()
    print(f"tiled vs untiled: off the seams max |d| {diff[~band].max()}, on them {diff[band].max()}, "
          f"float max |d| {float_diff:.2e}")
    assert band.any() and diff[~band].max() <= 1 and diff[band].max() <= 2
    assert float_diff < 1e-4


def test_budget_tiling_through_the_api(cartoonizer, photo_960x720, untiled_960x720):
    """An image over --memory-budget is tiled automatically, same result; the default config does not tile."""
    small = Cartoonizer(cartoonizer.generator, InferenceConfig(short_side=0, memory_budget="120MB"))
    assert small.tile_plan(1, 720, 960) is not None
    assert Cartoonizer(cartoonizer.generator, InferenceConfig(short_side=0)).tile_plan(1, 720, 960) is None
    rgb = np.ascontiguousarray(photo_960x720[..., ::-1])
    got = small.cartoonize(rgb)[..., ::-1]
    assert np.abs(got.astype(np.int16) - denormalize(untiled_960x720).astype(np.int16)).max() <= 2


def test_run_tiled_is_exact_for_a_pointwise_network(rng):
    """A network without spatial context: tiling reproduces it, seams included (to float rounding)."""
    x = rng.uniform(-1, 1, (2, 440, 600, 3)).astype(np.float32)
    plan = tiling.plan_tiles(440, 600, InferenceConfig(tile=192, tile_overlap=64))
    got = tiling.run_tiled(lambda t: t * np.float32(3) - np.float32(1), x, plan)
    np.testing.assert_allclose(got, x * np.float32(3) - np.float32(1), rtol=0, atol=2e-6)


def test_out_of_memory_becomes_one_clear_error(cartoonizer, coffee_rgb, monkeypatch):
    c = Cartoonizer(cartoonizer.generator, InferenceConfig())
    for error in (tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"),
                  MemoryError("Unable to allocate 3.2 GiB")):
        def fail(x, error=error):
            raise error
        monkeypatch.setattr(c, "_forward", fail)
        with pytest.raises(OutOfMemoryError, match=r"out of memory .* 96x64 px \(untiled\).*--memory-budget"):
            c.cartoonize(coffee_rgb[:64, :96])



_ULIMIT_CHILD = """
import os, resource, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from wbc_tf.config import InferenceConfig
from wbc_tf.inference import Cartoonizer, OutOfMemoryError
c = Cartoonizer.from_pretrained(config=InferenceConfig(short_side=0, memory_budget="64GB"))
c.run_network(np.zeros((1, 64, 64, 3), np.float32))
x = np.zeros((1, 2048, 2048, 3), np.float32)              # untiled: needs about 2 GB
with open("/proc/self/status") as f:
    size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + 2 ** 30, resource.RLIM_INFINITY))  # ulimit -v: 1 GB more
try:
    c.run_network(x)
    print("ran")
except OutOfMemoryError as error:
    print("OutOfMemoryError:", error)
"""


def test_memory_limit_is_an_error_not_a_crash():
    """Under ``ulimit -v`` oneDNN segfaults when an allocation fails; the network call is refused first."""
    run = subprocess.run([sys.executable, "-c", _ULIMIT_CHILD], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.returncode, run.stderr[-1500:])
    assert "OutOfMemoryError: out of memory running the network on 2048x2048 px (untiled): the network " \
           "needs about 1.9 GB" in run.stdout, run.stdout


def test_available_memory_reads_this_machine():
    available = tiling.available_memory()
    assert available is None or 0 < available < 2 ** 50

# ---- 24 MP in bounded memory ----------------------------------------------------------------------

@pytest.mark.slow
def test_6000x4000_photo_at_full_resolution_in_under_3_gb(tmp_path, astronaut_rgb):
    """``--short-side 0`` on a 24 MP JPEG: peak RSS of the child <= 3 GB, output = untiled (item 2).

    The untiled network would need about 11 GB, so the comparison is made on windows around tile
    corners and seams: each window runs untiled with 64 px of context on every side (the receptive
    field; beyond it no input pixel can change an output pixel).
    """
    bgr = _photo_like(astronaut_rgb, 4000, 6000, seed=3)
    src = tmp_path / "big.jpg"
    cv2.imwrite(str(src), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    del bgr
    out_dir = tmp_path / "out"
    # A small wrapper process starts the command and reports its peak RSS: a child forked straight from
    # this (large) test process would start its ru_maxrss at this process's size.
    wrapper = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
    command = [sys.executable, "-m", "wbc_tf", str(src), "-o", str(out_dir), "--short-side", "0"]
    run = subprocess.run([sys.executable, "-c", wrapper] + command, capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=1800)
    assert run.returncode == 0, run.stderr[-2000:]
    peak_gb = int(run.stdout.split()[-1]) / 2 ** 20
    print(f"6000x4000 --short-side 0: peak RSS {peak_gb:.2f} GB")
    assert 0.3 < peak_gb <= 3.0

    got = cv2.imread(str(out_dir / "big.png"))
    photo = cv2.imread(str(src))
    assert got.shape == photo.shape == (4000, 6000, 3)
    plan = tiling.plan_tiles(4000, 6000, InferenceConfig(short_side=0))
    assert plan is not None and len(plan) > 1
    band = _band_mask(plan)
    x = normalize(photo)[None]
    context = tiling.receptive_radius()
    whole = Cartoonizer.from_pretrained()
    corners = [(r.keep_start, c.keep_start) for r in plan.rows[1:2] for c in plan.cols[1:3]]
    for y0, x0 in corners + [(0, 0), (4000 - 256, 6000 - 256)]:
        top, left = max(0, y0 - 128), max(0, x0 - 128)
        bottom, right = min(4000, top + 256), min(6000, left + 256)
        ctop, cleft = max(0, top - context) // 8 * 8, max(0, left - context) // 8 * 8
        cbottom = min(4000, -(-(bottom + context) // 8) * 8)
        cright = min(6000, -(-(right + context) // 8) * 8)
        ref = whole.run_network(np.ascontiguousarray(x[:, ctop:cbottom, cleft:cright]))[0]
        ref = denormalize(ref[top - ctop:bottom - ctop, left - cleft:right - cleft])
        diff = np.abs(got[top:bottom, left:right].astype(np.int16) - ref.astype(np.int16)).max(axis=2)
        seam = band[top:bottom, left:right]
        assert diff[~seam].max() <= 1 and (not seam.any() or diff[seam].max() <= 2), (y0, x0)
