"""Style strength (``InferenceConfig.strength``, ``--strength``): 1 = the cartoon bit for bit, 0 = the photo.

The blend is a cross-fade in 0..255 after the cartoon's clip and before the output rounding
(`wbc_tf.inference.blend_strength`); the exported graphs compute the same operations
(tests/test_export.py checks them against this Python path).
"""

import cv2
import numpy as np
import pytest

from wbc_tf import batch
from wbc_tf.cli import cartoonize as cli
from wbc_tf.config import InferenceConfig
from wbc_tf.image_io import encode_image
from wbc_tf.inference import (Cartoonizer, blend_strength, denormalize, fit_to_network, normalize,
                              plan_geometry, unit_to_pixels)


@pytest.fixture(scope="module")
def generator(cartoonizer):
    return cartoonizer.generator


@pytest.fixture(scope="module")
def photo_bgr(coffee_rgb):
    """A real-photo crop, not a multiple of 8 either way (so crop and pad differ)."""
    return np.ascontiguousarray(coffee_rgb[100:203, 200:330, ::-1])  # 103 x 130


def _cartoonizer(generator, **options):
    return Cartoonizer(generator, InferenceConfig(**options))


# ---- the blend itself -----------------------------------------------------------------------------

def test_blend_is_exact_at_both_ends(rng):
    """float32: s = 1 returns the cartoon bit for bit, s = 0 the photo, for any values in 0..255 (the
    textbook ``p + s·(c − p)`` is not exact at s = 1: checked here so a switch to it fails)."""
    cartoon = np.concatenate([rng.uniform(0, 255, 100_000), [0, 255, 1e-6, 254.99999, 127.5]])
    cartoon = cartoon.astype(np.float32)
    photo = rng.integers(0, 256, cartoon.shape).astype(np.float32)
    np.testing.assert_array_equal(blend_strength(cartoon.copy(), photo.copy(), 1.0), cartoon)
    np.testing.assert_array_equal(blend_strength(cartoon.copy(), photo.copy(), 0.0), photo)
    textbook = photo + np.float32(1) * (cartoon - photo)
    assert np.any(textbook != cartoon)  # the reason for the (1 − s)·p + s·c form
    half = blend_strength(cartoon.copy(), photo.copy(), 0.5)
    np.testing.assert_allclose(half, (cartoon.astype(np.float64) + photo) / 2, atol=1e-4)


def test_unit_to_pixels_recovers_every_uint8_value():
    values = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(unit_to_pixels(normalize(values)), values.astype(np.float32))
    # The truncating denormalize would not: values 1..63 come back as v - 1.
    assert np.any(denormalize(normalize(values)) != values)


# ---- the Python pipeline --------------------------------------------------------------------------

def test_strength_1_is_todays_output_bit_for_bit(generator, photo_bgr, cartoonizer):
    """strength=1 (the default) is the untouched pipeline: denormalize of the float output."""
    expected = denormalize(cartoonizer.cartoonize_float(photo_bgr))
    for c in (cartoonizer, _cartoonizer(generator, strength=1.0)):
        np.testing.assert_array_equal(c.cartoonize_bgr(photo_bgr), expected)


@pytest.mark.parametrize("fit, rounding", [("crop", "truncate"), ("pad", "round")])
def test_strength_0_is_the_resized_cropped_photo(generator, photo_bgr, fit, rounding):
    """strength=0 returns the photo after the geometry rules (resize, crop to x8 or keep the size)."""
    config = InferenceConfig(strength=0.0, fit=fit, rounding=rounding)
    out = Cartoonizer(generator, config).cartoonize_bgr(photo_bgr)
    geometry = plan_geometry(*photo_bgr.shape[:2], config)
    oh, ow = geometry.output
    np.testing.assert_array_equal(out, fit_to_network(photo_bgr, geometry)[:oh, :ow])
    assert out.shape == ((96, 128, 3) if fit == "crop" else photo_bgr.shape)


def test_strength_0_after_the_short_side_rule(generator, astronaut_rgb):
    config = InferenceConfig(strength=0.0, short_side=200)
    out = Cartoonizer(generator, config).cartoonize(astronaut_rgb)   # 512 -> 200, crop to 200x200
    resized = cv2.resize(astronaut_rgb, (200, 200), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out, resized)


def test_intermediate_strengths_fade_from_photo_to_cartoon(generator, photo_bgr, cartoonizer):
    photo = photo_bgr[:96, :128].astype(np.float64)
    cartoon = cartoonizer.cartoonize_bgr(photo_bgr).astype(np.float64)
    distances = []
    for s in (0.25, 0.5, 0.75):
        out = _cartoonizer(generator, strength=s).cartoonize_bgr(photo_bgr).astype(np.float64)
        expected = (1 - s) * photo + s * cartoon              # up to the truncation of each term
        assert np.max(np.abs(out - expected)) <= 1.0, s
        distances.append(np.mean(np.abs(out - photo)))
    assert distances == sorted(distances) and distances[0] > 0


def test_postprocess_needs_the_photo_below_1(generator, photo_bgr):
    c = _cartoonizer(generator, strength=0.5)
    x, geometry = c.preprocess(photo_bgr)
    y = c.run_network(x)[0]
    with pytest.raises(ValueError, match="network input"):
        c.postprocess(y, geometry)
    np.testing.assert_array_equal(c.postprocess(y, geometry, x), c.postprocess(y, geometry, x[0]))
    np.testing.assert_array_equal(c.postprocess(y, geometry, x), c.cartoonize_bgr(photo_bgr))


def test_batch_path_blends_like_the_cartoonizer(generator, photo_bgr):
    """wbc-cartoonize goes through wbc_tf.batch (prepare / network / finish): same result."""
    c = _cartoonizer(generator, strength=0.4)
    data = encode_image(".png", photo_bgr).tobytes()
    out = cv2.imdecode(np.frombuffer(batch.cartoonize_bytes(data, c), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(out, c.cartoonize_bgr(photo_bgr))


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan"), "half", True])
def test_strength_is_validated(bad):
    with pytest.raises(ValueError, match="strength"):
        InferenceConfig(strength=bad)


def test_cli_strength_flag(tmp_path, photo_bgr, capsys, cartoonizer):
    """``--strength 1`` writes the same bytes as no flag; ``--strength 0`` writes the cropped photo; a
    value outside 0..1 is a usage error."""
    source = tmp_path / "photo.png"
    cv2.imwrite(str(source), photo_bgr)
    outputs = {}
    for name, flags in (("none", []), ("one", ["--strength", "1"]), ("zero", ["--strength", "0"])):
        assert cli.main([str(source), "-o", str(tmp_path / name), "--quiet"] + flags) == 0
        outputs[name] = (tmp_path / name / "photo.png").read_bytes()
    assert outputs["one"] == outputs["none"]
    zero = cv2.imdecode(np.frombuffer(outputs["zero"], np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(zero, photo_bgr[:96, :128])
    none = cv2.imdecode(np.frombuffer(outputs["none"], np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(none, cartoonizer.cartoonize_bgr(photo_bgr))
    with pytest.raises(SystemExit) as info:
        cli.main([str(source), "-o", str(tmp_path / "bad"), "--strength", "2"])
    assert info.value.code == 2
    assert "strength" in capsys.readouterr().err
