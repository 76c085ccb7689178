"""Train White-box Cartoonization from a checkout: ``python train.py --data DIR`` (see ``--help``).

The same as the installed ``wbc-train`` command; everything lives in `wbc_tf.cli.train`.
"""

import sys

from wbc_tf.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
