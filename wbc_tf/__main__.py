"""``python -m wbc_tf INPUT... -o OUTPUT_DIR``: the same as ``wbc-cartoonize``."""

import sys

from wbc_tf.cli.cartoonize import main

if __name__ == "__main__":
    sys.exit(main())
