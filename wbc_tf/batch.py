"""Many inputs through one model: output planning, the pipelined read → network → write loop, reporting.

``wbc-cartoonize`` (`wbc_tf.cli.cartoonize`), the video path (`wbc_tf.video`) and the web page use this
module; none of them has a loop of its own.

* `plan_outputs`: files and folders → a `Plan`: `Job` s (source → target) plus what to report before
  anything runs: failures (missing input, two inputs with one output name, an output that would
  overwrite an input) and skips (the output exists).
* `pipeline`: the loop. Items are read and pre-processed in a reader thread, ahead of the network; the
  network runs in the calling thread on batches of consecutive items of one size; results are
  post-processed and written in a writer thread, in item order. Video frames go through it too.
* `run`: `Job` s through `pipeline` (images) and `wbc_tf.video` (videos), outcomes to a `Reporter`.
* `Reporter`: counts, exactly one line per problem, a progress bar with rate and ETA.
* `cartoonize_bytes`: one encoded image in, one encoded image out (the web page), same checks.

Batches (`BatchOptions.batch_size`): on a CPU one image per network call, the original's path and its
exact numbers. On a GPU, consecutive inputs with the same network size (video frames, a folder of
photos from one camera) share a call, up to `AUTO_BATCH_PIXELS` or `AUTO_BATCH_MAX` inputs.

Example::

    from wbc_tf import batch
    from wbc_tf.config import BatchOptions
    from wbc_tf.inference import Cartoonizer

    options = BatchOptions(output_dir="out", format="jpg")
    plan = batch.plan_outputs(["holiday/"], options.output_dir, options.image_ext, recursive=True)
    reporter = batch.Reporter("my-tool")
    reporter.report_plan(plan)
    batch.run(plan.jobs, Cartoonizer.from_pretrained(), reporter, options)
    print(reporter.summary())     # '12 written, 0 skipped, 1 failed'
"""

import collections
import concurrent.futures
import dataclasses
import functools
import os
import sys
import threading
import traceback

import numpy as np

from wbc_tf.config import BatchOptions
from wbc_tf.image_io import ImageReadError, decode_image, encode_image, read_image, write_image

VIDEO_EXT = ".mp4"         # extension of video outputs (H.264); `wbc_tf.video.output_ext` falls back to .webm
PREFETCH = 2               # items read ahead of the network (memory: a few decoded images)
MAX_QUEUED_WRITES = 2      # results waiting for the writer thread
AUTO_BATCH_PIXELS = 4_000_000  # batch_size 0 on a GPU: inputs per call until this many network pixels
AUTO_BATCH_MAX = 8         # ... and at most this many
MAX_REASON = 300           # characters of one reported reason


# --------------------------------------------------------------------------------------------
# Which files, and where their results go
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    """One input file and its output path."""

    source: str
    target: str
    video: bool = False


@dataclasses.dataclass
class Plan:
    """What to do: ``jobs`` to run, ``failures`` / ``skips`` as ``(path, reason)`` to report."""

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


def _key(path):
    return os.path.normcase(os.path.realpath(path))


def plan_outputs(inputs, output_dir, ext=".png", recursive=False, overwrite=False):
    """Map inputs to `Job` s: ``OUTPUT_DIR/<stem><ext>`` (videos: ``<stem>.mp4``), sub-folders kept.

    Videos are recognised by content (`wbc_tf.video.is_video`: PyAV opens them as a video container),
    so ``.webm``, ``.m4v`` or a video without an extension are videos and a photo named ``.mp4`` is not.

    Args:
        inputs: file and folder paths; in a folder every non-hidden file is a candidate (like the
            original script), its sub-folders too with ``recursive``.
        output_dir: the output folder (skipped when it lies inside a walked folder).
        ext: image output extension with the dot (`BatchOptions.image_ext`).
        recursive: walk sub-folders of folder inputs.
        overwrite: if False, inputs whose output exists are skipped.

    Returns:
        A `Plan`. The same file named twice (a file and its folder) is planned once.
    """
    from wbc_tf.video import is_video, output_ext
    plan = Plan()
    out_real = os.path.realpath(output_dir)
    pairs = []  # (source, output path relative to output_dir, without extension)
    for item in inputs:
        if os.path.isdir(item):
            for rel in _walk(item, recursive, out_real):
                pairs.append((os.path.join(item, rel), os.path.splitext(rel)[0]))
        elif os.path.exists(item):
            pairs.append((item, os.path.splitext(os.path.basename(item))[0]))
        else:
            plan.failures.append((item, "no such file or folder"))
    all_sources = {_key(source) for source, _ in pairs}
    seen_sources, owner_of = set(), {}
    for source, stem in pairs:
        real = _key(source)
        if real in seen_sources:
            continue
        seen_sources.add(real)
        video = is_video(source)
        target = os.path.join(output_dir, stem + (output_ext() if video else ext))
        key = _key(target)
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
# Reporting
# --------------------------------------------------------------------------------------------

def describe_error(error):
    """One short line for an exception: the reason of an `ImageReadError`, else ``Type: message``.

    TensorFlow's errors carry many lines (and out-of-memory ones a whole allocator dump); only the
    first line is kept, cut at `MAX_REASON` characters.
    """
    if isinstance(error, (ImageReadError, WriteError)) or type(error).__name__ == "OutOfMemoryError":
        text = str(error)  # messages written for the user (OutOfMemoryError: wbc_tf.inference)
    elif isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        text = "out of memory (try a smaller --short-side or --max-size)"
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


class Reporter:
    """Outcome counts, one stderr line per problem, and a progress bar (rate, ETA) while jobs run.

    Lines are written above the bar (``tqdm.write``), to ``sys.stderr`` as it is at that moment.

    Args:
        prog: the name at the start of each line (``wbc-cartoonize: error: a.jpg: too large ...``).
        quiet: no progress bar, no 'skipping' lines, no notes; failures are always printed.
        debug: also print the traceback of a failure that came with its exception.
    """

    def __init__(self, prog="wbc_tf", quiet=False, debug=False):
        self.prog = prog
        self.quiet = quiet
        self.debug = debug
        self.counts = collections.Counter()  # 'written', 'skipped', 'failed'
        self.failures = []                   # (path, reason), in the order reported
        self._bar = None
        self._lock = threading.Lock()

    # ---- lines -----------------------------------------------------------------------------------

    def _print(self, text):
        from tqdm import tqdm
        tqdm.write(text, file=sys.stderr)

    def failed(self, path, reason, error=None):
        """``path`` could not be done: one line ``PROG: error: PATH: REASON`` (+ traceback if debug)."""
        with self._lock:
            self.counts["failed"] += 1
            self.failures.append((str(path), reason))
            self._print(f"{self.prog}: error: {path}: {reason}")
            if self.debug and error is not None:
                self._print("".join(traceback.format_exception(error)).rstrip())
            self._advance()

    def skipped(self, path, reason):
        """``path`` was not done on purpose (e.g. its output exists); not an error."""
        with self._lock:
            self.counts["skipped"] += 1
            if not self.quiet:
                self._print(f"{self.prog}: skipping {path}: {reason}")
            self._advance()

    def done(self, path, target=None):
        """``path`` was written (to ``target``)."""
        with self._lock:
            self.counts["written"] += 1
            self._advance()

    def note(self, text):
        """An informational line (``PROG: note: TEXT``), not shown when quiet."""
        if not self.quiet:
            with self._lock:
                self._print(f"{self.prog}: note: {text}")

    def report_plan(self, plan):
        """Report a `Plan`'s failures and skips (before `start`: they are not on the bar)."""
        for path, reason in plan.failures:
            self.failed(path, reason)
        for path, reason in plan.skips:
            self.skipped(path, reason)

    # ---- progress --------------------------------------------------------------------------------

    def start(self, total, unit="file"):
        """Open the progress bar for ``total`` items (shown only on a terminal and when not quiet)."""
        from tqdm import tqdm
        self.close()
        self._bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True,
                         disable=True if self.quiet else None)

    def status(self, text):
        """Text after the bar, e.g. ``clip.mp4 frame 12/250`` (callable from any thread)."""
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(text, refresh=True)

    def _advance(self):
        if self._bar is not None:
            self._bar.set_postfix_str("", refresh=False)
            self._bar.update(1)

    def close(self):
        """Close the progress bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---- results ---------------------------------------------------------------------------------

    @property
    def any_failed(self):
        return self.counts["failed"] > 0

    def summary(self):
        """``'3 written, 1 skipped, 2 failed'``."""
        return ", ".join(f"{self.counts[k]} {k}" for k in ("written", "skipped", "failed"))


# --------------------------------------------------------------------------------------------
# The loop: read + pre-process ahead, network in the calling thread, post-process + write behind
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Loaded:
    """One item ready for the network, and what its ``save`` needs afterwards."""

    x: np.ndarray          # (1, Hn, Wn, 3) float32 BGR in [-1, 1], the network input
    geometry: object       # the `wbc_tf.inference.Geometry` of ``x``
    extra: object = None   # anything else ``save`` needs (e.g. the fitted alpha plane)


_END = object()


@functools.lru_cache(maxsize=1)
def gpu_available():
    """True when TensorFlow sees a GPU (asked once per process)."""
    import tensorflow as tf
    return bool(tf.config.list_physical_devices("GPU"))


def batch_limit(batch_size, shape, cartoonizer=None):
    """Inputs per network call for inputs of network ``shape`` (1, Hn, Wn, 3); see `BatchOptions`.

    Auto (``batch_size`` 0) on a GPU: up to `AUTO_BATCH_PIXELS` / `AUTO_BATCH_MAX`, and never so many
    that ``cartoonizer.tile_plan`` would tile the batch (over its memory budget).
    """
    if batch_size:
        return batch_size
    if not gpu_available():
        return 1
    limit = max(1, min(AUTO_BATCH_MAX, AUTO_BATCH_PIXELS // (shape[1] * shape[2])))
    tile_plan = getattr(cartoonizer, "tile_plan", None)
    while limit > 1 and tile_plan is not None and tile_plan(limit, shape[1], shape[2]) is not None:
        limit //= 2
    return limit


def _read(iterator, load):
    """Reader thread: the next item and its `Loaded` (or the exception ``load`` raised)."""
    item = next(iterator, _END)  # errors of the iteration itself (a broken video stream) propagate
    if item is _END:
        return _END, None, None
    try:
        return item, load(item), None
    except Exception as e:  # reported for this item; the loop goes on
        return item, None, e


def pipeline(items, load, save, cartoonizer, batch_size=BatchOptions.batch_size, on_error=None,
             on_done=None, prefetch=PREFETCH):
    """Run ``items`` through ``load`` → the network → ``save``, overlapping the three.

    Args:
        items: an iterable, consumed in the reader thread (so a generator that decodes video
            frames decodes there, ahead of the network).
        load: ``load(item) -> Loaded``, in the reader thread, in item order.
        save: ``save(item, y, loaded)``, in the writer thread, in item order; ``y`` is the
            (Hn, Wn, 3) float32 network output of ``loaded.x``.
        cartoonizer: a `wbc_tf.inference.Cartoonizer` (its ``run_network`` is called here).
        batch_size: most items per network call (only consecutive items of one size are batched);
            0 = auto (`batch_limit`). A batch that fails is retried one item at a time.
        on_error: ``on_error(item, exception)`` for an item whose load, network or save failed,
            called in this thread; the loop goes on. None: the first such exception is raised.
        on_done: ``on_done(item)`` after an item's ``save`` returned, in this thread.
        prefetch: items read ahead of the network (plus a batch's worth when batching).

    Returns:
        The number of items saved.

    Raises:
        Whatever the iteration of ``items`` raises, and KeyboardInterrupt; results already passed to
        the writer are still saved first.
    """
    reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wbc-read")
    writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wbc-write")
    iterator = iter(items)
    reads, writes = collections.deque(), collections.deque()
    # ahead: reads in flight beyond the one waited for; a whole next batch once batches form, so
    # the reader fills batch k + 1 while the network runs on batch k.
    state = {"ended": False, "saved": 0, "ahead": prefetch}

    def fail(item, error):
        if on_error is None:
            raise error
        on_error(item, error)

    def next_loaded():
        """The next (item, Loaded) whose load worked, or None at the end."""
        while True:
            while not state["ended"] and len(reads) <= state["ahead"]:
                reads.append(reader.submit(_read, iterator, load))
            if not reads:
                return None
            item, loaded, error = reads.popleft().result()
            if item is _END:
                state["ended"] = True
                reads.clear()  # reads queued after the end only find the end again
                continue
            if error is not None:
                fail(item, error)
                continue
            return item, loaded

    def finish_writes(keep):
        while len(writes) > keep:
            item, future = writes.popleft()
            try:
                future.result()
            except Exception as e:
                fail(item, e)
                continue
            state["saved"] += 1
            if on_done is not None:
                on_done(item)

    def run_batch(batch):
        x = batch[0][1].x if len(batch) == 1 else np.concatenate([loaded.x for _, loaded in batch])
        try:
            y = cartoonizer.run_network(x)  # (B, Hn, Wn, 3) float32
        except Exception as e:
            if len(batch) > 1:  # e.g. out of memory for the batch: one at a time
                for one in batch:
                    run_batch([one])
                return
            fail(batch[0][0], e)
            return
        for i, (item, loaded) in enumerate(batch):
            writes.append((item, writer.submit(save, item, y[i], loaded)))
        finish_writes(keep=MAX_QUEUED_WRITES)

    try:
        waiting = None  # an item that did not fit the previous batch
        while True:
            first = waiting or next_loaded()
            waiting = None
            if first is None:
                break
            batch, shape = [first], first[1].x.shape
            limit = batch_limit(batch_size, shape, cartoonizer)
            state["ahead"] = prefetch + limit - 1
            while len(batch) < limit:
                following = next_loaded()
                if following is None:
                    break
                if following[1].x.shape != shape:
                    waiting = following
                    break
                batch.append(following)
            run_batch(batch)
        finish_writes(keep=0)
    finally:
        reader.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)  # results handed over are written (each write is atomic)
    return state["saved"]


# --------------------------------------------------------------------------------------------
# Images and videos as files
# --------------------------------------------------------------------------------------------

def prepare(cartoonizer, bgr, alpha=None):
    """uint8 BGR (+ optional alpha) → `Loaded` (the alpha plane fitted like the picture)."""
    x, geometry = cartoonizer.preprocess(bgr)
    return Loaded(x, geometry, None if alpha is None else cartoonizer.fit_alpha(alpha))


def finish(cartoonizer, y, loaded):
    """Network output (Hn, Wn, 3) of a `Loaded` → ``(bgr, alpha)`` uint8 at the output size."""
    return cartoonizer.postprocess(y, loaded.geometry, loaded.x), loaded.extra  # x: a --strength blend


class WriteError(Exception):
    """An output could not be encoded or written (disk full, permissions, codec)."""


def run(jobs, cartoonizer, reporter, options=BatchOptions()):
    """Cartoonize ``jobs`` (a `Plan`'s); every outcome goes to ``reporter``, nothing stops the loop.

    Images go through `pipeline`, videos through `wbc_tf.video.cartoonize_video`, one after the other.

    Args:
        jobs: `Job` s.
        cartoonizer: a `wbc_tf.inference.Cartoonizer`.
        reporter: a `Reporter`.
        options: `BatchOptions` (``keep_alpha``, ``jpg_quality``, ``max_pixels``, ``batch_size``; videos:
            ``start``, ``duration``).
    """
    images = [job for job in jobs if not job.video]
    videos = [job for job in jobs if job.video]

    def load(job):
        bgr, alpha = read_image(job.source, keep_alpha=options.keep_alpha, max_pixels=options.max_pixels)
        return prepare(cartoonizer, bgr, alpha)

    def save(job, y, loaded):
        bgr, alpha = finish(cartoonizer, y, loaded)
        try:
            os.makedirs(os.path.dirname(job.target) or ".", exist_ok=True)
            write_image(job.target, bgr, alpha, options.jpg_quality)
        except Exception as e:
            raise WriteError(f"cannot write {job.target}: {describe_error(e)}") from e

    reporter.start(len(jobs))
    try:
        pipeline(images, load, save, cartoonizer, options.batch_size,
                 on_error=lambda job, e: reporter.failed(job.source, describe_error(e), e),
                 on_done=lambda job: reporter.done(job.source, job.target))
        for job in videos:
            _run_video(job, cartoonizer, reporter, options)
    finally:
        reporter.close()


def _run_video(job, cartoonizer, reporter, options=BatchOptions()):
    """One video; the bar's text shows ``clip.mp4 frame 120/250, 24.1 frames/s, ETA 00:05``."""
    import time

    from tqdm import tqdm

    from wbc_tf.video import cartoonize_video
    name = os.path.basename(job.source)
    started = time.monotonic()

    def on_frame(index, total):
        rate = index / max(time.monotonic() - started, 1e-9)
        eta = f", ETA {tqdm.format_interval((total - index) / rate)}" if total > index else ""
        reporter.status(f"{name} frame {index}/{total or '?'}, {rate:.1f} frames/s{eta}")

    try:
        os.makedirs(os.path.dirname(job.target) or ".", exist_ok=True)
        cartoonize_video(job.source, job.target, cartoonizer, on_frame, start=options.start,
                         duration=options.duration, batch_size=options.batch_size,
                         max_pixels=options.max_pixels)
    except Exception as e:  # unreadable, truncated, codec: report, go on
        reporter.failed(job.source, describe_error(e), e)
        return
    reporter.done(job.source, job.target)


def cartoonize_bytes(data, cartoonizer, options=BatchOptions(), ext=None):
    """One encoded image in, one encoded image out, with the checks of `run` (e.g. ``max_pixels``).

    Args:
        data: the bytes of an image file.
        cartoonizer: a `wbc_tf.inference.Cartoonizer`.
        options: `BatchOptions` (``keep_alpha``, ``jpg_quality``, ``max_pixels``).
        ext: output extension with the dot; default `BatchOptions.image_ext`.

    Returns:
        The encoded output (bytes).

    Raises:
        wbc_tf.image_io.ImageReadError: bad input (`wbc_tf.image_io.ImageTooLarge` over the limit).
    """
    bgr, alpha = decode_image(data, keep_alpha=options.keep_alpha, max_pixels=options.max_pixels)
    loaded = prepare(cartoonizer, bgr, alpha)
    bgr, alpha = finish(cartoonizer, cartoonizer.run_network(loaded.x)[0], loaded)
    return encode_image(ext or options.image_ext, bgr, alpha, options.jpg_quality).tobytes()
