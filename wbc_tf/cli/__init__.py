"""Command-line entry points: ``wbc-cartoonize``, ``wbc-train``, ``wbc-export``, ``wbc-convert``,
``wbc-prepare-data``.

TensorFlow's C++ start-up INFO lines are noise on a command line: unless the user set
``TF_CPP_MIN_LOG_LEVEL`` we show warnings and errors only (and `wbc_tf.cli.console` hides the rest of
the native log unless ``--verbose``). This runs before TensorFlow is imported because
``wbc_tf/__init__.py`` imports nothing heavy.
"""

import os

TF_LOG_LEVEL_SET_BY_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
