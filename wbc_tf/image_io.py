"""Image files in and out, with the original's ``cv2.imread`` semantics and explicit bad-file checks.

The original reads every photo with ``cv2.imread(path)`` (``IMREAD_COLOR``): uint8 **BGR**, 3
channels, alpha dropped, grey expanded, 16-bit reduced to 8-bit, EXIF orientation applied
(docs/fidelity.md §4).
`read_image` keeps exactly that, but

* decodes from bytes (``np.fromfile`` + ``cv2.imdecode``), so non-ASCII paths work everywhere;
* refuses bad files with a one-line reason (`ImageReadError`): empty, too large, truncated or
  corrupt (checked with Pillow, because OpenCV may decode a cut-off JPEG partially without
  complaint), not an image, or smaller than 8 px on a side;
* refuses an image with more than ``max_pixels`` pixels (`ImageTooLarge`) from its header alone,
  before anything is decoded or allocated: a valid 2.6 MB PNG can hold 30000x30000 px, 2.7 GB
  decoded. The header is read by Pillow (PNG, JPEG, WebP, TIFF, BMP, GIF and most others); a
  format Pillow cannot read is left to OpenCV, whose own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``,
  read when OpenCV loads: 2^30 px unless set, ``wbc-cartoonize`` sets it to ``--max-pixels``)
  also refuses before allocating, and the decoded size is checked against ``max_pixels`` again;
* can also return the alpha channel, aligned with the EXIF-rotated colour image.

`write_image` encodes with OpenCV (BGR, or BGRA with alpha) and writes atomically.
"""

import contextlib
import io
import os
import struct
import threading
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from wbc_tf.config import MAX_PIXELS

MIN_SIDE = 8  # the pipeline crops to multiples of 8; smaller images would become empty

# Pillow's bomb check is one process-wide setting (Image.MAX_IMAGE_PIXELS); changed only under this lock.
_PILLOW_SETTINGS = threading.Lock()

# (2, 3) with distinct values: each of the 8 EXIF transforms gives a different array.
_PROBE = np.arange(6, dtype=np.uint8).reshape(2, 3)


class ImageReadError(Exception):
    """A file that cannot be cartoonized; ``str(error)`` is a short human-readable reason."""


class ImageTooLarge(ImageReadError):
    """An image with more pixels than the ``max_pixels`` limit (refused before decoding)."""


def quiet_codec_warnings():
    """Silence OpenCV's own log on stderr (e.g. "TIFFReadDirectory: Failed to read directory").

    `read_image` reports such files itself, in one line; OpenCV's log would add more. Process-wide,
    so the command-line tools call it, not the library. (libpng prints its own messages with
    ``fprintf``; only `wbc_tf.cli.console` can hide those.)
    """
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)


@contextlib.contextmanager
def _pillow_limit(max_pixels):
    """Pillow's own bomb check set to ``max_pixels`` (0: off) for the block, its warnings hidden.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` (89 MP by default) and refuses above twice that,
    which would print a warning for a 100 MP photo that our limit accepts. The limit is applied by
    `check_pixels` instead; Pillow's check at ``max_pixels`` stays on for what the header does not
    tell (later frames). Its other warnings ("Corrupt EXIF data") would add lines to our one.
    """
    with _PILLOW_SETTINGS:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels or None
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def image_size(data):
    """``(width, height)`` of an encoded image from its header alone (nothing is decoded), or None.

    None when Pillow does not know the format (or cannot parse the header); `decode_image` then
    leaves the file to OpenCV and its own limit.

    Args:
        data: bytes of an encoded image file.
    """
    with _pillow_limit(0):
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError,
                struct.error):
            return None


def _megapixels(pixels):
    return f"{pixels / 1e6:.3g} MP"


def check_pixels(width, height, max_pixels=MAX_PIXELS):
    """Raise `ImageTooLarge` if a ``width`` x ``height`` image exceeds ``max_pixels`` (0: no limit)."""
    if max_pixels and width * height > max_pixels:
        raise ImageTooLarge(f"too large: {width}x{height} px ({_megapixels(width * height)}) is over the "
                            f"max_pixels limit of {_megapixels(max_pixels)}")


def _integrity_problem(data, max_pixels=MAX_PIXELS):
    """Fully decode ``data`` with Pillow and return why it fails, or None if it is fine or unknown.

    Pillow raises on truncated data ("image file is truncated") where OpenCV may silently return
    a partly grey picture. Formats Pillow does not know are left to OpenCV.
    """
    with _pillow_limit(max_pixels):
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.format == "JPEG":
                    # DCT-domain 1/8 scaling: all entropy-coded data is still read (so truncation is
                    # still caught) at a fraction of the cost of a full decode.
                    im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
        except Image.DecompressionBombError as e:  # a later frame over the limit
            return f"too large ({e})"
        except UnidentifiedImageError:
            return None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
            return f"truncated or corrupt image data ({e})"
    return None


def _opencv_decode(decode, data, flags, max_pixels):
    """``decode(data, flags)`` (a ``cv2.imdecode*`` function), OpenCV's exceptions as `ImageReadError`."""
    try:
        return decode(data, flags)
    except cv2.error as e:
        if "CV_IO_MAX_IMAGE" in str(e):  # OpenCV's own size limit, checked before allocating
            limit = _megapixels(max_pixels) if max_pixels else "off"
            raise ImageTooLarge(f"too large: over OpenCV's pixel limit (OPENCV_IO_MAX_IMAGE_PIXELS; "
                                f"max_pixels is {limit})") from e
        raise ImageReadError(f"OpenCV cannot decode it ({str(e).strip().splitlines()[-1]})") from e


def _opencv_orientation(types, metadata):
    """The EXIF orientation (1..8) OpenCV applies to an image with this metadata, as OpenCV reads it.

    ``types``, ``metadata``: what `cv2.imdecodeWithMetadata` returned. The EXIF block goes into a
    tiny PNG probe with distinct pixel values; how ``IMREAD_GRAYSCALE`` turns the probe tells the
    orientation, so no EXIF parser of our own is needed. 1 when there is no EXIF block.
    """
    exif = [block for kind, block in zip(types, metadata) if kind == cv2.IMAGE_METADATA_EXIF]
    if not exif:
        return 1
    ok, probe = cv2.imencodeWithMetadata(".png", _PROBE, [cv2.IMAGE_METADATA_EXIF], exif[:1])
    if not ok:
        return 1
    turned = cv2.imdecode(probe, cv2.IMREAD_GRAYSCALE)
    return next((k for k in range(1, 9) if np.array_equal(apply_orientation(_PROBE, k), turned)), 1)


def apply_orientation(array, orientation):
    """Apply an EXIF orientation (1..8) to an (H, W[, C]) array, as viewers and ``cv2.imread`` do."""
    a = array
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)  # 90° clockwise
    elif orientation == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        a = np.rot90(a, 1)  # 90° counter-clockwise
    return np.ascontiguousarray(a)


def _to_uint8(channel):
    """Depth reduction with IMREAD_COLOR's rule: uint16 >> 8; floats in [0, 1] scaled."""
    if channel.dtype == np.uint8:
        return channel
    if channel.dtype == np.uint16:
        return (channel >> 8).astype(np.uint8)
    return np.clip(channel.astype(np.float64) * 255.0, 0, 255).astype(np.uint8)


def _decode_alpha(data, bgr):
    """The alpha channel of ``data`` as uint8 (H, W), aligned with the decoded ``bgr``, or None.

    ``IMREAD_UNCHANGED`` (the only mode that keeps alpha) does not apply the EXIF orientation
    that ``IMREAD_COLOR`` applies, so the orientation OpenCV reads from the EXIF data is applied
    here, after checking that it turns the unrotated colour channels into exactly the ``bgr``
    OpenCV returned (some decoders, e.g. TIFF, rotate by themselves: then nothing is left to do).
    """
    raw, types, metadata = _opencv_decode(cv2.imdecodeWithMetadata, data, cv2.IMREAD_UNCHANGED, 0)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return None
    colour, alpha = _to_uint8(raw[..., :3]), _to_uint8(raw[..., 3])
    for orientation in dict.fromkeys((_opencv_orientation(types, metadata), 1)):
        if np.array_equal(apply_orientation(colour, orientation), bgr):
            return apply_orientation(alpha, orientation)
    raise ImageReadError("cannot align the alpha channel with the (EXIF-rotated) colour image")


def decode_image(data, keep_alpha=False, min_side=MIN_SIDE, max_pixels=MAX_PIXELS):
    """Decode encoded bytes like ``cv2.imread(path)`` and check them.

    Args:
        data: 1-D uint8 array (or bytes) of an encoded image file.
        keep_alpha: also return the alpha channel (None when the image has none).
        min_side: smallest accepted height and width in pixels.
        max_pixels: largest accepted width x height (0: no limit), checked on the header first.

    Returns:
        ``(bgr, alpha)``: (H, W, 3) uint8 BGR and (H, W) uint8 or None.

    Raises:
        ImageTooLarge: over ``max_pixels`` (an `ImageReadError`).
        ImageReadError: empty, truncated/corrupt, undecodable or too small.
    """
    data = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if data.size == 0:
        raise ImageReadError("empty file (0 bytes)")
    encoded = data.tobytes()
    size = image_size(encoded)
    if size is not None:
        check_pixels(*size, max_pixels)
    # Checked before OpenCV sees the data: a truncated PNG also makes libpng print its own line.
    problem = _integrity_problem(encoded, max_pixels)
    if problem:
        raise ImageReadError(problem)
    bgr = _opencv_decode(cv2.imdecode, data, cv2.IMREAD_COLOR, max_pixels)
    if bgr is None or bgr.size == 0:
        raise ImageReadError("not an image, or a format OpenCV cannot decode")
    h, w = bgr.shape[:2]
    check_pixels(w, h, max_pixels)  # formats whose header Pillow cannot read
    if min(h, w) < min_side:
        raise ImageReadError(f"too small: {w}x{h} px (each side must be at least {min_side} px)")
    alpha = _decode_alpha(data, bgr) if keep_alpha else None
    return bgr, alpha


def read_image(path, keep_alpha=False, min_side=MIN_SIDE, max_pixels=MAX_PIXELS):
    """Read an image file like ``cv2.imread(path)`` (uint8 BGR), with checks; see `decode_image`.

    Raises:
        ImageReadError: also for unreadable files (permissions, directories, missing files).
    """
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"cannot read file ({e.strerror or e})") from e
    return decode_image(data, keep_alpha=keep_alpha, min_side=min_side, max_pixels=max_pixels)


def encode_image(ext, bgr, alpha=None, jpg_quality=95):
    """Encode (H, W, 3) uint8 BGR (plus optional (H, W) alpha → BGRA) to bytes for ``ext``."""
    image = bgr if alpha is None else np.dstack([bgr, alpha])
    params = []
    if ext.lower() in (".jpg", ".jpeg"):
        if alpha is not None:
            raise ValueError("JPEG cannot store an alpha channel; use PNG")
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpg_quality)]
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OSError(f"OpenCV cannot encode {ext!r} images")
    return buf


def write_image(path, bgr, alpha=None, jpg_quality=95):
    """Write an image; the codec follows the extension of ``path``.

    The bytes go to a temporary file in the same folder first and are then renamed, so an
    interrupted run never leaves a half-written file that a later run would skip as existing.
    """
    path = os.fspath(path)
    buf = encode_image(os.path.splitext(path)[1], bgr, alpha, jpg_quality)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.part")
    try:
        buf.tofile(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
