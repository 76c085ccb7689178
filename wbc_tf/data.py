"""Training data: image folders → BGR [-1, 1] patch batches, one domain per step (docs/fidelity.md §10).

Layout of ``--data DIR`` (the original's ``train_code/dataset``)::

    DIR/photo_face/     DIR/cartoon_face/        faces: every ``face_every``-th step (t % 5 == 0)
    DIR/photo_scenery/  DIR/cartoon_scenery/     scenery: all other steps

or, for a single domain, ``DIR/photo/`` + ``DIR/cartoon/`` (used on every step). Pre-training
reads only the photo folders. Every non-hidden file directly inside a folder is a candidate
(sorted, not recursive, like ``utils.load_image_list``).

Each image becomes exactly what ``cv2.imread(path).astype(np.float32) / 127.5 - 1`` gives: float32
**BGR** in [-1, 1]. The whole training graph is BGR like the original. Files are decoded by
`wbc_tf.tf_decode.decode_like_imread`, the decoder of the exported SavedModel: pixel for pixel what
``cv2.imread`` returns (accurate JPEG IDCT, grey expanded, alpha dropped, 16-bit reduced to the high
byte, EXIF orientation applied).

Sizes: an image of exactly ``patch_size``² passes untouched (the original accepts nothing else).
Larger images get a random ``patch_size``² crop (not in the original). Smaller ones are an error
listing them, or, with ``resize_small=True``, are scaled up bilinearly until the short side
fits, then cropped. ``random_flip`` (off by default, docs/fidelity.md §11.23) flips patches horizontally.
`load_patch` is the definition of one patch: decode the whole file, crop, flip.

Design: **step-indexed sampling.** Batch ``t`` is a pure function of ``(seed, phase, t)``: its
domain is ``t % face_every == 0``, its files are a random ``batch_size``-subset of that domain's
folder (no duplicates inside a batch, independent across steps: the original's
``np.random.shuffle`` of the whole list then ``[:16]``), and its crops/flips use stateless seeds
folded from ``t``. Photo and cartoon come from the same domain, drawn independently. So
``make_train_dataset(..., start_step=t)`` resumes the data stream exactly where a killed run left
it; no iterator state needs checkpointing. Steps are decoded in parallel (``AUTOTUNE``) with
order kept (``deterministic=True``).

Speed: **no full-size decode per step for large sources.** A patch is read in one of three ways,
chosen per file once the folders are scanned, all giving exactly `load_patch`'s pixels (tested):

* ``CACHED``: from a one-time in-memory cache of decoded images (BGR uint8, after the
  ``resize_small`` up-scale), built when the first dataset is made, bounded by ``cache_mb``
  (``--data-cache-mb``; 0 = no cache). When not everything fits, the files drawn most often per
  step go first (a face file is drawn on 1 step in 5), and JPEGs last, as they have a cheap
  fallback. Building it decodes each cached file once more (the scan keeps only sizes); while a
  256 MiB chunk is filled, it is held twice.
* ``WINDOW``: a JPEG at least ``patch_size`` on both sides decodes only the crop window
  (``decode_and_crop_jpeg``, accurate IDCT). The window is mapped through the EXIF orientation
  onto the stored image, widened by `JPEG_MARGIN` px on each side (libjpeg's chroma upsampling
  treats the edge of a decoded region as the image edge: the window alone differs from a full
  decode at its border in about half the crops), then cut and turned upright.
* ``FULL``: anything else (PNG and other formats, images up-scaled by ``resize_small``) is
  decoded in full on every step, as `load_patch` does.

The crop offset is the one `tf.image.stateless_random_crop` draws for the same seed and the
upright image's size (`_crop_offset`), and the flip is the same op on the patch. Measured by
``benchmarks/bench_data.py`` (docs/benchmarks.md).

Bad files: `scan_training_data` decodes every file once with the same decoder the pipeline uses
(in a parallel ``tf.data`` pass with ``ignore_errors``). Files it cannot decode are reported once
(one warning) and left out. A file that breaks later (deleted or changed during the run) stops
the stream at the first step that reads it: iterating through `checked` turns that into a
`DataError` naming the file, at once. Steps are never skipped: skipping would pair later steps
with other batches than a resumed run gets, and would never end once every file is gone. Cached
images are not read again, so a deleted folder whose images are all cached is noticed at the
next start (its scan).

Example::

    data = scan_training_data("dataset", TrainConfig())
    print(data.summary(256))
    for photo, cartoon in checked(make_train_dataset(data, TrainConfig()).take(1)):
        ...                                            # 2 × (16, 256, 256, 3) float32 BGR
"""

import dataclasses
import logging
import os
import re

import numpy as np
import tensorflow as tf

from wbc_tf.config import ONE_DOMAIN_FOLDERS, TWO_DOMAIN_FOLDERS, RunOptions
from wbc_tf.tf_decode import apply_orientation, decode_like_imread, exif_orientation

log = logging.getLogger(__name__)

# Seed streams: every random choice in the pipeline gets its own (seed, stream) pair.
_PHASE_STREAM = {"pretrain": 0, "train": 1, "samples": 2}
_ROLE_STREAM = {"photo": 0, "cartoon": 1}
_MAX_LISTED = 10  # bad or small files named in one message

# How a file's patches are read on each step (see "Speed" above).
CACHED, WINDOW, FULL = 0, 1, 2
DECODE_MODES = ("auto", "full")   # make_*_dataset(decode=...): the three ways, or FULL for every file
JPEG_MARGIN = 16                  # px decoded around a JPEG crop window: one 16-px iMCU (2x2 chroma)
_CHUNK_BYTES = 256 << 20          # the cache is a few 1-D uint8 tensors of at most this size
_ALIGN = 64                       # byte alignment of each cached image (TF's tensor alignment)
# What caching a JPEG that would be read as a WINDOW saves, per byte, relative to caching a file read
# FULL: a 256² window of a 1080p JPEG costs about 40 % of its full decode (5.5 vs 15 ms of CPU).
_WINDOW_SAVING = 0.4


class DataError(ValueError):
    """The dataset folder cannot be used: missing folders, too few images, images too small, or a
    file that became unreadable during the run."""


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """One scanned folder: readable images (sorted) and what was left out.

    Attributes:
        path: the folder.
        files: readable image paths, sorted.
        sizes: (H, W) of each readable image as decoded (EXIF orientation applied), aligned with
            ``files``.
        unreadable: paths the decoder could not decode (skipped).
        jpeg: whether each readable file is a JPEG, aligned with ``files``.
        orientations: the EXIF orientation (1..8) `decode_like_imread` applies to each readable file.
    """

    path: str
    files: tuple
    sizes: tuple
    unreadable: tuple
    jpeg: tuple = ()
    orientations: tuple = ()

    def describe(self, patch_size):
        exact = sum(1 for h, w in self.sizes if h == w == patch_size)
        smaller = sum(1 for h, w in self.sizes if min(h, w) < patch_size)
        larger = len(self.files) - exact - smaller
        text = (f"{self.path}: {len(self.files)} images ({exact} exactly {patch_size}², "
                f"{larger} larger → random crop, {smaller} smaller)")
        if self.unreadable:
            text += f", {len(self.unreadable)} unreadable skipped"
        return text


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """The scanned dataset: ``{domain: (photo_folder, cartoon_folder or None)}``.

    Domains are ``("face", "scenery")`` for the original layout or ``("all",)``. ``cache_mb`` bounds
    the decoded-image cache the datasets build on first use (0: none).
    """

    root: str
    domains: dict
    cache_mb: int = RunOptions.data_cache_mb
    _cache: dict = dataclasses.field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def two_domains(self):
        return "face" in self.domains

    def summary(self, patch_size):
        lines = [f"data: {self.root} ({'face + scenery' if self.two_domains else 'single domain'})"]
        for photo, cartoon in self.domains.values():
            lines += ["  " + f.describe(patch_size) for f in (photo, cartoon) if f is not None]
        return "\n".join(lines)


def _list_files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if not f.startswith(".") and os.path.isfile(os.path.join(folder, f)))


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _decode_rgb(path):
    """(H, W, 3) uint8 RGB of one file, decoded as ``cv2.imread`` decodes it (EXIF orientation applied).

    A `tf.function`: every dataset calls the one graph of the decoder instead of building its own.
    """
    return decode_like_imread(tf.io.read_file(path))


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _probe(path):
    """What the pipeline needs to know of a file: (path, upright (H, W), is JPEG, EXIF orientation).

    One `tf.function`, so the decoder's graph is built once per process, not once per scan.
    """
    data = tf.io.read_file(path)
    return path, tf.shape(decode_like_imread(data))[:2], tf.io.is_jpeg(data), exif_orientation(data)


def _scan_folders(folders):
    """Decode every file of ``folders`` once (one parallel pass); return their `ImageFolder`s."""
    listed = [_list_files(folder) for folder in folders]
    files = [f for names in listed for f in names]
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.string, shape=[len(files)]))
    ds = ds.map(_probe, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()
    readable = {p.decode(): ((int(hw[0]), int(hw[1])), bool(jpeg), int(k))
                for p, hw, jpeg, k in ds.as_numpy_iterator()}
    out = []
    for folder, names in zip(folders, listed):
        ok = [f for f in names if f in readable]
        bad = tuple(f for f in names if f not in readable)
        if bad:
            shown = ", ".join(os.path.basename(f) for f in bad[:_MAX_LISTED])
            more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
            log.warning("%s: skipping %d unreadable file(s): %s%s", folder, len(bad), shown, more)
        sizes, jpeg, orientations = [tuple(c) for c in zip(*(readable[f] for f in ok))] or [(), (), ()]
        out.append(ImageFolder(folder, tuple(ok), sizes, bad, jpeg, orientations))
    return out


def _layout(root, need_cartoons):
    """Pick the two-domain or the single-domain layout, or raise naming the missing folders."""
    for layout in (TWO_DOMAIN_FOLDERS, ONE_DOMAIN_FOLDERS):
        needed = [p for pair in layout.values() for p in (pair if need_cartoons else pair[:1])]
        if all(os.path.isdir(os.path.join(root, p)) for p in needed):
            return layout
    missing = [p for p in ("photo_face", "photo_scenery", "cartoon_face", "cartoon_scenery")
               if not os.path.isdir(os.path.join(root, p))]
    if not need_cartoons:
        missing = [m for m in missing if m.startswith("photo")]
    raise DataError(
        f"{root}: missing folder(s) {', '.join(missing)}. Expected {root}/photo_face, photo_scenery, "
        f"cartoon_face, cartoon_scenery (the original layout) or {root}/photo + {root}/cartoon"
        + ("" if need_cartoons else " (pre-training needs only the photo folders)") + ".")


def scan_training_data(root, config, need_cartoons=True, cache_mb=RunOptions.data_cache_mb):
    """Find the folders under ``root``, decode every image once and check the dataset is usable.

    Args:
        root: the ``--data`` directory.
        config: a `TrainConfig` (patch_size, batch_size, resize_small).
        need_cartoons: False for pre-training only, which reads just the photo folders.
        cache_mb: memory for decoded images (``--data-cache-mb``), used by the datasets; 0: none.

    Returns:
        `TrainingData`.

    Raises:
        DataError: a folder is missing, has fewer than ``batch_size`` readable images, or holds
            images smaller than ``patch_size`` while ``resize_small`` is off.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"--data {root!r} is not a directory")
    if cache_mb < 0:
        raise ValueError(f"cache_mb must be >= 0, got {cache_mb}")
    layout = _layout(root, need_cartoons)
    names = {domain: pair if need_cartoons else pair[:1] for domain, pair in layout.items()}
    scanned = iter(_scan_folders([os.path.join(root, n) for pair in names.values() for n in pair]))
    domains, problems = {}, []
    for domain, pair in names.items():
        folders = [next(scanned) for _ in pair]
        for f in folders:
            if len(f.files) < config.batch_size:
                problems.append(f"{f.path} has {len(f.files)} readable images; batch_size "
                                f"{config.batch_size} needs at least that many")
            small = [p for p, (h, w) in zip(f.files, f.sizes) if min(h, w) < config.patch_size]
            if small and not config.resize_small:
                listed = ", ".join(os.path.basename(p) for p in small[:_MAX_LISTED])
                problems.append(f"{f.path} has {len(small)} image(s) smaller than patch_size "
                                f"{config.patch_size} ({listed}); resize them, or pass --resize-small")
        domains[domain] = (folders[0], folders[1] if need_cartoons else None)
    if problems:
        raise DataError("the dataset cannot be used:\n  " + "\n  ".join(problems))
    return TrainingData(root, domains, cache_mb)


def _seed(config, phase, role, purpose):
    # A (2,) int64 stateless seed, distinct for every (phase, role, purpose) stream.
    return tf.constant([config.seed, (_PHASE_STREAM[phase] * 4 + _ROLE_STREAM[role]) * 4 + purpose],
                       tf.int64)


# --- one patch --------------------------------------------------------------------------------------

def _upscaled_size(hw, p):
    """(scale, size) of the ``resize_small`` up-scale of an image of int (2,) size ``hw``: scale > 1
    only when the short side is below ``p``; size = ceil(hw · scale), int32 (2,)."""
    hw = tf.cast(hw, tf.float32)
    scale = tf.maximum(1.0, p / tf.reduce_min(hw))
    return scale, tf.cast(tf.math.ceil(hw * scale), tf.int32)


def _up_scaled(image, config):
    """``image`` (H, W, 3) uint8, up-scaled bilinearly if ``resize_small`` and its short side is
    below ``patch_size``. Each channel is interpolated alike, so RGB or BGR order gives the same values."""
    if not config.resize_small:
        return image
    scale, size = _upscaled_size(tf.shape(image)[:2], config.patch_size)
    return tf.cond(scale > 1.0,
                   lambda: tf.cast(tf.round(tf.clip_by_value(
                       tf.image.resize(image, size, "bilinear"), 0.0, 255.0)), tf.uint8),
                   lambda: image)


def _prepared(path, config):
    """(H, W, 3) uint8 BGR, like cv2.imread, up-scaled if ``resize_small`` and the image is small."""
    return _up_scaled(_decode_rgb(path)[..., ::-1], config)


def _source_rgb(path, config):
    """`_prepared`'s pixels in RGB order. The fast reads crop this and reverse the channels of the
    patch only: reversing a whole 1080p image costs several times its decode (measured)."""
    return _up_scaled(_decode_rgb(path), config)


def _finish(patch, config, flip_seed):
    """A (P, P, 3) uint8 BGR crop → flipped if ``random_flip``, float32 [-1, 1]."""
    if config.random_flip:
        patch = tf.image.stateless_random_flip_left_right(patch, flip_seed)
    # The original: cv2.imread(...).astype(np.float32) / 127.5 - 1 (same float32 ops, same values).
    return tf.cast(patch, tf.float32) / 127.5 - 1.0


def load_patch(path, config, seed):
    """Read one image → (P, P, 3) float32 BGR in [-1, 1]: up-scale if allowed, crop, flip.

    ``seed`` is a (2,) stateless seed; an image of exactly P² is returned unchanged. This decodes
    the whole file: it is the definition the datasets' faster reads reproduce.
    """
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    p = config.patch_size
    image = tf.image.stateless_random_crop(_prepared(path, config), [p, p, 3], crop_seed)
    return _finish(image, config, flip_seed)


def _crop_offset(height, width, p, seed):
    """(y, x) int32 of the ``p``² crop `tf.image.stateless_random_crop` takes from an (H, W, 3) image
    with this seed (its own arithmetic: uniform int32 draws modulo the number of positions)."""
    limit = tf.stack([height - p + 1, width - p + 1, 1])
    offset = tf.random.stateless_uniform([3], seed, maxval=tf.int32.max, dtype=tf.int32) % limit
    return offset[0], offset[1]


def _jpeg_window(data, orientation, height, width, y, x, p):
    """(p, p, 3) uint8 RGB: rows ``[y, y + p)``, columns ``[x, x + p)`` of the upright JPEG ``data``
    (upright size (height, width), EXIF ``orientation``), decoding only that part of the file."""
    # The upright image is T (the stored image D, transposed for 5..8) with its rows and/or columns
    # reversed, as in tf_decode.apply_orientation; map the window back onto D.
    transposed = orientation >= 5
    rows_reversed = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
    cols_reversed = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
    ty = tf.where(rows_reversed, height - y - p, y)
    tx = tf.where(cols_reversed, width - x - p, x)
    sy, sx = tf.where(transposed, tx, ty), tf.where(transposed, ty, tx)          # corner in D
    sh, sw = tf.where(transposed, width, height), tf.where(transposed, height, width)
    y0, x0 = tf.maximum(sy - JPEG_MARGIN, 0), tf.maximum(sx - JPEG_MARGIN, 0)
    y1, x1 = tf.minimum(sy + p + JPEG_MARGIN, sh), tf.minimum(sx + p + JPEG_MARGIN, sw)
    region = tf.io.decode_and_crop_jpeg(data, tf.stack([y0, x0, y1 - y0, x1 - x0]), channels=3,
                                        dct_method="INTEGER_ACCURATE")
    window = tf.slice(region, tf.stack([sy - y0, sx - x0, 0]), [p, p, 3])
    window = apply_orientation(window, orientation)
    window.set_shape([p, p, 3])
    return window


# --- the decoded-image cache ------------------------------------------------------------------------

class _DecodedCache:
    """Source images (`_source_rgb`: RGB uint8, up-scaled if small) packed into 1-D uint8 CPU tensors.

    ``entries[path] = (chunk, offset, H, W)``: the image is ``chunks[chunk][offset : offset + H·W·3]``
    in row-major (H, W, 3) order. The datasets' functions capture the chunks as inputs (not graph
    constants), so nothing is copied when a dataset is made.
    """

    def __init__(self, key, chunks, entries):
        self.key = key
        self.chunks = chunks
        self.entries = entries

    @property
    def nbytes(self):
        return sum(int(c.shape[0]) for c in self.chunks)

    def window(self, chunk, offset, width, y, x, p):
        """(p, p, 3) uint8 RGB at (y, x) of the image at ``(chunk, offset)`` of width ``width``."""
        row = tf.cast(width, tf.int64) * 3
        start = offset + tf.cast(y, tf.int64) * row
        bands = [lambda c=c: tf.slice(c, tf.reshape(start, [1]), tf.reshape(p * row, [1]))
                 for c in self.chunks]
        # (p·W·3,): the p whole rows holding the window; a copy of p rows, not of the image
        band = tf.switch_case(chunk, bands) if len(bands) > 1 else bands[0]()
        band = tf.reshape(band, tf.stack([p, tf.cast(row, tf.int32)]))
        return tf.reshape(tf.slice(band, tf.stack([0, 3 * x]), [p, 3 * p]), [p, p, 3])


def _read_plan(hw, jpeg, config):
    """FULL or WINDOW for an uncached file of upright size ``hw``: WINDOW for a JPEG needing no up-scale."""
    return WINDOW if jpeg and min(hw) >= config.patch_size else FULL


def _draw_rates(data, config, roles):
    """``[(folder, draws per step of each of its files)]`` for the folders of ``roles``."""
    shares = ({"face": 1.0 / config.face_every, "scenery": 1.0 - 1.0 / config.face_every}
              if data.two_domains else {"all": 1.0})
    out = []
    for domain, pair in data.domains.items():
        for role in roles:
            folder = pair[_ROLE_STREAM[role]]
            out.append((folder, shares[domain] * config.batch_size / len(folder.files)))
    return out


def _build_cache(data, config, roles):
    """The `_DecodedCache` of the files of ``roles`` that fit in ``data.cache_mb``, most useful first."""
    budget = data.cache_mb << 20
    p = config.patch_size
    candidates = []                                    # (-saving per byte, order, path, (H, W))
    for folder, rate in _draw_rates(data, config, roles):
        for path, hw, jpeg in zip(folder.files, folder.sizes, folder.jpeg):
            plan = _read_plan(hw, jpeg, config)
            if config.resize_small and min(hw) < p:
                hw = tuple(int(v) for v in _upscaled_size(tf.constant(hw), p)[1].numpy())
            saving = rate * (_WINDOW_SAVING if plan == WINDOW else 1.0)
            if saving > 0:
                candidates.append((-saving, len(candidates), path, hw))
    chosen, total = [], 0
    for _, _, path, (h, w) in sorted(candidates):
        size = -(-h * w * 3 // _ALIGN) * _ALIGN
        if total + size <= budget:
            chosen.append((path, (h, w)))
            total += size
    # Layout: images in order, each at an aligned offset, a new chunk when one would overflow.
    layout, chunk_sizes = [], [0]
    for path, (h, w) in chosen:
        start = -(-chunk_sizes[-1] // _ALIGN) * _ALIGN
        if start + h * w * 3 > _CHUNK_BYTES and chunk_sizes[-1] > 0:
            chunk_sizes.append(0)
            start = 0
        layout.append((len(chunk_sizes) - 1, start))
        chunk_sizes[-1] = start + h * w * 3
    paths = [path for path, _ in chosen]
    images = iter(tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string, shape=[len(paths)]))
                  .map(lambda f: _source_rgb(f, config), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True))
    chunks, entries, buffer = [], {}, None
    for (path, (h, w)), (chunk, start) in zip(chosen, layout):
        if buffer is None:
            buffer = np.empty(chunk_sizes[chunk], np.uint8)
        try:
            image = next(images).numpy()
        except tf.errors.OpError as err:
            raise DataError(f"{path}: unreadable since the scan ({_op_message(err)})") from err
        if image.shape != (h, w, 3):
            raise DataError(f"{path}: changed since the scan ({image.shape[:2]} px, was {(h, w)})")
        buffer[start:start + image.size] = image.reshape(-1)
        entries[path] = (chunk, start, h, w)
        if start + image.size == chunk_sizes[chunk]:       # the chunk's last image
            with tf.device("/cpu:0"):
                chunks.append(tf.constant(buffer))
            buffer = None
    if chosen:
        n_files = sum(len(folder.files) for folder, _ in _draw_rates(data, config, roles))
        log.info("decoded-image cache: %d of %d images, %.0f MB of --data-cache-mb %d",
                 len(chosen), n_files, sum(chunk_sizes) / 2 ** 20, data.cache_mb)
    return _DecodedCache((tuple(roles), p, config.resize_small), chunks, entries)


def _cache_for(data, config, roles):
    """The cache of ``data`` for these roles, built (or rebuilt for more roles or another patch) once."""
    if data.cache_mb <= 0:
        return None
    cache = data._cache.get("decoded")
    if cache is not None:
        cached_roles, p, resize_small = cache.key
        if set(roles) <= set(cached_roles) and (p, resize_small) == (config.patch_size, config.resize_small):
            return cache
        data._cache.clear()                                # free it before building the next one
    cache = data._cache["decoded"] = _build_cache(data, config, roles)
    return cache


# --- batches ----------------------------------------------------------------------------------------

class _DomainTable:
    """All files of one role (photo or cartoon), concatenated over domains, with per-domain slices,
    and how each file's patches are read (``CACHED``, ``WINDOW`` or ``FULL``)."""

    def __init__(self, data, role, config, cache=None, decode="auto"):
        folders = [pair[_ROLE_STREAM[role]] for pair in data.domains.values()]
        files = [f for folder in folders for f in folder.files]
        self.files = tf.constant(files, tf.string)
        counts = [len(folder.files) for folder in folders]
        self.counts = tf.constant(counts, tf.int32)
        self.offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int32)
        self.cache = cache
        self.reference = decode == "full"                  # every patch by load_patch itself
        rows = []                                          # (kind, H, W, orientation, chunk, offset)
        for folder in folders:
            for path, hw, jpeg, k in zip(folder.files, folder.sizes, folder.jpeg, folder.orientations):
                if decode == "full":
                    rows.append((FULL, *hw, k, 0, 0))
                elif cache is not None and path in cache.entries:
                    chunk, offset, h, w = cache.entries[path]
                    rows.append((CACHED, h, w, k, chunk, offset))
                else:
                    rows.append((_read_plan(hw, jpeg, config), *hw, k, 0, 0))
        columns = list(zip(*rows))
        self.kinds = sorted(set(columns[0]))
        # Per file: its kind's position in self.kinds (the branch of tf.switch_case that reads it).
        self.branch = tf.constant([self.kinds.index(kind) for kind in columns[0]], tf.int32)
        self.height, self.width, self.orientation, self.chunk = (tf.constant(c, tf.int32)
                                                                 for c in columns[1:5])
        self.offset = tf.constant(columns[5], tf.int64)

    def indices(self, domain_index, step, config, phase, role):
        """(B,) indices into ``files`` of step ``step``: a random B-subset of the domain, no duplicates."""
        n = self.counts[domain_index]
        seed = tf.random.experimental.stateless_fold_in(_seed(config, phase, role, 0), step)
        keys = tf.random.stateless_uniform([n], seed)             # (n,)
        picks = tf.math.top_k(keys, k=config.batch_size).indices   # (B,) random order, distinct
        return self.offsets[domain_index] + picks

    def patch(self, j, config, seed):
        """(P, P, 3) float32 BGR patch of file ``j``: `load_patch`'s pixels, read the file's way."""
        path = self.files[j]
        if self.reference:
            return load_patch(path, config, seed)
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        p, height, width = config.patch_size, self.height[j], self.width[j]

        def cached():
            y, x = _crop_offset(height, width, p, crop_seed)
            return self.cache.window(self.chunk[j], self.offset[j], width, y, x, p)

        def window():
            y, x = _crop_offset(height, width, p, crop_seed)
            return _jpeg_window(tf.io.read_file(path), self.orientation[j], height, width, y, x, p)

        def full():
            rgb = _source_rgb(path, config)
            y, x = _crop_offset(tf.shape(rgb)[0], tf.shape(rgb)[1], p, crop_seed)
            return tf.slice(rgb, tf.stack([y, x, 0]), [p, p, 3])

        branches = [{CACHED: cached, WINDOW: window, FULL: full}[kind] for kind in self.kinds]
        rgb = branches[0]() if len(branches) == 1 else tf.switch_case(self.branch[j], branches)
        rgb.set_shape([p, p, 3])
        return _finish(rgb[..., ::-1], config, flip_seed)

    def patches(self, domain_index, step, config, phase, role):
        """(B, P, P, 3) float32 BGR patches of step ``step``."""
        picks = self.indices(domain_index, step, config, phase, role)
        base = tf.random.experimental.stateless_fold_in(_seed(config, phase, role, 1), step)
        p = config.patch_size

        def one(args):                                 # image i of the batch: seed folded from int32 i
            j, i = args
            return self.patch(j, config, tf.random.experimental.stateless_fold_in(base, i))

        # One copy of the read graph for the whole batch (a loop whose iterations run in parallel),
        # not one per image: datasets are built and optimised B times faster.
        return tf.map_fn(one, (picks, tf.range(config.batch_size)), parallel_iterations=config.batch_size,
                         fn_output_signature=tf.TensorSpec([p, p, 3], tf.float32))


def _domain_index(step, data, config):
    # 0 = face (or the single domain), 1 = scenery: face when step % face_every == 0 (train.py L123).
    if not data.two_domains:
        return tf.constant(0, tf.int32)
    return tf.cast(tf.not_equal(step % config.face_every, 0), tf.int32)


def _step_dataset(element_fn, start_step):
    ds = tf.data.Dataset.counter(start=start_step)                   # steps t, t+1, … (int64)
    ds = ds.map(element_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # No ignore_errors: a step that cannot be read raises there (a DataError through `checked`),
    # instead of being skipped (which shifts every later batch and never ends once all files are gone).
    options = tf.data.Options()
    options.deterministic = True
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _tables(data, config, roles, decode):
    if decode not in DECODE_MODES:
        raise ValueError(f"decode must be one of {DECODE_MODES}, got {decode!r}")
    cache = _cache_for(data, config, roles) if decode == "auto" else None
    return [_DomainTable(data, role, config, cache, decode) for role in roles]


def make_pretrain_dataset(data, config, start_step=0, decode="auto"):
    """Infinite photo batches for pre-training, starting at step ``start_step``.

    Yields (B, P, P, 3) float32 BGR [-1, 1]; face photos when ``t % face_every == 0`` (pretrain.py).
    ``decode='full'`` decodes every file in full on every step (`load_patch`; the same values, slow:
    for tests and benchmarks); ``'auto'`` reads each file the fastest exact way (module doc).
    """
    (photos,) = _tables(data, config, ("photo",), decode)

    def element(step):
        return photos.patches(_domain_index(step, data, config), step, config, "pretrain", "photo")

    return _step_dataset(element, start_step)


def make_train_dataset(data, config, start_step=0, decode="auto"):
    """Infinite ``(photo, cartoon)`` batches for adversarial training, starting at ``start_step``.

    Both (B, P, P, 3) float32 BGR [-1, 1], from the same domain (face when ``t % face_every == 0``).
    ``decode`` as in `make_pretrain_dataset`.
    """
    if any(cartoon is None for _, cartoon in data.domains.values()):
        raise DataError("adversarial training needs the cartoon folders; scan with need_cartoons=True")
    photos, cartoons = _tables(data, config, ("photo", "cartoon"), decode)

    def element(step):
        d = _domain_index(step, data, config)
        return (photos.patches(d, step, config, "train", "photo"),
                cartoons.patches(d, step, config, "train", "cartoon"))

    return _step_dataset(element, start_step)


def _op_message(err):
    """The first line of a TensorFlow error, without its ``{{function_node …}}`` prefixes."""
    text = re.sub(r"\{\{[^}]*\}\}", "", getattr(err, "message", str(err))).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def checked(batches, start_step=0):
    """Iterate ``batches`` (a dataset of this module, or the strategy's distributed dataset of one),
    turning a step that fails to read its files into a `DataError` that names the file.

    Raises:
        DataError: at the first step whose files cannot be read or decoded any more.
    """
    iterator = iter(batches)
    step = start_step
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as err:
            raise DataError(f"the training data failed at step {step} ({_op_message(err)}); "
                            f"was a file deleted or changed since the run started?") from err
        yield batch
        step += 1


def sample_photos(data, config, count=4):
    """Fixed photos for the sample grids: ``{domain: (count, P, P, 3)}``, the same for the whole run."""
    (photos,) = _tables(data, config, ("photo",), "full")     # once per run: no cache needed
    count = min(count, config.batch_size)
    return {domain: photos.patches(tf.constant(i, tf.int32), tf.constant(0, tf.int64),
                                   config, "samples", "photo")[:count]
            for i, domain in enumerate(data.domains)}
