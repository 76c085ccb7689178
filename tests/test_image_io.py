"""`wbc_tf.image_io`: decoding from bytes like ``cv2.imdecode``, paths, size checks, EXIF transforms,
and atomic writing.

Reading grey / RGBA / 16-bit files, EXIF orientation against OpenCV and the bad-file reasons are
tested with the CLI's sample folder in tests/test_cli_cartoonize.py.
"""

import os

import cv2
import numpy as np
import pytest

from wbc_tf.image_io import (ImageReadError, apply_orientation, decode_image, encode_image, read_image,
                             write_image)


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
