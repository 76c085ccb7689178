"""Photos and videos → the training layout of ``wbc-train --data`` (``wbc-prepare-data``).

Each target folder (``photo_face``, ``photo_scenery``, ``cartoon_face``, ``cartoon_scenery``, or
``photo`` / ``cartoon``) gets its sources from the `PrepareConfig` field of the same name: image
files, videos, or folders of them (walked recursively; hidden entries and files with other
extensions are left out). Every image, and every sampled video frame, goes through:

1. **read**: images with `wbc_tf.image_io.read_image` (``cv2.imread`` semantics, EXIF orientation
   applied), in a few threads; videos with PyAV, one frame every ``every_seconds`` counted from
   the first frame (the display rotation applied), at most ``max_frames`` per video;
2. **too small**: a side below ``size`` is counted and skipped, or with ``upscale_small`` scaled
   up (bilinear) until the shorter side is ``size``;
3. **duplicates**: an image with the same pixels as an earlier one of the same target folder is
   dropped; with ``near_duplicate_bits`` > 0, so is one whose 64-bit difference hash
   (`difference_hash`) is within that many bits of an image already kept there;
4. **crops** of ``size``²: ``random`` (``crops_per_image`` positions drawn from a generator seeded
   with ``seed`` and the output name, so a crop does not depend on what else is processed),
   ``centre``, or ``resize`` (shorter side to ``size`` with INTER_AREA, then the centre crop);
5. **written** as ``OUTPUT_DIR/<folder>/<stem>_<index>.png`` (or ``.jpg``): ``stem`` is the source
   file's stem (``-2``, ``-3``, … for later sources of the same stem), ``index`` numbers the
   crops of an image, or frame × crops_per_image + crop for a video. Existing files are kept and
   counted unless ``overwrite``; files are written atomically.

A source that cannot be read costs one ``on_failure(path, reason)`` call and is counted; the rest
goes on. `prepare_dataset` returns the per-folder counts (`COLUMNS`); `format_report` prints them.

Example::

    config = PrepareConfig(photo=("holiday/",), cartoon=("anime/episode1.mkv",), mode="resize")
    report = prepare_dataset(config)       # {'photo': {'images': 120, 'written': 118, ...}, ...}
    print(format_report(report))
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import sys
import zlib

import cv2
import numpy as np

from wbc_tf.config import ONE_DOMAIN_LAYOUT, TWO_DOMAIN_LAYOUT
from wbc_tf.image_io import ImageReadError, read_image, write_image
from wbc_tf.video import is_video

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff",
                    ".pbm", ".pgm", ".ppm", ".pnm", ".jp2", ".avif")
# Report columns: images and video frames read; files written; outputs already there (kept);
# images dropped as exact or near duplicates, as too small; sources that could not be read or written.
COLUMNS = ("images", "written", "exists", "duplicates", "near_duplicates", "too_small", "failed")
_TIME_EPS = 1e-6  # seconds: a frame at 0.9999999 s counts as the one at 1 s


@dataclasses.dataclass(frozen=True)
class Source:
    """One input file and where its outputs go: ``<folder>/<stem>_<index>``."""

    folder: str
    path: str
    stem: str
    video: bool


@dataclasses.dataclass(frozen=True)
class Sample:
    """A decoded image or video frame: ``bgr`` (H, W, 3) uint8, its pixel digest and its dHash."""

    index: int
    bgr: np.ndarray
    digest: bytes
    dhash: int


# --- hashes and duplicates ---------------------------------------------------------------------------

def pixel_digest(bgr):
    """BLAKE2b digest of an image's shape and pixels: equal digests mean equal images."""
    bgr = np.ascontiguousarray(bgr)
    h = hashlib.blake2b(repr(bgr.shape).encode(), digest_size=16)
    h.update(bgr.data)
    return h.digest()


def difference_hash(bgr):
    """64-bit difference hash (dHash): grey, INTER_AREA down to 9×8, bit = pixel < its right neighbour.

    It depends on the brightness gradients of the whole picture, so re-encoding, resizing or a
    uniform brightness change move it by a few bits at most, while unrelated pictures differ in
    about half of them.
    """
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)  # (8, 9)
    bits = (small[:, 1:] > small[:, :-1]).ravel()                                    # (64,)
    return int(np.packbits(bits).view(">u8")[0])


def _popcount(values):
    """Set bits of each uint64 in ``values``."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values)
    return np.unpackbits(values.view(np.uint8)).reshape(-1, 64).sum(axis=1)


class DuplicateFilter:
    """The images kept so far in one target folder; `check` says whether a new one repeats one.

    Args:
        near_bits: Hamming distance of dHashes at or below which an image is a near duplicate
            (``PrepareConfig.near_duplicate_bits``); 0 = exact duplicates only.
    """

    def __init__(self, near_bits):
        self.near_bits = near_bits
        self._digests = set()
        self._hashes = np.empty(64, np.uint64)  # capacity doubles as images are kept
        self._count = 0

    def check(self, digest, dhash):
        """Return ``'duplicates'``, ``'near_duplicates'`` or None (new: remembered as kept)."""
        if digest in self._digests:
            return "duplicates"
        if self.near_bits and self._count:
            distances = _popcount(self._hashes[:self._count] ^ np.uint64(dhash))
            if int(distances.min()) <= self.near_bits:
                return "near_duplicates"
        self._digests.add(digest)
        if self._count == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.empty_like(self._hashes)])
        self._hashes[self._count] = dhash
        self._count += 1
        return None


# --- crops -------------------------------------------------------------------------------------------

def scale_short_side(bgr, size):
    """Scale so that the shorter side is exactly ``size`` (INTER_AREA down, bilinear up)."""
    h, w = bgr.shape[:2]
    if min(h, w) == size:
        return bgr
    scale = size / min(h, w)
    new_h, new_w = (size, max(size, round(w * scale))) if h <= w else (max(size, round(h * scale)), size)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(bgr, (new_w, new_h), interpolation=interpolation)


def crop_rng(seed, folder, name):
    """The generator of the random crops of output ``name`` (its stem and index) in ``folder``."""
    return np.random.default_rng([seed, zlib.crc32(f"{folder}/{name}".encode())])


def make_crops(bgr, config, folder, stem, first_index):
    """``[(name, crop)]``: the ``size``² crops of one image, named ``<stem>_<index>`` without extension.

    ``bgr`` must have both sides >= ``config.size`` (or ``upscale_small`` set, which scales it up).
    """
    size = config.size
    if min(bgr.shape[:2]) < size or config.mode == "resize":
        bgr = scale_short_side(bgr, size)
    h, w = bgr.shape[:2]
    if config.mode != "random":
        top, left = (h - size) // 2, (w - size) // 2
        return [(f"{stem}_{first_index:04d}", bgr[top:top + size, left:left + size])]
    crops = []
    for k in range(config.crops_per_image):
        name = f"{stem}_{first_index + k:04d}"
        rng = crop_rng(config.seed, folder, name)
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        crops.append((name, bgr[top:top + size, left:left + size]))
    return crops


# --- reading -----------------------------------------------------------------------------------------

def analyse(index, bgr):
    """`Sample` of one decoded image: the pixels plus the two hashes the duplicate filter needs."""
    return Sample(index, bgr, pixel_digest(bgr), difference_hash(bgr))


def video_frames(path, every_seconds, max_frames):
    """Yield ``(k, bgr)``: frame k (0, 1, …) is the first one at or after ``k · every_seconds``.

    Times are counted from the first decoded frame; the display rotation of the stream (phone
    videos) is applied, as a player would. A gap longer than ``every_seconds`` yields one frame.

    Raises:
        ImageReadError: not a video, no video stream, or undecodable data (after the frames so far).
    """
    try:
        import av
    except ImportError as e:
        raise ImageReadError("reading videos needs PyAV (pip install av)") from e
    try:
        container = av.open(os.fspath(path))
    except (av.error.FFmpegError, OSError) as e:
        raise ImageReadError(f"not a video PyAV can open ({e})") from e
    with container:
        if not container.streams.video:
            raise ImageReadError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame/slice threads in the decoder
        rate = float(stream.average_rate or 25)
        start, taken, due = None, 0, 0.0
        try:
            for n, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else n / rate
                start = t if start is None else start
                elapsed = t - start
                if elapsed + _TIME_EPS < due:
                    continue
                bgr = frame.to_ndarray(format="bgr24")                      # (H, W, 3) uint8
                turns = round((getattr(frame, "rotation", 0) or 0) / 90)    # counter-clockwise
                yield taken, np.ascontiguousarray(np.rot90(bgr, turns)) if turns % 4 else bgr
                taken += 1
                if max_frames and taken >= max_frames:
                    return
                due = (int((elapsed + _TIME_EPS) // every_seconds) + 1) * every_seconds
        except av.error.FFmpegError as e:
            raise ImageReadError(f"undecodable video data after {taken} frame(s) ({e})") from e
        if taken == 0:
            raise ImageReadError("no decodable video frame")


def _read(source):
    """Worker thread: the one `Sample` of an image source (videos are read in the main thread)."""
    bgr, _ = read_image(source.path, min_side=1)
    return [analyse(0, bgr)]


def _walk(folder, exclude):
    """Image and video files below ``folder`` (sorted, recursive), skipping hidden entries and ``exclude``."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and os.path.realpath(os.path.join(root, d)) != exclude)
        found += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")
                  and (os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS or is_video(f))]
    return found


def plan_sources(config):
    """``(sources, missing)``: the `Source` list in processing order, and the paths that do not exist.

    Files named twice for one folder (a file and its folder) count once. The output folder is never
    walked into, so a second run does not read its own outputs.
    """
    out_real = os.path.realpath(config.output_dir)
    sources, missing = [], []
    for folder, paths in config.sources().items():
        seen, stems = set(), collections.Counter()
        for item in paths:
            if os.path.isdir(item):
                files = _walk(item, os.path.join(out_real, folder))
            elif os.path.isfile(item):
                files = [item]
            else:
                missing.append((folder, item))
                continue
            for path in files:
                real = os.path.normcase(os.path.realpath(path))
                if real in seen:
                    continue
                seen.add(real)
                stem = os.path.splitext(os.path.basename(path))[0]
                stems[stem] += 1
                unique = stem if stems[stem] == 1 else f"{stem}-{stems[stem]}"
                sources.append(Source(folder, path, unique, is_video(path)))
    return sources, missing


def _prefetch(pool, sources, ahead):
    """Yield ``(source, future or None)`` in order, with up to ``ahead`` images being read in ``pool``."""
    pending = collections.deque()
    items = iter(sources)

    def submit():
        source = next(items, None)
        if source is not None:
            pending.append((source, None if source.video else pool.submit(_read, source)))

    for _ in range(ahead):
        submit()
    while pending:
        source, future = pending.popleft()
        submit()
        yield source, future


# --- the run -----------------------------------------------------------------------------------------

def _default_failure(path, reason):
    log.warning("%s: %s", path, reason)


class _Writer:
    """Turns the samples of one source into files and counts what happened to each."""

    def __init__(self, config, counts, filters, on_failure):
        self.config, self.counts, self.filters, self.on_failure = config, counts, filters, on_failure
        self.ext = "." + config.format
        self.per_sample = config.crops_per_image if config.mode == "random" else 1

    def add(self, source, sample):
        counts = self.counts[source.folder]
        counts["images"] += 1
        if min(sample.bgr.shape[:2]) < self.config.size and not self.config.upscale_small:
            counts["too_small"] += 1
            return
        verdict = self.filters[source.folder].check(sample.digest, sample.dhash)
        if verdict:
            counts[verdict] += 1
            return
        folder = os.path.join(self.config.output_dir, source.folder)
        for name, crop in make_crops(sample.bgr, self.config, source.folder, source.stem,
                                     sample.index * self.per_sample):
            target = os.path.join(folder, name + self.ext)
            if not self.config.overwrite and os.path.exists(target):
                counts["exists"] += 1
                continue
            try:
                write_image(target, np.ascontiguousarray(crop), jpg_quality=self.config.jpg_quality)
            except OSError as e:  # disk full, permissions: report, go on
                counts["failed"] += 1
                self.on_failure(source.path, f"cannot write {target}: {e}")
                continue
            counts["written"] += 1


def prepare_dataset(config, on_failure=None):
    """Fill ``config.output_dir`` from the sources of ``config``; returns the counts per target folder.

    Args:
        config: a `wbc_tf.config.PrepareConfig` with at least one source.
        on_failure: ``on_failure(path, reason)`` for each source that cannot be read or written
            (default: a warning on the ``wbc_tf.prepare_data`` logger).

    Returns:
        ``{folder: {column: count}}`` with the `COLUMNS`, for every target folder that has sources.

    Raises:
        ValueError: ``config`` has no sources.
    """
    from tqdm import tqdm

    on_failure = on_failure or _default_failure
    if not config.sources():
        raise ValueError("no sources: give images, videos or folders for at least one of "
                         + ", ".join(TWO_DOMAIN_LAYOUT + ONE_DOMAIN_LAYOUT))
    counts = {folder: dict.fromkeys(COLUMNS, 0) for folder in config.sources()}
    filters = {folder: DuplicateFilter(config.near_duplicate_bits) for folder in counts}
    sources, missing = plan_sources(config)
    for folder, path in missing:
        counts[folder]["failed"] += 1
        on_failure(path, "no such file or folder")
    for folder in counts:
        os.makedirs(os.path.join(config.output_dir, folder), exist_ok=True)
    writer = _Writer(config, counts, filters, on_failure)
    workers = config.workers or min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(sources), unit="file", file=sys.stderr, dynamic_ncols=True,
               disable=None if config.progress else True)
    with bar, concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="wbc-read") as pool:
        for source, future in _prefetch(pool, sources, ahead=workers + 1):
            bar.set_postfix_str(f"{source.folder}: {os.path.basename(source.path)}", refresh=False)
            try:
                if future is not None:
                    for sample in future.result():
                        writer.add(source, sample)
                else:
                    frames = video_frames(source.path, config.every_seconds, config.max_frames)
                    for k, bgr in frames:
                        writer.add(source, analyse(k, bgr))
                        bar.set_postfix_str(f"{source.folder}: {os.path.basename(source.path)} frame {k + 1}",
                                           refresh=False)
            except ImageReadError as e:
                counts[source.folder]["failed"] += 1
                on_failure(source.path, str(e))
            bar.update(1)
    return counts


def format_report(counts):
    """The counts of `prepare_dataset` as a plain-text table, one row per folder plus a total."""
    headers = ("folder",) + tuple(c.replace("_", " ") for c in COLUMNS)
    rows = [(folder,) + tuple(str(row[c]) for c in COLUMNS) for folder, row in counts.items()]
    if len(rows) > 1:
        rows.append(("total",) + tuple(str(sum(row[c] for row in counts.values())) for c in COLUMNS))
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(cell.ljust(wd) if i == 0 else cell.rjust(wd)
                         for i, (cell, wd) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers)] + [line(r) for r in rows])


def missing_layout_folders(output_dir):
    """Training folders ``output_dir`` still lacks: [] when one of the two layouts is complete."""
    gaps = []
    for layout in (TWO_DOMAIN_LAYOUT, ONE_DOMAIN_LAYOUT):
        lacking = [f for f in layout if not os.path.isdir(os.path.join(output_dir, f))]
        if not lacking:
            return []
        gaps.append(lacking)
    started_single = len(gaps[1]) < len(ONE_DOMAIN_LAYOUT)  # photo/ or cartoon/ is there
    return gaps[1] if started_single else gaps[0]
