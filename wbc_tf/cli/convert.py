"""``wbc-convert SRC DST``: convert generator weights between TF1 checkpoint, ``.npz`` and ``.weights.h5``.

The format is taken from the path: ``*.npz`` (``{TF1 variable name: array}``), ``*.weights.h5``
(Keras), anything else a TF1 name-based checkpoint (a folder with a ``checkpoint`` file, or a
prefix). ``SRC`` may also be ``bundled`` for the release weights shipped with the package.
The result is read back and compared with the source, value for value.

TF1 checkpoints are written with the ``SaveV2`` op under the original variable names
(``generator/Conv/weights`` …) plus a ``checkpoint`` index file, so the original
``test_code/cartoonize.py`` (``tf.train.latest_checkpoint('saved_models')``) can restore them.
"""

import argparse
import os
import sys

PROG = "wbc-convert"
BUNDLED = "bundled"

EPILOG = """\
examples:
  wbc-convert bundled generator.npz
  wbc-convert train_cartoon/saved_models generator.weights.h5
  wbc-convert generator.weights.h5 export/saved_models      (-> export/saved_models/checkpoint, model.*)
  wbc-convert generator.npz export/saved_models --name model-33999
"""


def kind_of(path):
    """``'npz'``, ``'h5'`` or ``'tf1'`` from a path's name."""
    if path.endswith(".npz"):
        return "npz"
    if path.endswith(".weights.h5"):
        return "h5"
    return "tf1"


def write_tf1_checkpoint(tensors, folder, name="model"):
    """Write ``{tf1_name: array}`` as a TF1 name-based checkpoint ``folder/name`` + ``folder/checkpoint``.

    Returns:
        The checkpoint prefix.
    """
    import tensorflow as tf
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, name)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    with open(os.path.join(folder, "checkpoint"), "w") as f:  # what tf.train.latest_checkpoint reads
        f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    return prefix


def convert(source, destination, name="model"):
    """Load generator weights from ``source`` (None = bundled) and save them to ``destination``.

    Returns:
        The path written (for TF1: the checkpoint prefix).

    Raises:
        wbc_tf.weights.WeightConversionError: unreadable or mismatching source, or a read-back
            that differs from what was written.
    """
    import numpy as np

    from wbc_tf.generator import build_generator
    from wbc_tf.weights import WeightConversionError, generator_to_tf1_dict, load_generator_weights, save_npz
    model = build_generator()
    load_generator_weights(model, source)
    kind = kind_of(destination)
    parent = os.path.dirname(os.path.abspath(destination))
    os.makedirs(parent, exist_ok=True)
    if kind == "npz":
        save_npz(model, destination)
        written = destination
    elif kind == "h5":
        model.save_weights(destination)
        written = destination
    else:
        written = write_tf1_checkpoint(generator_to_tf1_dict(model), destination, name)

    check = load_generator_weights(build_generator(), destination)  # read back, compare exactly
    for (key, a), b in zip(generator_to_tf1_dict(model).items(), generator_to_tf1_dict(check).values()):
        if not np.array_equal(a, b):
            raise WeightConversionError(f"read-back of {destination} differs at {key}")
    return written


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
    return parser


def main(argv=None):
    """Entry point of ``wbc-convert``; returns 0 on success, 1 on a conversion error."""
    args = build_parser().parse_args(argv)
    from wbc_tf.weights import WeightConversionError
    source = None if args.source == BUNDLED else args.source
    try:
        written = convert(source, args.destination, args.name)
    except (WeightConversionError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(f"{PROG}: wrote {written} ({kind_of(args.destination)}), verified by reading it back",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
