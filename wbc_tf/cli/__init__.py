"""Command-line entry points: ``wbc-cartoonize``, ``wbc-train``, ``wbc-export``, ``wbc-convert``.

TensorFlow's C++ start-up INFO lines are noise on a command line: unless the user set
``TF_CPP_MIN_LOG_LEVEL`` we show warnings and errors only. This runs before TensorFlow is imported
because ``wbc_tf/__init__.py`` imports nothing heavy.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
