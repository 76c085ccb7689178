"""In-graph pre- and post-processing around the generator: what every exported artefact computes.

The original pipeline (docs/fidelity.md §4) is, per photo::

    BGR uint8 → x/127.5 − 1 → G → guided_filter(photo, G(photo), r=1, eps=5e-3)
              → (y + 1)·127.5 → clip 0..255 → truncating uint8 cast

with the first and last steps in NumPy and the middle ("core") in a TF1 session whose input had
dynamic H and W. The exported graphs take **RGB** and do the channel flip, the normalisation and
the clipping themselves, so clients never see BGR or [-1, 1].

Three entry points, all built on `core`:

* `float_rgb` (TFLite, ONNX): float32 RGB 0..255 in, clipped float32 RGB 0..255 out, *before*
  the truncating cast (an app may round or truncate). H, W must be multiples of 8.
* `uint8_rgb` (SavedModel ``cartoonize``): uint8 RGB in and out, any H, W ≥ 8: reflect-pad to a
  multiple of 8, run, crop back, truncate like ``astype(np.uint8)``.
* `encoded_images` (SavedModel ``serving_default``): a batch of JPEG/PNG/BMP/GIF strings in, PNG
  strings out, each image at its own size, EXIF orientation applied like ``cv2.imread``.

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
from wbc_tf.guided_filter import guided_filter
from wbc_tf.inference import normalize
from wbc_tf.tf_decode import decode_like_imread

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

    def float_rgb(self, images):
        """(N, H, W, 3) float32 RGB 0..255, H, W multiples of 8 → clipped float32 RGB 0..255."""
        photo = normalize_float(rgb_to_bgr(images))
        return rgb_to_bgr(denormalize(self.core(photo)))

    def uint8_rgb(self, images):
        """(N, H, W, 3) uint8 RGB, any H, W ≥ 8 → uint8 RGB of the same size (truncating cast)."""
        padded, size = reflect_pad(images)
        photo = normalize_uint8(rgb_to_bgr(padded))
        cartoon = rgb_to_bgr(denormalize(self.core(photo)))
        # Values are already clipped to 0..255, so the cast truncates exactly like astype(uint8).
        return tf.cast(crop_to(cartoon, size), tf.uint8)

    def encoded_images(self, images_bytes):
        """(N,) tf.string of JPEG/PNG/BMP/GIF → (N,) tf.string of PNG; each image keeps its size.

        Decoding follows ``cv2.imread`` of the original (`wbc_tf.tf_decode.decode_like_imread`). Images are
        processed one at a time because their sizes may differ.
        """
        def one(data):
            image = decode_like_imread(data)                     # (H, W, 3) uint8 RGB
            return tf.io.encode_png(self.uint8_rgb(image[tf.newaxis])[0])

        return tf.map_fn(one, images_bytes, fn_output_signature=tf.TensorSpec([], tf.string))

