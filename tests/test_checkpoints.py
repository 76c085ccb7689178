"""wbc_tf.checkpoints: atomic writes and a full disk, leftovers of a killed run, finding checkpoints,
restoring only the newest phase (falling back within it), and refusing, without writing, when none can be
read.

Tiny stand-in checkpoints (one (3,) variable plus ``step`` and ``phase``), saved through
`tf.train.CheckpointManager` like the trainer's, so these tests train nothing.
"""

import errno
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from wbc_tf import checkpoints
from wbc_tf.checkpoints import CheckpointError, DiskFullError, NonFiniteError
from wbc_tf.generator import build_generator

NAMES = ("pretrain", "train")


def tree(root):
    """{relative path: (size, mtime_ns, bytes)} of every file and folder under ``root``."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.stat(path)
            content = open(path, "rb").read() if name in files else None
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns, content)
    return out


def save(ckpt_dir, name, step, value):
    """Save ``<name>-<step>`` holding w = [value] * 3 and phase = NAMES.index(name)."""
    ckpt = tf.train.Checkpoint(w=tf.Variable([value] * 3, dtype=tf.float32),
                               step=tf.Variable(step, dtype=tf.int64),
                               phase=tf.Variable(NAMES.index(name), dtype=tf.int64))
    return tf.train.CheckpointManager(ckpt, str(ckpt_dir), max_to_keep=10, checkpoint_name=name).save(step)


class Live:
    """The live objects a restore writes into; counts how often a checkpoint over them was asked for."""

    def __init__(self):
        self.w = tf.Variable([0.0] * 3)
        self.step = tf.Variable(0, dtype=tf.int64)
        self.phase = tf.Variable(0, dtype=tf.int64)
        self.asked = 0

    def checkpoint_of(self, phase):
        self.asked += 1
        return tf.train.Checkpoint(w=self.w, step=self.step, phase=self.phase)


@pytest.fixture
def run(tmp_path):
    """checkpoints/ with pretrain-2, train-0, train-2 (listed by the index), w = 2, 10, 12."""
    ckpt_dir = tmp_path / "run" / "checkpoints"
    save(ckpt_dir, "pretrain", 2, 2.0)
    save(ckpt_dir, "train", 0, 10.0)
    save(ckpt_dir, "train", 2, 12.0)
    return ckpt_dir


def truncate(ckpt_dir, prefix):
    data = ckpt_dir / f"{prefix}.data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)


# --- writing files ------------------------------------------------------------------------------------

def test_atomic_write_keeps_the_old_file_on_a_full_disk(tmp_path):
    path = tmp_path / "config.json"
    checkpoints.atomic_write_text(path, "old")

    def half_then_full(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=f"no space left on the device while writing {path}"):
        checkpoints.atomic_write(str(path), half_then_full)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["config.json"]   # temp file removed

    def denied(tmp):
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):                            # not a full disk: passed on as it is
        checkpoints.atomic_write(str(path), denied)
    full = tf.errors.UnknownError(None, None, "write failed: No space left on device")
    assert checkpoints.is_disk_full(full)
    assert not checkpoints.is_disk_full(tf.errors.UnknownError(None, None, "something else"))


def test_export_generator_never_writes_nan_and_survives_a_full_disk(tmp_path, monkeypatch):
    generator = build_generator(8, 1)
    h5, npz = checkpoints.export_generator(generator, str(tmp_path), "generator")
    before = tree(tmp_path)

    kernel = generator.weights[0]
    kernel.assign(np.where(np.arange(kernel.numpy().size).reshape(kernel.shape) == 3, np.nan, kernel.numpy()))
    with pytest.raises(NonFiniteError, match=f"{kernel.path} is not finite"):
        checkpoints.export_generator(generator, str(tmp_path), "generator")
    assert tree(tmp_path) == before

    kernel.assign(np.zeros(kernel.shape))

    def full(model, path, name="model"):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_generator_weights", full)
    with pytest.raises(DiskFullError, match="generator.weights.h5"):
        checkpoints.export_generator(generator, str(tmp_path), "generator")
    assert tree(tmp_path) == before                                 # old weights kept, no temp file


def test_clean_leftovers_removes_only_what_interrupted_writes_leave(tmp_path):
    run = tmp_path / "run"
    leftovers = ["checkpoints/train-4_temp/part-00000-of-00001.index", "checkpoints/checkpoint.tmp9f2c",
                 ".generator.weights.h5.123.tmp.weights.h5", ".config.json.123.tmp",
                 "samples/.train_000002.jpg.123.part"]
    kept = ["config.json", ".lock", "generator.weights.h5", "checkpoints/checkpoint",
            "checkpoints/train-2.index", "samples/train_000002.jpg", "logs/train/events.out.tfevents.1",
            "previous-20250101-000000/checkpoints/train-9_temp/x", "previous-20250101-000000/.a.1.tmp"]
    for name in leftovers + kept:
        os.makedirs(os.path.dirname(run / name), exist_ok=True)
        (run / name).write_bytes(b"x")
    removed = checkpoints.clean_leftovers(str(run))
    assert sorted(os.path.relpath(p, run) for p in removed) == sorted(
        ["checkpoints/train-4_temp"] + leftovers[1:])
    for name in kept:
        assert (run / name).is_file(), name
    assert not os.path.exists(run / "checkpoints" / "train-4_temp")


# --- finding and restoring ------------------------------------------------------------------------------

def test_candidates_newest_phase_and_orphans(run):
    (run / "train-3.index").write_bytes(b"half an index")            # a save killed before the index
    found = checkpoints.resume_candidates(str(run), NAMES)
    assert found[0] == 1
    assert [os.path.basename(p) for p in found[1]] == ["train-2", "train-0", "train-3"]
    assert checkpoints.parse_name(found[1][0]) == ("train", 2)
    assert checkpoints.resume_candidates(str(run.parent / "none"), NAMES) is None


def test_an_orphan_of_a_later_phase_does_not_start_it(tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    save(ckpt_dir, "pretrain", 2, 2.0)
    (ckpt_dir / "train-0.index").write_bytes(b"half")              # killed while entering phase 2
    phase, prefixes = checkpoints.resume_candidates(str(ckpt_dir), NAMES)
    assert phase == 0 and [os.path.basename(p) for p in prefixes] == ["pretrain-2"]
    os.remove(ckpt_dir / "checkpoint")                              # no index: every checkpoint an orphan
    assert checkpoints.resume_candidates(str(ckpt_dir), NAMES)[0] == 1


def test_restore_takes_the_newest_readable_of_the_newest_phase(run, caplog):
    live = Live()
    assert checkpoints.restore_newest(str(run), NAMES, live.checkpoint_of) == (1, str(run / "train-2"))
    assert live.w.numpy().tolist() == [12.0] * 3 and int(live.step) == 2 and int(live.phase) == 1

    truncate(run, "train-2")
    live = Live()
    with caplog.at_level(logging.WARNING, logger="wbc_tf.checkpoints"):
        assert checkpoints.restore_newest(str(run), NAMES, live.checkpoint_of) == (1, str(run / "train-0"))
    assert live.w.numpy().tolist() == [10.0] * 3 and int(live.step) == 0
    assert "restored train-0 after skipping unreadable checkpoint(s)" in caplog.text
    assert "train-2: " in caplog.text
    assert live.asked == 1                              # the truncated one failed before touching the objects


def test_no_readable_checkpoint_of_the_newest_phase_refuses_and_writes_nothing(run):
    truncate(run, "train-2")
    os.remove(run / "train-0.data-00000-of-00001")
    before = tree(run.parent)
    live = Live()
    with pytest.raises(CheckpointError) as info:
        checkpoints.restore_newest(str(run), NAMES, live.checkpoint_of)
    message = str(info.value)
    assert message.startswith(f"cannot resume: no train checkpoint in {run} can be read (nothing in the run "
                              f"folder was changed):\n  train-2: ")
    assert "\n  train-0: OpError: " in message and "train-0.data-00000-of-00001; No such file" in message
    assert "(pretrain-2) are not used" in message and "--no-resume" in message
    assert live.asked == 0 and live.w.numpy().tolist() == [0.0] * 3   # pretrain-2 was not restored
    assert tree(run.parent) == before


def test_checkpoints_of_another_program_are_an_error(tmp_path):
    ckpt = tf.train.Checkpoint(w=tf.Variable(1.0))
    tf.train.CheckpointManager(ckpt, str(tmp_path), max_to_keep=2).save()        # ckpt-1
    with pytest.raises(CheckpointError, match="checkpoints of another program .*ckpt-1"):
        checkpoints.resume_candidates(str(tmp_path), NAMES)


def test_phase_saver_names_and_keeps_checkpoints_and_maps_a_full_disk(tmp_path, monkeypatch):
    live = Live()
    saver = checkpoints.PhaseSaver(live.checkpoint_of(1), str(tmp_path), "train", keep=2)
    for step in (1, 2, 3):
        live.step.assign(step)
        assert saver.save(step) == str(tmp_path / "checkpoints" / f"train-{step}")
    assert [os.path.basename(p) for p in checkpoints.listed_checkpoints(str(tmp_path / "checkpoints"))] == [
        "train-3", "train-2"]

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "train-4_temp/part-00000: No space left on device")

    monkeypatch.setattr(saver._manager, "save", full)
    with pytest.raises(DiskFullError, match="train-4"):
        saver.save(4)
