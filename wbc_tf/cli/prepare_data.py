"""``wbc-prepare-data``: build the ``wbc-train --data`` folder from photos and videos.

Every `wbc_tf.config.PrepareConfig` field is a flag; the work is `wbc_tf.prepare_data.prepare_dataset`.
"""

import argparse
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.cli.console import output_dir_problem, run_command
from wbc_tf.config import ONE_DOMAIN_LAYOUT, TWO_DOMAIN_LAYOUT, ConsoleOptions, PrepareConfig

PROG = "wbc-prepare-data"

EPILOG = """\
examples:
  # the original layout: faces and scenery, photos and cartoons, 256x256 random crops
  wbc-prepare-data --output-dir dataset --photo-face faces/ --photo-scenery trips/ holiday.mp4 \\
      --cartoon-face anime_faces/ --cartoon-scenery episode1.mkv episode2.mkv --every-seconds 2

  # single-domain layout, whole pictures scaled down (shorter side 256) and centre-cropped
  wbc-prepare-data --output-dir dataset --photo photos/ --cartoon stills/ --mode resize

  # four random crops per image, drop near-duplicate video frames, JPEG output
  wbc-prepare-data --output-dir dataset --cartoon-scenery movie.mp4 --crops-per-image 4 \\
      --near-duplicate-bits 5 --format jpg --jpg-quality 92

  # then check the result and train
  wbc-train --data dataset --dry-run

Folders are walked recursively for image files (.jpg .png .bmp .webp .tif ...) and videos
(.mp4 .avi .mov .mkv). Outputs are OUTPUT_DIR/<folder>/<source stem>_<index>.<format>; existing
ones are kept (and counted) unless --overwrite. Unreadable sources get one line on stderr each.

exit status: 0 = done; 1 = some sources could not be read or written; 2 = usage error.
"""


def build_parser():
    """The ``wbc-prepare-data`` parser, its flags derived from `PrepareConfig`."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Build the wbc-train --data folder from photos and videos: square crops, "
        "video frames, duplicates removed, a count per folder.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sources = {name: {"metavar": "SRC"} for name in TWO_DOMAIN_LAYOUT + ONE_DOMAIN_LAYOUT}
    metavars = {"output_dir": "DIR", "size": "PX", "crops_per_image": "K", "seed": "N", "every_seconds": "S",
                "max_frames": "N", "near_duplicate_bits": "BITS", "jpg_quality": "Q", "workers": "N"}
    overrides = {**sources, **{name: {"metavar": m} for name, m in metavars.items()}}
    add_dataclass_arguments(parser, PrepareConfig, overrides=overrides)
    add_dataclass_arguments(parser, ConsoleOptions, title="messages")
    return parser


def main(argv=None):
    """Parse ``argv``, build the dataset folder and print the report. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = dataclass_from_args(PrepareConfig, args)
        console = dataclass_from_args(ConsoleOptions, args)
    except ValueError as e:
        parser.error(str(e))
    if not config.sources():
        parser.error("no sources: give at least one of "
                     + ", ".join("--" + n.replace("_", "-") for n in TWO_DOMAIN_LAYOUT + ONE_DOMAIN_LAYOUT))
    problem = output_dir_problem(config.output_dir)
    if problem:
        parser.error(f"--output-dir: {problem}")
    return run_command(PROG, lambda: _prepare(config), console,
                       "run the same command again to continue (existing files are kept)")


def _prepare(config):
    from tqdm import tqdm

    from wbc_tf.image_io import quiet_codec_warnings
    from wbc_tf.prepare_data import format_report, missing_layout_folders, prepare_dataset

    def on_failure(path, reason):
        tqdm.write(f"{PROG}: error: {path}: {reason}", file=sys.stderr)

    quiet_codec_warnings()
    counts = prepare_dataset(config, on_failure=on_failure)
    print(format_report(counts))
    lacking = missing_layout_folders(config.output_dir)
    if lacking:
        print(f"{PROG}: note: {config.output_dir} has no {', '.join(lacking)} yet; wbc-train needs "
              f"{', '.join(TWO_DOMAIN_LAYOUT)} (or {' + '.join(ONE_DOMAIN_LAYOUT)})", file=sys.stderr)
    return 1 if any(row["failed"] for row in counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
