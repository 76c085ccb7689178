"""SavedModel for TF Serving: encoded bytes or uint8 RGB in, each with and without a style strength.

Signatures (`wbc_tf.export.graph`; all reflect-pad to a multiple of 8 inside and crop back):

* ``serving_default``: ``images_bytes`` tf.string (N,) of JPEG/PNG/BMP/GIF/WebP → ``cartoons_bytes``
  tf.string (N,) of PNG. The ``_bytes`` suffixes are TF Serving's REST convention: inputs arrive as
  ``{"b64": ...}`` and outputs are returned base64-encoded. The shorter-side rule of the command line
  (``--serving-short-side``, default 720) and the request limits of `wbc_tf.export.serving` apply.
* ``serving_strength``: the same plus ``strength`` float32 (N,) or (1,) in 0..1.
* ``cartoonize``: ``images`` uint8 (N, H, W, 3) RGB, any H, W ≥ 8 → ``cartoons`` uint8 (N, H, W, 3)
  RGB; no resize (the client picks the size), at most ``--serving-max-network-pixels`` per request.
* ``cartoonize_strength``: the same plus ``strength``.

Why the strength is a second signature and not an optional input of ``serving_default``: a
SignatureDef input cannot be optional for every server. TensorFlow 2.21 can store a default
(``SignatureDef.defaults``), but TF Serving's REST row format ("instances") then needs every
instance as an object naming every input, and older servers refuse a request that does not feed
every input ("input size does not match signature"). So ``serving_default`` keeps its one input
(strength 1: today's output, bit for bit), and the strength has its own signatures.

Why `tf.saved_model.save` of a `tf.Module` holding the *tf.Variables* rather than
`keras.export.ExportArchive` or the Keras model itself: tracking the Keras model stores Keras
variable wrappers that the TF1-style session loader of TF Serving (and ``saved_model_cli run``)
cannot restore ("Could not find variable Conv_2/kernel"), and ExportArchive stores every weight
twice (11.7 MB instead of 5.9 MB). Tracking exactly the variables the signatures capture stores the
5.9 MB of weights once (plus 1.3 MB of graphs for the four signatures), and both the TF2 loader and
the session loader restore it.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from wbc_tf.export.graph import GF_EPS, GF_RADIUS, CartoonGraph
from wbc_tf.export.serving import ServingLimits

BYTES_SIGNATURE = "serving_default"
UINT8_SIGNATURE = "cartoonize"
BYTES_STRENGTH_SIGNATURE = "serving_strength"
UINT8_STRENGTH_SIGNATURE = "cartoonize_strength"
BYTES_INPUT, BYTES_OUTPUT = "images_bytes", "cartoons_bytes"
UINT8_INPUT, UINT8_OUTPUT = "images", "cartoons"
STRENGTH_INPUT = "strength"

# Ops that must never be in a serving graph: Python callbacks cannot be served, asserts abort.
FORBIDDEN_OPS = frozenset({"Assert", "PyFunc", "PyFuncStateless", "EagerPyFunc", "Print", "PrintV2"})


def serving_module(generator, radius=GF_RADIUS, eps=GF_EPS, limits=ServingLimits()):
    """A `tf.Module` with the four signature functions and the generator's variables.

    Args:
        limits: the `wbc_tf.export.serving.ServingLimits` compiled into the graph.

    Returns:
        module with ``module.entry_points`` (``{signature name: tf.function}``, each with an input
        signature) and ``module.weights`` (the captured tf.Variables).
    """
    graph = CartoonGraph(generator, radius, eps, barrier=True)
    module = tf.Module()
    bytes_spec = tf.TensorSpec([None], tf.string, name=BYTES_INPUT)
    uint8_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name=UINT8_INPUT)
    strength_spec = tf.TensorSpec([None], tf.float32, name=STRENGTH_INPUT)

    @tf.function(input_signature=[bytes_spec])
    def serve_bytes(images_bytes):
        return {BYTES_OUTPUT: graph.encoded_images(images_bytes, limits=limits, name=BYTES_INPUT)}

    @tf.function(input_signature=[bytes_spec, strength_spec])
    def serve_bytes_strength(images_bytes, strength):
        return {BYTES_OUTPUT: graph.encoded_images(images_bytes, strength, limits, BYTES_INPUT)}

    @tf.function(input_signature=[uint8_spec])
    def serve_uint8(images):
        return {UINT8_OUTPUT: graph.checked_uint8_rgb(images, limits=limits, name=UINT8_INPUT)}

    @tf.function(input_signature=[uint8_spec, strength_spec])
    def serve_uint8_strength(images, strength):
        return {UINT8_OUTPUT: graph.checked_uint8_rgb(images, strength, limits, UINT8_INPUT)}

    module.entry_points = {BYTES_SIGNATURE: serve_bytes, BYTES_STRENGTH_SIGNATURE: serve_bytes_strength,
                         UINT8_SIGNATURE: serve_uint8, UINT8_STRENGTH_SIGNATURE: serve_uint8_strength}
    captured = {}
    for fn in module.entry_points.values():
        for v in fn.get_concrete_function().variables:
            captured[id(v)] = v
    module.weights = list(captured.values())
    return module


def export_saved_model(generator, path, radius=GF_RADIUS, eps=GF_EPS, limits=ServingLimits()):
    """Write the SavedModel to ``path`` (a directory) and return the in-memory module.

    The returned module's functions are what the checks compare the reloaded model with.
    """
    module = serving_module(generator, radius, eps, limits)
    tf.saved_model.save(module, os.fspath(path), signatures=dict(module.entry_points))
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
