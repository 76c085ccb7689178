"""TFLite / LiteRT conversion with builtin ops only, op listing and GPU-delegate analysis.

Every model maps ``image`` float32 (1, H, W, 3) **RGB 0..255** (an Android Bitmap's values, as
floats) and ``strength`` float32 (1,) (style strength 0..1: 1 = the cartoon, 0 = the photo) to
``cartoon`` float32 (1, H, W, 3) RGB 0..255, clipped but *not* truncated: the channel flip,
``/127.5 − 1``, ``(y + 1)·127.5`` and the strength blend ``(1 − s)·image + s·cartoon``
(`wbc_tf.export.graph.blend_strength`: SUB, MUL, ADD, builtin ops) are inside the graph. H and W
must be multiples of 8.
Dynamic models have the signature (1, -1, -1, 3) (call ``resizeInput`` first); fixed-size ones a
static shape (for ML Model Binding and the GPU delegate; their guided filter needs no
SHAPE/FILL/PACK ops because the window counts are folded to constants).

Variants (`wbc_tf.config.TFLiteVariant`):

* ``fp32``: plain float.
* ``fp16``: float16 weights, dequantised at load (float16 compute on GPU).
* ``dynamic_range``: int8 weights, activations quantised on the fly in the convolutions.
* ``int8``: int8 generator calibrated on real photos (float in/out as in the 2020 release); the
  guided filter and the pre/post-processing stay float32. A per-tensor int8 guided filter
  destroys it (``var + eps`` is ~5e-3 in flat regions, below one quantisation step): 15 dB PSNR
  instead of 41 dB. The quantiser is told to skip those ops (`QuantizationDebugger` denylist).

Conversion is restricted to ``TFLITE_BUILTINS``: an op that would need Flex (SELECT_TF_OPS) makes
the converter fail, and `assert_builtin_only` re-checks the written flatbuffer.
"""

import contextlib
import io
import os
import warnings

import numpy as np
import tensorflow as tf

from wbc_tf.config import TFLiteVariant, choices
from wbc_tf.export.graph import GF_EPS, GF_RADIUS, CartoonGraph

INPUT_NAME, STRENGTH_NAME, OUTPUT_NAME = "image", "strength", "cartoon"


class NonBuiltinOpError(RuntimeError):
    """A model needs ops outside the TFLite builtins (Flex / SELECT_TF_OPS or custom ops)."""


def tflite_filename(variant, size=None):
    """``wbc_<variant>.tflite`` or, for a fixed (H, W), ``wbc_<variant>_<H>x<W>.tflite``."""
    suffix = f"_{size[0]}x{size[1]}" if size else ""
    return f"wbc_{variant}{suffix}.tflite"


def float_function(generator, size=None, radius=GF_RADIUS, eps=GF_EPS):
    """The float model as a concrete function plus the `tf.Module` that owns its variables.

    ``image`` (1, H, W, 3) float RGB 0..255, ``strength`` (1,) float → ``{'cartoon': same shape as image}``.

    Args:
        size: (H, W) for a static shape; None for dynamic H, W.

    Returns:
        ``(concrete_fn, module)``; pass both to `builtin_converter`.
    """
    graph = CartoonGraph(generator, radius, eps, barrier=False)
    h, w = size if size else (None, None)

    @tf.function(input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32, name=INPUT_NAME),
                                  tf.TensorSpec([1], tf.float32, name=STRENGTH_NAME)])
    def cartoonize(image, strength):
        return {OUTPUT_NAME: graph.float_rgb(image, strength)}

    concrete_fn = cartoonize.get_concrete_function()
    # The converter must see the raw tf.Variables: given the Keras model as the trackable object,
    # TF 2.21 keeps the weights as VAR_HANDLE/READ_VARIABLE ops and writes a 33 kB file with no
    # weights; given nothing, it takes a deprecated path that drops the signature.
    module = tf.Module()
    module.cartoonize = cartoonize
    module.weights = list(concrete_fn.variables)
    return concrete_fn, module


def builtin_converter(concrete_fn, module=None):
    """A `tf.lite.TFLiteConverter` for ``concrete_fn`` restricted to the TFLite builtins (no Flex, no custom
    ops); ``module`` is the trackable object that owns the function's variables."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_fn], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    return converter


def run_converter(converter):
    """``converter.convert()``; raises `NonBuiltinOpError` when an op would need Flex."""
    try:
        return converter.convert()
    except Exception as e:  # ConverterError; its message lists the ops that are not builtins
        text = str(e)
        if "Select" in text or "not supported" in text or "Flex" in text:
            raise NonBuiltinOpError(
                "conversion with TFLITE_BUILTINS only failed; these ops would need Flex "
                f"(SELECT_TF_OPS):\n{text}") from e
        raise


def _int8(concrete_fn, module, calibration, generator_name):
    """Calibrated int8 generator, float guided filter and pre/post-processing."""
    float_model = run_converter(builtin_converter(concrete_fn, module))
    keep_float = [name for name in output_tensor_names(float_model) if generator_name not in name]

    def representative():
        for batch in calibration:
            yield [batch, np.ones([1], np.float32)]       # the generator sees the photos; strength 1

    converter = builtin_converter(concrete_fn, module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep_float)
    with warnings.catch_warnings():
        # The debugger builds its own tf.lite.Interpreter internally (deprecation warning).
        warnings.simplefilter("ignore")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative, debug_options=options)
        return debugger.get_nondebug_quantized_model()


def convert(generator, variant="fp32", size=None, calibration=None, radius=GF_RADIUS, eps=GF_EPS):
    """Convert generator + guided filter + pre/post-processing to a TFLite flatbuffer.

    Args:
        generator: a `build_generator` model with weights.
        variant: one of `wbc_tf.config.TFLiteVariant`.
        size: (H, W) for a fixed-shape model, None for dynamic.
        calibration: list of float32 (1, h, w, 3) RGB 0..255 arrays (``int8`` only; with ``size``
            they must have that size). Calibrated at strength 1.

    Returns:
        The model as bytes, checked to contain builtin ops only.

    Raises:
        NonBuiltinOpError: an op would need Flex or a custom kernel.
    """
    if variant not in choices(TFLiteVariant):
        raise ValueError(f"unknown variant {variant!r}; choose from {choices(TFLiteVariant)}")
    concrete_fn, module = float_function(generator, size, radius, eps)
    if variant == "int8":
        if not calibration:
            raise ValueError("the int8 variant needs calibration images")
        model = _int8(concrete_fn, module, calibration, generator.name)
    else:
        converter = builtin_converter(concrete_fn, module)
        if variant in ("fp16", "dynamic_range"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        model = run_converter(converter)
    assert_builtin_only(model)
    return model


# --- inspecting a flatbuffer -------------------------------------------------------------------

def litert_available():
    """True when the LiteRT interpreter (``ai-edge-litert``, needed to run the checks) can be imported."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def _schema():
    # LiteRT's copy of the flatbuffer schema, else TensorFlow's own (the same generated module), so
    # conversion and op listing work without the optional LiteRT package.
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def op_counts(model):
    """``{op name: count}`` over all subgraphs of a TFLite model (bytes). Custom ops by their name."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    root = schema.Model.GetRootAs(model, 0)
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            codes.append("CUSTOM:" + (custom.decode() if custom else "?"))
        else:
            codes.append(names.get(builtin, f"BUILTIN_{builtin}"))
    counts = {}
    for s in range(root.SubgraphsLength()):
        subgraph = root.Subgraphs(s)
        for j in range(subgraph.OperatorsLength()):
            name = codes[subgraph.Operators(j).OpcodeIndex()]
            counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def non_builtin_ops(model):
    """Names of the custom ops in a model (Flex ops are custom ops named ``Flex<TfOp>``)."""
    return sorted(name[len("CUSTOM:"):] for name in op_counts(model) if name.startswith("CUSTOM:"))


def assert_builtin_only(model):
    """Raise `NonBuiltinOpError` if the model has any Flex or other custom op."""
    bad = non_builtin_ops(model)
    if bad:
        flex = [b for b in bad if b.startswith("Flex")]
        kind = "Flex (SELECT_TF_OPS)" if flex else "custom"
        raise NonBuiltinOpError(f"TFLite model contains {kind} ops: {', '.join(bad)}")


def output_tensor_names(model):
    """Names of the tensors produced by the model's operators (subgraph 0), in execution order."""
    schema = _schema()
    subgraph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    names = []
    for j in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(j)
        for k in range(op.OutputsLength()):
            names.append(subgraph.Tensors(op.Outputs(k)).Name().decode())
    return names


def gpu_compatibility(model):
    """Ask `tf.lite.experimental.Analyzer` whether the GPU delegate can take every op.

    Returns:
        ``(compatible, detail)``: True / False, or None when the analyzer is unavailable or its
        report has no verdict; ``detail`` is the verdict line or the first warnings.
    """
    analyzer = getattr(getattr(tf.lite, "experimental", None), "Analyzer", None)
    if analyzer is None:
        return None, "tf.lite.experimental.Analyzer not available"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # the analyzer prints its report
        analyzer.analyze(model_content=model, gpu_compatibility=True)
    lines = buffer.getvalue().splitlines()
    warnings_ = [line.strip() for line in lines if "GPU COMPATIBILITY WARNING" in line]
    if warnings_:
        return False, "; ".join(warnings_[:3])
    verdict = [line.strip() for line in lines if "compatible with GPU delegate" in line]
    if verdict:
        return True, verdict[0]
    return None, "no GPU verdict in the analyzer report"


# --- running -----------------------------------------------------------------------------------

def interpreter(model, num_threads=None):
    """A LiteRT `Interpreter` for a model given as bytes or a path (``num_threads`` None = cores)."""
    from ai_edge_litert.interpreter import Interpreter
    threads = num_threads or os.cpu_count() or 1
    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model), num_threads=threads)
    return Interpreter(model_path=os.fspath(model), num_threads=threads)


class TFLiteRunner:
    """Run a WBC TFLite model on RGB images of any size its input shape allows.

    Example:
        >>> run = TFLiteRunner("wbc_fp32.tflite")
        >>> cartoon = run(photo)       # (H, W, 3) uint8 or float RGB → float32 RGB 0..255
        >>> softer = run(photo, 0.5)   # style strength 0.5 (models with a strength input)
    """

    def __init__(self, model, num_threads=None):
        self.interpreter = interpreter(model, num_threads)
        inputs = self.interpreter.get_input_details()
        self._input = next(d for d in inputs if len(d["shape"]) == 4)
        # Files written before the strength input existed have only the image input.
        self._strength = next((d for d in inputs if len(d["shape"]) == 1), None)
        self._output = self.interpreter.get_output_details()[0]
        self.dynamic = bool(np.any(self._input["shape_signature"][1:3] < 0))
        self._shape = None
        if not self.dynamic:
            self.interpreter.allocate_tensors()
            self._shape = tuple(self._input["shape"])

    @property
    def has_strength(self):
        """True when the model takes a ``strength`` input."""
        return self._strength is not None

    def __call__(self, image, strength=1.0):
        image = np.asarray(image, dtype=np.float32)[None]          # (1, H, W, 3)
        if self._shape != image.shape:
            if not self.dynamic:
                raise ValueError(f"this model takes {self._shape[1:3]} images, got {image.shape[1:3]}")
            self.interpreter.resize_tensor_input(self._input["index"], list(image.shape))
            self.interpreter.allocate_tensors()
            self._shape = image.shape
        self.interpreter.set_tensor(self._input["index"], image)
        if self._strength is not None:
            self.interpreter.set_tensor(self._strength["index"], np.asarray([strength], np.float32))
        elif strength != 1:
            raise ValueError("this model has no strength input")
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"])[0]
