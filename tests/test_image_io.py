"""`wbc_tf.image_io`: decoding from bytes like ``cv2.imdecode``, paths, size checks, EXIF transforms,
and atomic writing.

Reading grey / RGBA / 16-bit files, EXIF orientation against OpenCV and the bad-file reasons are
tested with the CLI's sample folder in tests/test_cli_cartoonize.py. The pixel limit (header only,
Pillow's own check, OpenCV's limit for other formats) and the silence of bad files are tested here.
"""

import os
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.helpers import HIGH_WATER, zero_png
from wbc_tf.image_io import (ImageReadError, ImageTooLarge, apply_orientation, decode_image, encode_image,
                             image_size, quiet_codec_warnings, read_image, write_image)


@pytest.fixture(scope="module")
def photo_bgr(coffee_rgb):
    return np.ascontiguousarray(coffee_rgb[100:161, 200:283, ::-1])     # 61 x 83, real photo, BGR


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_decode_bytes_equals_cv2_imdecode(photo_bgr, ext):
    data = cv2.imencode(ext, photo_bgr)[1]                               # 1-D uint8 array
    expected = cv2.imdecode(data, cv2.IMREAD_COLOR)
    for encoded in (data, data.tobytes()):
        bgr, alpha = decode_image(encoded, keep_alpha=True)
        assert bgr.dtype == np.uint8 and alpha is None
        np.testing.assert_array_equal(bgr, expected)


def test_write_then_read_round_trip_with_alpha_and_a_non_ascii_path(tmp_path, photo_bgr, rng):
    alpha = rng.integers(0, 256, photo_bgr.shape[:2], dtype=np.uint8)
    path = tmp_path / "фото 猫.png"
    write_image(path, photo_bgr, alpha)
    bgr, back = read_image(path, keep_alpha=True)
    np.testing.assert_array_equal(bgr, photo_bgr)
    np.testing.assert_array_equal(back, alpha)
    bgr, back = read_image(str(path))                                    # str path; alpha dropped
    np.testing.assert_array_equal(bgr, photo_bgr)
    assert back is None


def test_unreadable_paths_and_small_images(tmp_path, photo_bgr):
    for path in (tmp_path / "missing.png", tmp_path):                    # no such file; a folder
        with pytest.raises(ImageReadError, match="cannot read file"):
            read_image(path)
    strip = cv2.imencode(".png", photo_bgr[:7])[1]                        # 7 rows
    with pytest.raises(ImageReadError, match="too small: 83x7 px"):
        decode_image(strip)
    assert decode_image(strip, min_side=7)[0].shape == (7, 83, 3)
    assert decode_image(cv2.imencode(".png", photo_bgr[:8, :8])[1])[0].shape == (8, 8, 3)


def test_encode_jpeg_quality_and_no_alpha_in_jpeg(photo_bgr):
    small, large = (len(encode_image(".jpg", photo_bgr, jpg_quality=q)) for q in (30, 97))
    assert small < 0.6 * large
    assert encode_image(".JPEG", photo_bgr)[:3].tobytes() == b"\xff\xd8\xff"
    with pytest.raises(ValueError, match="alpha"):
        encode_image(".jpg", photo_bgr, np.zeros(photo_bgr.shape[:2], np.uint8))


def test_write_is_atomic(tmp_path, photo_bgr, monkeypatch):
    """Bytes go to a hidden temporary file that is renamed when complete: an interrupted write
    leaves neither a partial file nor a damaged older one."""
    target = tmp_path / "out.png"
    target.write_bytes(b"older result")

    def interrupted(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, photo_bgr)
    assert os.listdir(tmp_path) == ["out.png"] and target.read_bytes() == b"older result"
    monkeypatch.undo()
    write_image(target, photo_bgr)
    assert os.listdir(tmp_path) == ["out.png"]
    np.testing.assert_array_equal(cv2.imread(str(target)), photo_bgr)


def test_apply_orientation_hand_values():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    expected = {
        1: [[1, 2, 3], [4, 5, 6]],
        2: [[3, 2, 1], [6, 5, 4]],           # mirrored left-right
        3: [[6, 5, 4], [3, 2, 1]],           # rotated 180°
        4: [[4, 5, 6], [1, 2, 3]],           # mirrored top-bottom
        5: [[1, 4], [2, 5], [3, 6]],         # transposed
        6: [[4, 1], [5, 2], [6, 3]],         # rotated 90° clockwise
        7: [[6, 3], [5, 2], [4, 1]],         # transverse
        8: [[3, 6], [2, 5], [1, 4]],         # rotated 90° counter-clockwise
    }
    for k, want in expected.items():
        got = apply_orientation(a, k)
        np.testing.assert_array_equal(got, want, err_msg=str(k))
        assert got.flags.c_contiguous
    colour = np.dstack([a, 10 * a, 100 * a])                             # channels are carried along
    np.testing.assert_array_equal(apply_orientation(colour, 6)[..., 1], 10 * np.array(expected[6]))
    for k in (0, 9):                                                     # not an orientation: unchanged
        np.testing.assert_array_equal(apply_orientation(a, k), a)


# ---- pixel limit from the header, quiet decoding ----------------------------------------------------

BOMB_SIDE = 30000  # 900 MP: 2.6 MB as PNG, 2.7 GB decoded


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return zero_png(tmp_path_factory.mktemp("bomb") / "bomb.png", BOMB_SIDE, BOMB_SIDE)


def test_bomb_is_refused_from_its_header_in_a_fresh_process(bomb):
    """The issue's bound, measured in a child process: refused in < 2 s with peak RSS < 1 GB (decoding
    it would take 2.7 GB). The child's wall time includes its imports (cv2, Pillow)."""
    assert os.path.getsize(bomb) < 3e6
    script = HIGH_WATER + (
        "import sys, time\n"
        "from wbc_tf.image_io import ImageTooLarge, read_image\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    read_image(sys.argv[1])\n"
        "except ImageTooLarge as e:\n"
        "    print(time.perf_counter() - start, high_water(), e)\n")
    proc = subprocess.run([sys.executable, "-c", script, bomb], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    seconds, rss, reason = proc.stdout.split(" ", 2)
    assert float(seconds) < 2.0
    assert int(rss) < 1e9, f"peak RSS {int(rss) / 1e6:.0f} MB"
    assert f"{BOMB_SIDE}x{BOMB_SIDE} px (900 MP)" in reason and "max_pixels" in reason, reason


def test_limit_boundaries(tmp_path, bomb):
    assert image_size(open(bomb, "rb").read()) == (BOMB_SIDE, BOMB_SIDE)
    path = zero_png(tmp_path / "z.png", 100, 80)
    assert read_image(path, max_pixels=8000)[0].shape == (80, 100, 3)
    assert read_image(path, max_pixels=0)[0].shape == (80, 100, 3)           # 0: no limit
    with pytest.raises(ImageTooLarge, match="100x80 px"):
        read_image(path, max_pixels=7999)
    with pytest.raises(ImageTooLarge):
        decode_image(open(bomb, "rb").read())                               # the default limit
    assert issubclass(ImageTooLarge, ImageReadError)


def test_pillow_bomb_check_follows_our_limit_and_is_restored(tmp_path, monkeypatch):
    """Pillow warns above Image.MAX_IMAGE_PIXELS and refuses above twice that; under our limit neither
    may happen (a 100 MP phone photo is over Pillow's default 89 MP), and Pillow's setting comes back."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = zero_png(tmp_path / "z.png", 100, 80)                            # 8000 px > 2 x 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path)[0].shape == (80, 100, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_formats_pillow_cannot_read_are_left_to_opencv(tmp_path):
    """Radiance HDR: no header size from Pillow, so OpenCV decodes it (as cv2.imread does) and the
    decoded size is checked against the limit."""
    path = str(tmp_path / "x.hdr")
    cv2.imwrite(path, np.linspace(0, 1, 40 * 30 * 3, dtype=np.float32).reshape(40, 30, 3))
    data = open(path, "rb").read()
    assert image_size(data) is None
    np.testing.assert_array_equal(read_image(path)[0], cv2.imread(path))
    with pytest.raises(ImageTooLarge, match="30x40 px"):
        read_image(path, max_pixels=1000)


def test_opencv_limit_refuses_before_allocating(tmp_path):
    """OpenCV's own limit (read once, when it loads) turns into ImageTooLarge, not a cv2.error."""
    path = str(tmp_path / "x.hdr")
    cv2.imwrite(path, np.zeros((40, 30, 3), np.float32))
    script = ("import sys\nfrom wbc_tf.image_io import ImageTooLarge, read_image\n"
              "try:\n    read_image(sys.argv[1])\nexcept ImageTooLarge as e:\n    print(e)\n")
    env = {**os.environ, "OPENCV_IO_MAX_IMAGE_PIXELS": "1000"}
    proc = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, env=env,
                          timeout=300)
    assert "OpenCV's pixel limit" in proc.stdout, (proc.stdout, proc.stderr)


def test_bad_files_print_nothing_themselves(tmp_path, photo_bgr, capfd):
    """Truncated PNG / TIFF / JPEG: one ImageReadError each and not a byte on stderr from libpng,
    libtiff (OpenCV's log) or Pillow ('Corrupt EXIF data' warnings)."""
    quiet_codec_warnings()
    for ext in (".png", ".tif", ".jpg"):
        data = cv2.imencode(ext, photo_bgr)[1].tobytes()
        (tmp_path / f"cut{ext}").write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                       # a warning would raise
        for ext in (".png", ".tif", ".jpg"):
            with pytest.raises(ImageReadError):
                read_image(tmp_path / f"cut{ext}")
    assert capfd.readouterr().err == ""
