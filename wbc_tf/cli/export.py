"""``wbc-export`` (also ``python export_tflite.py``): write and check the deployment artefacts.

Writes to ``--output-dir``: ``saved_model/`` (TF Serving), ``wbc_<variant>.tflite`` (dynamic
shape), ``wbc_<variant>_<H>x<W>.tflite`` (fixed size) and ``wbc.onnx``, checks each one against
the Keras model on real photos, prints a table (file, size, check, measured, result) and the
ops of every TFLite file, and writes ``export_report.json`` next to them.

Exit status: 0 = everything written and every check passed; 1 = a check failed; 2 = bad usage.
"""

import argparse
import os
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.cli.console import output_dir_problem, run_command
from wbc_tf.config import ConsoleOptions, ExportConfig, parse_pixels

PROG = "wbc-export"
REPORT_FILE = "export_report.json"

EPILOG = """\
examples:
  wbc-export --output-dir out/
      everything: saved_model/, 4 dynamic + 4 512x512 TFLite files, wbc.onnx, all checked
  wbc-export --output-dir out/ --formats tflite --variants fp32 fp16 --fixed-size 720x1280
  wbc-export --output-dir out/ --formats saved_model --weights train_cartoon/saved_models
  wbc-export --output-dir out/ --check-images holdout/a.jpg holdout/b.png
  python export_tflite.py --output-dir out/ --fixed-size 0 --no-check
"""

OVERRIDES = {"output_dir": {"required": True},
             "serving_max_pixels": {"type": parse_pixels, "metavar": "N"},
             "serving_max_network_pixels": {"type": parse_pixels, "metavar": "N"}}


def build_parser():
    """The argparse parser of ``wbc-export``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser, ExportConfig, overrides=OVERRIDES)
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    add_dataclass_arguments(parser, ConsoleOptions, title="messages")
    return parser


def main(argv=None):
    """Run the exporter; returns the exit status (see module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = dataclass_from_args(ExportConfig, args)
        console = dataclass_from_args(ConsoleOptions, args)
    except ValueError as e:
        parser.error(str(e))
    missing = [p for p in config.check_images if not os.path.isfile(p)]
    if missing:
        parser.error(f"--check-images: no such file: {', '.join(missing)}")
    problem = output_dir_problem(config.output_dir)
    if problem:
        parser.error(f"--output-dir: {problem}")
    return run_command(PROG, lambda: export(config, args.quiet), console)


def export(config, quiet=False):
    """Write, check and report every artefact of ``config``; returns the exit status."""
    # Imported here, not at the top: the exporter pulls in TensorFlow, tf2onnx and LiteRT helpers.
    from wbc_tf.export import report
    from wbc_tf.export.exporter import export_all

    def log(message):
        if not quiet:
            print(message, flush=True)

    results = export_all(config, log=log)
    print()
    print(report.table(results))
    ops = report.op_lists(results)
    if ops:
        print("\nTFLite ops (builtin only; counts):\n" + ops)
    report_path = os.path.join(config.output_dir, REPORT_FILE)
    report.write_json(results, report_path)
    failed = [r for r in results if r.passed is False]
    print(f"\nreport: {report_path}")
    if failed:
        print(f"{len(failed)} check(s) FAILED: " + ", ".join(r.artefact for r in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
