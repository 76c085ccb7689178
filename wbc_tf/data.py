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

Design: **step-indexed sampling.** Batch ``t`` is a pure function of ``(seed, phase, t)``: its
domain is ``t % face_every == 0``, its files are a random ``batch_size``-subset of that domain's
folder (no duplicates inside a batch, independent across steps: the original's
``np.random.shuffle`` of the whole list then ``[:16]``), and its crops/flips use stateless seeds
folded from ``t``. Photo and cartoon come from the same domain, drawn independently. So
``make_train_dataset(..., start_step=t)`` resumes the data stream exactly where a killed run left
it; no iterator state needs checkpointing. Steps are decoded in parallel (``AUTOTUNE``) with
order kept (``deterministic=True``).

Bad files: `scan_training_data` decodes every file once with the same decoder the pipeline uses
(in a parallel ``tf.data`` pass with ``ignore_errors``). Files it cannot
decode are reported once (one warning) and left out. If a file breaks later (deleted during the
run), reading its step raises the ``tf.data`` error (``NotFoundError`` naming the file): the
trainer stops with that message (`wbc_tf.trainer.RunStopped`) instead of skipping steps, which
would loop forever once a whole folder is gone, and the next run resumes at the last checkpoint.

Example::

    data = scan_training_data("dataset", TrainConfig())
    print(data.summary())
    for photo, cartoon in make_train_dataset(data, TrainConfig()).take(1):
        ...                                            # 2 × (16, 256, 256, 3) float32 BGR
"""

import dataclasses
import logging
import os

import numpy as np
import tensorflow as tf

from wbc_tf.tf_decode import decode_like_imread

log = logging.getLogger(__name__)

TWO_DOMAIN_FOLDERS = {"face": ("photo_face", "cartoon_face"),
                      "scenery": ("photo_scenery", "cartoon_scenery")}
ONE_DOMAIN_FOLDERS = {"all": ("photo", "cartoon")}
# Seed streams: every random choice in the pipeline gets its own (seed, stream) pair.
_PHASE_STREAM = {"pretrain": 0, "train": 1, "samples": 2}
_ROLE_STREAM = {"photo": 0, "cartoon": 1}
_MAX_LISTED = 10  # bad or small files named in one message


class DataError(ValueError):
    """The dataset folder cannot be used: missing folders, too few images, images too small."""


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """One scanned folder: readable images (sorted) and what was left out.

    Attributes:
        path: the folder.
        files: readable image paths, sorted.
        sizes: (H, W) of each readable image, aligned with ``files``.
        unreadable: paths the decoder could not decode (skipped).
    """

    path: str
    files: tuple
    sizes: tuple
    unreadable: tuple

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

    Domains are ``("face", "scenery")`` for the original layout or ``("all",)``.
    """

    root: str
    domains: dict

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


def _decode_rgb(path):
    """(H, W, 3) uint8 RGB of one file, decoded as ``cv2.imread`` decodes it (EXIF orientation applied)."""
    return decode_like_imread(tf.io.read_file(path))


def _scan_folder(folder):
    """Decode every file once; return an `ImageFolder` with the readable ones and their sizes."""
    files = _list_files(folder)
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.string, shape=[len(files)]))
    ds = ds.map(lambda p: (p, tf.shape(_decode_rgb(p))[:2]),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()
    readable = {p.decode(): (int(hw[0]), int(hw[1])) for p, hw in ds.as_numpy_iterator()}
    ok = [f for f in files if f in readable]
    bad = tuple(f for f in files if f not in readable)
    if bad:
        listed = ", ".join(os.path.basename(f) for f in bad[:_MAX_LISTED])
        more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        log.warning("%s: skipping %d unreadable file(s): %s%s", folder, len(bad), listed, more)
    return ImageFolder(folder, tuple(ok), tuple(readable[f] for f in ok), bad)


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


def scan_training_data(root, config, need_cartoons=True):
    """Find the folders under ``root``, decode every image once and check the dataset is usable.

    Args:
        root: the ``--data`` directory.
        config: a `TrainConfig` (patch_size, batch_size, resize_small).
        need_cartoons: False for pre-training only, which reads just the photo folders.

    Returns:
        `TrainingData`.

    Raises:
        DataError: a folder is missing, has fewer than ``batch_size`` readable images, or holds
            images smaller than ``patch_size`` while ``resize_small`` is off.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"--data {root!r} is not a directory")
    layout = _layout(root, need_cartoons)
    domains, problems = {}, []
    for domain, (photo_name, cartoon_name) in layout.items():
        names = (photo_name, cartoon_name) if need_cartoons else (photo_name,)
        folders = [_scan_folder(os.path.join(root, n)) for n in names]
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
    return TrainingData(root, domains)


def _seed(config, phase, role, purpose):
    # A (2,) int64 stateless seed, distinct for every (phase, role, purpose) stream.
    return tf.constant([config.seed, (_PHASE_STREAM[phase] * 4 + _ROLE_STREAM[role]) * 4 + purpose],
                       tf.int64)


def load_patch(path, config, seed):
    """Read one image → (P, P, 3) float32 BGR in [-1, 1]: up-scale if allowed, crop, flip.

    ``seed`` is a (2,) stateless seed; an image of exactly P² is returned unchanged.
    """
    p = config.patch_size
    image = _decode_rgb(path)[..., ::-1]                       # (H, W, 3) uint8 BGR, like cv2.imread
    if config.resize_small:
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = tf.maximum(1.0, p / tf.reduce_min(hw))
        size = tf.cast(tf.math.ceil(hw * scale), tf.int32)
        image = tf.cond(scale > 1.0,
                        lambda: tf.cast(tf.round(tf.clip_by_value(
                            tf.image.resize(image, size, "bilinear"), 0.0, 255.0)), tf.uint8),
                        lambda: image)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image = tf.image.stateless_random_crop(image, [p, p, 3], crop_seed)
    if config.random_flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    # The original: cv2.imread(...).astype(np.float32) / 127.5 - 1 (same float32 ops, same values).
    return tf.cast(image, tf.float32) / 127.5 - 1.0


class _DomainTable:
    """All files of one role (photo or cartoon), concatenated over domains, with per-domain slices."""

    def __init__(self, data, role):
        index = 0 if role == "photo" else 1
        folders = [pair[index] for pair in data.domains.values()]
        self.files = tf.constant([f for folder in folders for f in folder.files], tf.string)
        counts = [len(folder.files) for folder in folders]
        self.counts = tf.constant(counts, tf.int32)
        self.offsets = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int32)

    def batch(self, domain_index, step, config, phase, role):
        """(B,) file paths of step ``step``: a random B-subset of the domain, no duplicates."""
        n = self.counts[domain_index]
        seed = tf.random.experimental.stateless_fold_in(_seed(config, phase, role, 0), step)
        keys = tf.random.stateless_uniform([n], seed)             # (n,)
        picks = tf.math.top_k(keys, k=config.batch_size).indices   # (B,) random order, distinct
        return tf.gather(self.files, self.offsets[domain_index] + picks)

    def patches(self, domain_index, step, config, phase, role):
        """(B, P, P, 3) float32 BGR patches of step ``step``."""
        paths = self.batch(domain_index, step, config, phase, role)
        base = tf.random.experimental.stateless_fold_in(_seed(config, phase, role, 1), step)
        # B is static: one decode op per image, run in parallel by the tf.data runtime.
        return tf.stack([load_patch(paths[i], config, tf.random.experimental.stateless_fold_in(base, i))
                         for i in range(config.batch_size)])


def _domain_index(step, data, config):
    # 0 = face (or the single domain), 1 = scenery: face when step % face_every == 0 (train.py L123).
    if not data.two_domains:
        return tf.constant(0, tf.int32)
    return tf.cast(tf.not_equal(step % config.face_every, 0), tf.int32)


def _step_dataset(element_fn, start_step):
    ds = tf.data.Dataset.counter(start=start_step)                   # steps t, t+1, … (int64)
    ds = ds.map(element_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # No ignore_errors: a file that breaks mid-run raises at its step (with every file gone, skipping
    # failed steps would loop forever without a word); the trainer turns it into one clear error.
    return ds.prefetch(tf.data.AUTOTUNE)


def make_pretrain_dataset(data, config, start_step=0):
    """Infinite photo batches for pre-training, starting at step ``start_step``.

    Yields (B, P, P, 3) float32 BGR [-1, 1]; face photos when ``t % face_every == 0`` (pretrain.py).
    """
    photos = _DomainTable(data, "photo")

    def element(step):
        return photos.patches(_domain_index(step, data, config), step, config, "pretrain", "photo")

    return _step_dataset(element, start_step)


def make_train_dataset(data, config, start_step=0):
    """Infinite ``(photo, cartoon)`` batches for adversarial training, starting at ``start_step``.

    Both (B, P, P, 3) float32 BGR [-1, 1], from the same domain (face when ``t % face_every == 0``).
    """
    if any(cartoon is None for _, cartoon in data.domains.values()):
        raise DataError("adversarial training needs the cartoon folders; scan with need_cartoons=True")
    photos, cartoons = _DomainTable(data, "photo"), _DomainTable(data, "cartoon")

    def element(step):
        d = _domain_index(step, data, config)
        return (photos.patches(d, step, config, "train", "photo"),
                cartoons.patches(d, step, config, "train", "cartoon"))

    return _step_dataset(element, start_step)


def sample_photos(data, config, count=4):
    """Fixed photos for the sample grids: ``{domain: (count, P, P, 3)}``, the same for the whole run."""
    photos = _DomainTable(data, "photo")
    count = min(count, config.batch_size)
    return {domain: photos.patches(tf.constant(i, tf.int32), tf.constant(0, tf.int64),
                                   config, "samples", "photo")[:count]
            for i, domain in enumerate(data.domains)}
