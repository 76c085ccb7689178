"""Photo → cartoon, faithful to the original ``test_code/cartoonize.py`` by default (docs/fidelity.md §4).

Pipeline (BGR inside, like the original)::

    uint8 BGR ──resize_crop──► uint8 (H8, W8, 3)          shorter side ≤ 720, INTER_AREA, top-left
              ──normalize───► float32 x/127.5 − 1          crop to multiples of 8
              ──generator───► G(x)
              ──guided_filter(x, G(x), r=1, eps=5e-3)──► y
              ──denormalize─► uint8 clip((y + 1)·127.5)    truncating cast: 254.9 → 254

Pre- and post-processing run in NumPy float32 with the original's operation order, so for the same
convolution results the output is bit-identical to the TF1 script. The network runs as ONE
`tf.function` over ``[None, None, None, 3]`` float32 inputs: any image size reuses one trace.

Options beyond the original live on `wbc_tf.config.InferenceConfig`: ``short_side=0`` keeps full
resolution, ``max_size`` caps the longer side, ``fit='pad'`` reflect-pads to a multiple of 8 and
crops back (output size = input size), ``rounding='round'`` rounds instead of truncating,
``strength`` < 1 cross-fades the photo back in (`blend_strength`; 1 = the original's output exactly).
An image whose network would need more than ``memory_budget`` (or any image, with ``tile`` > 0)
runs in overlapping tiles (`wbc_tf.tiling`); pre- and post-processing stay whole-image.
``precision='bfloat16'`` runs the generator in bfloat16, the guided filter in float32.

Example::

    from wbc_tf.inference import Cartoonizer
    cartoonizer = Cartoonizer.from_pretrained()      # bundled release weights
    cartoon_rgb = cartoonizer.cartoonize(photo_rgb)  # uint8 (H, W, 3) RGB in and out
"""

import dataclasses

import cv2
import keras
import numpy as np
import tensorflow as tf

from wbc_tf import tiling
from wbc_tf.config import MULTIPLE, InferenceConfig
from wbc_tf.generator import build_generator
from wbc_tf.guided_filter import guided_filter
from wbc_tf.weights import load_generator_weights


# --------------------------------------------------------------------------------------------
# Geometry: resize, then crop (original) or pad to multiples of 8
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where an (h, w) input goes: resized to ``resized``, fed as ``network``, returned as ``output``.

    ``crop``: network = output = top-left multiples of 8 of ``resized``.
    ``pad``:  network = ``resized`` reflect-padded at the bottom/right to multiples of 8;
              output = ``resized``.
    """

    source: tuple
    resized: tuple
    network: tuple
    output: tuple


def resized_size(h, w, short_side=InferenceConfig.short_side, max_size=InferenceConfig.max_size):
    """(h, w) after the original's shorter-side rule, then the optional long-side cap.

    Original (cartoonize.py L11–18): if min(h, w) > 720, the shorter side becomes 720 and the
    longer one ``int(720 * long / short)`` (truncation). ``max_size`` (not in the original) then
    scales the longer side down to ``max_size``, the other by ``int()`` again.
    """
    if short_side and min(h, w) > short_side:
        if h > w:
            h, w = int(short_side * h / w), short_side
        else:
            h, w = short_side, int(short_side * w / h)
    if max_size and max(h, w) > max_size:
        if h >= w:
            h, w = max_size, max(1, int(max_size * w / h))
        else:
            h, w = max(1, int(max_size * h / w)), max_size
    return h, w


def plan_geometry(h, w, config=InferenceConfig()):
    """The `Geometry` for an (h, w) image under ``config``."""
    rh, rw = resized_size(h, w, config.short_side, config.max_size)
    down = ((rh // MULTIPLE) * MULTIPLE, (rw // MULTIPLE) * MULTIPLE)
    up = (-(-rh // MULTIPLE) * MULTIPLE, -(-rw // MULTIPLE) * MULTIPLE)
    if min(rh, rw) < MULTIPLE:
        raise ValueError(f"image too small: {w}x{h} px (each side must be at least {MULTIPLE} px "
                         f"after resizing, got {rw}x{rh})")
    if config.fit == "crop":
        return Geometry((h, w), (rh, rw), down, down)
    return Geometry((h, w), (rh, rw), up, (rh, rw))


def resize_to(image, geometry):
    """``cv2.resize`` to ``geometry.resized`` with INTER_AREA, called unconditionally like the original.

    At equal size cv2 returns an exact copy. Works for (H, W, C) and (H, W) arrays (e.g. alpha).
    """
    rh, rw = geometry.resized
    return cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)


def fit_to_network(image, geometry):
    """Resize, then top-left crop (``crop``) or bottom/right reflect-pad (``pad``) to ``geometry.network``."""
    image = resize_to(image, geometry)
    nh, nw = geometry.network
    rh, rw = geometry.resized
    if (nh, nw) == (rh, rw):
        return image
    if nh <= rh and nw <= rw:
        return image[:nh, :nw]
    # BORDER_REFLECT_101 == numpy 'reflect': the edge pixel is not repeated.
    return cv2.copyMakeBorder(image, 0, nh - rh, 0, nw - rw, cv2.BORDER_REFLECT_101)


def fit_to_output(image, geometry):
    """Resize and crop an auxiliary plane (e.g. alpha) to ``geometry.output``, like the photo."""
    oh, ow = geometry.output
    return resize_to(image, geometry)[:oh, :ow]


def resize_crop(image, short_side=InferenceConfig.short_side):
    """The original ``resize_crop``: shorter side to ``short_side`` if larger, top-left crop to ×8."""
    h, w = image.shape[:2]
    return fit_to_network(image, plan_geometry(h, w, InferenceConfig(short_side=short_side)))


# --------------------------------------------------------------------------------------------
# Value mapping: uint8 ↔ [-1, 1] float32, NumPy op order of the original
# --------------------------------------------------------------------------------------------

def normalize(image):
    """uint8 → float32 [-1, 1]: ``image.astype(np.float32) / 127.5 - 1`` (float32 divide, then subtract).

    In place on the one float copy (the same float32 operations: a full-resolution photo needs no
    second and third copy).
    """
    x = image.astype(np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1)
    return x


def denormalize_float(y):
    """float32 [-1, 1] → float32 0..255: ``(y + 1) * 127.5`` clipped to [0, 255], before any cast.

    What the float artefacts (TFLite, ONNX) output, and the first half of `denormalize`.
    """
    out = np.asarray(y, dtype=np.float32) + np.float32(1)  # the one new array; the rest in place
    out *= np.float32(127.5)
    return np.clip(out, 0, 255, out=out)


def denormalize(y, rounding=InferenceConfig.rounding):
    """float32 [-1, 1] → uint8: ``(y + 1) * 127.5``, clip to [0, 255], truncating cast (254.9 → 254).

    ``rounding='round'`` rounds half to even (``np.rint``) before the cast instead (not original).
    """
    y = denormalize_float(y)
    if rounding == "round":
        y = np.rint(y)
    return y.astype(np.uint8)


def unit_to_pixels(x):
    """A `normalize`d photo (float32 [-1, 1]) → its uint8 values again, as float32 0..255, exactly.

    ``(x + 1)·127.5`` lies within 4e-6 of the original value (just *below* it for 1..63, so the
    truncating `denormalize` would give v − 1); rounding recovers every value exactly.
    """
    out = np.asarray(x, dtype=np.float32) + np.float32(1)
    out *= np.float32(127.5)
    return np.rint(out, out=out)


def blend_strength(cartoon, photo, strength):
    """Style strength: ``(1 − s)·photo + s·cartoon`` on float32 0..255 arrays, in place on both.

    A cross-fade of what the two look like, after the cartoon's clip and before the output rounding.
    Exact at both ends in float32: s = 1 adds ``0·photo`` to ``1·cartoon`` (= the cartoon bit for
    bit), s = 0 adds ``0·cartoon`` to ``photo``. The SavedModel and TFLite graphs compute the same
    three operations (`wbc_tf.export.graph.blend_strength`).

    Returns:
        ``cartoon``, overwritten with the blend.
    """
    s = np.float32(strength)
    cartoon *= s
    photo *= np.float32(1) - s
    cartoon += photo
    return cartoon


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

class OutOfMemoryError(RuntimeError):
    """The network ran out of memory on one image (TensorFlow's ResourceExhaustedError or MemoryError).

    Raised by `Cartoonizer.run_network` and everything built on it; the message names the network
    input size and the tiling used. Callers that process many files report it and go on.
    """


def bfloat16_generator(generator):
    """A copy of ``generator`` that computes in bfloat16 (Keras ``mixed_bfloat16``: float32 variables).

    Every layer, the last 7×7 conv included: kept in float32 it would take a third of the bfloat16
    time for no gain in accuracy (docs/benchmarks.md). The output is bfloat16; `Cartoonizer` casts
    it to float32 for the guided filter. Built under a briefly set global policy, so that all layers,
    sub-layers included, take it.
    """
    num_blocks = sum(layer.name.startswith("block_") for layer in generator.layers)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        copy = build_generator(generator.get_layer("Conv").filters, num_blocks, name=generator.name)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(generator.get_weights())
    return copy


class Cartoonizer:
    """White-box Cartoonization inference: generator + guided filter with the original's I/O rules.

    Build it with `Cartoonizer.from_pretrained`. `cartoonize` takes and returns **RGB** uint8;
    `cartoonize_bgr` is the BGR path the original runs (they agree exactly: channels are flipped
    in and out). The output size follows `InferenceConfig`: by default the input size after the
    shorter-side-720 rule, cropped to multiples of 8; with ``fit='pad'`` exactly the input size
    after resizing.

    Args:
        generator: a `wbc_tf.generator.build_generator` model with weights loaded.
        config: an `InferenceConfig`.
    """

    def __init__(self, generator, config=InferenceConfig()):
        self.generator = generator
        self.config = config
        # The model the network runs: ``generator`` itself, or its bfloat16 copy.
        self._network_generator = (generator if config.precision == "float32"
                                   else bfloat16_generator(generator))
        # One trace for every image size: H and W are dynamic, only the channel count is static
        # (the guided filter's depthwise kernel needs it).
        self._forward = tf.function(
            self._forward_graph,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

    @classmethod
    def from_pretrained(cls, weights=None, config=InferenceConfig()):
        """Build the generator and load weights.

        Args:
            weights: None or ``"bundled"`` for the bundled release (``model-33999``), or a TF1 checkpoint
                directory/prefix, an ``.npz`` or a ``.weights.h5`` (see `wbc_tf.weights`).
            config: an `InferenceConfig` (defaults = the original script).

        Raises:
            wbc_tf.weights.WeightConversionError: weights missing or not matching the model.
        """
        generator = build_generator()
        load_generator_weights(generator, weights)
        return cls(generator, config)

    # ---- network -----------------------------------------------------------------------------

    def _forward_graph(self, x):
        # x: (B, H, W, 3) BGR in [-1, 1], H and W multiples of 4 → (B, H, W, 3), unclipped.
        y = self._network_generator(x, training=False)
        if y.dtype != x.dtype:  # a 16-bit generator: the guided filter runs in float32 (16 bits break it)
            y = tf.cast(y, x.dtype)
        return guided_filter(x, y, self.config.gf_radius, self.config.gf_eps)

    @property
    def forward(self):
        """The traced network: ``forward(x) -> guided_filter(x, G(x), r, eps)`` as a `tf.Tensor`.

        ``x`` is (B, H, W, 3) float32 BGR in [-1, 1] with H, W multiples of 4.
        """
        return self._forward

    def preprocess(self, bgr):
        """uint8 (H, W, 3) BGR → ``(x, geometry)``: x is (1, Hn, Wn, 3) float32 in [-1, 1].

        The CPU-side half of the pipeline (resize, crop/pad, normalise), separate so that
        callers can run it ahead of the network, e.g. in a reader thread.
        """
        bgr = np.ascontiguousarray(_check_uint8(bgr, 3))
        geometry = plan_geometry(*bgr.shape[:2], self.config)
        return normalize(fit_to_network(bgr, geometry))[None], geometry

    def run_network(self, x):
        """``forward(x)`` as a NumPy float32 array of the same shape (B, Hn, Wn, 3).

        In overlapping tiles when `tile_plan` says so (the output then equals the untiled one away
        from the seams: `wbc_tf.tiling`).

        Raises:
            OutOfMemoryError: TensorFlow or NumPy ran out of memory.
        """
        plan = self.tile_plan(*x.shape[:3])
        try:
            if plan is None:
                return self._run_whole(x)
            return tiling.run_tiled(self._run_whole, x, plan)
        except (tf.errors.ResourceExhaustedError, MemoryError) as error:
            tiles = "untiled" if plan is None else (
                f"in {len(plan)} tiles of at most {plan.rows[0].stop}x{plan.cols[0].stop} px")
            why = f": {error}" if isinstance(error, MemoryError) and str(error) else ""
            raise OutOfMemoryError(
                f"out of memory running the network on {x.shape[2]}x{x.shape[1]} px ({tiles}){why}; "
                f"lower --memory-budget (now {self.config.memory_budget}) or --tile, or --short-side / "
                f"--max-size") from error

    def _run_whole(self, x):
        # Refused up front: past the memory left, the kernel's OOM killer or a segfault would end the process.
        tiling.check_memory(tiling.estimate_network_bytes(x.shape[1], x.shape[2], x.shape[0]))
        return self._forward(tf.constant(x)).numpy()

    def tile_plan(self, batch, height, width):
        """The `wbc_tf.tiling.TilePlan` for a (batch, height, width, 3) network input, or None (untiled)."""
        return tiling.plan_tiles(height, width, self.config, batch)

    @staticmethod
    def crop_output(y, geometry):
        """Crop a network-size (Hn, Wn, C) result to ``geometry.output`` (no-op in crop mode)."""
        oh, ow = geometry.output
        return y[:oh, :ow]

    def postprocess(self, y, geometry, x=None):
        """Network-size float (Hn, Wn, 3) → uint8 output: crop back to size, then `denormalize`.

        With ``config.strength`` < 1, `blend_strength` with the photo before the rounding: ``x`` is then
        needed, the network input `preprocess` returned ((1, Hn, Wn, 3) or (Hn, Wn, 3)).
        """
        y = self.crop_output(y, geometry)
        if self.config.strength == 1:  # the original's output, untouched
            return denormalize(y, self.config.rounding)
        if x is None:
            raise ValueError("postprocess needs the network input x when strength < 1 (it blends in the "
                             "photo)")
        photo = unit_to_pixels(self.crop_output(np.reshape(x, np.shape(x)[-3:]), geometry))
        out = blend_strength(denormalize_float(y), photo, self.config.strength)
        if self.config.rounding == "round":
            np.rint(out, out=out)
        return out.astype(np.uint8)

    def cartoonize_float(self, bgr):
        """Run the pipeline up to the float output (no post-processing), for tests and research.

        Args:
            bgr: (H, W, 3) uint8 BGR.

        Returns:
            (H', W', 3) float32 BGR, roughly [-1, 1] but unclipped, at ``plan_geometry``'s
            ``output`` size.
        """
        x, geometry = self.preprocess(bgr)
        return self.crop_output(self.run_network(x)[0], geometry)

    # ---- public uint8 API --------------------------------------------------------------------

    def cartoonize_bgr(self, bgr):
        """Cartoonize a uint8 (H, W, 3) **BGR** image (the original's colour order); returns BGR uint8."""
        x, geometry = self.preprocess(bgr)
        y = self.run_network(x)[0]
        photo = x if self.config.strength != 1 else None  # only a strength blend needs the photo again
        del x  # a float copy of the photo: free it before post-processing allocates
        return self.postprocess(y, geometry, photo)

    def cartoonize(self, rgb):
        """Cartoonize a uint8 **RGB** image; returns uint8 RGB.

        Args:
            rgb: (H, W, 3) RGB, (H, W, 4) RGBA (alpha is resized/cropped like the picture and
                reattached) or (H, W) / (H, W, 1) grey (expanded to 3 channels, like cv2).

        Returns:
            (H', W', 3) or (H', W', 4) uint8; see the class docstring for the size.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 1):
            rgb = np.repeat(rgb.reshape(rgb.shape[:2] + (1,)), 3, axis=2)
        alpha = None
        if rgb.ndim == 3 and rgb.shape[2] == 4:
            rgb, alpha = rgb[..., :3], rgb[..., 3]
        out = self.cartoonize_bgr(np.ascontiguousarray(_check_uint8(rgb, 3)[..., ::-1]))[..., ::-1]
        if alpha is not None:
            return np.dstack([out, self.fit_alpha(alpha)])
        return np.ascontiguousarray(out)

    def fit_alpha(self, alpha):
        """Resize/crop an (H, W) alpha plane exactly as the picture was, to match the output."""
        alpha = np.ascontiguousarray(alpha)
        return fit_to_output(alpha, plan_geometry(*alpha.shape[:2], self.config))

    def output_size(self, h, w):
        """(height, width) of the output for an (h, w) input under this config."""
        return plan_geometry(h, w, self.config).output


def _check_uint8(image, channels):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != channels:
        raise ValueError(f"expected an (H, W, {channels}) image, got shape {image.shape}")
    return image
