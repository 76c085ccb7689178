"""``wbc-cartoonize``: cartoonize image files and folders (also ``python -m wbc_tf``).

Each input is read with ``cv2.imread`` semantics, run through `wbc_tf.inference.Cartoonizer`
(defaults = the original ``test_code/cartoonize.py``) and written to ``OUTPUT_DIR/<stem>.<format>``
(with ``--recursive``, keeping the sub-folder below the input folder). The work is `wbc_tf.batch`
(planning, the pipelined loop, the report); the options are `wbc_tf.config.BatchOptions`,
`InferenceConfig` and `ConsoleOptions`. This module parses, loads the model and prints the summary.
"""

import argparse
import functools
import os
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.cli.console import output_dir_problem, print_error, run_command
from wbc_tf.config import BUNDLED, BatchOptions, ConsoleOptions, InferenceConfig, parse_pixels, parse_seconds

PROG = "wbc-cartoonize"

EPILOG = """\
examples:
  wbc-cartoonize photo.jpg -o cartoons/
      -> cartoons/photo.png (shorter side reduced to 720 px if larger, cropped to multiples of 8)
  wbc-cartoonize holiday/ -r -o cartoons/ --format jpg --jpg-quality 90
      every file below holiday/, sub-folders kept: holiday/day1/a.jpg -> cartoons/day1/a.jpg
  wbc-cartoonize big.jpg -o out/ --short-side 0 --fit pad
      full resolution, output exactly the input size (reflect-pad instead of crop)
  wbc-cartoonize photos/ -o out/ --max-size 1024 --rounding round
  wbc-cartoonize logo.png -o out/ --keep-alpha
  wbc-cartoonize photos/ -o out/ --weights train_cartoon/saved_models   (or .npz / .weights.h5)
  wbc-cartoonize scans/ -o out/ --max-pixels 400M
      accept images up to 400 megapixels (default 200M; the size is read from the file header)
  wbc-cartoonize clip.mov -o out/
      videos (mp4, mov, m4v, mkv, webm, avi, ...: recognised by content) are converted frame by frame
      to out/clip.mp4 (H.264, the audio kept, the same frame rate and timestamps)
  wbc-cartoonize clip.webm -o out/ --start 1:05 --duration 10
      ten seconds from 1 min 5 s, the audio cut to match
  python -m wbc_tf photo.jpg -o cartoons/

Folders: every non-hidden file is tried (like the original script); with --recursive,
sub-folders too. Bad files get one line each on stderr and do not stop the run. Ctrl-C stops
after the results already computed are written; the same command then skips them.

exit status: 0 = everything written or skipped as existing; 1 = some inputs failed;
2 = usage error or unusable weights; 130 = interrupted.
"""

OVERRIDES = {
    "output_dir": {"flags": ["-o"], "required": True, "metavar": "OUTPUT_DIR"},
    "recursive": {"flags": ["-r"]},
    "quiet": {"flags": ["-q"]},
    "jpg_quality": {"metavar": "Q"},
    "weights": {"metavar": "PATH"},
    "max_pixels": {"type": parse_pixels, "metavar": "N"},
    "batch_size": {"metavar": "N"},
    "start": {"type": parse_seconds, "metavar": "TIME"},
    "duration": {"type": parse_seconds, "metavar": "TIME"},
}


def build_parser():
    """The argparse parser of ``wbc-cartoonize`` (flags from `BatchOptions`, `InferenceConfig`, ...)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Cartoonize photos with White-box Cartoonization (Wang & Yu, CVPR 2020).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image or video files and/or folders (folders: every non-hidden file inside)")
    add_dataclass_arguments(parser, BatchOptions, overrides=OVERRIDES)
    add_dataclass_arguments(parser, InferenceConfig,
                            title="pipeline options (wbc_tf.config.InferenceConfig; defaults = original)")
    add_dataclass_arguments(parser, ConsoleOptions, title="messages")
    return parser


@functools.lru_cache(maxsize=2)
def load_cartoonizer(weights, config):
    """`Cartoonizer.from_pretrained`, cached per (weights, config) for repeated in-process calls."""
    from wbc_tf.inference import Cartoonizer
    return Cartoonizer.from_pretrained(weights, config)


def _limit_opencv(max_pixels):
    """OpenCV's own pixel limit (formats whose header Pillow cannot read) = ``max_pixels``.

    OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when it is loaded: so only before its import,
    and only if the user did not set it.
    """
    if "cv2" not in sys.modules and "OPENCV_IO_MAX_IMAGE_PIXELS" not in os.environ:
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(max_pixels or 2 ** 62)


def cartoonize(inputs, options, config, console, reporter_box):
    """The command's work once the arguments are valid; returns the exit status."""
    _limit_opencv(options.max_pixels)
    from wbc_tf import batch
    from wbc_tf.image_io import quiet_codec_warnings

    quiet_codec_warnings()
    reporter = reporter_box[0] = batch.Reporter(PROG, quiet=options.quiet, debug=console.debug)
    if options.keep_alpha and options.format != "png":
        reporter.note("--keep-alpha writes PNG (JPEG has no alpha channel)")
    plan = batch.plan_outputs(inputs, options.output_dir, options.image_ext, options.recursive,
                              options.overwrite)
    reporter.report_plan(plan)
    if plan.jobs:
        from wbc_tf.weights import WeightConversionError
        weights = BUNDLED if options.weights in ("", BUNDLED) else os.path.abspath(options.weights)
        try:
            cartoonizer = load_cartoonizer(weights, config)
        except (WeightConversionError, OSError) as e:
            print_error(PROG, f"cannot load weights {options.weights or BUNDLED}: {batch.describe_error(e)}")
            return 2
        os.makedirs(options.output_dir, exist_ok=True)
        batch.run(plan.jobs, cartoonizer, reporter, options)
    if not options.quiet or reporter.any_failed:
        print(f"{PROG}: {reporter.summary()}", file=sys.stderr)
    return 1 if reporter.any_failed else 0


def main(argv=None):
    """Entry point of ``wbc-cartoonize``; returns the exit status (0, 1, 2 or 130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = dataclass_from_args(InferenceConfig, args)
        options = dataclass_from_args(BatchOptions, args)
        console = dataclass_from_args(ConsoleOptions, args)
    except ValueError as e:
        parser.error(str(e))
    problem = output_dir_problem(options.output_dir)
    if problem:
        parser.error(f"-o/--output-dir: {problem}")
    reporter_box = [None]

    def interrupted():
        reporter = reporter_box[0]
        done = f"{reporter.summary()} so far; " if reporter else ""
        return f"{done}run the same command again to continue (finished outputs are skipped)"

    return run_command(PROG, lambda: cartoonize(args.inputs, options, config, console, reporter_box),
                       console, interrupted)


if __name__ == "__main__":
    sys.exit(main())
