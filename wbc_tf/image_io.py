"""Image files in and out, with the original's ``cv2.imread`` semantics and explicit bad-file checks.

The original reads every photo with ``cv2.imread(path)`` (``IMREAD_COLOR``): uint8 **BGR**, 3
channels, alpha dropped, grey expanded, 16-bit reduced to 8-bit, EXIF orientation applied (spec §4).
`read_image` keeps exactly that, but

* decodes from bytes (``np.fromfile`` + ``cv2.imdecode``), so non-ASCII paths work everywhere;
* refuses bad files with a one-line reason (`ImageReadError`): empty, truncated or corrupt
  (checked with Pillow, because OpenCV may decode a cut-off JPEG partially without complaint),
  not an image, or smaller than 8 px on a side;
* can also return the alpha channel, aligned with the EXIF-rotated colour image.

`write_image` encodes with OpenCV (BGR, or BGRA with alpha) and writes atomically.
"""

import io
import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 8  # the pipeline crops to multiples of 8; smaller images would become empty

# (2, 3) with distinct values: each of the 8 EXIF transforms gives a different array.
_PROBE = np.arange(6, dtype=np.uint8).reshape(2, 3)


class ImageReadError(Exception):
    """A file that cannot be cartoonized; ``str(error)`` is a short human-readable reason."""


def quiet_codec_warnings():
    """Silence OpenCV's own codec warnings on stderr (e.g. "PNG input buffer is incomplete").

    `read_image` reports such files itself, in one line; OpenCV's log would add a second one.
    Process-wide, so the command-line tools call it, not the library.
    """
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)


def _integrity_problem(data):
    """Fully decode ``data`` with Pillow and return why it fails, or None if it is fine or unknown.

    Pillow raises on truncated data ("image file is truncated") where OpenCV may silently return
    a partly grey image. Formats Pillow does not know are left to OpenCV.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG":
                # DCT-domain 1/8 scaling: all entropy-coded data is still read (so truncation is
                # still caught) at a fraction of the cost of a full decode.
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
        return f"truncated or corrupt image data ({e})"
    return None


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
    raw, types, metadata = cv2.imdecodeWithMetadata(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return None
    colour, alpha = _to_uint8(raw[..., :3]), _to_uint8(raw[..., 3])
    for orientation in dict.fromkeys((_opencv_orientation(types, metadata), 1)):
        if np.array_equal(apply_orientation(colour, orientation), bgr):
            return apply_orientation(alpha, orientation)
    raise ImageReadError("cannot align the alpha channel with the (EXIF-rotated) colour image")


def decode_image(data, keep_alpha=False, min_side=MIN_SIDE):
    """Decode encoded bytes like ``cv2.imread(path)`` and check them.

    Args:
        data: 1-D uint8 array (or bytes) of an encoded image file.
        keep_alpha: also return the alpha channel (None when the image has none).
        min_side: smallest accepted height and width in pixels.

    Returns:
        ``(bgr, alpha)``: (H, W, 3) uint8 BGR and (H, W) uint8 or None.

    Raises:
        ImageReadError: empty, truncated/corrupt, undecodable or too small.
    """
    data = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    if data.size == 0:
        raise ImageReadError("empty file (0 bytes)")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    problem = _integrity_problem(data.tobytes())
    if problem:
        raise ImageReadError(problem)
    if bgr is None:
        raise ImageReadError("not an image, or a format OpenCV cannot decode")
    h, w = bgr.shape[:2]
    if min(h, w) < min_side:
        raise ImageReadError(f"too small: {w}x{h} px (each side must be at least {min_side} px)")
    alpha = _decode_alpha(data, bgr) if keep_alpha else None
    return bgr, alpha


def read_image(path, keep_alpha=False, min_side=MIN_SIDE):
    """Read an image file like ``cv2.imread(path)`` (uint8 BGR), with checks; see `decode_image`.

    Raises:
        ImageReadError: also for unreadable files (permissions, directories, missing files).
    """
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"cannot read file ({e.strerror or e})") from e
    return decode_image(data, keep_alpha=keep_alpha, min_side=min_side)


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
