"""``wbc-convert SRC DST``: convert generator weights between TF1 checkpoint, ``.npz`` and ``.weights.h5``.

The format is taken from the path: ``*.npz`` (``{TF1 variable name: array}``), ``*.weights.h5``
(Keras), anything else a TF1 name-based checkpoint (a folder with a ``checkpoint`` file, or a
prefix). ``SRC`` may also be ``bundled`` for the release weights shipped with the package.
The result is read back and compared with the source, value for value. The work is
`wbc_tf.weights.convert`; this module parses the arguments and prints the outcome.

TF1 checkpoints are written under the original variable names (``generator/Conv/weights`` …)
plus a ``checkpoint`` index file, so the original ``test_code/cartoonize.py``
(``tf.train.latest_checkpoint('saved_models')``) can restore them.
"""

import argparse
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.cli.console import run_command
from wbc_tf.config import BUNDLED, ConsoleOptions

PROG = "wbc-convert"

EPILOG = """\
examples:
  wbc-convert bundled generator.npz
  wbc-convert train_cartoon/saved_models generator.weights.h5
  wbc-convert generator.weights.h5 export/saved_models      (-> export/saved_models/checkpoint, model.*)
  wbc-convert generator.npz export/saved_models --name model-33999
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description="Convert White-box Cartoonization generator weights between formats.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", metavar="SRC",
                        help=f"TF1 checkpoint folder/prefix, .npz, .weights.h5, "
                             f"or '{BUNDLED}' (release weights)")
    parser.add_argument("destination", metavar="DST",
                        help="*.npz, *.weights.h5, or a folder for a TF1 checkpoint (created if missing)")
    parser.add_argument("--name", default="model",
                        help="checkpoint prefix name inside a TF1 DST folder (default: %(default)s)")
    add_dataclass_arguments(parser, ConsoleOptions, title="messages")
    return parser


def main(argv=None):
    """Entry point of ``wbc-convert``; returns 0 on success, 1 on a conversion error."""
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _convert(args), dataclass_from_args(ConsoleOptions, args))


def _convert(args):
    from wbc_tf.weights import WeightConversionError, convert, weights_format
    try:
        written = convert(args.source, args.destination, args.name)
    except (WeightConversionError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(f"{PROG}: wrote {written} ({weights_format(args.destination)}), verified by reading it back",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
