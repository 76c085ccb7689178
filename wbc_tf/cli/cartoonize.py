"""``wbc-cartoonize``: cartoonize image files and folders (also ``python -m wbc_tf``).

Each input is read with ``cv2.imread`` semantics, run through `wbc_tf.inference.Cartoonizer`
(defaults = the original ``test_code/cartoonize.py``) and written to
``OUTPUT_DIR/<stem>.<format>`` (with ``--recursive``, keeping the sub-folder below the input
folder). A bad file (empty, truncated, not an image, smaller than 8 px) costs one line on stderr;
the rest is still processed, and the exit status is 1 at the end. Reading/pre-processing of the
next image and encoding/writing of the previous result run in a small thread pool while the
network runs on the current one. Videos (``.mp4 .avi .mov .mkv``) are cartoonized frame by frame
into ``OUTPUT_DIR/<stem>.mp4`` (`wbc_tf.video`).
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import os
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.config import BUNDLED, InferenceConfig

PROG = "wbc-cartoonize"
FORMATS = ("png", "jpg")
PREFETCH = 2  # decoded images queued ahead of the network (memory: a few frames)

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
  wbc-cartoonize clip.mov -o out/
      videos (.mp4 .avi .mov .mkv) are converted frame by frame to out/clip.mp4 (mp4v, no audio)
  python -m wbc_tf photo.jpg -o cartoons/

Folders: every non-hidden file is tried (like the original script); with --recursive,
sub-folders too. Bad files are reported on stderr, one line each, and do not stop the run.

exit status: 0 = everything written or skipped as existing; 1 = some inputs failed;
2 = usage error or unusable weights.
"""

def build_parser():
    """The argparse parser of ``wbc-cartoonize``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Cartoonize photos with White-box Cartoonization (Wang & Yu, CVPR 2020).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image or video files and/or folders (folders: every non-hidden file inside)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUTPUT_DIR",
                        help="where results go, as OUTPUT_DIR/<input stem>.<format>; created if missing")
    parser.add_argument("-r", "--recursive", action="store_true",
                        help="also walk sub-folders of folder inputs, keeping their relative paths")
    parser.add_argument("--format", choices=FORMATS, default="png",
                        help="output image format (default: %(default)s); videos are always written as .mp4")
    parser.add_argument("--jpg-quality", type=int, default=95, metavar="Q",
                        help="JPEG quality 0-100 for --format jpg (default: %(default)s, OpenCV's default)")
    parser.add_argument("--weights", metavar="PATH", default=BUNDLED,
                        help=f"generator weights: '{BUNDLED}' (the release model-33999 shipped with the "
                             "package), a TF1 checkpoint folder or prefix, an .npz or a .weights.h5 "
                             "(default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (default: skip them with a message)")
    parser.add_argument("--keep-alpha", action="store_true",
                        help="reattach the input's alpha channel (resized/cropped like the picture) to "
                             "the output; forces PNG. Default: alpha dropped, like cv2.imread")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar and no 'skipping' messages (errors are still printed)")
    add_dataclass_arguments(parser, InferenceConfig,
                            title="pipeline options (wbc_tf.config.InferenceConfig; defaults = original)")
    return parser


# --------------------------------------------------------------------------------------------
# Which files, and where their results go
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Job:
    """One input file and its output path."""

    source: str
    target: str
    video: bool = False


@dataclasses.dataclass
class Plan:
    """What to do: ``jobs`` to run, ``failures`` / ``skips`` as (path, reason) to report."""

    jobs: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)
    skips: list = dataclasses.field(default_factory=list)


def _walk(folder, recursive, exclude):
    """Relative paths of the non-hidden files in ``folder`` (sorted), skipping the ``exclude`` dir."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) != exclude) if recursive else []
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files if not f.startswith(".")]
    return sorted(found)


def plan_jobs(inputs, output_dir, ext, recursive=False, overwrite=False):
    """Map inputs to ``Job`` s, reporting missing inputs, name clashes and existing outputs.

    Args:
        inputs: file and folder paths.
        output_dir: the output folder.
        ext: output extension including the dot (``'.png'``).
        recursive: walk sub-folders of folder inputs.
        overwrite: if False, inputs whose output exists are skipped.
    """
    from wbc_tf.video import is_video
    plan = Plan()
    out_real = os.path.realpath(output_dir)
    seen_sources, owner_of = set(), {}
    pairs = []  # (source, output path relative to output_dir without extension)
    for item in inputs:
        if os.path.isdir(item):
            for rel in _walk(item, recursive, out_real):
                pairs.append((os.path.join(item, rel), os.path.splitext(rel)[0]))
        elif os.path.exists(item):
            pairs.append((item, os.path.splitext(os.path.basename(item))[0]))
        else:
            plan.failures.append((item, "no such file or folder"))
    all_sources = {os.path.normcase(os.path.realpath(source)) for source, _ in pairs}
    for source, stem in pairs:
        real = os.path.normcase(os.path.realpath(source))
        if real in seen_sources:  # the same file named twice (e.g. a file and its folder)
            continue
        seen_sources.add(real)
        video = is_video(source)
        target = os.path.join(output_dir, stem + (".mp4" if video else ext))
        key = os.path.normcase(os.path.realpath(target))
        if key == real:
            plan.failures.append((source, f"output {target} would overwrite the input itself"))
        elif key in all_sources:
            plan.failures.append((source, f"output {target} would overwrite another input file"))
        elif key in owner_of:
            plan.failures.append((source, f"output name {target} is already used by {owner_of[key]}"))
        elif os.path.exists(target) and not overwrite:
            owner_of[key] = source
            plan.skips.append((source, f"{target} exists (use --overwrite to replace it)"))
        else:
            owner_of[key] = source
            plan.jobs.append(Job(source, target, video))
    return plan


# --------------------------------------------------------------------------------------------
# Running: read+preprocess ahead, network in the main thread, postprocess+write behind
# --------------------------------------------------------------------------------------------

class Reporter:
    """Counts outcomes and prints one stderr line per problem, above the progress bar."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.written = self.skipped = self.failed = 0

    def _print(self, text):
        from tqdm import tqdm
        tqdm.write(text, file=sys.stderr)

    def fail(self, path, reason):
        self.failed += 1
        self._print(f"{PROG}: error: {path}: {reason}")

    def skip(self, path, reason):
        self.skipped += 1
        if not self.quiet:
            self._print(f"{PROG}: skipping {path}: {reason}")


def _load(job, cartoonizer, keep_alpha):
    """Reader thread: file → (network input x, geometry, output alpha or None)."""
    from wbc_tf.image_io import read_image
    bgr, alpha = read_image(job.source, keep_alpha=keep_alpha)
    x, geometry = cartoonizer.preprocess(bgr)
    if alpha is not None:
        alpha = cartoonizer.fit_alpha(alpha)
    return x, geometry, alpha


def _save(job, cartoonizer, y, geometry, alpha, jpg_quality):
    """Writer thread: network output → uint8 → encoded file."""
    from wbc_tf.image_io import write_image
    bgr = cartoonizer.postprocess(y, geometry)
    os.makedirs(os.path.dirname(job.target) or ".", exist_ok=True)
    write_image(job.target, bgr, alpha, jpg_quality)


def run_videos(jobs, cartoonizer, reporter, bar):
    """Video jobs, one after the other (frames are pipelined inside `cartoonize_video`)."""
    from wbc_tf.image_io import ImageReadError
    from wbc_tf.video import cartoonize_video
    for job in jobs:
        def on_frame(i, total, job=job):
            bar.set_postfix_str(f"{os.path.basename(job.source)} frame {i}/{total or '?'}")
        try:
            os.makedirs(os.path.dirname(job.target) or ".", exist_ok=True)
            cartoonize_video(job.source, job.target, cartoonizer, on_frame)
            reporter.written += 1
        except ImageReadError as e:
            reporter.fail(job.source, str(e))
        except Exception as e:  # writer/codec problems: report, go on
            reporter.fail(job.source, f"{type(e).__name__}: {e}")
        bar.set_postfix_str("")
        bar.update(1)


def run_jobs(jobs, cartoonizer, reporter, keep_alpha=False, jpg_quality=95, progress=True):
    """Process ``jobs``; problems go to ``reporter`` and never stop the loop."""
    from tqdm import tqdm

    from wbc_tf.image_io import ImageReadError
    bar = tqdm(total=len(jobs), unit="file", file=sys.stderr, disable=None if progress else True,
               dynamic_ncols=True)
    run_videos([j for j in jobs if j.video], cartoonizer, reporter, bar)
    jobs = [j for j in jobs if not j.video]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="wbc-io") as pool:
        pending = iter(jobs)
        reads = collections.deque()
        writes = collections.deque()

        def read_next():
            job = next(pending, None)
            if job is not None:
                reads.append((job, pool.submit(_load, job, cartoonizer, keep_alpha)))

        def finish_writes(block):
            while writes and (block or writes[0][1].done()):
                job, future = writes.popleft()
                try:
                    future.result()
                    reporter.written += 1
                except Exception as e:  # disk full, permissions, encoder: report, go on
                    reporter.fail(job.source, f"cannot write {job.target}: {e}")
                bar.update(1)

        for _ in range(PREFETCH):
            read_next()
        while reads:
            job, future = reads.popleft()
            read_next()
            try:
                x, geometry, alpha = future.result()
                y = cartoonizer.run_network(x)[0]  # (Hn, Wn, 3) float32
            except (ImageReadError, ValueError) as e:
                reporter.fail(job.source, str(e))
                bar.update(1)
                continue
            except Exception as e:  # e.g. out of memory on a huge image: report, go on
                reporter.fail(job.source, f"{type(e).__name__}: {e}")
                bar.update(1)
                continue
            writes.append((job, pool.submit(_save, job, cartoonizer, y, geometry, alpha, jpg_quality)))
            finish_writes(block=False)
        finish_writes(block=True)
    bar.close()


@functools.lru_cache(maxsize=2)
def load_cartoonizer(weights, config):
    """`Cartoonizer.from_pretrained`, cached per (weights, config) for repeated in-process calls."""
    from wbc_tf.inference import Cartoonizer
    return Cartoonizer.from_pretrained(weights, config)


def main(argv=None):
    """Entry point of ``wbc-cartoonize``; returns the exit status (0, 1 or 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.jpg_quality <= 100:
        parser.error("--jpg-quality must be between 0 and 100")
    try:
        config = dataclass_from_args(InferenceConfig, args)
    except ValueError as e:
        parser.error(str(e))

    fmt = args.format
    if args.keep_alpha and fmt != "png":
        print(f"{PROG}: note: --keep-alpha writes PNG (JPEG has no alpha channel)", file=sys.stderr)
        fmt = "png"
    plan = plan_jobs(args.inputs, args.output_dir, "." + fmt, args.recursive, args.overwrite)
    reporter = Reporter(args.quiet)
    for path, reason in plan.failures:
        reporter.fail(path, reason)
    for path, reason in plan.skips:
        reporter.skip(path, reason)

    if plan.jobs:
        from wbc_tf.image_io import quiet_codec_warnings
        from wbc_tf.weights import WeightConversionError
        quiet_codec_warnings()
        weights = BUNDLED if args.weights in ("", BUNDLED) else os.path.abspath(args.weights)
        try:
            cartoonizer = load_cartoonizer(weights, config)
        except (WeightConversionError, OSError) as e:
            print(f"{PROG}: error: cannot load weights {args.weights or BUNDLED}: {e}", file=sys.stderr)
            return 2
        os.makedirs(args.output_dir, exist_ok=True)
        run_jobs(plan.jobs, cartoonizer, reporter, keep_alpha=args.keep_alpha,
                 jpg_quality=args.jpg_quality, progress=not args.quiet)

    if not args.quiet or reporter.failed:
        print(f"{PROG}: {reporter.written} written, {reporter.skipped} skipped, {reporter.failed} failed",
              file=sys.stderr)
    return 1 if reporter.failed else 0


if __name__ == "__main__":
    sys.exit(main())
