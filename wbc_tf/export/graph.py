"""In-graph pre- and post-processing around the generator: what every exported artefact computes.

The original pipeline (docs/fidelity.md §4) is, per photo::

    BGR uint8 → x/127.5 − 1 → G → guided_filter(photo, G(photo), r=1, eps=5e-3)
              → (y + 1)·127.5 → clip 0..255 → truncating uint8 cast

with the first and last steps in NumPy and the middle ("core") in a TF1 session whose input had
dynamic H and W. The exported graphs take **RGB** and do the channel flip, the normalisation and
the clipping themselves, so clients never see BGR or [-1, 1].

The entry points, all built on `core`:

* `float_rgb` (TFLite, ONNX): float32 RGB 0..255 in, clipped float32 RGB 0..255 out, *before*
  the truncating cast (an app may round or truncate). H, W must be multiples of 8.
* `uint8_rgb`: uint8 RGB in and out, any H, W ≥ 8: reflect-pad to a multiple of 8, run, crop
  back, truncate like ``astype(np.uint8)``.
* `encoded_images` (SavedModel ``serving_default``): a batch of JPEG/PNG/BMP/GIF/WebP strings in, PNG
  strings out, EXIF orientation applied like ``cv2.imread``, the shorter-side rule of the command
  line applied exactly (`wbc_tf.tf_resize`), every image checked before it is decoded
  (`wbc_tf.export.serving`: pixel limits, clean errors naming the image).
* `checked_uint8_rgb` (SavedModel ``cartoonize``): `uint8_rgb` behind the same network-size checks.

Style strength (an optional second input of each): `blend_strength`, the cross-fade of
`wbc_tf.inference.blend_strength` with the same three float32 operations, on the clipped 0..255
output and the input photo, before the truncating cast. Without a strength the graphs have no blend
ops at all, so their output is the same as without the feature, bit for bit.

Bit-exactness with the NumPy-framed original (used by the SavedModel checks) needs two things:

* the uint8 → [-1, 1] normalisation is a 256-entry table computed in NumPy, because Grappler
  rewrites ``x / 127.5`` into ``x * (1/127.5)``, which differs in the last bit;
* the core runs as a non-inlined function (``_noinline``), so Grappler's constant push-down
  cannot fold the post-processing ``+ 1`` into the guided filter's last addition. The core is
  then optimised exactly like the session graph of the original (dynamic H, W, NumPy around it).
"""

import numpy as np
import tensorflow as tf

from wbc_tf.config import MULTIPLE, ExportConfig
from wbc_tf.export import serving
from wbc_tf.guided_filter import guided_filter
from wbc_tf.inference import normalize

# The export's guided filter (by default the inference one: r=1, eps=5e-3).
GF_RADIUS = ExportConfig.gf_radius
GF_EPS = ExportConfig.gf_eps

# uint8 value v -> float32(v / 127.5 - 1), by the same NumPy code the Python pipeline runs.
_UINT8_TO_UNIT = normalize(np.arange(256, dtype=np.uint8))


def rgb_to_bgr(x):
    """Reverse the channel axis of (…, 3): RGB ↔ BGR (the network was trained on BGR)."""
    return tf.reverse(x, axis=[-1])


def normalize_uint8(images):
    """uint8 (…, 3) → float32 in [-1, 1], bit-identical to NumPy's ``x.astype(float32)/127.5 - 1``."""
    return tf.gather(tf.constant(_UINT8_TO_UNIT), tf.cast(images, tf.int32))


def normalize_float(images):
    """float32 0..255 (…, 3) → [-1, 1] (for float-input artefacts; exact up to the last bit)."""
    return images / 127.5 - 1.0


def denormalize(y):
    """[-1, 1] network output → float32 0..255, clipped, *not* truncated: ``clip((y+1)·127.5)``."""
    return tf.clip_by_value((y + 1.0) * 127.5, 0.0, 255.0)


def blend_strength(cartoon, photo, strength):
    """``(1 − s)·photo + s·cartoon`` (float32 0..255; ``strength`` broadcasts, e.g. (N, 1, 1, 1)).

    The same operations as `wbc_tf.inference.blend_strength`: exact at s = 1 (the cartoon) and s = 0.
    """
    strength = tf.cast(strength, tf.float32)
    return (1.0 - strength) * photo + strength * cartoon


def _per_image(strength, rank=4):
    """(N,) or (1,) strengths → shape (N or 1, 1, 1, 1) for an (N, H, W, C) batch."""
    return tf.reshape(tf.cast(strength, tf.float32), [-1] + [1] * (rank - 1))


def reflect_pad(images, multiple=MULTIPLE):
    """Reflect-pad (N, H, W, C) at the bottom and right so H and W become multiples of ``multiple``.

    Needs H, W ≥ ``multiple`` (reflection of up to multiple−1 rows excludes the edge row).
    Returns the padded tensor (N, H', W', C) and the original (H, W) for `crop_to`.
    """
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    return padded, (h, w)


def crop_to(images, size):
    """Keep the top-left ``size`` = (H, W) of (N, H', W', C): undoes `reflect_pad`."""
    h, w = size
    return images[:, :h, :w, :]


class CartoonGraph:
    """The exported computations for one generator (a `build_generator` model with weights).

    Args:
        generator: Keras generator, BGR [-1, 1] in and out.
        radius, eps: guided filter of the inference output (original: 1 and 5e-3).
        barrier: run `core` as a non-inlined function (bit-exact SavedModel, see module doc).
            TFLite and ONNX inline everything anyway; pass False for them.
    """

    def __init__(self, generator, radius=GF_RADIUS, eps=GF_EPS, barrier=True):
        self.generator = generator
        self.radius = radius
        self.eps = eps
        attributes = {"_noinline": True} if barrier else None
        self._core = tf.function(
            self._core_impl,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="photo")],
            experimental_attributes=attributes)

    def _core_impl(self, photo):
        # photo: (N, H, W, 3) BGR in [-1, 1], H and W multiples of 4.
        return guided_filter(photo, self.generator(photo), self.radius, self.eps)

    def core(self, photo):
        """G then guided filter: (N, H, W, 3) BGR [-1, 1] → (N, H, W, 3) BGR, unbounded."""
        return self._core(photo)

    def float_rgb(self, images, strength=None):
        """(N, H, W, 3) float32 RGB 0..255, H, W multiples of 8 → clipped float32 RGB 0..255.

        ``strength`` (optional, (1,) or (N,) float32): `blend_strength` with ``images``.
        """
        photo = normalize_float(rgb_to_bgr(images))
        cartoon = rgb_to_bgr(denormalize(self.core(photo)))
        if strength is None:
            return cartoon
        return blend_strength(cartoon, images, _per_image(strength))

    def uint8_rgb(self, images, strength=None):
        """(N, H, W, 3) uint8 RGB, any H, W ≥ 8 → uint8 RGB of the same size (truncating cast).

        ``strength`` (optional, (1,) or (N,) float32 in 0..1): `blend_strength` with the photo.
        """
        padded, size = reflect_pad(images)
        photo = normalize_uint8(rgb_to_bgr(padded))
        cartoon = rgb_to_bgr(denormalize(self.core(photo)))
        if strength is not None:
            cartoon = blend_strength(cartoon, tf.cast(padded, tf.float32), _per_image(strength))
        # Values are already clipped to 0..255, so the cast truncates exactly like astype(uint8).
        return tf.cast(crop_to(cartoon, size), tf.uint8)

    def checked_uint8_rgb(self, images, strength=None, limits=serving.ServingLimits(),
                          name="images"):
        """`uint8_rgb` after checking the request: each side ≥ 8 px, at most ``limits.max_network_pixels``
        for the whole batch, a valid ``strength``; otherwise an InvalidArgument error naming ``name``."""
        shape = tf.shape(images, out_type=tf.int64)
        problem = serving.network_problem(shape[1], shape[2], limits, batch=shape[0])
        problem = tf.where(tf.equal(problem, ""), "", tf.strings.join([name, ": ", problem]))
        if strength is not None:
            strength_problem, strength = serving.strength_per_image(strength, tf.cast(shape[0], tf.int32))
            problem = tf.where(tf.equal(problem, ""), strength_problem, problem)

        def refuse():
            return tf.fill([1, 1, 1, 3], tf.cast(tf.strings.to_number(serving.fail(problem)), tf.uint8))

        return tf.cond(tf.equal(problem, ""), lambda: self.uint8_rgb(images, strength), refuse)

    def encoded_images(self, images_bytes, strength=None, limits=serving.ServingLimits(),
                       name="images_bytes"):
        """(N,) tf.string of JPEG/PNG/BMP/GIF/WebP → (N,) tf.string of PNG.

        Every image is checked from its header first (`wbc_tf.export.serving`); the first bad one (or a
        bad ``strength``) fails the request with an InvalidArgument error naming it, before anything
        is decoded. Then one image at a time (their sizes differ; one at a time bounds the memory):
        decode like ``cv2.imread`` (`wbc_tf.tf_decode.decode_like_imread`), the shorter-side rule
        (``limits.short_side``, INTER_AREA like the command line), `uint8_rgb`, PNG.

        Args:
            images_bytes: (N,) tf.string.
            strength: optional (N,) or (1,) float32 in 0..1.
            limits: a `wbc_tf.export.serving.ServingLimits`.
            name: the input's name in error messages.
        """
        n = tf.size(images_bytes)
        problems = tf.map_fn(lambda data: serving.header_problem(data, limits), images_bytes,
                             fn_output_signature=tf.TensorSpec([], tf.string))
        bad, message = serving.first_problem(problems, name)
        values = tf.ones([n], tf.float32)
        if strength is not None:
            strength_problem, values = serving.strength_per_image(strength, n)
            message = tf.where(tf.equal(strength_problem, ""), message, strength_problem)
            bad |= tf.not_equal(strength_problem, "")

        def one(args):
            index, data, s = args
            image = serving.decode_or_empty(data)                 # (H, W, 3) uint8 RGB, or (0, 0, 3)

            def run():
                resized = serving.resize_short_side(image, limits.short_side)
                shape = tf.shape(resized, out_type=tf.int64)
                problem = serving.network_problem(shape[0], shape[1], limits)  # a header that lied

                def network():
                    cartoon = self.uint8_rgb(resized[tf.newaxis], None if strength is None else s[tf.newaxis])
                    return tf.io.encode_png(cartoon[0])

                return tf.cond(tf.equal(problem, ""), network,
                               lambda: serving.fail(serving.text(name, "[", index, "]: ", problem)))

            undecodable = serving.text(name, "[", index,
                                       "]: the image data cannot be decoded (truncated or corrupt)")
            return tf.cond(tf.equal(tf.size(image), 0), lambda: serving.fail(undecodable), run)

        def process():
            return tf.map_fn(one, (tf.range(n), images_bytes, values), parallel_iterations=1,
                             fn_output_signature=tf.TensorSpec([], tf.string))

        return tf.cond(bad, lambda: tf.fill([n], serving.fail(message)), process)
