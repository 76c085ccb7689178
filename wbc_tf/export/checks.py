"""Checks of every artefact against the Keras reference (`wbc_tf.export.reference`).

Criteria (issue #5), all in 0..255 units, on real photos including a non-square one:

* TFLite ``fp32`` and ONNX: max |Δ| ≤ 1 on the float output; ``fp16``: max |Δ| ≤ 2;
  ``dynamic_range`` and ``int8``: PSNR ≥ 30 dB. Builtin ops only (no Flex).
* SavedModel: reloaded in a *fresh process*, both signatures give the reference's uint8 output
  exactly (``serving_default`` through PNG, so losslessly), including a size that is not a
  multiple of 8; ``serving_default`` also gets a JPEG with EXIF Orientation 6 and must return
  the reference's output for that JPEG as ``cv2.imread`` reads it (decoded and rotated); the
  TF1-style session loader that TF Serving uses (``saved_model_cli run``) gives ``cartoonize``'s
  output exactly too; no Assert / PyFunc ops.

Each check returns a `CheckResult`; the exporter prints them as a table.
"""

import dataclasses
import os
import struct
import subprocess
import sys
import tempfile

import cv2
import numpy as np

from wbc_tf.export import metrics
from wbc_tf.export import saved_model as sm
from wbc_tf.export import tflite as tfl

# variant -> (metric, bound); max_abs is an upper bound, psnr a lower bound.
TFLITE_CRITERIA = {
    "fp32": ("max_abs", 1.0),
    "fp16": ("max_abs", 2.0),
    "dynamic_range": ("psnr", 30.0),
    "int8": ("psnr", 30.0),
}
ONNX_CRITERION = ("max_abs", 1.0)


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


class CachedReference:
    """Memoises `KerasReference.float_rgb` per photo (keyed by name and shape)."""

    def __init__(self, reference):
        self.reference = reference
        self._cache = {}

    def float_rgb(self, name, image):
        key = (name, image.shape)
        if key not in self._cache:
            self._cache[key] = self.reference.float_rgb(image)
        return self._cache[key]

    def uint8_rgb(self, name, image):
        return metrics.truncate(self.float_rgb(name, image))


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


def check_float_runner(artefact, size, runner, photos, reference, criterion):
    """Compare a float-output runner (TFLite / ONNX) with the reference on ``photos``.

    Args:
        runner: callable (H, W, 3) uint8 RGB → float32 RGB 0..255.
        photos: ``{name: uint8 RGB}`` with H, W multiples of 8.
        reference: a `CachedReference`.
        criterion: ``(metric, bound)``.
    """
    metric, bound = criterion
    per_image = {name: metrics.compare(runner(image), reference.float_rgb(name, image))
                 for name, image in photos.items()}
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
    result = check_float_runner(name, len(model), tfl.TFLiteRunner(model, num_threads), photos,
                                reference, TFLITE_CRITERIA[variant])
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
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image_rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.reshape(-1)


def _decode_png(buf):
    return cv2.imdecode(np.asarray(buf, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def jpeg_with_orientation(image_rgb, orientation, quality=95):
    """JPEG bytes (uint8 vector) of ``image_rgb`` as stored pixels, with an EXIF APP1 segment whose
    IFD0 holds one entry, Orientation = ``orientation`` (big-endian, as cameras and Pillow write)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image_rgb[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
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
    decoded = np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])
    return f"{name} as JPEG, EXIF orientation {orientation}", jpeg, decoded


def saved_model_photos(photos):
    """The photos plus one crop whose H and W are not multiples of 8 (exercises pad + crop)."""
    out = dict(photos)
    name, image = list(photos.items())[-1]
    h, w = image.shape[:2]
    out[f"{name}[:{h - 3},:{w - 5}]"] = image[: h - 3, : w - 5]
    return out


def run_reloaded(path, images, encoded=(), timeout=900):
    """Run both signatures of the SavedModel at ``path`` in a fresh Python process.

    ``images`` go to ``cartoonize`` one by one and, PNG-encoded, to ``serving_default``; the
    ``encoded`` files (uint8 vectors) are appended to that ``serving_default`` batch as they are.

    Returns:
        ``(uint8_outputs, png_outputs)``: lists of (H, W, 3) uint8 RGB; ``png_outputs`` in the
        order of ``images`` followed by ``encoded``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        arrays = {}
        for i, image in enumerate(images):
            arrays[f"uint8_{i}"] = image
            arrays[f"encoded_{i}"] = _png(image)
        for j, data in enumerate(encoded):
            arrays[f"encoded_{len(images) + j}"] = np.asarray(data, np.uint8)
        np.savez(inputs, **arrays)
        _run([sys.executable, "-m", "wbc_tf.export.reload_check", os.fspath(path), inputs, outputs],
             timeout)
        with np.load(outputs) as out:
            uint8 = [out[f"uint8_{i}"] for i in range(len(images))]
            pngs = [_decode_png(out[f"png_{i}"]) for i in range(len(images) + len(encoded))]
    return uint8, pngs


def run_session_loader(path, image, timeout=900):
    """Run ``cartoonize`` through ``saved_model_cli run``: the TF1 session loader TF Serving uses."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "images.npy")
        np.save(inputs, image[None])
        _run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run",
              "--dir", os.fspath(path), "--tag_set", "serve", "--signature_def", sm.UINT8_SIGNATURE,
              "--inputs", f"{sm.UINT8_INPUT}={inputs}", "--outdir", tmp], timeout)
        return np.load(os.path.join(tmp, f"{sm.UINT8_OUTPUT}.npy"))[0]


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
            per_image[name] = metrics.compare(out, ref)
    passed = all(m["equal"] == 1.0 for m in per_image.values())
    return CheckResult(artefact, size, check, passed, _summary(per_image), per_image, info or {})


def check_saved_model(path, photos, reference, session_loader=True):
    """Check the SavedModel (see module docstring). Returns one `CheckResult` per signature/loader."""
    folder = os.path.basename(os.path.normpath(path))
    size = sm.directory_size(path)
    images = saved_model_photos(photos)
    expected = {name: reference.uint8_rgb(name, image) for name, image in images.items()}
    ops = sm.saved_model_ops(path)
    forbidden = sorted(sm.FORBIDDEN_OPS.intersection(ops))
    info = {"ops": ops, "forbidden_ops": forbidden}

    exif_name, exif_jpeg, exif_decoded = exif_photo(photos)
    exif_expected = dict(expected)
    exif_expected[exif_name] = reference.uint8_rgb(exif_name, exif_decoded)

    uint8, pngs = run_reloaded(path, list(images.values()), encoded=[exif_jpeg])
    names = list(images)
    results = [
        _exact(f"{folder}/ {sm.BYTES_SIGNATURE}", size,
               "= Keras exactly (fresh process, PNG in/out; EXIF-rotated JPEG)",
               dict(zip(names + [exif_name], pngs)), exif_expected, info),
        _exact(f"{folder}/ {sm.UINT8_SIGNATURE}", size,
               "= Keras exactly (fresh process, uint8)", dict(zip(names, uint8)), expected, info),
    ]
    if session_loader:
        name = names[0]
        out = run_session_loader(path, images[name])
        results.append(_exact(f"{folder}/ {sm.UINT8_SIGNATURE}", size,
                              "= Keras exactly (TF Serving session loader)", {name: out}, expected))
    if forbidden:
        for result in results:
            result.passed = False
            result.measured += f"; forbidden ops: {', '.join(forbidden)}"
    return results
