"""wbc_tf.run_folder: the lock (a second process refused, a killed one never blocks), which configuration
changes a resume accepts, and --no-resume's set-aside (moves, never deletes). No TensorFlow needed."""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys

import pytest

from wbc_tf import run_folder
from wbc_tf.config import RunOptions, TrainConfig
from wbc_tf.run_folder import ConfigMismatch, RunFolderBusy, RunLock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record(config=TrainConfig(), **run):
    return {"config": dataclasses.asdict(config), "run": dataclasses.asdict(RunOptions(**run))}


def write_record(run_dir, rec):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(rec, f)


def test_a_second_lock_on_the_folder_is_refused_until_released(tmp_path):
    first = RunLock(str(tmp_path))
    assert first.acquire()
    first.record_owner()
    with pytest.raises(RunFolderBusy, match=rf"in use by another wbc-train process \(pid {os.getpid()} on "):
        RunLock(str(tmp_path)).acquire(create=False)              # flock: per open file, even in one process
    first.release()
    with RunLock(str(tmp_path)) as second:
        assert second.acquire(create=False) and second.held
    assert not second.held


def test_acquire_without_create_changes_nothing(tmp_path):
    assert RunLock(str(tmp_path)).acquire(create=False) is False
    assert os.listdir(tmp_path) == []


def test_a_killed_process_leaves_no_blocking_lock(tmp_path):
    code = ("import sys, time; from wbc_tf.run_folder import RunLock; lock = RunLock(sys.argv[1]); "
            "lock.acquire(); lock.record_owner(); print('locked', flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             cwd=REPO)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=f"pid {child.pid} on "):
            RunLock(str(tmp_path)).acquire()
    finally:
        child.send_signal(signal.SIGKILL)                         # no clean-up code runs
        child.wait()
        child.stdout.close()
    assert os.path.isfile(tmp_path / ".lock")                     # the file stays; its lock is gone
    with RunLock(str(tmp_path)) as lock:
        assert lock.acquire()


def test_resume_refuses_incompatible_changes_listing_each_key(tmp_path):
    old = TrainConfig(channels=8, disc_channels=8, batch_size=2)
    write_record(tmp_path, record(old, data="d"))
    new = dataclasses.replace(old, channels=16, disc_channels=32, batch_size=4, sn_update="once_per_d_step",
                              train_steps=7)
    with pytest.raises(ConfigMismatch) as info:
        run_folder.check_resume(str(tmp_path), record(new, data="d"))
    listed = [line.strip() for line in str(info.value).splitlines() if line.startswith("  ")]
    assert listed == ["batch_size: 2 -> 4", "channels: 8 -> 16", "disc_channels: 8 -> 32",
                      "sn_update: 'every_call' -> 'once_per_d_step'"]
    assert "--no-resume" in str(info.value)


def test_resume_accepts_schedule_and_learning_rate_changes_and_warns_about_data(tmp_path, caplog):
    write_record(tmp_path, record(TrainConfig(), data="d1", vgg_weights="v1.npy"))
    new = TrainConfig(train_steps=150_000, pretrain_steps=1, save_every=10, sample_every=10,
                      keep_checkpoints=3, learning_rate=1e-4, superpixel_workers=2)
    with caplog.at_level(logging.INFO, logger="wbc_tf.run_folder"):
        changed = run_folder.check_resume(str(tmp_path), record(new, data="d2", vgg_weights="v1.npy",
                                                                 progress=False, strategy="mirrored"))
    assert set(changed) == {"train_steps", "pretrain_steps", "save_every", "sample_every", "keep_checkpoints",
                            "learning_rate", "superpixel_workers"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["--data differs from the run's ('d1', now 'd2'); resuming with the new one"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wbc_tf.run_folder"):
        run_folder.check_resume(str(tmp_path), record(TrainConfig(), data="d1", vgg_weights="v2.npy"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["--vgg-weights differs from the run's ('v1.npy', now 'v2.npy'); resuming with the new one"]


def test_a_field_the_old_run_did_not_record_counts_as_its_default(tmp_path):
    old = record(TrainConfig())
    del old["config"]["output_activation"]                        # a run from before the field existed
    write_record(tmp_path, old)
    assert run_folder.check_resume(str(tmp_path), record(TrainConfig())) == {}
    with pytest.raises(ConfigMismatch, match="output_activation: 'none' -> 'tanh'"):
        run_folder.check_resume(str(tmp_path), record(TrainConfig(output_activation="tanh")))


def test_set_aside_moves_every_run_file_and_deletes_nothing(tmp_path):
    files = {"config.json": b"{}", "generator.weights.h5": b"h5", "pretrain_generator.npz": b"npz",
             "checkpoints/train-2.index": b"i", "logs/train/events": b"e", "samples/train_000002.jpg": b"j"}
    for name, content in files.items():
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_bytes(content)
    (tmp_path / "notes.txt").write_bytes(b"mine")
    moved = run_folder.set_aside(str(tmp_path))
    assert os.path.basename(moved).startswith("previous-")
    for name, content in files.items():
        assert open(os.path.join(moved, name), "rb").read() == content
    assert sorted(os.listdir(tmp_path)) == sorted(["notes.txt", os.path.basename(moved)])
    assert run_folder.set_aside(str(tmp_path)) is None            # nothing left to move
    (tmp_path / "config.json").write_bytes(b"{}")
    again = run_folder.set_aside(str(tmp_path))                   # same second: a new folder, not a merge
    assert again != moved and os.listdir(again) == ["config.json"] and os.listdir(moved)
