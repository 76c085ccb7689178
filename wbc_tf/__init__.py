"""wbc_tf: White-box Cartoonization (Wang & Yu, CVPR 2020) in TensorFlow 2 / Keras 3, faithful to the TF1 code."""

__version__ = "0.1.0"

from wbc_tf.generator import build_generator  # noqa: E402,F401
from wbc_tf.guided_filter import GuidedFilter, box_filter, guided_filter  # noqa: E402,F401
from wbc_tf.weights import load_generator_weights  # noqa: E402,F401
