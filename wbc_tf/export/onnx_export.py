"""ONNX export through tf2onnx (optional extra: ``pip install wbc_tf[onnx]``) and an onnxruntime runner.

Same contract as the TFLite models, with a free batch size: ``image`` float32 (N, H, W, 3) RGB
0..255 → ``cartoon`` float32 (N, H, W, 3) RGB 0..255, clipped, not truncated; H, W multiples of 8.
The dynamic dimensions are named ``batch``, ``height`` and ``width`` in the graph.
"""

import os

import numpy as np
import tensorflow as tf

from wbc_tf.config import ExportConfig
from wbc_tf.export.graph import GF_EPS, GF_RADIUS, CartoonGraph

INPUT_NAME, OUTPUT_NAME = "image", "cartoon"
_DIM_NAMES = ("batch", "height", "width")


def onnx_available():
    """True when tf2onnx, onnx and onnxruntime can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(generator, path, opset=ExportConfig.onnx_opset, radius=GF_RADIUS, eps=GF_EPS):
    """Convert generator + guided filter + pre/post-processing to ONNX at ``path``.

    Raises:
        ImportError: tf2onnx / onnx are not installed (``pip install wbc_tf[onnx]``).
    """
    import onnx
    import tf2onnx

    graph = CartoonGraph(generator, radius, eps, barrier=False)

    @tf.function
    def cartoonize(image):
        return {OUTPUT_NAME: graph.float_rgb(image)}

    signature = [tf.TensorSpec([None, None, None, 3], tf.float32, name=INPUT_NAME)]
    model, _ = tf2onnx.convert.from_function(cartoonize, input_signature=signature, opset=opset)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, _DIM_NAMES):  # tf2onnx names them unk__NNN
            dim.dim_param = name
    onnx.save(model, os.fspath(path))
    return model


class OnnxRunner:
    """Run ``wbc.onnx`` with onnxruntime on the CPU: (H, W, 3) RGB → float32 RGB 0..255."""

    def __init__(self, path, num_threads=None):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or os.cpu_count() or 1
        self.session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, image):
        batch = np.asarray(image, dtype=np.float32)[None]
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0][0]
