"""The training data pipeline: BGR values, the face/scenery schedule, resume, bad and odd-sized files.

Every test image is one flat colour that encodes where it came from (`tests.helpers.write_dataset`):
blue = folder code (`FOLDER_BLUE`), green = 20 + 10 · file index, red = 200. So a batch tells which
folder and which files it was drawn from, exactly.
"""

import dataclasses
import logging
import os
import re

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.helpers import FOLDER_BLUE, write_dataset, write_flat_image
from wbc_tf import data as wbc_data
from wbc_tf import tf_decode
from wbc_tf.config import TrainConfig

TINY = TrainConfig(patch_size=32, batch_size=2)


def _to_uint8(batch):
    # Exact inverse of x / 127.5 - 1 for the values the pipeline produces.
    return np.round((np.asarray(batch) + 1.0) * 127.5).astype(int)


def _folders(batch):
    """Folder name of every image of a (B, P, P, 3) batch, read from its blue channel."""
    by_blue = {v: k for k, v in FOLDER_BLUE.items()}
    return [by_blue[b] for b in _to_uint8(batch)[:, 0, 0, 0]]


def _file_ids(batch):
    return [(g - 20) // 10 for g in _to_uint8(batch)[:, 0, 0, 1]]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"))


def test_batches_are_bgr_float32_in_range(dataset):
    data = wbc_data.scan_training_data(dataset, TINY)
    photo, cartoon = next(iter(wbc_data.make_train_dataset(data, TINY)))
    for batch in (photo, cartoon):
        assert batch.shape == (2, 32, 32, 3) and batch.dtype == tf.float32
        assert -1.0 <= float(tf.reduce_min(batch)) and float(tf.reduce_max(batch)) <= 1.0
    # step 0 is a face step: photo_face images are (B, G, R) = (10, 20 + 10 i, 200) on disk
    p = photo.numpy()
    np.testing.assert_array_equal(p[..., 0], np.float32(10) / np.float32(127.5) - np.float32(1))
    np.testing.assert_array_equal(p[..., 2], np.float32(200) / np.float32(127.5) - np.float32(1))
    assert sorted(_file_ids(photo)) == sorted(set(_file_ids(photo)))  # no duplicates in a batch


def _write(path, rgb, orientation=None, **kwargs):
    """Save with Pillow, optionally with an EXIF Orientation tag (APP1 in a JPEG, eXIf in a PNG)."""
    if orientation is not None:
        tags = Image.Exif()
        tags[0x0112] = orientation
        kwargs["exif"] = tags.tobytes()
    Image.fromarray(rgb).save(path, **kwargs)


DECODE_CASES = [f"JPEG, EXIF orientation {k}" for k in range(1, 9)] + [
    "PNG, EXIF orientation 6", "grey PNG", "grey JPEG", "RGBA PNG", "16-bit PNG", "16-bit grey PNG"]


@pytest.mark.parametrize("case", DECODE_CASES)
def test_files_decode_like_cv2_imread(tmp_path, astronaut_rgb, case):
    """Training images are exactly ``cv2.imread(path) / 127.5 - 1``, EXIF orientation applied; the
    decoder is the SavedModel's one (`wbc_tf.tf_decode`), so that gives the same pixels too."""
    rng = np.random.default_rng(1)
    rgb = np.ascontiguousarray(astronaut_rgb[100:164, 200:264])          # a real photo patch, 64²
    path = str(tmp_path / ("image.jpg" if "JPEG" in case else "image.png"))
    if case.startswith("JPEG"):
        _write(path, rgb, int(case[-1]), quality=90)
    elif case.startswith("PNG"):
        _write(path, rgb, 6)
    elif case.startswith("grey"):
        _write(path, rgb[..., 1], **({"quality": 90} if "JPEG" in case else {}))
    elif case == "RGBA PNG":
        _write(path, np.dstack([rgb, rng.integers(0, 256, (64, 64), dtype=np.uint8)]))   # alpha dropped
    else:                                              # 16-bit: cv2.imread keeps the high byte
        deep = (rgb[..., ::-1].astype(np.uint16) << 8) | rng.integers(0, 256, rgb.shape, dtype=np.uint16)
        cv2.imwrite(path, deep[..., 1] if "grey" in case else deep)
    config = TrainConfig(patch_size=64, batch_size=2)
    expected = cv2.imread(path).astype(np.float32) / 127.5 - 1   # the original loader
    patch = wbc_data.load_patch(path, config, tf.constant([0, 0], tf.int64))
    np.testing.assert_array_equal(patch.numpy(), expected)
    decoded = tf_decode.decode_like_imread(tf.io.read_file(path)).numpy()[..., ::-1]
    np.testing.assert_array_equal(decoded, cv2.imread(path))


def test_exif_rotated_photo_is_scanned_and_cropped_upright(tmp_path, astronaut_rgb):
    """A 40x56 JPEG with orientation 6 (or 8) is 56x40 for the scan, and its patches are windows
    of the upright image, as cv2.imread turns it."""
    root = tmp_path / "d"
    write_dataset(root, files_per_folder=2, size=(40, 40), layout="one")
    stored = np.ascontiguousarray(astronaut_rgb[100:140, 200:256])          # (40, 56)
    config = TrainConfig(patch_size=40, batch_size=2)
    for k in (6, 8):
        path = str(root / "photo" / f"rotated{k}.jpg")
        _write(path, stored, k, quality=95)
        upright = cv2.imread(path)
        assert upright.shape == (56, 40, 3)
        for seed in range(4):
            patch = _to_uint8(wbc_data.load_patch(path, config, tf.constant([seed, k], tf.int64)))
            assert any(np.array_equal(upright[y:y + 40], patch) for y in range(17)), (k, seed)
    photos = wbc_data.scan_training_data(str(root), config).domains["all"][0]
    sizes = dict(zip(map(os.path.basename, photos.files), photos.sizes))
    assert sizes["rotated6.jpg"] == sizes["rotated8.jpg"] == (56, 40)


def test_face_every_fifth_step_photo_and_cartoon_same_domain(dataset):
    data = wbc_data.scan_training_data(dataset, TINY)
    batches = list(wbc_data.make_train_dataset(data, TINY).take(12))
    for t, (photo, cartoon) in enumerate(batches):
        domain = "face" if t in (0, 5, 10) else "scenery"
        assert set(_folders(photo)) == {f"photo_{domain}"}, t
        assert set(_folders(cartoon)) == {f"cartoon_{domain}"}, t


@pytest.mark.parametrize("start", [3, 5, 7])
def test_resumed_stream_equals_uninterrupted_stream(dataset, start):
    data = wbc_data.scan_training_data(dataset, TINY)
    full = list(wbc_data.make_train_dataset(data, TINY).take(start + 4))
    resumed = list(wbc_data.make_train_dataset(data, TINY, start_step=start).take(4))
    for k, (photo, cartoon) in enumerate(resumed):
        t = start + k
        np.testing.assert_array_equal(photo.numpy(), full[t][0].numpy())
        np.testing.assert_array_equal(cartoon.numpy(), full[t][1].numpy())
        assert set(_folders(photo)) == {"photo_face" if t % 5 == 0 else "photo_scenery"}


def test_sampling_varies_across_steps_and_seeds(dataset):
    data = wbc_data.scan_training_data(dataset, TINY)
    picks = [tuple(_file_ids(p)) for p, _ in wbc_data.make_train_dataset(data, TINY).take(20)]
    assert len(set(picks)) > 3                          # independent random subsets, not a fixed order
    other = TrainConfig(patch_size=32, batch_size=2, seed=1)
    picks_1 = [tuple(_file_ids(p)) for p, _ in wbc_data.make_train_dataset(data, other).take(20)]
    assert picks != picks_1


def test_domains_of_different_sizes_and_another_face_every(tmp_path):
    root = write_dataset(tmp_path / "d", files_per_folder=3)
    for i in range(3, 9):                                  # photo_scenery: 9 files, photo_face: 3
        write_flat_image(os.path.join(root, "photo_scenery", f"{i:03d}.png"), "photo_scenery", i)
    config = TrainConfig(patch_size=32, batch_size=3, face_every=3)
    data = wbc_data.scan_training_data(root, config)
    seen = {"photo_face": set(), "photo_scenery": set()}
    for t, (photo, cartoon) in enumerate(wbc_data.make_train_dataset(data, config).take(30)):
        (folder,) = set(_folders(photo))
        assert folder == ("photo_face" if t % 3 == 0 else "photo_scenery")
        assert len(set(_file_ids(photo))) == 3
        seen[folder] |= set(_file_ids(photo))
    assert seen == {"photo_face": {0, 1, 2}, "photo_scenery": set(range(9))}


def test_pretrain_dataset_reads_photo_folders_only(tmp_path):
    root = write_dataset(tmp_path / "d")
    for name in ("cartoon_face", "cartoon_scenery"):
        for f in os.listdir(tmp_path / "d" / name):
            os.remove(tmp_path / "d" / name / f)
        os.rmdir(tmp_path / "d" / name)
    with pytest.raises(wbc_data.DataError, match="cartoon_face, cartoon_scenery"):
        wbc_data.scan_training_data(root, TINY)
    data = wbc_data.scan_training_data(root, TINY, need_cartoons=False)
    batches = list(wbc_data.make_pretrain_dataset(data, TINY, start_step=4).take(2))
    assert _folders(batches[0]) == ["photo_scenery"] * 2 and _folders(batches[1]) == ["photo_face"] * 2


def test_single_domain_layout(tmp_path):
    data = wbc_data.scan_training_data(write_dataset(tmp_path / "d", layout="one"), TINY)
    assert list(data.domains) == ["all"]
    for photo, cartoon in wbc_data.make_train_dataset(data, TINY).take(6):
        assert set(_folders(photo)) == {"photo"} and set(_folders(cartoon)) == {"cartoon"}


def test_exact_size_untouched_and_larger_cropped(tmp_path, rng):
    root = tmp_path / "d"
    write_dataset(root, files_per_folder=2, layout="one")
    exact = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    large = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "photo" / "exact.png"), exact)
    cv2.imwrite(str(root / "photo" / "large.png"), large)
    config = TrainConfig(patch_size=32, batch_size=2)
    out = wbc_data.load_patch(str(root / "photo" / "exact.png"), config, tf.constant([1, 2], tf.int64))
    np.testing.assert_array_equal(out.numpy(), exact.astype(np.float32) / np.float32(127.5) - 1)
    crop = _to_uint8(wbc_data.load_patch(str(root / "photo" / "large.png"), config, tf.constant([3, 4])))
    windows = [(y, x) for y in range(50 - 31) for x in range(60 - 31)
               if np.array_equal(large[y:y + 32, x:x + 32], crop)]
    assert len(windows) == 1                            # a true 32² window of the BGR image
    data = wbc_data.scan_training_data(str(root), config)
    assert "1 exactly 32², 3 larger → random crop" in data.summary(32)


def test_random_flip_is_off_by_default_and_mirrors_when_on(tmp_path):
    path = str(tmp_path / "ramp.png")
    ramp = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))  # (32, 32, 3)
    cv2.imwrite(path, ramp)
    expected = ramp.astype(np.float32) / np.float32(127.5) - 1
    off = TrainConfig(patch_size=32, batch_size=2)
    on = TrainConfig(patch_size=32, batch_size=2, random_flip=True)
    seeds = [tf.constant([0, s], tf.int64) for s in range(16)]
    assert all(np.array_equal(wbc_data.load_patch(path, off, s).numpy(), expected) for s in seeds)
    flipped = [bool(np.array_equal(wbc_data.load_patch(path, on, s).numpy(), expected[:, ::-1]))
               for s in seeds]
    kept = [bool(np.array_equal(wbc_data.load_patch(path, on, s).numpy(), expected)) for s in seeds]
    assert all(f != k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 16


def test_small_images_are_an_error_unless_resize_small(tmp_path):
    root = tmp_path / "d"
    write_dataset(root, layout="one")
    cv2.imwrite(str(root / "cartoon" / "tiny.png"), np.full((20, 40, 3), 7, np.uint8))
    with pytest.raises(wbc_data.DataError, match=r"smaller than patch_size 32 \(tiny.png\).*--resize-small"):
        wbc_data.scan_training_data(str(root), TINY)
    config = TrainConfig(patch_size=32, batch_size=2, resize_small=True)
    out = wbc_data.load_patch(str(root / "cartoon" / "tiny.png"), config, tf.constant([0, 0], tf.int64))
    assert out.shape == (32, 32, 3)
    np.testing.assert_array_equal(_to_uint8(out), 7)  # a flat image stays flat when scaled up


def test_unreadable_files_are_skipped_and_reported_once(tmp_path, caplog):
    root = tmp_path / "d"
    write_dataset(root, files_per_folder=3)
    face = root / "photo_face"
    (face / "garbage.png").write_bytes(b"not an image at all")
    (face / "empty.jpg").write_bytes(b"")
    good = (face / "000.png").read_bytes()
    (face / "truncated.png").write_bytes(good[: len(good) // 2])
    (face / ".DS_Store").write_bytes(b"\0\1")             # hidden files are not candidates
    os.makedirs(face / "subfolder")                       # nor are folders
    with caplog.at_level(logging.WARNING, logger="wbc_tf.data"):
        data = wbc_data.scan_training_data(str(root), TINY)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipping 3 unreadable file(s)" in warnings[0]
    assert all(n in warnings[0] for n in ("garbage.png", "empty.jpg", "truncated.png"))
    photo_face = data.domains["face"][0]
    assert [os.path.basename(f) for f in photo_face.files] == ["000.png", "001.png", "002.png"]
    assert len(photo_face.unreadable) == 3
    assert "3 unreadable skipped" in data.summary(32)
    for t, (photo, _) in enumerate(wbc_data.make_train_dataset(data, TINY).take(11)):
        assert set(_folders(photo)) == {"photo_face" if t % 5 == 0 else "photo_scenery"}


def test_missing_folders_and_too_few_images_are_clear_errors(tmp_path):
    with pytest.raises(wbc_data.DataError, match="not a directory"):
        wbc_data.scan_training_data(str(tmp_path / "nowhere"), TINY)
    os.makedirs(tmp_path / "d" / "photo_face")
    with pytest.raises(wbc_data.DataError, match="missing folder.*photo_scenery.*cartoon_face"):
        wbc_data.scan_training_data(str(tmp_path / "d"), TINY)
    root = write_dataset(tmp_path / "e", files_per_folder=3)
    with pytest.raises(wbc_data.DataError, match="has 3 readable images; batch_size 4"):
        wbc_data.scan_training_data(root, TrainConfig(patch_size=32, batch_size=4))


# --- fast reads (cache, JPEG windows): the pixels of load_patch ------------------------------------

def _fast_sources(folder, astronaut_rgb, coffee_rgb, scale=1):
    """Every kind of file the fast reads must get right, at sizes that are not multiples of 16:
    JPEGs with EXIF orientations 1..8 (4:2:0), 4:2:2, 4:4:4, progressive, grey, CMYK, one of exactly
    32², and PNGs: colour, grey, with EXIF orientation 6."""
    os.makedirs(folder, exist_ok=True)

    def photo(k, h, w):
        src = astronaut_rgb if k % 2 else coffee_rgb
        return np.ascontiguousarray(src[7 * k:7 * k + h * scale, 11 * k:11 * k + w * scale])

    for k in range(1, 9):
        _write(os.path.join(folder, f"orient{k}.jpg"), photo(k, 61 + 3 * k, 83 + 5 * k), k, quality=90)
    _write(os.path.join(folder, "s422.jpg"), photo(9, 75, 99), 6, quality=90, subsampling=1)
    _write(os.path.join(folder, "s444.jpg"), photo(10, 77, 91), 3, quality=90, subsampling=0)
    _write(os.path.join(folder, "progressive.jpg"), photo(11, 70, 97), 8, quality=85, progressive=True)
    _write(os.path.join(folder, "grey.jpg"), photo(12, 66, 93)[..., 1], 5, quality=90)
    Image.fromarray(photo(13, 71, 89)).convert("CMYK").save(os.path.join(folder, "cmyk.jpg"), quality=90)
    _write(os.path.join(folder, "exact.jpg"), photo(14, 32, 32), quality=90)
    _write(os.path.join(folder, "colour.png"), photo(15, 69, 87))
    _write(os.path.join(folder, "grey.png"), photo(16, 65, 95)[..., 0])
    _write(os.path.join(folder, "orient6.png"), photo(17, 63, 81), 6)


@pytest.fixture(scope="module")
def fast_root(tmp_path_factory, astronaut_rgb, coffee_rgb):
    root = tmp_path_factory.mktemp("fast")
    for name in ("photo", "cartoon"):
        _fast_sources(str(root / name), astronaut_rgb, coffee_rgb)
    return str(root)


def _kinds(data, config):
    """The read kinds the auto datasets use for this data (CACHED / WINDOW / FULL)."""
    cache = wbc_data._cache_for(data, config, ("photo", "cartoon"))
    return set().union(*(wbc_data._DomainTable(data, role, config, cache).kinds
                         for role in ("photo", "cartoon")))


@pytest.mark.parametrize("cache_mb, kinds", [(0, {wbc_data.WINDOW, wbc_data.FULL}),
                                             (64, {wbc_data.CACHED})])
def test_fast_reads_give_the_pixels_of_full_decodes(fast_root, cache_mb, kinds):
    """25 steps × 4 photo + 4 cartoon patches, random crops and flips: the cache and the JPEG
    windows give exactly the batches of decoding every file in full (`load_patch`) every step."""
    config = TrainConfig(patch_size=32, batch_size=4, random_flip=True, seed=3)
    data = wbc_data.scan_training_data(fast_root, config, cache_mb=cache_mb)
    assert _kinds(data, config) == kinds
    fast = wbc_data.make_train_dataset(data, config, start_step=5)
    full = wbc_data.make_train_dataset(data, config, start_step=5, decode="full")
    for t, (a, b) in enumerate(zip(fast.take(25), full.take(25))):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=f"step {5 + t}")


def test_partly_cached_up_scaled_and_pretrain_reads_match_full_decodes(tmp_path, astronaut_rgb, coffee_rgb):
    """A 1 MB cache holds a few of these (4x larger) files; the rest are JPEG windows or full
    decodes; ``resize_small`` up-scales the small ones (cached up-scaled). Pre-training's stream too."""
    for name in ("photo", "cartoon"):
        _fast_sources(str(tmp_path / name), astronaut_rgb, coffee_rgb, scale=4)
        cv2.imwrite(str(tmp_path / name / "small.png"), coffee_rgb[:20, :27])
        _write(str(tmp_path / name / "small.jpg"), astronaut_rgb[:25, :30], 6, quality=90)
    config = TrainConfig(patch_size=32, batch_size=4, resize_small=True, seed=1)
    data = wbc_data.scan_training_data(str(tmp_path), config, cache_mb=1)
    assert _kinds(data, config) == {wbc_data.CACHED, wbc_data.WINDOW, wbc_data.FULL}
    cached = data._cache["decoded"].entries
    assert 0 < len(cached) < 10 and any("small" in p for p in cached)     # the cheapest go in first
    pairs = [(wbc_data.make_train_dataset(data, config), wbc_data.make_train_dataset(data, config,
                                                                                     decode="full")),
             (wbc_data.make_pretrain_dataset(data, config), wbc_data.make_pretrain_dataset(
                 data, config, decode="full"))]
    for fast, full in pairs:
        for t, (a, b) in enumerate(zip(fast.take(20), full.take(20))):
            for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
                np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=f"step {t}")


def test_crop_offset_is_the_one_stateless_random_crop_takes():
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w, p = int(rng.integers(8, 90)), int(rng.integers(8, 90)), int(rng.integers(1, 8))
        seed = tf.constant(rng.integers(-2 ** 40, 2 ** 40, 2), tf.int64)
        grid = np.stack(list(np.meshgrid(np.arange(h), np.arange(w), indexing="ij")) + [np.zeros((h, w), int)],
                        -1)
        corner = tf.image.stateless_random_crop(tf.constant(grid, tf.int32), [p, p, 3], seed)[0, 0, :2]
        offset = wbc_data._crop_offset(tf.constant(h), tf.constant(w), p, seed)
        assert tuple(int(v) for v in offset) == tuple(corner.numpy()), (h, w, p)


def test_jpeg_window_equals_a_crop_of_the_full_decode(fast_root):
    """Every orientation and chroma layout, windows at the four corners, the edges and inside: the
    window of `_jpeg_window` equals that window of the full decode (without the margin it does not)."""
    window = tf.function(wbc_data._jpeg_window)
    rng = np.random.default_rng(2)
    p = 24
    for name in sorted(os.listdir(os.path.join(fast_root, "photo"))):
        if not name.endswith(".jpg"):
            continue
        data = tf.io.read_file(os.path.join(fast_root, "photo", name))
        full = tf_decode.decode_like_imread(data).numpy()
        h, w = full.shape[:2]
        k = tf_decode.exif_orientation(data)
        corners = [(0, 0), (0, w - p), (h - p, 0), (h - p, w - p), (0, (w - p) // 2), ((h - p) // 2, 0)]
        corners += [(int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))) for _ in range(6)]
        for y, x in corners:
            got = window(data, k, tf.constant(h), tf.constant(w), tf.constant(y), tf.constant(x), p)
            np.testing.assert_array_equal(got.numpy(), full[y:y + p, x:x + p], err_msg=f"{name} {(y, x)}")


def test_cache_takes_the_most_drawn_files_first_and_jpegs_last(tmp_path):
    """Scenery files are drawn 4x as often as face files (face_every 5); a JPEG saves less, as its
    window is cheap: a 1 MB cache of 360 kB images takes the two first scenery PNGs, 2 MB all four,
    then one scenery JPEG before any face file; the pre-training stream's cache holds photos only."""
    root = write_dataset(tmp_path / "d", files_per_folder=4, size=(300, 400))
    for i in range(4):                         # photo_scenery: JPEGs instead of PNGs
        path = os.path.join(root, "photo_scenery", f"{i:03d}.png")
        cv2.imwrite(path[:-4] + ".jpg", cv2.imread(path))
        os.remove(path)
    config = TrainConfig(patch_size=32, batch_size=2)
    expected = {1: ["cartoon_scenery/000.png", "cartoon_scenery/001.png"],
                2: ["cartoon_scenery/000.png", "cartoon_scenery/001.png", "cartoon_scenery/002.png",
                    "cartoon_scenery/003.png", "photo_scenery/000.jpg"]}
    scanned = wbc_data.scan_training_data(root, config, cache_mb=0)
    assert wbc_data._cache_for(scanned, config, ("photo", "cartoon")) is None
    for mb, names in expected.items():
        data = dataclasses.replace(scanned, cache_mb=mb)
        cache = wbc_data._cache_for(data, config, ("photo", "cartoon"))
        assert sorted(os.path.relpath(p, root) for p in cache.entries) == names
        assert cache.nbytes <= mb << 20
    data = dataclasses.replace(scanned, cache_mb=3)
    cache = wbc_data._cache_for(data, config, ("photo",))
    assert sorted(os.path.relpath(p, root) for p in cache.entries) == (
        [f"photo_face/{i:03d}.png" for i in range(4)] + [f"photo_scenery/{i:03d}.jpg" for i in range(4)])
    assert wbc_data._cache_for(data, config, ("photo",)) is cache          # built once


def _drain_in_thread(batches, steps):
    """Pull up to ``steps`` batches in a thread; return what it raised, or fail if it hangs."""
    import threading
    raised = []

    def pull():
        try:
            for _ in range(steps):
                next(batches)
        except Exception as err:  # noqa: BLE001  (the test inspects it)
            raised.append(err)

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    thread.join(timeout=300)                   # a hang guard, not a speed requirement
    assert not thread.is_alive(), "the data stream hangs"
    return raised


@pytest.mark.parametrize("layout", ["one", "jpeg"])
def test_a_folder_deleted_mid_run_is_a_data_error_not_a_hang(tmp_path, layout):
    """Once a folder is gone, the next step that reads it raises a DataError naming the file
    (PNG: full decodes; JPEG: windows). Steps are never skipped, so this cannot loop forever."""
    root = write_dataset(tmp_path / "d", layout="one")
    if layout == "jpeg":
        for name in ("photo", "cartoon"):
            for f in os.listdir(os.path.join(root, name)):
                path = os.path.join(root, name, f)
                cv2.imwrite(path[:-4] + ".jpg", cv2.imread(path))
                os.remove(path)
    data = wbc_data.scan_training_data(root, TINY, cache_mb=0)
    batches = wbc_data.checked(wbc_data.make_train_dataset(data, TINY, start_step=7), start_step=7)
    next(batches)
    for name in ("photo", "cartoon"):
        for f in os.listdir(os.path.join(root, name)):
            os.remove(os.path.join(root, name, f))
        os.rmdir(os.path.join(root, name))
    (err,) = _drain_in_thread(batches, 200)
    assert isinstance(err, wbc_data.DataError), repr(err)
    assert re.search(r"failed at step \d+ \(.*d/(photo|cartoon)/00\d\.(png|jpg)", str(err)), str(err)
    assert "\n" not in str(err) and "{{" not in str(err)


def test_cached_images_are_not_read_again(tmp_path):
    """With everything cached, deleting the folder changes nothing until the next scan."""
    root = write_dataset(tmp_path / "d", layout="one")
    data = wbc_data.scan_training_data(root, TINY)
    expected = [b[0].numpy() for b in wbc_data.make_train_dataset(data, TINY, decode="full").take(6)]
    batches = wbc_data.checked(wbc_data.make_train_dataset(data, TINY))
    first = next(batches)
    for name in ("photo", "cartoon"):
        for f in os.listdir(os.path.join(root, name)):
            os.remove(os.path.join(root, name, f))
    got = [first[0].numpy()] + [next(batches)[0].numpy() for _ in range(5)]
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
