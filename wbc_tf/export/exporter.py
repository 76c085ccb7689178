"""`export_all`: write every artefact of an `ExportConfig` and check each one against the Cartoonizer.

Order: SavedModel, then TFLite (dynamic shape, then fixed size), then ONNX. Each artefact is
checked right after it is written (`wbc_tf.export.verify`), against the same reference outputs
(computed once per photo).
"""

import os

from wbc_tf.export import saved_model as sm
from wbc_tf.export import tflite as tfl
from wbc_tf.export import verify
from wbc_tf.export.onnx_export import export_onnx, onnx_available
from wbc_tf.export.serving import ServingLimits
from wbc_tf.export.verify import CheckResult

SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "wbc.onnx"


def load_generator(weights=None):
    """The generator with ``weights`` (None, '' or ``"bundled"`` = the bundled release)."""
    from wbc_tf.generator import build_generator
    from wbc_tf.weights import load_generator_weights
    generator = build_generator()
    load_generator_weights(generator, weights or None)
    return generator


def _not_checked(name, size, note):
    return CheckResult(name, size, note, None)


def export_all(config, generator=None, log=print):
    """Write and (if ``config.check``) check every artefact; return the list of `CheckResult`.

    Args:
        config: an `ExportConfig`.
        generator: optional generator with weights (default: built from ``config.weights``).
        log: progress callback taking one string.
    """
    out = config.output_dir
    os.makedirs(out, exist_ok=True)
    generator = generator if generator is not None else load_generator(config.weights)
    radius, eps = config.gf_radius, config.gf_eps
    threads = config.threads or None
    reference = None
    if config.check:
        reference = verify.Reference(verify.reference_cartoonizer(generator, radius, eps))
    check_set = verify.check_photos(config.check_images) if config.check else {}
    results = []

    if "saved_model" in config.formats:
        path = os.path.join(out, SAVED_MODEL_DIR)
        log(f"writing {path}")
        limits = ServingLimits.from_config(config)
        sm.export_saved_model(generator, path, radius, eps, limits)
        if config.check:
            log("  checking (fresh process and session loader)")
            results += verify.check_saved_model(path, check_set, reference, limits=limits)
        else:
            results.append(_not_checked(SAVED_MODEL_DIR, sm.directory_size(path), "not checked"))

    if "tflite" in config.formats:
        if config.check and not tfl.litert_available():
            log("not checking the TFLite files: pip install ai-edge-litert (or wbc_tf[litert])")
        for size in [None] + ([config.fixed_hw] if config.fixed_hw else []):
            for variant in config.variants:
                results.append(_tflite(generator, variant, size, config, reference, check_set, threads, log))

    if "onnx" in config.formats:
        path = os.path.join(out, ONNX_FILE)
        if not onnx_available():
            log("skipping ONNX: pip install tf2onnx onnx onnxruntime (or wbc_tf[onnx])")
            results.append(_not_checked(ONNX_FILE, 0, "skipped: tf2onnx/onnxruntime not installed"))
        else:
            log(f"writing {path}")
            export_onnx(generator, path, config.onnx_opset, radius, eps)
            if config.check:
                results.append(verify.check_onnx(path, check_set, reference, threads))
            else:
                results.append(_not_checked(ONNX_FILE, os.path.getsize(path), "not checked"))
    return results


def _tflite(generator, variant, size, config, reference, check_set, threads, log):
    """Convert, write and check one TFLite variant (``size`` None = dynamic shape)."""
    name = tfl.tflite_filename(variant, size)
    path = os.path.join(config.output_dir, name)
    log(f"writing {path}")
    calibration = verify.calibration_images(size) if variant == "int8" else None
    model = tfl.convert(generator, variant, size, calibration, config.gf_radius, config.gf_eps)
    with open(path, "wb") as f:
        f.write(model)
    if not config.check:
        return _not_checked(name, len(model), "not checked")
    if not tfl.litert_available():
        result = _not_checked(name, len(model), "skipped: ai-edge-litert not installed")
        result.info.update(ops=tfl.op_counts(model), non_builtin=tfl.non_builtin_ops(model))
        return result
    images = check_set if size is None else {
        f"{n} fitted to {size[0]}x{size[1]}": verify.fit_to_size(im, size) for n, im in check_set.items()}
    return verify.check_tflite(path, variant, images, reference, threads)
