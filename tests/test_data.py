"""The training data pipeline: BGR values, the face/scenery schedule, resume, bad and odd-sized files.

Every test image is one flat colour that encodes where it came from (`tests.helpers.write_dataset`):
blue = folder code (`FOLDER_BLUE`), green = 20 + 10 · file index, red = 200. So a batch tells which
folder and which files it was drawn from, exactly.
"""

import logging
import os

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
