"""Deployment artefacts: SavedModel (TF Serving), TFLite / LiteRT and ONNX, each checked against Keras.

Entry points: `export_all` (what ``wbc-export`` runs; configured by `wbc_tf.config.ExportConfig`) and
per-format functions: `export_saved_model`, `convert_tflite`, `export_onnx`. The in-graph pre/post-processing
shared by all of them is `CartoonGraph`; `wbc_tf.export.verify` checks each artefact against
`wbc_tf.inference.Cartoonizer`.
"""

from wbc_tf.export.exporter import export_all, load_generator
from wbc_tf.export.graph import CartoonGraph
from wbc_tf.export.onnx_export import OnnxRunner, export_onnx, onnx_available
from wbc_tf.export.saved_model import export_saved_model
from wbc_tf.export.tflite import NonBuiltinOpError, TFLiteRunner, op_counts, tflite_filename
from wbc_tf.export.tflite import convert as convert_tflite
from wbc_tf.export.verify import CheckResult
