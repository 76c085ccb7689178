"""The public entry points against the original inference script, with the bundled release weights.

The reference is ``tests/reference.py``: cartoonize.py in float64 NumPy (resize rule, top-left crop
to multiples of 8, x/127.5 − 1, generator, guided filter r=1 eps=5e-3, truncating uint8 cast), built
from the checkpoint tensors read with ``tf.train`` only. Checked: `Cartoonizer.cartoonize` on real
photos (small, odd-sized, and > 720 px landscape and portrait ones that go through the shorter-side
rule), the output-size rule, the ``wbc-cartoonize`` CLI with default settings, and the fp32 TFLite
export of a fixed size. `WhiteBoxGAN.loss_terms` is checked against the same reference in
``tests/test_gan.py``.
"""

import os

import cv2
import numpy as np
import pytest

from tests import reference


def _agreement(got, ref):
    """(fraction of equal uint8 values, max |difference|)."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    return float(np.mean(diff == 0)), int(diff.max())


def _bgr(rgb):
    return np.ascontiguousarray(rgb[..., ::-1])


@pytest.fixture(scope="module")
def chelsea_result(cartoonizer, chelsea_rgb):
    return cartoonizer.cartoonize(chelsea_rgb)


def _check_against_original(cartoonizer, tensors, rgb, name):
    """uint8: ≥ 99.99 % of the values equal, none off by more than 1; float: max |Δ| < 1e-4."""
    bgr = _bgr(rgb)
    ref_float = reference.cartoonize_float(tensors, bgr)
    ref_bgr = reference.postprocess(ref_float)
    got = cartoonizer.cartoonize(rgb)
    assert got.dtype == np.uint8
    equal, worst = _agreement(got[..., ::-1], ref_bgr)
    float_diff = np.abs(cartoonizer.cartoonize_float(bgr) - ref_float).max()
    print(f"{name} {rgb.shape[:2]} -> {got.shape[:2]}: equal {equal:.6%}, max |d| {worst}, "
          f"float max |d| {float_diff:.2e}")
    assert equal >= 0.9999 and worst <= 1
    assert float_diff < 1e-4
    return got


def test_release_tensors_are_the_36_generator_tensors(release_tensors):
    assert len(release_tensors) == 36 and all(n.startswith("generator/") for n in release_tensors)


def test_cartoonize_matches_original_script(cartoonizer, release_tensors, chelsea_rgb, chelsea_result,
                                            astronaut_rgb):
    got = _check_against_original(cartoonizer, release_tensors, chelsea_rgb, "chelsea")
    assert got.shape == (296, 448, 3)
    np.testing.assert_array_equal(got, chelsea_result)
    # a real photo whose shorter side is 500 <= 720: identity INTER_AREA resize, crop to 496 x 504
    got = _check_against_original(cartoonizer, release_tensors, astronaut_rgb[:500, :509], "astronaut")
    assert got.shape == (496, 504, 3)


@pytest.mark.parametrize("portrait", [False, True], ids=["landscape", "portrait"])
def test_cartoonize_large_image_matches_original_script(cartoonizer, release_tensors, chelsea_rgb, portrait):
    big_rgb = cv2.resize(chelsea_rgb, (1203, 800), interpolation=cv2.INTER_CUBIC)  # 800×1203
    h, w = 720, int(720 * 1203 / 800)                                             # shorter side → 720
    if portrait:
        big_rgb = np.ascontiguousarray(big_rgb.transpose(1, 0, 2))                # 1203×800
        h, w = w, h
    got = _check_against_original(cartoonizer, release_tensors, big_rgb, "chelsea resized")
    assert got.shape == (h // 8 * 8, w // 8 * 8, 3)
    assert sorted(got.shape[:2]) == [720, 1080]


@pytest.mark.parametrize("hw", [(8, 8), (15, 23), (300, 451), (720, 5000), (721, 721), (721, 1500),
                                (1500, 721), (1080, 1920), (4000, 3000), (799, 1201)])
def test_output_size_follows_the_original_rule(cartoonizer, hw):
    """Shorter side > 720 → 720 (int truncation of the other side), then top-left crop to ×8."""
    h, w = hw
    if min(h, w) > 720:
        h, w = (int(720 * h / w), 720) if h > w else (720, int(720 * w / h))
    assert cartoonizer.output_size(*hw) == (h // 8 * 8, w // 8 * 8)
    assert reference.output_size(*hw) == (h // 8 * 8, w // 8 * 8)
    assert reference.resize_crop(np.zeros(hw + (3,), np.uint8)).shape[:2] == (h // 8 * 8, w // 8 * 8)


def test_cli_default_output_equals_cartoonize(tmp_path, chelsea_rgb, chelsea_result):
    from wbc_tf.cli.cartoonize import main

    src = tmp_path / "photos"
    src.mkdir()
    assert cv2.imwrite(str(src / "chelsea.png"), _bgr(chelsea_rgb))
    out = tmp_path / "cartoons"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    assert sorted(os.listdir(out)) == ["chelsea.png"]
    written = cv2.imread(str(out / "chelsea.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (296, 448, 3) and written.dtype == np.uint8
    np.testing.assert_array_equal(written, _bgr(chelsea_result))


def test_tflite_fp32_fixed_size_matches_original_script(cartoonizer, release_tensors, chelsea_rgb):
    pytest.importorskip("ai_edge_litert")
    from wbc_tf.export.tflite import TFLiteRunner, convert

    size = (64, 96)
    model = convert(cartoonizer.generator, "fp32", size=size)
    crop_rgb = np.ascontiguousarray(chelsea_rgb[100:164, 200:296])
    out = TFLiteRunner(model, num_threads=2)(crop_rgb.astype(np.float32))  # RGB 0..255, clipped
    assert out.shape == (64, 96, 3) and out.min() >= 0 and out.max() <= 255
    got_bgr = out[..., ::-1].astype(np.uint8)  # truncation, like astype(uint8)
    equal, worst = _agreement(got_bgr, reference.cartoonize_bgr(release_tensors, _bgr(crop_rgb)))
    print(f"tflite fp32 64x96: equal {equal:.6%}, max |d| {worst}")
    assert equal >= 0.999 and worst <= 2
