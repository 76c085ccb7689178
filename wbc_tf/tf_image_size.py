"""Image dimensions from the file header, in TensorFlow ops, before anything is decoded.

`image_header` reads the format and the size of an encoded image (a scalar tf.string) the way the
TensorFlow decoders that `wbc_tf.tf_decode.decode_like_imread` calls will read them, so that a
serving graph can refuse a decompression bomb (a 2.6 MB PNG of 30000x30000 px decodes to 2.7 GB)
before the decoder allocates anything. Graph ops only: it is stored in a SavedModel and never raises;
a header it cannot read is reported as such (``ok`` False) and the caller decides.

Per format (the bytes the TF decoders take their allocation from):

* JPEG: the first SOFn marker (C0–C3, C5–C7, C9–CB, CD–CF), reached by walking the segments from
  SOI the way libjpeg does (the markers are found vectorised, as in `wbc_tf.tf_decode`); an EXIF
  thumbnail inside APP1 is skipped with its segment. SOS, EOI or the end of the data before any SOF:
  not ok.
* PNG: the IHDR chunk, which must come first (width, height: big-endian uint32 at 16 and 20).
* GIF: the logical screen (uint16 at 6 and 8) and every image descriptor: giflib's ``DGifSlurp``
  keeps every frame's pixels (width x height bytes each) before TensorFlow copies the first one out,
  so ``pixels`` is the larger of the screen's area and the frames' total area. The blocks are walked
  in at most `GIF_MAX_STEPS` steps, each one block or a run of up to `GIF_RUN` full data sub-blocks
  plus the next one (a few steps per frame for what encoders write); a GIF that needs more steps
  (thousands of frames, or data cut into short sub-blocks) is not ok.
* BMP: width and height as TensorFlow's BMP decoder reads them (int32 at 18 and 22; a negative height
  means top-down rows).
* WebP: the ``VP8 `` key frame header, the ``VP8L`` header or the ``VP8X`` canvas. Animated WebPs
  are reported (``animated``): TensorFlow's 3-channel decode refuses them.

Anything else is `UNKNOWN`, the kind `decode_like_imread` cannot decode either.
"""

import tensorflow as tf

from wbc_tf.tf_decode import _uint, _window  # bounds-safe byte readers shared with the EXIF parser

UNKNOWN, JPEG, PNG, GIF, BMP, WEBP = range(6)
KIND_NAMES = ("unknown", "JPEG", "PNG", "GIF", "BMP", "WebP")
JPEG_MAX_STEPS = 8192      # JPEG segments before the SOF (real files: a dozen)
GIF_MAX_STEPS = 16384      # GIF blocks and runs of data sub-blocks (see `_gif`)
GIF_RUN = 1024             # full 255-byte GIF data sub-blocks skipped in one step

_SOF_MARKERS = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
_LITTLE, _BIG = tf.constant(True), tf.constant(False)


def _u(b, start, width, little):
    """Unsigned ``width``-byte integer at ``start`` (a Python int or int64), 0 past the end."""
    return _uint(b, tf.cast(start, tf.int64), width, little)


def _byte(b, start):
    return _window(b, tf.cast(start, tf.int64), 1)[0]


def _starts_with(data, prefix, at=0):
    """``data[at : at + len(prefix)] == prefix``; False (not an error) when ``data`` is shorter."""
    end = at + len(prefix)
    head = tf.strings.join([tf.strings.substr(data, 0, end), b"\0" * end])  # end bytes at least
    return tf.equal(tf.strings.substr(head, at, len(prefix)), prefix) & (tf.strings.length(data) >= end)


def _result(ok, height, width, pixels=None, animated=None):
    height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    pixels = height * width if pixels is None else tf.cast(pixels, tf.int64)
    animated = tf.constant(False) if animated is None else animated
    return ok, height, width, pixels, animated


def _bytes(data):
    b = tf.io.decode_raw(data, tf.uint8)
    return b, tf.size(b, out_type=tf.int64)


def _jpeg(data):
    b, size = _bytes(data)
    # As in wbc_tf.tf_decode: the next marker that matters from any position is the next 0xFF
    # followed by a byte other than 00, FF, 01, D0..D7 (libjpeg's next_marker skips the others).
    ff = tf.where(tf.equal(b, 0xFF))[:, 0]
    after = _window(b, ff + 1, 1)[:, 0]
    standalone = tf.equal(after, 0x01) | ((after >= 0xD0) & (after <= 0xD7))
    markers = tf.boolean_mask(ff, ~(tf.equal(after, 0x00) | tf.equal(after, 0xFF) | standalone))
    n_markers = tf.size(markers, out_type=tf.int64)
    sof = tf.constant(_SOF_MARKERS, tf.int64)

    def step(pos, done, found, h, w):
        k = tf.searchsorted(markers, tf.reshape(pos, [1]), side="left", out_type=tf.int64)[0]
        p = tf.where(k < n_markers, tf.gather(markers, tf.minimum(k, n_markers - 1)), size)
        marker = _byte(b, p + 1)
        is_sof = (p < size) & tf.reduce_any(tf.equal(marker, sof)) & (p + 9 <= size)
        end = (p >= size) | tf.equal(marker, 0xD8) | tf.equal(marker, 0xD9) | tf.equal(marker, 0xDA)
        length = _u(b, p + 2, 2, _BIG)
        truncated = p + 4 > size
        return (p + 2 + tf.maximum(length, 2), end | truncated | is_sof, is_sof,
                tf.where(is_sof, _u(b, p + 5, 2, _BIG), h), tf.where(is_sof, _u(b, p + 7, 2, _BIG), w))

    zero = tf.constant(0, tf.int64)
    _, _, found, h, w = tf.while_loop(
        lambda pos, done, found, h, w: ~done, step,
        (tf.constant(2, tf.int64), tf.constant(False), tf.constant(False), zero, zero),
        maximum_iterations=JPEG_MAX_STEPS)
    return _result(found, h, w)


def _png(data):
    b, size = _bytes(data)
    ok = (size >= 24) & _starts_with(data, b"IHDR", 12)
    return _result(ok, _u(b, 20, 4, _BIG), _u(b, 16, 4, _BIG))


def _table_size(packed):
    # A colour table follows when bit 7 is set: 3 * 2^(size + 1) bytes.
    return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64), packed % 8),
                    tf.constant(0, tf.int64))


def _gif(data):
    b, size = _bytes(data)
    screen_w, screen_h = _u(b, 6, 2, _LITTLE), _u(b, 8, 2, _LITTLE)
    start = 13 + _table_size(_byte(b, 10))

    # State: position, in sub-blocks?, done, trailer reached, frames, total frame area.
    def step(pos, in_data, done, complete, frames, area):
        # Inside a chain of data sub-blocks (a length byte, then that many bytes; 0 ends the chain):
        # encoders write full 255-byte sub-blocks, so skip a run of up to GIF_RUN of them at once,
        # then take the next sub-block.
        lengths = _window(b, pos + 256 * tf.range(GIF_RUN, dtype=tf.int64), 1)[:, 0]
        run = tf.argmax(tf.cast(tf.not_equal(tf.concat([lengths, [0]], 0), 255), tf.int32),
                        output_type=tf.int64)
        data_pos = pos + 256 * run
        n = _byte(b, data_pos)
        data_next = tf.where(tf.equal(n, 0), data_pos + 1, data_pos + 1 + n)
        c = _byte(b, pos)
        # At a block: 0x2C image descriptor (10 bytes, a local colour table, the LZW code size byte,
        # then sub-blocks), 0x21 extension (label, then sub-blocks), 0x3B trailer, else: not a GIF.
        image = tf.equal(c, 0x2C) & (pos + 10 <= size)
        extension = tf.equal(c, 0x21)
        trailer = tf.equal(c, 0x3B)
        frame_area = _u(b, pos + 5, 2, _LITTLE) * _u(b, pos + 7, 2, _LITTLE)
        block_next = tf.where(image, pos + 11 + _table_size(_byte(b, pos + 9)), pos + 2)
        new_pos = tf.where(in_data, data_next, block_next)
        new_in_data = tf.where(in_data, ~tf.equal(c, 0), image | extension)
        stop = (pos >= size) | (~in_data & ~(image | extension))
        counted = ~in_data & image
        return (new_pos, new_in_data, stop, ~in_data & trailer & (pos < size),
                frames + tf.cast(counted, tf.int64), area + tf.where(counted, frame_area, 0))

    zero = tf.constant(0, tf.int64)
    _, _, _, complete, frames, area = tf.while_loop(
        lambda pos, in_data, done, complete, frames, area: ~done, step,
        (start, tf.constant(False), tf.constant(False), tf.constant(False), zero, zero),
        maximum_iterations=GIF_MAX_STEPS)
    ok = (size >= 13) & complete & (frames > 0)
    return _result(ok, screen_h, screen_w, tf.maximum(screen_w * screen_h, area), frames > 1)


def _bmp(data):
    b, size = _bytes(data)
    width = _u(b, 18, 4, _LITTLE)
    height = _u(b, 22, 4, _LITTLE)
    # int32 two's complement: TensorFlow takes abs(height) (negative = rows stored top-down).
    width = tf.where(width >= 2 ** 31, width - 2 ** 32, width)
    height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)
    return _result((size >= 26) & (width >= 0), height, width)


def _webp(data):
    b, size = _bytes(data)
    vp8 = _starts_with(data, b"VP8 ", 12) & _starts_with(data, b"\x9d\x01\x2a", 23) & (size >= 30)
    vp8l = _starts_with(data, b"VP8L", 12) & tf.equal(_byte(b, 20), 0x2F) & (size >= 25)
    vp8x = _starts_with(data, b"VP8X", 12) & (size >= 30)
    bits = _u(b, 21, 4, _LITTLE)
    width = tf.where(vp8, _u(b, 26, 2, _LITTLE) % 16384,
                     tf.where(vp8l, bits % 16384 + 1, _u(b, 24, 3, _LITTLE) + 1))
    height = tf.where(vp8, _u(b, 28, 2, _LITTLE) % 16384,
                      tf.where(vp8l, (bits // 16384) % 16384 + 1, _u(b, 27, 3, _LITTLE) + 1))
    animated = vp8x & tf.not_equal(tf.bitwise.bitwise_and(_byte(b, 20), 2), 0)
    return _result(vp8 | vp8l | vp8x, height, width, animated=animated)


def _unknown(data):
    zero = tf.constant(0, tf.int64)
    return _result(tf.constant(False), zero, zero)


def image_kind(data):
    """`JPEG`, `PNG`, `GIF`, `BMP`, `WEBP` or `UNKNOWN` (int32 scalar) from the file signature, as
    ``tf.io.decode_image`` tells them apart."""
    data = tf.convert_to_tensor(data, tf.string)
    kinds = [(tf.io.is_jpeg(data), JPEG),
             (_starts_with(data, b"\x89PNG\r\n\x1a\n"), PNG),
             (_starts_with(data, b"GIF87a") | _starts_with(data, b"GIF89a"), GIF),
             (_starts_with(data, b"BM"), BMP),
             (_starts_with(data, b"RIFF") & _starts_with(data, b"WEBP", 8), WEBP)]
    kind = tf.constant(UNKNOWN, tf.int32)
    for test, value in reversed(kinds):
        kind = tf.where(test, tf.constant(value, tf.int32), kind)
    return kind


def image_header(data):
    """Format and size of one encoded image (scalar tf.string), read from its header only.

    Returns:
        ``(kind, ok, height, width, pixels, animated)``: `image_kind`; whether the header could be
        read; height and width (int64, before any EXIF rotation); ``pixels``, what the decoder will
        hold (height x width, for a GIF all its frames, see the module doc); ``animated`` (several GIF
        frames, or an animated WebP).
    """
    data = tf.convert_to_tensor(data, tf.string)
    kind = image_kind(data)
    branches = [lambda: _unknown(data), lambda: _jpeg(data), lambda: _png(data), lambda: _gif(data),
                lambda: _bmp(data), lambda: _webp(data)]
    ok, height, width, pixels, animated = tf.switch_case(kind, branches)
    return kind, ok, height, width, pixels, animated
