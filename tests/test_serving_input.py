"""The SavedModel's request handling without the model: header sizes (`wbc_tf.tf_image_size`), the
INTER_AREA resize (`wbc_tf.tf_resize`) and the checks and errors of `wbc_tf.export.serving`.

The end-to-end requests against the exported model are in tests/test_export.py.
"""

import io
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.helpers import zero_png
from wbc_tf.export import serving
from wbc_tf.inference import resized_size
from wbc_tf.tf_decode import decode_like_imread
from wbc_tf.tf_image_size import BMP, GIF, JPEG, PNG, UNKNOWN, WEBP, image_header
from wbc_tf.tf_resize import resize_area, short_side_size

header = tf.function(image_header, input_signature=[tf.TensorSpec([], tf.string)])
resize = tf.function(resize_area, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8),
                                                   tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])


def _header(data):
    kind, ok, height, width, pixels, animated = (t.numpy() for t in header(tf.constant(data)))
    return int(kind), bool(ok), int(height), int(width), int(pixels), bool(animated)


def _pil(image, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _pil_palette(image):
    buf = io.BytesIO()
    Image.fromarray(image).quantize(16).save(buf, "PNG")
    return buf.getvalue()


def _gif(frames, **kwargs):
    buf = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], **kwargs)
    return buf.getvalue()


# ---- header sizes -----------------------------------------------------------------------------------

def _encodings(image):
    """{name: (kind, bytes)} in every format and variant the decoders take."""
    exif = Image.Exif()
    exif[0x010F] = "camera"                    # an EXIF block without a rotation
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return {
        "jpeg": (JPEG, cv2.imencode(".jpg", image)[1].tobytes()),
        "jpeg progressive + EXIF": (JPEG, _pil(image, "JPEG", progressive=True, exif=exif.tobytes())),
        "png": (PNG, cv2.imencode(".png", image)[1].tobytes()),
        "png 16-bit grey": (PNG, cv2.imencode(".png", grey.astype(np.uint16) * 257)[1].tobytes()),
        "png palette": (PNG, _pil_palette(image)),
        "gif": (GIF, _pil(image, "GIF")),
        "bmp": (BMP, cv2.imencode(".bmp", image)[1].tobytes()),
        "webp lossy": (WEBP, cv2.imencode(".webp", image)[1].tobytes()),
        "webp lossless": (WEBP, _pil(image, "WEBP", lossless=True)),
        "webp alpha (VP8X)": (WEBP, _pil(np.dstack([image, image[..., :1]]), "WEBP")),
    }


@pytest.mark.parametrize("hw", [(37, 53), (8, 300), (257, 129)])
def test_header_size_is_what_the_decoder_returns(rng, hw):
    """Every format serving_default takes: the header's size is the decoded size, and the decoder
    (`decode_like_imread`, WebP with alpha included) returns what cv2.imdecode returns."""
    image = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
    for name, (kind, data) in _encodings(image).items():
        got = _header(data)
        assert got[:5] == (kind, True, hw[0], hw[1], hw[0] * hw[1]), name
        decoded = decode_like_imread(tf.constant(data)).numpy()
        expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        np.testing.assert_array_equal(decoded, expected, err_msg=name)


def test_jpeg_exif_thumbnail_is_skipped(astronaut_rgb):
    """The EXIF block of a camera JPEG holds a whole small JPEG (its own SOF) before the main SOF."""
    thumb = cv2.imencode(".jpg", astronaut_rgb[::8, ::8])[1].tobytes()         # 64x64, SOF inside
    tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"               # IFD0 empty, next 0
    payload = b"Exif\x00\x00" + tiff + thumb
    main = cv2.imencode(".jpg", astronaut_rgb[:100, :140])[1].tobytes()
    data = main[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + main[2:]
    assert _header(data)[:4] == (JPEG, True, 100, 140)


def test_gif_pixels_count_every_frame(rng):
    """giflib keeps every frame before TensorFlow takes the first: a GIF costs all its frames."""
    frames = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(12)]
    kind, ok, h, w, pixels, animated = _header(_gif(frames))
    assert (kind, ok, h, w, animated) == (GIF, True, 40, 50, True)
    assert pixels == 12 * 40 * 50
    assert _header(_gif(frames[:1]))[4:] == (40 * 50, False)


def test_gif_with_long_image_data_is_walked_quickly(rng):
    """Data sub-blocks are skipped in runs: a 1.2 MB, 4-frame GIF needs a few dozen steps."""
    frames = [rng.integers(0, 256, (600, 500, 3), dtype=np.uint8) for _ in range(4)]
    data = _gif(frames)
    assert len(data) > 1_000_000
    assert _header(data)[1:5] == (True, 600, 500, 4 * 600 * 500)


def test_bomb_size_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    zero_png(path, 30000, 30000)
    assert path.stat().st_size < 5_000_000
    assert _header(path.read_bytes())[:5] == (PNG, True, 30000, 30000, 900_000_000)


def test_unreadable_headers_are_not_ok_and_never_raise(rng):
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    png = cv2.imencode(".png", image)[1].tobytes()
    gif = _pil(image, "GIF")
    cases = {"empty": (b"", UNKNOWN), "text": (b"not an image at all", UNKNOWN),
             "jpeg cut before its SOF": (jpeg[:20], JPEG), "png cut in IHDR": (png[:20], PNG),
             "png without IHDR first": (png[:12] + b"IDAT" + png[16:], PNG),
             "gif without its trailer": (gif[:-1], GIF), "gif signature only": (b"GIF89a", GIF),
             "riff but not webp": (b"RIFF\x00\x00\x00\x00WAVEfmt ", UNKNOWN)}
    for name, (data, kind) in cases.items():
        got = _header(data)
        assert got[:2] == (kind, False), name


def test_animated_webp_is_flagged(rng):
    frames = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
    kind, ok, h, w, _, animated = _header(buf.getvalue())
    assert (kind, ok, h, w, animated) == (WEBP, True, 30, 40, True)


def test_animated_webp_fails_cleanly_in_a_fresh_process():
    """decode_like_imread refuses an animated WebP with InvalidArgument (TF 2.21's WebP decoder with
    channels=0, which still WebPs need, corrupts the heap on one: run apart, so a regression cannot
    take pytest down)."""
    script = textwrap.dedent("""
        import io, os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, tensorflow as tf
        from PIL import Image
        from wbc_tf.tf_decode import decode_like_imread
        frames = [Image.fromarray(np.full((30, 40, 3), 40 * i, np.uint8)) for i in range(4)]
        buf = io.BytesIO()
        frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
        try:
            decode_like_imread(tf.constant(buf.getvalue()))
        except tf.errors.InvalidArgumentError:
            print("refused")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["refused"], proc.stderr[-2000:]


# ---- resize -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(1080, 1920), (1920, 1080), (721, 1000), (1003, 730), (721, 721),
                                (720, 5000), (500, 3000), (4000, 6000), (6000, 4000), (8, 100000)])
def test_short_side_size_is_resized_size(hw):
    got = tuple(int(v) for v in short_side_size(tf.constant(hw[0]), tf.constant(hw[1]), 720))
    assert got == resized_size(*hw)
    assert tuple(int(v) for v in short_side_size(tf.constant(hw[0]), tf.constant(hw[1]), 0)) == hw


def test_resize_area_is_cv2_inter_area_bit_for_bit(rng, coffee_rgb, astronaut_rgb):
    """Non-integer factors (the table path), integer factors (the block path, 2x2 rounding half up),
    one axis unchanged, equal size; noise and photos."""
    cases = [((245, 387), (205, 368)), ((1036, 914), (107, 44)), ((361, 594), (62, 280)),
             ((600, 800), (300, 400)), ((600, 900), (200, 300)), ((600, 800), (200, 400)),
             ((640, 640), (160, 160)), ((300, 500), (300, 333)), ((300, 500), (150, 500)),
             ((97, 101), (97, 101)), ((1080, 1620), (720, 1080))]
    for i, ((sh, sw), (rh, rw)) in enumerate(cases):
        source = cv2.resize((coffee_rgb, astronaut_rgb)[i % 2], (sw, sh), interpolation=cv2.INTER_CUBIC)
        if i % 3 == 0:
            source = rng.integers(0, 256, (sh, sw, 3), dtype=np.uint8)
        expected = cv2.resize(source, (rw, rh), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(resize(source, rh, rw).numpy(), expected,
                                      err_msg=f"{(sh, sw)}->{(rh, rw)}")


def test_tf_area_resize_is_not_enough():
    """Why tf_resize exists: tf.image.resize(method='area') differs from OpenCV (here at 2x)."""
    source = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    expected = cv2.resize(source, (32, 32), interpolation=cv2.INTER_AREA)
    tf_area = np.rint(tf.image.resize(source[None], [32, 32], method="area")[0].numpy()).astype(np.uint8)
    assert np.any(tf_area != expected)
    np.testing.assert_array_equal(resize(source, 32, 32).numpy(), expected)


# ---- checks and errors ------------------------------------------------------------------------------

def _problem(data, **limits):
    return serving.header_problem(tf.constant(data), serving.ServingLimits(**limits)).numpy().decode()


def test_header_problems_name_the_reason(rng, tmp_path):
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    png = cv2.imencode(".png", image)[1].tobytes()
    zero_png(tmp_path / "bomb.png", 30000, 30000)
    assert _problem(png) == ""
    assert _problem(b"hello") == "not a JPEG, PNG, GIF, BMP or WebP file"
    assert _problem(png[:20]) == "the PNG header cannot be read (truncated or corrupt)"
    assert "60x40 px (2400 px to decode) is more than the 1000 px" in _problem(png, max_pixels=1000)
    assert _problem(png, max_pixels=0) == ""
    assert "30000x30000 px" in _problem((tmp_path / "bomb.png").read_bytes())
    tiny = cv2.imencode(".png", image[:5])[1].tobytes()
    assert _problem(tiny) == "60x5 px: each side must be at least 8 px"
    # The network input after the short-side rule: 40 -> 20, 60 -> 30, padded to 24x32.
    assert "30x20 px (768 px with the padding" in _problem(png, short_side=20, max_network_pixels=700)
    assert _problem(png, short_side=20, max_network_pixels=768) == ""


def test_fail_raises_invalid_argument_with_the_message():
    @tf.function(input_signature=[tf.TensorSpec([], tf.bool)])
    def guarded(bad):
        return tf.cond(bad, lambda: serving.fail(serving.text("images_bytes[", 3, "]: too big")),
                       lambda: tf.constant("fine"))

    assert guarded(tf.constant(False)).numpy() == b"fine"
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"wbc: images_bytes\[3\]: too big"):
        guarded(tf.constant(True))


@pytest.mark.parametrize("strength, n, problem", [
    ([0.5], 3, ""), ([0.0, 1.0], 2, ""), ([0.5, 1.5], 2, "strength[1] = 1.5: must be from 0"),
    ([float("nan")], 1, "strength[0] = nan"), ([0.1, 0.2, 0.3], 2, "strength: 3 values for 2 images"),
    ([], 2, "strength: 0 values for 2 images")])
def test_strength_per_image(strength, n, problem):
    found, values = serving.strength_per_image(tf.constant(strength, tf.float32), n)
    assert found.numpy().decode().startswith(problem) and bool(problem) == bool(found.numpy())
    if not problem:
        np.testing.assert_array_equal(values.numpy(), np.broadcast_to(strength, [n]))
