"""The TF decoder (`wbc_tf.tf_decode`) of the SavedModel and the training data against ``cv2.imread``.

The reference is always the installed OpenCV itself: pixels are compared with ``cv2.imdecode``
(``IMREAD_COLOR``), and which of the 8 EXIF transforms it applied is read off by comparing with the
same bytes decoded with ``IMREAD_IGNORE_ORIENTATION``. Files are written by Pillow (big-endian EXIF),
OpenCV (16-bit) or built by hand (both byte orders, malformed variants). No SavedModel here; the
end-to-end test is in ``tests/test_export.py``, the training side in ``tests/test_data.py``.
"""

import io
import random
import struct
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from wbc_tf import tf_decode

ORIENTATION = 0x0112

# k -> the transform OpenCV applies, in NumPy (rows, columns).
TRANSFORMS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),                 # 90° clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),                  # 90° counter-clockwise
}


@pytest.fixture(scope="module", autouse=True)
def _quiet_opencv():
    """The malformed files make libjpeg / libpng print warnings; they are expected here."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    yield
    logging.setLogLevel(level)


@pytest.fixture(scope="module")
def photo(coffee_rgb):
    """A small real-photo crop: non-square, odd sizes (partial chroma blocks), no symmetry."""
    return np.ascontiguousarray(coffee_rgb[150:187, 230:288])        # 37 x 58


@pytest.fixture(scope="module")
def plain_jpeg(photo):
    return _pillow(photo, "JPEG", quality=95)


@pytest.fixture(scope="module")
def orientation_fn():
    return tf.function(tf_decode.exif_orientation, input_signature=[tf.TensorSpec([], tf.string)])


@pytest.fixture(scope="module")
def decode_fn():
    return tf.function(tf_decode.decode_like_imread, input_signature=[tf.TensorSpec([], tf.string)])


# ---- building files ------------------------------------------------------------------------------

def _pillow(rgb, fmt, orientation=None, **kwargs):
    buf = io.BytesIO()
    if orientation is not None:
        tags = Image.Exif()
        tags[ORIENTATION] = orientation
        kwargs["exif"] = tags.tobytes()
    Image.fromarray(rgb).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _tiff(order, entries, ifd_offset=8, magic=42):
    """A TIFF block: header, IFD0 with ``entries`` = [(tag, type, count, value)], next-IFD 0.

    A SHORT with count 1 is stored left-justified in the value field, as the spec says; any other
    value is written as a 32-bit number.
    """
    e = "<" if order == "II" else ">"
    block = order.encode() + struct.pack(e + "HI", magic, ifd_offset) + bytes(max(0, ifd_offset - 8))
    block += struct.pack(e + "H", len(entries))
    for tag, kind, count, value in entries:
        if kind == 3 and count == 1:
            block += struct.pack(e + "HHIHH", tag, kind, count, value, 0)
        else:
            block += struct.pack(e + "HHII", tag, kind, count, value)
    return block + struct.pack(e + "I", 0)


def _orientation_block(order, k):
    # Orientation after another entry, like cameras write it (ImageWidth first).
    return _tiff(order, [(0x0100, 3, 1, 37), (ORIENTATION, 3, 1, k)])


def _with_app1(jpeg, payloads):
    """Insert APP1 segments with the given payloads right after SOI."""
    segments = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads)
    return jpeg[:2] + segments + jpeg[2:]


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _with_png_chunks(png, chunks, after_idat=False):
    at = png.rfind(b"IEND") - 4 if after_idat else 8 + 25     # before IEND, or right after IHDR
    return png[:at] + b"".join(_png_chunk(k, d) for k, d in chunks) + png[at:]


# ---- what OpenCV does ----------------------------------------------------------------------------

def _cv2_rgb(data, flags=cv2.IMREAD_COLOR):
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)[..., ::-1]


def _cv2_orientation(data):
    """The k whose transform turns the unrotated decode into what cv2.imdecode returns."""
    raw = _cv2_rgb(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    out = _cv2_rgb(data)
    matches = [k for k, f in TRANSFORMS.items() if f(raw).shape == out.shape and np.array_equal(f(raw), out)]
    assert len(matches) == 1, matches
    return matches[0]


def _ours(fn, data):
    return int(fn(tf.constant(data)).numpy())


# ---- (a) the parser ------------------------------------------------------------------------------

@pytest.mark.parametrize("k", range(1, 9))
def test_orientation_of_pillow_jpeg_and_png(orientation_fn, photo, k):
    """Pillow writes big-endian EXIF: APP1 in a JPEG, an eXIf chunk in a PNG (cv2 applies both)."""
    for fmt, kwargs in (("JPEG", {"quality": 95}), ("PNG", {})):
        data = _pillow(photo, fmt, k, **kwargs)
        assert _ours(orientation_fn, data) == k == _cv2_orientation(data), fmt
    jpeg = _pillow(photo, "JPEG", k, quality=95)
    assert int(tf_decode.jpeg_exif_orientation(tf.constant(jpeg))) == k
    assert int(tf_decode.png_exif_orientation(tf.constant(jpeg))) == 1        # not a PNG


@pytest.mark.parametrize("order", ["II", "MM"])
def test_orientation_of_hand_built_exif_both_byte_orders(orientation_fn, plain_jpeg, order):
    for k in range(1, 9):
        data = _with_app1(plain_jpeg, [b"Exif\0\0" + _orientation_block(order, k)])
        assert _ours(orientation_fn, data) == k == _cv2_orientation(data), (order, k)
    # IFD0 not right after the header.
    data = _with_app1(plain_jpeg, [b"Exif\0\0" + _tiff(order, [(ORIENTATION, 3, 1, 8)], ifd_offset=20)])
    assert _ours(orientation_fn, data) == 8 == _cv2_orientation(data)


def test_no_exif_non_jpeg_and_garbage_give_1(orientation_fn, photo, plain_jpeg):
    cases = {
        "JPEG without EXIF": plain_jpeg,
        "PNG without eXIf": _pillow(photo, "PNG"),
        "BMP": _pillow(photo, "BMP"),
        "GIF": _pillow(photo, "GIF"),
    }
    for name, data in cases.items():
        assert _ours(orientation_fn, data) == 1 == _cv2_orientation(data), name
    for data in (b"", b"garbage", b"\xff\xd8", b"\xff\xd8\xff", b"\xff\xd8\xff\xe1\xff\xff",
                 b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\0\0\0\x10eXIfMM", bytes(range(256)) * 40):
        assert _ours(orientation_fn, data) == 1, data[:16]
        assert int(tf_decode.jpeg_exif_orientation(tf.constant(data))) == 1
        assert int(tf_decode.png_exif_orientation(tf.constant(data))) == 1


def test_truncated_and_malformed_exif(orientation_fn, plain_jpeg, photo):
    """Malformed EXIF never fails; the result is what OpenCV's ExifReader makes of it."""
    block = _orientation_block("II", 6)
    entry = 8 + 2 + 12                        # offset of the Orientation entry in `block`
    cases = {
        # cut inside the Orientation entry (its value is at +8): no orientation
        "cut in orientation entry": ([b"Exif\0\0" + block[:entry + 9]], 1),
        "cut in IFD count": ([b"Exif\0\0" + block[:9]], 1),
        "cut in header": ([b"Exif\0\0" + block[:6]], 1),
        "only the Exif header": ([b"Exif\0\0"], 1),
        "payload too short": ([b"Exi"], 1),
        # cut after the Orientation entry: ExifReader has read it already
        "cut after orientation entry": ([b"Exif\0\0" + block[:entry + 12]], 6),
        "entry count larger than the data": ([b"Exif\0\0" + block[:8] + b"\x09\x00" + block[10:]], 6),
        "bad byte-order mark (read big-endian)": ([b"Exif\0\0XX" + _orientation_block("MM", 6)[2:]], 6),
        "wrong TIFF magic": ([b"Exif\0\0" + _tiff("II", [(ORIENTATION, 3, 1, 6)], magic=43)], 1),
        "IFD offset past the end":
            ([b"Exif\0\0" + _tiff("II", [(ORIENTATION, 3, 1, 6)], ifd_offset=9000)[:8]], 1),
        "not Exif\\0\\0": ([b"Exif\0x" + block], 1),
        "value 0": ([b"Exif\0\0" + _orientation_block("II", 0)], 1),
        "value 9": ([b"Exif\0\0" + _orientation_block("MM", 9)], 1),
        "type LONG (type not checked)": ([b"Exif\0\0" + _tiff("II", [(ORIENTATION, 4, 1, 3)])], 3),
        "first of two Orientation entries wins":
            ([b"Exif\0\0" + _tiff("MM", [(ORIENTATION, 3, 1, 5), (ORIENTATION, 3, 1, 7)])], 5),
        "unreadable XResolution before it stops the parse":
            ([b"Exif\0\0" + _tiff("II", [(0x011A, 5, 1, 5000), (ORIENTATION, 3, 1, 6)])], 1),
        "unreadable XResolution after it does not":
            ([b"Exif\0\0" + _tiff("II", [(ORIENTATION, 3, 1, 6), (0x011A, 5, 1, 5000)])], 6),
        "unreadable Make before it":
            ([b"Exif\0\0" + _tiff("MM", [(0x010F, 2, 40, 9999), (ORIENTATION, 3, 1, 6)])], 1),
        "short Make (inline) before it":
            ([b"Exif\0\0" + _tiff("MM", [(0x010F, 2, 4, 0x41424300), (ORIENTATION, 3, 1, 6)])], 6),
        "XMP APP1 before the Exif one":
            ([b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>", b"Exif\0\0" + block], 6),
        "second Exif segment when the first has none":
            ([b"Exif\0\0" + _tiff("II", [(0x0100, 3, 1, 37)]), b"Exif\0\0" + block], 6),
        "first Exif segment with one wins":
            ([b"Exif\0\0" + _orientation_block("MM", 3), b"Exif\0\0" + block], 3),
    }
    for name, (payloads, expected) in cases.items():
        data = _with_app1(plain_jpeg, payloads)
        assert (_ours(orientation_fn, data), _cv2_orientation(data)) == (expected, expected), name

    # Marker-level oddities libjpeg tolerates before the APP1: junk bytes, fill 0xFFs, stuffed
    # FF 00 pairs, RSTn / TEM markers, a comment.
    segment = _with_app1(b"", [b"Exif\0\0" + block])
    for name, prefix in {
        "junk": b"\xff\xe0\x00\x04ab" + b"junk",
        "fill bytes": b"\xff\xff",
        "stuffed FF 00": b"\xff\x00\xff\x00",
        "RST0, RST7, TEM": b"\xff\xd0\xff\xd7\xff\x01",
        "comment": b"\xff\xfe\x00\x05abc",
    }.items():
        data = plain_jpeg[:2] + prefix + segment + plain_jpeg[2:]
        assert _ours(orientation_fn, data) == 6 == _cv2_orientation(data), name

    # PNG: the first eXIf chunk with a valid byte-order mark decides, before or after IDAT.
    png = _pillow(photo, "PNG")
    for name, (chunks, after, expected) in {
        "eXIf after IDAT": ([(b"eXIf", block)], True, 6),
        "eXIf with an Exif\\0\\0 prefix (invalid)": ([(b"eXIf", b"Exif\0\0" + block)], False, 1),
        "eXIf with byte order XX (invalid)": ([(b"eXIf", b"XX" + _orientation_block("MM", 6)[2:])], False, 1),
        "two eXIf: the first": ([(b"eXIf", _orientation_block("MM", 3)), (b"eXIf", block)], False, 3),
        "truncated eXIf": ([(b"eXIf", block[:entry + 5])], False, 1),
    }.items():
        data = _with_png_chunks(png, chunks, after)
        assert (_ours(orientation_fn, data), _cv2_orientation(data)) == (expected, expected), name


def test_random_malformed_exif_matches_opencv(orientation_fn, plain_jpeg):
    """Seeded fuzz: IFD0s of random known/unknown tags with random types, counts, values and
    offsets, random cuts and byte flips, one or two Exif segments; equal to OpenCV on all."""
    rnd = random.Random(5)
    tags = [0x010E, 0x010F, 0x0110, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132, 0x013E, 0x013F,
            0x0211, 0x0213, 0x0214, 0x8298, 0x8769, 0x0100, 0x9000] + [ORIENTATION] * 4

    def block():
        order = rnd.choice(["II", "MM"])
        e = "<" if order == "II" else ">"
        entries = b""
        n = rnd.randint(0, 6)
        for _ in range(n):
            tag = rnd.choice(tags)
            value = rnd.choice([rnd.randint(0, 12), rnd.randint(0, 400), rnd.getrandbits(32)])
            if tag == ORIENTATION and rnd.random() < 0.7:
                value = rnd.randint(1, 8) << (0 if order == "II" else 16)
            count = rnd.choice([1, 2, 4, 5, 20, rnd.randint(0, 300)])
            entries += struct.pack(e + "HHII", tag, rnd.choice([2, 3, 4, 5]), count, value)
        ifd = rnd.choice([8, 8, 8, 12, 0, 3, rnd.randint(0, 300)])
        count = n if rnd.random() < 0.8 else rnd.randint(0, 30)
        data = order.encode() + struct.pack(e + "HI", 42, ifd) + bytes(max(0, ifd - 8) if ifd < 300 else 0)
        data += struct.pack(e + "H", count) + entries + bytes(rnd.choice([0, 4, 60]))
        if rnd.random() < 0.3:
            data = data[: rnd.randint(0, len(data))]
        if rnd.random() < 0.2 and data:
            data = bytearray(data)
            for _ in range(3):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            data = bytes(data)
        return b"Exif\0\0" + data

    seen = set()
    for i in range(200):
        data = _with_app1(plain_jpeg, [block() for _ in range(rnd.choice([1, 1, 1, 2]))])
        k = _cv2_orientation(data)
        assert _ours(orientation_fn, data) == k, (i, data[:200].hex())
        seen.add(k)
    assert len(seen) >= 6                      # most orientations were exercised, not just 1


# ---- (b) decoding + orientation ------------------------------------------------------------------

@pytest.mark.parametrize("k", range(1, 9))
def test_decode_like_imread_applies_orientation_exactly(decode_fn, photo, plain_jpeg, k):
    """Pixel for pixel what cv2.imdecode(IMREAD_COLOR) returns, H and W swapped for 5..8."""
    for data in (_pillow(photo, "JPEG", k, quality=95),
                 _with_app1(plain_jpeg, [b"Exif\0\0" + _orientation_block("II", k)]),
                 _pillow(photo, "PNG", k)):
        ours = decode_fn(tf.constant(data)).numpy()
        expected = _cv2_rgb(data)
        assert ours.shape == expected.shape == TRANSFORMS[k](photo).shape
        np.testing.assert_array_equal(ours, expected)


def _cv2_png(image):
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def test_decode_like_imread_equals_cv2_for_grey_alpha_palette_16_bit(decode_fn, photo):
    """Alpha dropped (not composited), grey and palettes expanded, 16-bit reduced to the high byte
    (not rounded: the low bytes are random), exactly like cv2.imdecode(IMREAD_COLOR)."""
    rng = np.random.default_rng(3)
    alpha = rng.integers(0, 256, photo.shape[:2], dtype=np.uint8)
    rgba = np.dstack([photo, alpha])
    bgr16 = (photo[..., ::-1].astype(np.uint16) << 8) | rng.integers(0, 256, photo.shape, dtype=np.uint16)
    alpha16 = rng.integers(0, 65536, photo.shape[:2], dtype=np.uint16)
    palette, grey_alpha = io.BytesIO(), io.BytesIO()
    Image.fromarray(photo).quantize(64).save(palette, "PNG")
    Image.fromarray(rgba).convert("LA").save(grey_alpha, "PNG")
    cases = {
        "grey PNG": _pillow(photo[..., 1], "PNG"),
        "grey JPEG": _pillow(photo[..., 1], "JPEG", quality=90),
        "grey + alpha PNG": grey_alpha.getvalue(),
        "RGBA PNG": _pillow(rgba, "PNG"),
        "palette PNG": palette.getvalue(),
        "16-bit PNG": _cv2_png(bgr16),
        "16-bit grey PNG": _cv2_png(bgr16[..., 1]),
        "16-bit RGBA PNG": _cv2_png(np.dstack([bgr16, alpha16])),
        "BMP": _pillow(photo, "BMP"),
    }
    for name, data in cases.items():
        ours = decode_fn(tf.constant(data)).numpy()
        np.testing.assert_array_equal(ours, _cv2_rgb(data), err_msg=name)
    np.testing.assert_array_equal(decode_fn(tf.constant(cases["16-bit PNG"])).numpy(),
                                  (bgr16[..., ::-1] >> 8).astype(np.uint8))


def test_apply_orientation_on_grey_and_unknown_values(photo):
    grey = photo[..., 0]
    for k, f in TRANSFORMS.items():
        np.testing.assert_array_equal(tf_decode.apply_orientation(grey, k).numpy(), f(grey))
    for k in (0, 9, -3):
        np.testing.assert_array_equal(tf_decode.apply_orientation(photo, k).numpy(), photo)


def test_graph_has_no_python_callbacks(orientation_fn, decode_fn):
    ops = set()
    for fn in (orientation_fn, decode_fn):
        graph = fn.get_concrete_function().graph.as_graph_def()
        ops |= {n.op for n in graph.node}
        ops |= {n.op for f in graph.library.function for n in f.node_def}
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc", "Assert"}
    assert "DecodeRaw" in ops and ops & {"While", "StatelessWhile"}
