"""The export checks: every artefact against `wbc_tf.inference.Cartoonizer` itself, on real photos.

The reference is the Python pipeline, not a copy of it: `reference_cartoonizer` is a `Cartoonizer` at
full resolution (``short_side=0``) in pad mode (sizes that are not multiples of 8 are reflect-padded
and cropped back, as the SavedModel does) with the artefact's guided filter. `Reference` keeps its
outputs per photo: the float output before the truncating cast (`wbc_tf.inference.denormalize_float`)
for the float artefacts, the uint8 output of `Cartoonizer.cartoonize` for the SavedModel.

Criteria (issue #5), all in 0..255 units, on real photos including a non-square one:

* TFLite ``fp32`` and ONNX: max |Δ| ≤ 1 on the float output; ``fp16``: max |Δ| ≤ 2;
  ``dynamic_range`` and ``int8``: PSNR ≥ 30 dB. Builtin ops only (no Flex).
* SavedModel: reloaded in a *fresh process*, every signature gives the reference's uint8 output
  exactly (``serving_default`` through PNG, so losslessly), including a size that is not a
  multiple of 8; ``serving_default`` also gets a JPEG with EXIF Orientation 6 and must return
  the reference's output for that JPEG as ``cv2.imread`` reads it (decoded and rotated), and a
  photo larger than the serving short side, which must come back as the command line's shorter-side
  rule makes it (INTER_AREA, bit for bit); ``serving_strength`` and ``cartoonize_strength`` at
  `CHECK_STRENGTH` give the reference at that strength exactly; the TF1-style session loader that
  TF Serving uses (``saved_model_cli run``) gives ``cartoonize``'s and ``serving_default``'s output
  exactly too; no Assert / PyFunc ops.
* TFLite files with a ``strength`` input: the first photo also at `CHECK_STRENGTH`, same criterion.

Photos: the check photos and the int8 calibration photos ship with scikit-image (nothing is
downloaded) and are disjoint, so quantisation is not judged on its own calibration data. Extra
check images and every encoded image here are read and written with `wbc_tf.image_io`.

Each check returns a `CheckResult`; the exporter prints them as a table (`wbc_tf.export.report`).
"""

import dataclasses
import os
import struct
import subprocess
import sys
import tempfile

import cv2
import numpy as np

from wbc_tf.config import InferenceConfig
from wbc_tf.export import saved_model as sm
from wbc_tf.export import tflite as tfl
from wbc_tf.export.graph import GF_EPS, GF_RADIUS
from wbc_tf.export.serving import ServingLimits
from wbc_tf.image_io import decode_image, encode_image, read_image
from wbc_tf.inference import (Cartoonizer, blend_strength, denormalize, denormalize_float, plan_geometry,
                              resize_crop, resize_to)

# Check photos: one square, one non-square (H, W already multiples of 8).
CHECK_PHOTOS = ("astronaut", "coffee")          # 512x512, 400x600
# Calibration photos for the int8 variant (cats, a rocket launch, a street scene).
CALIBRATION_PHOTOS = ("chelsea", "rocket", "motorcycle")

# variant -> (metric, bound); max_abs is an upper bound, psnr a lower bound.
TFLITE_CRITERIA = {
    "fp32": ("max_abs", 1.0),
    "fp16": ("max_abs", 2.0),
    "dynamic_range": ("psnr", 30.0),
    "int8": ("psnr", 30.0),
}
ONNX_CRITERION = ("max_abs", 1.0)
# The style strength the strength signatures and inputs are checked at (besides 1, the default path).
CHECK_STRENGTH = 0.5


# --- photos ------------------------------------------------------------------------------------

def load_photo(name):
    """A scikit-image photo by name as uint8 RGB (H, W, 3)."""
    from skimage import data
    if name == "motorcycle":
        image = data.stereo_motorcycle()[0]  # left view of the stereo pair
    else:
        image = getattr(data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def load_image_file(path):
    """An image file as uint8 RGB (H, W, 3), read like ``cv2.imread`` (`wbc_tf.image_io.read_image`).

    Raises:
        wbc_tf.image_io.ImageReadError: unreadable, corrupt or smaller than 8 px.
    """
    bgr, _ = read_image(path)
    return np.ascontiguousarray(bgr[..., ::-1])


def crop_to_multiple(image):
    """Top-left crop of (H, W, 3) to multiples of 8, like the original (its ``resize_crop``, no resize)."""
    return resize_crop(image, short_side=0)


def fit_to_size(image, size):
    """Resize (INTER_AREA, keeping the aspect ratio) to cover ``size`` = (H, W), then top-left crop."""
    th, tw = size
    h, w = image.shape[:2]
    scale = max(th / h, tw / w)
    if scale != 1:
        nh, nw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(image, (nw, nh), interpolation=interp)
    return np.ascontiguousarray(image[:th, :tw])


def check_photos(extra_paths=()):
    """``{name: uint8 RGB}`` of the check photos (bundled + ``extra_paths``), cropped to multiples of 8."""
    photos = {name: crop_to_multiple(load_photo(name)) for name in CHECK_PHOTOS}
    for path in extra_paths:
        photos[str(path)] = crop_to_multiple(load_image_file(path))
    return photos


def calibration_images(size=None, crop=256):
    """Float32 RGB 0..255 batches (1, h, w, 3) for the int8 converter's representative dataset.

    Args:
        size: fixed (H, W) of a fixed-shape model; None = a dynamic model, fed whole photos
            (cropped to multiples of 8) and ``crop``-sized tiles of them.
        crop: tile size for dynamic models (more samples without more pixels).
    """
    batches = []
    for name in CALIBRATION_PHOTOS:
        photo = load_photo(name)
        if size is not None:
            tiles = [fit_to_size(photo, size)]
        else:
            whole = crop_to_multiple(photo)
            h, w = whole.shape[:2]
            tiles = [whole, whole[:crop, :crop], whole[h - crop:, w - crop:]]
        batches += [t[None].astype(np.float32) for t in tiles]
    return batches


# --- metrics (0..255 units, (H, W, 3) arrays) --------------------------------------------------

def max_abs_diff(a, b):
    """max |a − b| in 0..255 units."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def psnr(a, b, peak=255.0):
    """PSNR in dB of ``a`` against ``b`` (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def truncate(image):
    """An artefact's 0..255 output as the original writes it: clip, then truncate toward zero."""
    return np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)


def equal_fraction(a, b):
    """Fraction of equal values after the truncating uint8 cast of both (1.0 = identical)."""
    return float(np.mean(truncate(a) == truncate(b)))


def compare(output, reference):
    """``{'max_abs', 'psnr', 'equal'}`` of an output against the reference (both 0..255)."""
    return {"max_abs": max_abs_diff(output, reference), "psnr": psnr(output, reference),
            "equal": equal_fraction(output, reference)}


# --- the reference -----------------------------------------------------------------------------

def reference_cartoonizer(generator, radius=GF_RADIUS, eps=GF_EPS):
    """The `Cartoonizer` the artefacts are checked against: no resize, pad mode, this guided filter."""
    return Cartoonizer(generator, InferenceConfig(short_side=0, fit="pad", gf_radius=radius, gf_eps=eps))


class Reference:
    """`Cartoonizer` outputs per photo, computed once per (name, shape) and shared by every check.

    Args:
        cartoonizer: see `reference_cartoonizer`.

    Example:
        >>> ref = Reference(reference_cartoonizer(generator))
        >>> ref.float_rgb("astronaut", photo)   # (H, W, 3) float32 0..255, before truncation
        >>> ref.uint8_rgb("astronaut", photo)   # (H, W, 3) uint8 = cartoonizer.cartoonize(photo)
    """

    def __init__(self, cartoonizer):
        self.cartoonizer = cartoonizer
        self._outputs = {}

    def _output(self, name, image):
        # (H, W, 3) float32 BGR, unclipped: `Cartoonizer.cartoonize_float` of the photo.
        key = (name, image.shape)
        if key not in self._outputs:
            bgr = np.ascontiguousarray(np.asarray(image)[..., ::-1])
            self._outputs[key] = self.cartoonizer.cartoonize_float(bgr)
        return self._outputs[key]

    def float_rgb(self, name, image, strength=None):
        """(H, W, 3) uint8 RGB, any H, W ≥ 8 → float32 RGB 0..255, clipped, not truncated.

        ``strength`` (None = 1): `wbc_tf.inference.blend_strength` with the photo, before any rounding.
        """
        out = denormalize_float(self._output(name, image))[..., ::-1]
        if strength is not None:
            out = blend_strength(np.ascontiguousarray(out), np.asarray(image, np.float32), strength)
        return np.ascontiguousarray(out)

    def uint8_rgb(self, name, image, strength=None):
        """(H, W, 3) uint8 RGB → uint8 RGB, what `Cartoonizer.cartoonize` returns (at ``strength``)."""
        if strength is None:
            cartoon = denormalize(self._output(name, image), self.cartoonizer.config.rounding)
            return np.ascontiguousarray(cartoon[..., ::-1])
        out = self.float_rgb(name, image, strength)
        if self.cartoonizer.config.rounding == "round":
            np.rint(out, out=out)
        return out.astype(np.uint8)


# --- results -----------------------------------------------------------------------------------

@dataclasses.dataclass
class CheckResult:
    """One row of the export report.

    Attributes:
        artefact: file or folder name (relative to the output folder) and, for a SavedModel, the
            signature.
        size: bytes on disk.
        check: the criterion, in words.
        passed: True / False, or None when the check was skipped.
        measured: worst-case numbers over the photos, formatted.
        per_image: ``{photo: {metric: value}}``.
        info: extra facts (TFLite op counts, GPU-delegate verdict, notes).
    """

    artefact: str
    size: int
    check: str
    passed: object
    measured: str = ""
    per_image: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def status(self):
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


def _describe(metric, bound):
    return f"max|Δ| ≤ {bound:g}" if metric == "max_abs" else f"PSNR ≥ {bound:g} dB"


def _summary(per_image):
    worst_max = max(m["max_abs"] for m in per_image.values())
    worst_psnr = min(m["psnr"] for m in per_image.values())
    worst_equal = min(m["equal"] for m in per_image.values())
    psnr_text = "inf" if np.isinf(worst_psnr) else f"{worst_psnr:.1f}"
    return f"max|Δ| {worst_max:.4g}, PSNR {psnr_text} dB, {100 * worst_equal:.3f}% equal"


def _passes(per_image, metric, bound):
    values = [m[metric] for m in per_image.values()]
    return all(v <= bound for v in values) if metric == "max_abs" else all(v >= bound for v in values)


# --- TFLite and ONNX ---------------------------------------------------------------------------

def check_float_runner(artefact, size, runner, photos, reference, criterion, strength=None):
    """Compare a float-output runner (TFLite / ONNX) with the reference on ``photos``.

    Args:
        runner: callable (H, W, 3) uint8 RGB → float32 RGB 0..255; with ``strength``, also
            ``runner(image, strength)``.
        photos: ``{name: uint8 RGB}`` with H, W multiples of 8.
        reference: a `Reference`.
        criterion: ``(metric, bound)``.
        strength: if given, the first photo is also run at this strength.
    """
    metric, bound = criterion
    per_image = {name: compare(runner(image), reference.float_rgb(name, image))
                 for name, image in photos.items()}
    if strength is not None:
        name, image = next(iter(photos.items()))
        per_image[f"{name} at strength {strength:g}"] = compare(
            runner(image, strength), reference.float_rgb(name, image, strength))
    return CheckResult(artefact, size, _describe(metric, bound) + " vs Keras",
                       _passes(per_image, metric, bound), _summary(per_image), per_image)


def check_tflite(path, variant, photos, reference, num_threads=None):
    """Check one ``.tflite`` file: builtin ops only, accuracy per `TFLITE_CRITERIA`, GPU verdict."""
    with open(path, "rb") as f:
        model = f.read()
    name = os.path.basename(path)
    ops = tfl.op_counts(model)
    flex = tfl.non_builtin_ops(model)
    gpu, gpu_detail = tfl.gpu_compatibility(model)
    runner = tfl.TFLiteRunner(model, num_threads)
    result = check_float_runner(name, len(model), runner, photos, reference, TFLITE_CRITERIA[variant],
                                CHECK_STRENGTH if runner.has_strength else None)
    result.info.update(ops=ops, non_builtin=flex, gpu_compatible=gpu, gpu_detail=gpu_detail)
    if flex:
        result.passed = False
        result.measured += f"; non-builtin ops: {', '.join(flex)}"
    result.check += ", builtin ops only"
    return result


def check_onnx(path, photos, reference, num_threads=None):
    """Check ``wbc.onnx`` with onnxruntime (max |Δ| ≤ 1)."""
    from wbc_tf.export.onnx_export import OnnxRunner
    return check_float_runner(os.path.basename(path), os.path.getsize(path),
                              OnnxRunner(path, num_threads), photos, reference, ONNX_CRITERION)


# --- SavedModel --------------------------------------------------------------------------------

def _png(image_rgb):
    return encode_image(".png", np.ascontiguousarray(image_rgb[..., ::-1])).reshape(-1)


def _decode_rgb(buf):
    bgr, _ = decode_image(np.asarray(buf, np.uint8))
    return np.ascontiguousarray(bgr[..., ::-1])


def jpeg_with_orientation(image_rgb, orientation, quality=95):
    """JPEG bytes (uint8 vector) of ``image_rgb`` as stored pixels, with an EXIF APP1 segment whose
    IFD0 holds one entry, Orientation = ``orientation`` (big-endian, as cameras and Pillow write)."""
    buf = encode_image(".jpg", np.ascontiguousarray(image_rgb[..., ::-1]), jpg_quality=quality)
    # TIFF header (MM, 42, IFD0 at 8), 1 entry: tag 0x0112, SHORT, count 1, value; next IFD 0.
    tiff = b"MM" + struct.pack(">HIH", 42, 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    payload = b"Exif\0\0" + tiff + struct.pack(">I", 0)
    data = buf.tobytes()
    data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]
    return np.frombuffer(data, np.uint8)


def exif_photo(photos, orientation=6):
    """``(name, jpeg, decoded)``: a non-square crop of the first photo as a JPEG with EXIF
    ``orientation``, and that JPEG as ``cv2.imread`` reads it (rotated), in RGB."""
    name, image = next(iter(photos.items()))
    crop = image[: min(72, image.shape[0]), : min(112, image.shape[1])]
    jpeg = jpeg_with_orientation(crop, orientation)
    return f"{name} as JPEG, EXIF orientation {orientation}", jpeg, _decode_rgb(jpeg)


def saved_model_photos(photos):
    """The photos plus one crop whose H and W are not multiples of 8 (exercises pad + crop)."""
    out = dict(photos)
    name, image = list(photos.items())[-1]
    h, w = image.shape[:2]
    out[f"{name}[:{h - 3},:{w - 5}]"] = image[: h - 3, : w - 5]
    return out


def short_side_photo(photos, short_side):
    """``(name, png, resized)``: the last photo scaled up (INTER_CUBIC) to a shorter side of
    ``short_side`` + 40 px, as a PNG, and what the command line's shorter-side rule makes of it
    (INTER_AREA back to ``short_side``), in RGB; None when ``short_side`` is 0 (no rule)."""
    if not short_side:
        return None
    name, image = list(photos.items())[-1]
    h, w = image.shape[:2]
    scale = (short_side + 40) / min(h, w)
    big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    geometry = plan_geometry(*big.shape[:2], InferenceConfig(short_side=short_side, fit="pad"))
    resized = np.ascontiguousarray(resize_to(big, geometry))
    label = f"{name} at {big.shape[1]}x{big.shape[0]} (short side rule: {short_side})"
    return label, _png(big), resized


def run_reloaded(path, images, encoded=(), strength=None, strength_encoded=None, timeout=900):
    """Run the SavedModel's signatures at ``path`` in a fresh Python process.

    ``images`` go to ``cartoonize`` one by one and, PNG-encoded, to ``serving_default``; the
    ``encoded`` files (uint8 vectors) are appended to that ``serving_default`` batch as they are.
    With a ``strength``, the same go to ``cartoonize_strength`` and ``serving_strength`` (of the
    ``encoded`` files only the first ``strength_encoded``, None = all).

    Returns:
        ``{'uint8': [...], 'png': [...]}`` (plus ``'strength_uint8'``, ``'strength_png'``): lists of
        (H, W, 3) uint8 RGB; the PNG lists in the order of ``images`` followed by ``encoded``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        arrays = {}
        for i, image in enumerate(images):
            arrays[f"uint8_{i}"] = image
            arrays[f"encoded_{i}"] = _png(image)
        for j, data in enumerate(encoded):
            arrays[f"encoded_{len(images) + j}"] = np.asarray(data, np.uint8)
        if strength is not None:
            arrays["strength"] = np.asarray([strength], np.float32)
            if strength_encoded is not None:  # the images' PNGs come first in the batch
                arrays["strength_encoded"] = np.asarray(len(images) + strength_encoded)
        np.savez(inputs, **arrays)
        _run([sys.executable, "-m", "wbc_tf.export.reload_check", os.fspath(path), inputs, outputs],
             timeout)
        results = {}
        with np.load(outputs) as out:
            for prefix in ("", "strength_") if strength is not None else ("",):
                results[prefix + "uint8"] = [out[f"{prefix}uint8_{i}"] for i in range(len(images))]
                count = len(encoded) if not prefix or strength_encoded is None else strength_encoded
                results[prefix + "png"] = [_decode_rgb(out[f"{prefix}png_{i}"])
                                           for i in range(len(images) + count)]
    return results


def run_session_loader(path, image, timeout=900):
    """Run ``cartoonize`` through ``saved_model_cli run``: the TF1 session loader TF Serving uses."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "images.npy")
        np.save(inputs, image[None])
        _run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run",
              "--dir", os.fspath(path), "--tag_set", "serve", "--signature_def", sm.UINT8_SIGNATURE,
              "--inputs", f"{sm.UINT8_INPUT}={inputs}", "--outdir", tmp], timeout)
        return np.load(os.path.join(tmp, f"{sm.UINT8_OUTPUT}.npy"))[0]


def run_session_loader_bytes(path, encoded, timeout=900):
    """Run ``serving_default`` on the ``encoded`` files (uint8 vectors) through ``saved_model_cli run``:
    the session loader of TF Serving, with the request checks, tf.data decoding and resize in the graph.

    Returns:
        the outputs as (H, W, 3) uint8 RGB.
    """
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "images_bytes.npy")
        np.save(inputs, np.array([np.asarray(e, np.uint8).tobytes() for e in encoded], dtype=object),
                allow_pickle=True)
        _run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run",
              "--dir", os.fspath(path), "--tag_set", "serve", "--signature_def", sm.BYTES_SIGNATURE,
              "--inputs", f"{sm.BYTES_INPUT}={inputs}", "--outdir", tmp], timeout)
        pngs = np.load(os.path.join(tmp, f"{sm.BYTES_OUTPUT}.npy"), allow_pickle=True)
        return [_decode_rgb(np.frombuffer(png, np.uint8)) for png in pngs]


def _run(command, timeout):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def _exact(artefact, size, check, outputs, expected, info=None):
    per_image = {}
    for name, out in outputs.items():
        ref = expected[name]
        if out.shape != ref.shape:
            per_image[name] = {"max_abs": float("inf"), "psnr": 0.0, "equal": 0.0}
        else:
            per_image[name] = compare(out, ref)
    passed = all(m["equal"] == 1.0 for m in per_image.values())
    return CheckResult(artefact, size, check, passed, _summary(per_image), per_image, info or {})


def check_saved_model(path, photos, reference, session_loader=True, limits=ServingLimits(),
                      strength=CHECK_STRENGTH):
    """Check the SavedModel (see module docstring). Returns one `CheckResult` per signature/loader.

    Args:
        limits: the `wbc_tf.export.serving.ServingLimits` it was exported with (its short side).
        strength: the strength the strength signatures are checked at.
    """
    folder = os.path.basename(os.path.normpath(path))
    size = sm.directory_size(path)
    images = saved_model_photos(photos)
    names = list(images)
    expected = {name: reference.uint8_rgb(name, image) for name, image in images.items()}
    ops = sm.saved_model_ops(path)
    forbidden = sorted(sm.FORBIDDEN_OPS.intersection(ops))
    info = {"ops": ops, "forbidden_ops": forbidden}

    # serving_default's extra inputs: an EXIF-rotated JPEG, and a photo over the short side.
    extra = [exif_photo(photos)]
    resized = short_side_photo(photos, limits.short_side)
    if resized is not None:
        extra.append(resized)
    extra_names = [name for name, _, _ in extra]
    decoded = {name: image for name, _, image in extra}

    # The strength signatures share the resize code: their check skips the large photo (time).
    out = run_reloaded(path, list(images.values()), [data for _, data, _ in extra], strength,
                       strength_encoded=1)
    bytes_names = names + extra_names

    def expect(strength_=None):
        all_images = dict(images, **decoded)
        return {name: reference.uint8_rgb(name, all_images[name], strength_) for name in bytes_names}

    strength_png = dict(zip(bytes_names, out.get("strength_png", [])))

    checked = "= Keras exactly (fresh process, PNG in/out; EXIF-rotated JPEG"
    checked += f"; short-side rule {limits.short_side} px)" if resized is not None else ")"
    results = [
        _exact(f"{folder}/ {sm.BYTES_SIGNATURE}", size, checked,
               dict(zip(bytes_names, out["png"])), expect(), info),
        _exact(f"{folder}/ {sm.UINT8_SIGNATURE}", size,
               "= Keras exactly (fresh process, uint8)", dict(zip(names, out["uint8"])), expected, info),
    ]
    if strength is not None:
        at = f"= Keras at strength {strength:g} exactly (fresh process"
        results += [
            _exact(f"{folder}/ {sm.BYTES_STRENGTH_SIGNATURE}", size, at + ", PNG in/out)",
                   strength_png, expect(strength), info),
            _exact(f"{folder}/ {sm.UINT8_STRENGTH_SIGNATURE}", size, at + ", uint8)",
                   dict(zip(names, out["strength_uint8"])),
                   {name: reference.uint8_rgb(name, image, strength) for name, image in images.items()},
                   info),
        ]
    if session_loader:
        name = names[0]
        loaded = run_session_loader(path, images[name])
        results.append(_exact(f"{folder}/ {sm.UINT8_SIGNATURE}", size,
                              "= Keras exactly (TF Serving session loader)", {name: loaded}, expected))
        exif_name, exif_jpeg, _ = extra[0]
        loaded = run_session_loader_bytes(path, [_png(images[name]), exif_jpeg])
        results.append(_exact(f"{folder}/ {sm.BYTES_SIGNATURE}", size,
                              "= Keras exactly (TF Serving session loader; EXIF-rotated JPEG)",
                              dict(zip([name, exif_name], loaded)), expect()))
    if forbidden:
        for result in results:
            result.passed = False
            result.measured += f"; forbidden ops: {', '.join(forbidden)}"
    return results
