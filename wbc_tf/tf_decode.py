"""Decode image files with TensorFlow ops exactly like ``cv2.imread``: the one TF decoder.

`decode_like_imread` is used by the SavedModel's ``serving_default`` signature (`wbc_tf.export.graph`)
and by the training data (`wbc_tf.data`); NumPy code decodes with OpenCV itself (`wbc_tf.image_io`).
Everything here is graph ops only (no Python callbacks), so it is stored in a SavedModel, runs in TF
Serving and inside ``tf.data``.

``cv2.imread(path)`` (``IMREAD_COLOR``) returns 3 channels (alpha dropped, grey expanded, 16-bit
reduced by ``>> 8``), decodes JPEGs with libjpeg's accurate integer IDCT, and rotates or flips a JPEG
or PNG by the Orientation tag (0x0112) of its EXIF data, so a phone photo taken in portrait comes out
upright. The EXIF part:

* `jpeg_exif_orientation`: walks the JPEG markers up to SOS the way libjpeg does and parses every
  APP1 segment whose payload starts with ``Exif\\0\\0``;
* `png_exif_orientation`: walks the PNG chunks and parses the first valid ``eXIf`` chunk;
* `exif_orientation`: one of the two by file signature; 1 for anything else (BMP, GIF);
* `apply_orientation`: the transform for 1..8.

The TIFF parsing reproduces OpenCV's ``ExifReader`` (checked against OpenCV 5.0 on hand-built
files, see ``tests/test_tf_decode.py``), including malformed data:

* little-endian only for ``II``; any other byte-order mark is read big-endian;
* the TIFF magic must be 42; IFD0 starts at the offset in the header;
* IFD0 entries are read in order. Reading one of the tags ExifReader decodes fails when its data
  lies outside the EXIF block; that ends the parse, and what was read before stays valid;
* the first Orientation entry wins (also across several Exif segments); its type and count are
  not checked; values outside 1..8 mean "no transform".

The EXIF part never raises: absent, malformed or truncated EXIF gives orientation 1. The one known
difference: a PNG ``eXIf`` chunk with a bad CRC is used here, libpng ignores it.

Loops are `tf.while_loop`s over JPEG segments or PNG chunks, at most `MAX_STEPS` steps (about
0.5 s for a hostile file made of thousands of empty segments; real JPEGs have a few dozen
segments before the image data, and PNG writers put ``eXIf`` before the image data). Junk and
fill bytes between JPEG markers and the IFD entries are handled vectorised, not step by step.
A PNG whose ``eXIf`` chunk comes after more than `MAX_STEPS` chunks gets orientation 1.
"""

import tensorflow as tf

ORIENTATION_TAG = 0x0112
MAX_STEPS = 8192          # JPEG segments before SOS / PNG chunks before the eXIf one

_EXIF_HEADER = (0x45, 0x78, 0x69, 0x66, 0x00, 0x00)           # b"Exif\0\0"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_EXIF, _PNG_IEND = 0x65584966, 0x49454E44                   # b"eXIf", b"IEND"
_II, _MM = 0x49, 0x4D

# IFD0 tags that ExifReader decodes, grouped by the data a read needs (anything else is skipped):
_U16_TAGS = (ORIENTATION_TAG, 0x0128, 0x0213)          # + ResolutionUnit, YCbCrPositioning
_STRING_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x8298)
_RATIONAL_TAGS = ((0x011A, 1), (0x011B, 1), (0x013E, 2),  # tag, number of RATIONALs read at the
                  (0x013F, 6), (0x0211, 3), (0x0214, 6))  # offset in the value field


def _window(b, start, width):
    """``width`` bytes of the uint8 vector ``b`` from int64 ``start`` (scalar or (M,)) as int64,
    shape ``start.shape + (width,)``; bytes outside ``b`` read as 0 (callers check bounds)."""
    size = tf.size(b, out_type=tf.int64)
    index = tf.expand_dims(start, -1) + tf.range(width, dtype=tf.int64)
    safe = tf.clip_by_value(index, 0, tf.maximum(size - 1, 0))
    value = tf.cast(tf.gather(b, safe), tf.int64)
    return tf.where((index >= 0) & (index < size), value, tf.zeros_like(value))


def _uint(b, start, width, little):
    """Unsigned ``width``-byte integer(s) at ``start``, little-endian if ``little`` (bool tensor)."""
    weights = tf.where(little, tf.constant([256 ** k for k in range(width)], tf.int64),
                       tf.constant([256 ** (width - 1 - k) for k in range(width)], tf.int64))
    return tf.reduce_sum(_window(b, start, width) * weights, axis=-1)


def _member(values, table):
    """Elementwise ``values in table`` for an int64 vector."""
    return tf.reduce_any(tf.equal(values[:, tf.newaxis], tf.constant(table, tf.int64)), axis=1)


@tf.function(input_signature=[tf.TensorSpec([None], tf.uint8), tf.TensorSpec([], tf.int64),
                              tf.TensorSpec([], tf.int64)])
def _tiff_orientation(b, base, n):
    """ExifReader on the TIFF block ``b[base : base + n]``: (found, value) of the first
    Orientation entry of IFD0 read before the parse stops (see module doc).

    A `tf.function` so the JPEG and PNG paths share one copy in the SavedModel.
    """
    head = _window(b, base, 2)
    little = (n >= 2) & tf.equal(head[0], _II) & tf.equal(head[1], _II)

    def read(offset, width):
        return _uint(b, base + offset, width, little)

    def readable(offset, width):            # ExifReader's bounds check: offset + width - 1 < n
        return offset + (width - 1) < n

    ok = readable(2, 2) & tf.equal(read(2, 2), 42) & readable(4, 4)
    ifd = read(4, 4)
    ok &= readable(ifd, 2)
    count = tf.where(ok, read(ifd, 2), tf.constant(0, tf.int64))
    # Entries past the end of the block fail at their tag, so n // 12 + 2 entries always reach
    # either the stop or the end of the directory.
    entries = tf.minimum(count, n // 12 + 2)
    o = ifd + 2 + 12 * tf.range(entries, dtype=tf.int64)
    tag = read(o, 2)
    size = read(o + 4, 4)                   # the count field (a string's length)
    field = read(o + 8, 4)                  # the value field, or the offset of the value

    fails = ~readable(o, 2)
    fails |= _member(tag, _U16_TAGS) & ~readable(o + 8, 2)
    # Strings: at the offset in the value field when longer than 4 bytes, else at (sic) 8.
    long_string = size > 4
    data_offset = tf.where(long_string, field, tf.constant(8, tf.int64) + tf.zeros_like(field))
    bad_string = (~readable(o + 4, 4) | (long_string & ~readable(o + 8, 4))
                  | (data_offset > n) | (data_offset + size > n))
    fails |= _member(tag, _STRING_TAGS) & bad_string
    # Rationals: k pairs of uint32 at the offset in the value field.
    rational_tags = tf.constant([t for t, _ in _RATIONAL_TAGS], tf.int64)
    rational_counts = tf.constant([k for _, k in _RATIONAL_TAGS], tf.int64)
    match = tf.equal(tag[:, tf.newaxis], rational_tags)
    k = tf.reduce_sum(tf.where(match, rational_counts, tf.zeros_like(rational_counts)), axis=1)
    fails |= (k > 0) & (~readable(o + 8, 4) | ~(field + 8 * k - 1 < n))

    orientation = tf.equal(tag, ORIENTATION_TAG) & ~fails
    # Sentinel so that an empty directory still has a "first stop" (not an orientation).
    stop = tf.concat([fails | orientation, [True]], 0)
    orientation = tf.concat([orientation, [False]], 0)
    first = tf.argmax(tf.cast(stop, tf.int32), output_type=tf.int64)
    found = tf.gather(orientation, first)
    value = read(ifd + 2 + 12 * first + 8, 2)
    return found, tf.where(found, value, tf.constant(0, tf.int64))


def _as_orientation(found, value):
    valid = found & (value >= 1) & (value <= 8)
    return tf.cast(tf.where(valid, value, tf.constant(1, tf.int64)), tf.int32)


def _not_found():
    return tf.constant(False), tf.constant(0, tf.int64)


def _jpeg_orientation(data):
    b = tf.io.decode_raw(data, tf.uint8)
    size = tf.size(b, out_type=tf.int64)
    # libjpeg's next_marker skips non-0xFF bytes, fill 0xFFs and stuffed FF 00 pairs; RSTn and TEM
    # markers (no payload) are skipped too. So the next marker that matters from any position is
    # the next 0xFF followed by a byte other than 00, FF, 01, D0..D7: find all of them at once.
    ff = tf.where(tf.equal(b, 0xFF))[:, 0]
    after = _window(b, ff + 1, 1)[:, 0]               # 0 past the end: not a marker
    standalone = tf.equal(after, 0x01) | ((after >= 0xD0) & (after <= 0xD7))
    markers = tf.boolean_mask(ff, ~(tf.equal(after, 0x00) | tf.equal(after, 0xFF) | standalone))
    n_markers = tf.size(markers, out_type=tf.int64)
    header = tf.constant(_EXIF_HEADER, tf.int64)

    def step(pos, done, found, value):
        k = tf.searchsorted(markers, tf.reshape(pos, [1]), side="left", out_type=tf.int64)[0]
        p = tf.where(k < n_markers, tf.gather(markers, tf.minimum(k, n_markers - 1)), size)
        w = _window(b, p, 10)                         # FF, marker, length (2), payload (6)
        marker = w[1]
        # No marker left, SOI again (libjpeg errors), EOI, or SOS: the header is over.
        end_of_header = ((p >= size) | tf.equal(marker, 0xD8) | tf.equal(marker, 0xD9)
                         | tf.equal(marker, 0xDA))
        length = w[2] * 256 + w[3]
        segment_end = p + 2 + tf.maximum(length, 2)
        truncated = (p + 3 >= size) | (segment_end > size)
        is_exif = (~end_of_header & ~truncated & tf.equal(marker, 0xE1) & (length >= 8)
                   & tf.reduce_all(tf.equal(w[4:], header)))
        found, value = tf.cond(is_exif, lambda: _tiff_orientation(b, p + 10, length - 8),
                               _not_found)
        return segment_end, end_of_header | truncated, found, value

    _, _, found, value = tf.while_loop(
        lambda pos, done, found, value: ~done & ~found, step,
        (tf.constant(2, tf.int64), tf.constant(False), tf.constant(False),
         tf.constant(0, tf.int64)),
        maximum_iterations=MAX_STEPS)
    return _as_orientation(found, value)


def _png_orientation(data):
    b = tf.io.decode_raw(data, tf.uint8)
    size = tf.size(b, out_type=tf.int64)
    big_endian = tf.constant([256 ** 3, 256 ** 2, 256, 1], tf.int64)

    def step(pos, done, found, value):
        w = _window(b, pos, 10)                       # length (4), type (4), 2 bytes of data
        length = tf.reduce_sum(w[:4] * big_endian)
        kind = tf.reduce_sum(w[4:8] * big_endian)
        no_chunk = pos + 8 > size
        exif = ~no_chunk & tf.equal(kind, _PNG_EXIF)
        truncated = exif & (pos + 8 + length > size)
        # libpng keeps the first eXIf chunk that starts with "II" or "MM"; later ones are dropped.
        valid = (exif & ~truncated & (length >= 2) & tf.equal(w[8], w[9])
                 & (tf.equal(w[8], _II) | tf.equal(w[8], _MM)))
        found, value = tf.cond(valid, lambda: _tiff_orientation(b, pos + 8, length), _not_found)
        done = no_chunk | truncated | valid | tf.equal(kind, _PNG_IEND)
        return pos + 12 + length, done, found, value

    _, _, found, value = tf.while_loop(
        lambda pos, done, found, value: ~done, step,
        (tf.constant(8, tf.int64), tf.constant(False), tf.constant(False),
         tf.constant(0, tf.int64)),
        maximum_iterations=MAX_STEPS)
    return _as_orientation(found, value)


def _one():
    return tf.constant(1, tf.int32)


def jpeg_exif_orientation(data):
    """EXIF orientation (int32 scalar, 1..8) of a JPEG given as a scalar tf.string; 1 when the data
    is not a JPEG or has no usable Orientation tag."""
    data = tf.convert_to_tensor(data, tf.string)
    return tf.cond(tf.io.is_jpeg(data), lambda: _jpeg_orientation(data), _one)


def png_exif_orientation(data):
    """EXIF orientation (int32 scalar, 1..8) from the ``eXIf`` chunk of a PNG; 1 when the data is
    not a PNG or has no usable Orientation tag."""
    data = tf.convert_to_tensor(data, tf.string)
    is_png = tf.equal(tf.strings.substr(data, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)
    return tf.cond(is_png, lambda: _png_orientation(data), _one)


def exif_orientation(data):
    """The orientation ``cv2.imread`` applies to encoded image bytes: JPEG or PNG EXIF, else 1."""
    data = tf.convert_to_tensor(data, tf.string)
    return tf.cond(tf.io.is_jpeg(data), lambda: _jpeg_orientation(data),
                   lambda: png_exif_orientation(data))


def _transpose(image):
    rank = len(image.shape)
    return tf.transpose(image, [1, 0] + list(range(2, rank)))


def apply_orientation(image, orientation):
    """Turn a decoded (H, W[, C]) image upright for EXIF ``orientation`` (int scalar), like
    OpenCV: 2 flip left-right, 3 rotate 180°, 4 flip up-down, 5 transpose, 6 rotate 90° clockwise,
    7 anti-transpose, 8 rotate 90° counter-clockwise; 1 or anything else: unchanged."""
    image = tf.convert_to_tensor(image)
    orientation = tf.cast(orientation, tf.int32)
    branches = [
        lambda: tf.identity(image),
        lambda: tf.reverse(image, [1]),
        lambda: tf.reverse(image, [0, 1]),
        lambda: tf.reverse(image, [0]),
        lambda: _transpose(image),
        lambda: tf.reverse(_transpose(image), [1]),
        lambda: tf.reverse(_transpose(image), [0, 1]),
        lambda: tf.reverse(_transpose(image), [0]),
    ]
    index = tf.where((orientation >= 1) & (orientation <= 8), orientation - 1, 0)
    return tf.switch_case(index, branches)


def decode_like_imread(data):
    """Decode one encoded image (scalar tf.string) to (H, W, 3) uint8 RGB the way ``cv2.imread`` does.

    3 channels, alpha dropped (not composited), grey expanded, 16-bit PNGs reduced to their high
    byte, first GIF frame, still WebP with or without alpha. JPEGs use the accurate integer IDCT (libjpeg's
    JDCT_ISLOW, which OpenCV and Pillow use): TensorFlow's default is the fast IDCT, which differs
    from ``cv2.imread`` in ~60 % of the values, by up to 17. The EXIF orientation of a JPEG or PNG is
    applied afterwards, as ``cv2.imread`` does, so a portrait phone photo comes out upright with H and
    W swapped.

    Raises:
        tf.errors.InvalidArgumentError: (when run) the data is not an image TF can decode.
    """
    data = tf.convert_to_tensor(data, tf.string)

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    def other():
        # For a 16-bit PNG, TF's uint8 decode keeps the high byte, like OpenCV.
        return tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)

    def webp():
        # TensorFlow's WebP decoder only gives the file's own channels (3, or 4 with alpha: dropped).
        return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)[..., :3]

    head = tf.strings.join([tf.strings.substr(data, 0, 21), b"\0" * 21])  # 21 bytes at least
    is_webp = (tf.equal(tf.strings.substr(head, 0, 4), b"RIFF")
               & tf.equal(tf.strings.substr(head, 8, 4), b"WEBP"))
    # An animated WebP (VP8X, animation flag) goes to `other`, which refuses it cleanly: TF 2.21's
    # WebP decoder with channels=0 corrupts the heap on one and aborts the process.
    flags = tf.cast(tf.io.decode_raw(tf.strings.substr(head, 20, 1), tf.uint8)[0], tf.int32)
    animated = tf.equal(tf.strings.substr(head, 12, 4), b"VP8X") & tf.not_equal(flags % 4 // 2, 0)
    image = tf.cond(tf.io.is_jpeg(data), jpeg, lambda: tf.cond(is_webp & ~animated, webp, other))
    image = apply_orientation(image, exif_orientation(data))
    image.set_shape([None, None, 3])
    return image
