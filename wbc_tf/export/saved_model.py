"""SavedModel for TF Serving: ``serving_default`` (encoded bytes) and ``cartoonize`` (uint8 RGB).

Signatures (both accept any H, W ≥ 8; reflect-pad to a multiple of 8 inside, crop back; no resize):

* ``serving_default``: ``images_bytes`` tf.string (N,) of JPEG/PNG/BMP/GIF → ``cartoons_bytes``
  tf.string (N,) of PNG. The ``_bytes`` suffixes are TF Serving's REST convention: inputs arrive as
  ``{"b64": ...}`` and outputs are returned base64-encoded.
* ``cartoonize``: ``images`` uint8 (N, H, W, 3) RGB → ``cartoons`` uint8 (N, H, W, 3) RGB.

Why `tf.saved_model.save` of a `tf.Module` holding the *tf.Variables* rather than
`keras.export.ExportArchive` or the Keras model itself: tracking the Keras model stores Keras
variable wrappers that the TF1-style session loader of TF Serving (and ``saved_model_cli run``)
cannot restore ("Could not find variable Conv_2/kernel"), and ExportArchive stores every weight
twice (11.7 MB instead of 5.9 MB). Tracking exactly the variables the signatures capture gives a
5.9 MB model that both the TF2 loader and the session loader restore.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from wbc_tf.export.graph import GF_EPS, GF_RADIUS, CartoonGraph

BYTES_SIGNATURE = "serving_default"
UINT8_SIGNATURE = "cartoonize"
BYTES_INPUT, BYTES_OUTPUT = "images_bytes", "cartoons_bytes"
UINT8_INPUT, UINT8_OUTPUT = "images", "cartoons"

# Ops that must never be in a serving graph: Python callbacks cannot be served, asserts abort.
FORBIDDEN_OPS = frozenset({"Assert", "PyFunc", "PyFuncStateless", "EagerPyFunc", "Print", "PrintV2"})


def serving_module(generator, radius=GF_RADIUS, eps=GF_EPS):
    """A `tf.Module` with the two signature functions and the generator's variables.

    Returns:
        module with ``module.serve_bytes`` and ``module.serve_uint8`` (`tf.function`s with input
        signatures) and ``module.weights`` (the captured tf.Variables).
    """
    graph = CartoonGraph(generator, radius, eps, barrier=True)
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)])
    def serve_bytes(images_bytes):
        return {BYTES_OUTPUT: graph.encoded_images(images_bytes)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=UINT8_INPUT)])
    def serve_uint8(images):
        return {UINT8_OUTPUT: graph.uint8_rgb(images)}

    module.serve_bytes = serve_bytes
    module.serve_uint8 = serve_uint8
    captured = {}
    for fn in (serve_bytes, serve_uint8):
        for v in fn.get_concrete_function().variables:
            captured[id(v)] = v
    module.weights = list(captured.values())
    return module


def export_saved_model(generator, path, radius=GF_RADIUS, eps=GF_EPS):
    """Write the SavedModel to ``path`` (a directory) and return the in-memory module.

    The returned module's functions are what the checks compare the reloaded model with.
    """
    module = serving_module(generator, radius, eps)
    tf.saved_model.save(module, os.fspath(path), signatures={
        BYTES_SIGNATURE: module.serve_bytes,
        UINT8_SIGNATURE: module.serve_uint8,
    })
    return module


def saved_model_ops(path):
    """Sorted op types in the SavedModel's graph and function library (read from saved_model.pb)."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(path), "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(ops)


def directory_size(path):
    """Total bytes of the files below ``path``."""
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)
