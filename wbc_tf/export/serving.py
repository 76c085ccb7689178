"""What the SavedModel does with a request before the network: checks, decoding, resizing, errors.

A request must not be able to take the server down, so every encoded image is checked from its
header first (`wbc_tf.tf_image_size`, nothing decoded): a format `decode_like_imread` reads, a
readable header, at most `ServingLimits.max_pixels`, each side at least 8 px, and a network input
(after the shorter-side rule, padded to multiples of 8) of at most ``max_network_pixels``. The
whole batch is checked before any image is decoded; the first bad one fails the request with an
``InvalidArgument`` error that names it (``images_bytes[2]: ...``). An image whose header is fine
but whose data is not (truncated, corrupt) fails when it is decoded, named as well.

How an error is raised without an ``Assert`` op (`FORBIDDEN_OPS` of `wbc_tf.export.saved_model`):
`fail` feeds the message to ``StringToNumber``, which fails with ``InvalidArgument`` and puts the
string into its message (``StringToNumberOp could not correctly convert string: images_bytes[2]:
...``). The call is the output of the failing branch of a ``tf.cond``, so it always runs when the
request is bad and Grappler cannot prune it, and the branch that would decode, run the network or
encode never runs. (A control dependency is not enough: TensorFlow's ``EncodePng`` of an empty
image aborts the whole process, so an undecodable image must never reach it.) Decoding errors are
turned into values by decoding inside a one-element ``tf.data`` pipeline with ``ignore_errors``,
which yields nothing for a bad image: the graph then fails with the image's index.

Every op here is a core TensorFlow kernel (no Python, no Assert), so TF Serving and the TF1 session
loader run it.
"""

import dataclasses

import tensorflow as tf

from wbc_tf.config import MULTIPLE, ExportConfig
from wbc_tf.tf_decode import decode_like_imread
from wbc_tf.tf_image_size import KIND_NAMES, UNKNOWN, WEBP, image_header
from wbc_tf.tf_resize import resize_area, short_side_size


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """The request limits compiled into the SavedModel (``wbc-export --serving-*``; 0 = none)."""

    short_side: int = ExportConfig.serving_short_side
    max_pixels: int = ExportConfig.serving_max_pixels
    max_network_pixels: int = ExportConfig.serving_max_network_pixels

    @classmethod
    def from_config(cls, config):
        """The limits of an `ExportConfig`."""
        return cls(config.serving_short_side, config.serving_max_pixels, config.serving_max_network_pixels)


def fail(message):
    """Raise ``InvalidArgument`` with ``message`` (a scalar tf.string) when run; returns a string scalar.

    Use it as the output of a ``tf.cond`` branch (see the module doc).
    """
    return tf.strings.as_string(tf.strings.to_number(tf.strings.join(["wbc: ", message])))


def _padded(n):
    return -(-n // MULTIPLE) * MULTIPLE


def text(*parts):
    """A scalar tf.string message from Python strings and scalar tensors (numbers written shortest)."""
    def one(part):
        if isinstance(part, (str, bytes)):
            return part
        part = tf.convert_to_tensor(part)
        if part.dtype == tf.string:
            return part
        if part.dtype.is_floating:
            return tf.strings.as_string(part, shortest=True)
        return tf.strings.as_string(part)
    return tf.strings.join([one(p) for p in parts])


def _px(height, width):
    return text(width, "x", height, " px")


def network_problem(height, width, limits, batch=None):
    """'' or why a network input of (height, width) (int64 scalars; ``batch`` images of that size at once,
    None = one) is refused: a side under 8 px, or more than ``limits.max_network_pixels`` after the
    padding to multiples of 8."""
    count = tf.constant(1, tf.int64) if batch is None else tf.cast(batch, tf.int64)
    pixels = count * _padded(height) * _padded(width)
    size = _px(height, width) if batch is None else text(count, " x ", _px(height, width))
    small = tf.minimum(height, width) < MULTIPLE
    large = tf.constant(bool(limits.max_network_pixels)) & (pixels > limits.max_network_pixels)
    small_text = text(size, f": each side must be at least {MULTIPLE} px")
    large_text = text(size, " (", pixels, f" px with the padding to multiples of {MULTIPLE}) is more "
                      f"than the {limits.max_network_pixels} px this model runs at once "
                      "(wbc-export --serving-max-network-pixels)")
    return tf.where(small, small_text, tf.where(large, large_text, ""))


def header_problem(data, limits):
    """'' or why one encoded image (scalar tf.string) is refused, from its header alone."""
    kind, ok, height, width, pixels, animated = image_header(data)
    name = tf.gather(tf.constant(KIND_NAMES), kind)
    rh, rw = short_side_size(height, width, limits.short_side)
    too_many = tf.constant(bool(limits.max_pixels)) & (pixels > limits.max_pixels)
    problem = network_problem(rh, rw, limits)
    problem = tf.where(tf.minimum(height, width) < MULTIPLE,
                       text(_px(height, width), f": each side must be at least {MULTIPLE} px"),
                       problem)
    problem = tf.where(too_many, text(name, " ", _px(height, width), " (", pixels, " px to decode) is more "
                                      f"than the {limits.max_pixels} px this model accepts "
                                      "(wbc-export --serving-max-pixels)"), problem)
    problem = tf.where(animated & tf.equal(kind, WEBP), "an animated WebP: not supported", problem)
    problem = tf.where(ok, problem, text("the ", name, " header cannot be read (truncated or corrupt)"))
    return tf.where(tf.equal(kind, UNKNOWN), "not a JPEG, PNG, GIF, BMP or WebP file", problem)


def first_problem(problems, name):
    """``(any, message)``: whether any of the (N,) ``problems`` is not empty, and the first one as
    ``'<name>[i]: problem'``."""
    bad = tf.not_equal(problems, "")
    first = tf.argmax(tf.concat([tf.cast(bad, tf.int32), [1]], 0), output_type=tf.int32)
    problem = tf.gather(tf.concat([problems, [""]], 0), first)
    return tf.reduce_any(bad), text(name, "[", first, "]: ", problem)


def strength_per_image(strength, n, name="strength"):
    """``(problem, values)``: one float32 strength per image (``values`` (n,)) from an (n,) or (1,)
    input; ``problem`` '' or why not (a wrong count, a value outside 0..1, NaN), naming ``name``."""
    strength = tf.reshape(tf.cast(strength, tf.float32), [-1])
    count = tf.size(strength)
    count_ok = tf.equal(count, n) | tf.equal(count, 1)
    values = tf.cond(count_ok, lambda: tf.broadcast_to(strength, [n]), lambda: tf.zeros([n], tf.float32))
    inside = (strength >= 0) & (strength <= 1)                    # False for NaN
    first = tf.argmax(tf.concat([tf.cast(~inside, tf.int32), [1]], 0), output_type=tf.int32)
    value = tf.gather(tf.concat([strength, [0.0]], 0), first)
    problem = tf.where(tf.reduce_all(inside), "", text(
        name, "[", first, "] = ", value, ": must be from 0 (the photo) to 1 (the cartoon)"))
    problem = tf.where(count_ok, problem, text(
        name, ": ", count, " values for ", n, " images: give one per image, or one for all"))
    return problem, values


def decode_or_empty(data):
    """`decode_like_imread` of one image, or a (0, 0, 3) image if the decoder fails (never raises)."""
    decoded = tf.data.Dataset.from_tensors(data).map(decode_like_imread).ignore_errors()
    empty = tf.data.Dataset.from_tensors(tf.zeros([0, 0, 3], tf.uint8))
    return decoded.concatenate(empty).take(1).get_single_element()


def resize_short_side(image, short_side):
    """(H, W, 3) uint8 → the shorter-side rule with INTER_AREA, exactly like ``wbc-cartoonize``."""
    if not short_side:
        return image
    shape = tf.shape(image, out_type=tf.int64)
    height, width = short_side_size(shape[0], shape[1], short_side)
    return resize_area(image, height, width)
