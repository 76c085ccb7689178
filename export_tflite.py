#!/usr/bin/env python
"""Export White-box Cartoonization for TF Serving, TFLite / LiteRT and ONNX (same as ``wbc-export``).

Usage: ``python export_tflite.py --output-dir OUT [--weights W]``; ``--help`` lists every flag.
"""

import sys

from wbc_tf.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
