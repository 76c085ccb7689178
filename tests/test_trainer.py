"""The two-phase Trainer: exact resume after a crash, a SIGKILL or a SIGTERM; refusals that change no file
(damaged checkpoints, a changed network size, a locked folder, bad VGG or init weights); a diverging run,
vanished training images; phases, logs, --no-resume.

Tiny everywhere: 32² patches, batch 2, 8-channel networks, a random VGG (``vgg_weights='random'``).
A fixed random VGG19 file stands in for the ImageNet weights.
One run that "crashes" after its last checkpoint is made once per module and copied for each test.
"""

import dataclasses
import glob
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import write_dataset
from wbc_tf import callbacks as wbc_callbacks
from wbc_tf import data as wbc_data
from wbc_tf.checkpoints import NonFiniteError
from wbc_tf.config import BUNDLED, RunOptions, TrainConfig
from wbc_tf.generator import build_generator
from wbc_tf.run_folder import ConfigMismatch, RunFolderBusy, RunLock
from wbc_tf.trainer import PRETRAIN, TRAIN, CheckpointError, Interrupted, RunStopped, Trainer
from wbc_tf.vgg import build_vgg, vgg_to_dict
from wbc_tf.weights import WeightConversionError, load_generator_weights

TINY = TrainConfig(patch_size=32, batch_size=2, channels=8, disc_channels=8, superpixel_segments=16,
                   pretrain_steps=2, train_steps=4, save_every=2, sample_every=1, keep_checkpoints=10)


class SimulatedCrash(Exception):
    pass


def crash_after(phase, step, record):
    """A step callback that records the generator and dies right after ``(phase, step)`` is trained."""
    def callback(trainer, done_phase, done, values):
        if (done_phase, done) == (phase, step):
            record.update({v.path: v.numpy() for v in trainer.gan.generator.weights})
            raise SimulatedCrash
    return callback


def snapshot_every_step(snapshots):
    """A step callback recording the generator weights after every adversarial step."""
    def callback(trainer, phase, step, values):
        if phase == TRAIN:
            snapshots[step] = {v.path: v.numpy() for v in trainer.gan.generator.weights}
    return callback


def options(data, run_dir, **kwargs):
    # A fixed random VGG in the original's vgg19_no_fc.npy layout: with "random" every Trainer would
    # draw its own VGG, and a resumed run could not replay the crashed one.
    kwargs.setdefault("vgg_weights", os.path.join(os.path.dirname(data), "vgg19_random.npy"))
    return RunOptions(data=data, output_dir=str(run_dir), progress=False, **kwargs)


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


def all_finite(run):
    """True if every checkpoint tensor and every exported weight in ``run`` is finite."""
    for index in glob.glob(str(run / "checkpoints" / "*.index")):
        for key, value in checkpoint_tensors(index[: -len(".index")]).items():
            if np.asarray(value).dtype.kind == "f" and not np.isfinite(value).all():
                return False
    for npz in glob.glob(str(run / "*.npz")):
        with np.load(npz) as z:
            if not all(np.isfinite(z[k]).all() for k in z.files):
                return False
    return True


def checkpoint_tensors(prefix):
    """Every value of a checkpoint, by object-graph key (save_counter left out: a per-object counter)."""
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and not k.startswith("save_counter")}


def assert_state_equals_checkpoint(trainer, phase, prefix, tmp_path):
    """Write the trainer's live state with the same Checkpoint layout and compare every tensor."""
    live = trainer.checkpoint(phase).write(str(tmp_path / f"live-{time.monotonic_ns()}"))
    saved, now = checkpoint_tensors(prefix), checkpoint_tensors(live)
    assert saved.keys() == now.keys()
    for key in saved:
        np.testing.assert_array_equal(now[key], saved[key], err_msg=key)
    return saved


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """A run that pre-trained 2 steps, trained 3 adversarial steps and crashed before saving step 3."""
    root = tmp_path_factory.mktemp("crashed")
    data = write_dataset(root / "data")
    keras.utils.set_random_seed(1)
    np.save(root / "vgg19_random.npy", vgg_to_dict(build_vgg(None)), allow_pickle=True)
    at_crash = {}
    trainer = Trainer(TINY, options(data, root / "run"), callbacks=[crash_after(TRAIN, 3, at_crash)])
    trainer.prepare()
    with pytest.raises(SimulatedCrash):
        trainer.run()
    assert int(trainer.gan.g_optimizer.iterations) == 3           # the crash lost one step
    return {"data": data, "run": root / "run", "trainer": trainer, "at_crash": at_crash}


def copy_run(crashed, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(crashed["run"], run)
    return run


def test_crashed_run_left_a_consistent_folder(crashed):
    run = crashed["run"]
    state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    assert os.path.basename(state.model_checkpoint_path) == "train-2"
    listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    assert listed == ["pretrain-2", "train-0", "train-2"]
    for name in ("config.json", ".lock", "pretrain_generator.weights.h5", "pretrain_generator.npz",
                 "generator.weights.h5", "generator.npz"):
        assert (run / name).is_file(), name
    assert not glob.glob(str(run / "**" / "*.tmp*"), recursive=True)
    assert sorted(os.listdir(run / "samples")) == ["pretrain_000001.jpg", "pretrain_000002.jpg",
                                                   "train_000001.jpg", "train_000002.jpg"]


def test_resume_restores_everything_exactly_and_continues(crashed, tmp_path, monkeypatch):
    run = copy_run(crashed, tmp_path)
    os.makedirs(run / "checkpoints" / "train-4_temp")             # stray temp folder of a killed save
    (run / "checkpoints" / "train-4_temp" / "part-00000-of-00001.index").write_bytes(b"\0" * 10)
    leftovers = [run / "checkpoints" / "checkpoint.tmp5a1f", run / ".generator.weights.h5.99.tmp.weights.h5",
                 run / "samples" / ".train_000003.jpg.99.part"]   # a killed index update, export, sample
    for path in leftovers:
        path.write_bytes(b"half")
    snapshots = {}
    trainer = Trainer(TINY, options(crashed["data"], run), callbacks=[snapshot_every_step(snapshots)])
    trainer.prepare()
    assert trainer.restore_latest() == (TRAIN, 2)
    saved = assert_state_equals_checkpoint(trainer, TRAIN, run / "checkpoints" / "train-2", tmp_path)
    # What that comparison covered, by name: counters, slots, SN u vectors, the colour-shift RNG.
    gan = trainer.gan
    assert int(trainer.step) == 2 and int(gan.g_optimizer.iterations) == 2 == int(gan.d_optimizer.iterations)
    u_keys = [k for k in saved if "/u/" in k]
    assert len(u_keys) == sum(1 for v in gan.surface_discriminator.weights + gan.texture_discriminator.weights
                              if v.path.endswith("/u"))
    assert len(u_keys) >= 10
    slots = [k for k in saved if k.startswith(("g_optimizer/_variables/", "d_optimizer/_variables/"))]
    n_weights = len(gan.generator.trainable_weights) + len(gan.discriminator_weights)
    assert len(slots) == 2 * n_weights                            # Adam m and v for every weight
    assert [int(saved[f"{o}_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) for o in "gd"] == [2, 2]
    assert any(k.startswith("color_shift_seed") for k in saved)
    for v in gan.surface_discriminator.weights:
        assert np.abs(v.numpy()).sum() > 0, v.path

    starts = []
    real_make = wbc_data.make_train_dataset
    monkeypatch.setattr(wbc_data, "make_train_dataset",
                        lambda data, config, start_step=0: starts.append(start_step) or real_make(
                            data, config, start_step=start_step))
    assert trainer.run() == (TRAIN, 4)
    assert starts == [2]                                          # the data stream resumed at step 2
    assert int(gan.g_optimizer.iterations) == 4 == int(gan.d_optimizer.iterations)
    state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    assert os.path.basename(state.model_checkpoint_path) == "train-4"
    assert not os.path.exists(run / "checkpoints" / "train-4_temp")
    assert not any(path.exists() for path in leftovers)
    # Same data, same restored RNG state: step 3 replays the crashed run's step 3.
    for path, value in crashed["at_crash"].items():
        np.testing.assert_array_equal(snapshots[3][path], value, err_msg=path)


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(crashed, tmp_path, caplog):
    run = copy_run(crashed, tmp_path)
    data_file = run / "checkpoints" / "train-2.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    (run / "checkpoints" / "train-3.index").write_bytes(b"half an index")   # orphan of a killed save
    trainer = Trainer(TINY, options(crashed["data"], run)).prepare()
    with caplog.at_level(logging.WARNING, logger="wbc_tf"):
        assert trainer.restore_latest() == (TRAIN, 0)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "restored train-0 after skipping unreadable checkpoint(s)" in message and "train-2:" in message
    assert_state_equals_checkpoint(trainer, TRAIN, run / "checkpoints" / "train-0", tmp_path)


def test_a_resume_may_lower_the_learning_rate(crashed, tmp_path):
    run = copy_run(crashed, tmp_path)
    lower = dataclasses.replace(TINY, learning_rate=1e-4)          # e.g. after a divergence
    trainer = Trainer(lower, options(crashed["data"], run)).prepare()
    assert trainer.restore_latest() == (TRAIN, 2)                 # the checkpoint holds 2e-4
    for optimizer in (trainer.gan.g_optimizer, trainer.gan.d_optimizer):
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == np.float32(1e-4)
    assert int(trainer.gan.g_optimizer.iterations) == 2           # the rest as restored


def test_unreadable_phase_2_refuses_without_falling_back_and_changes_nothing(crashed, tmp_path):
    run = copy_run(crashed, tmp_path)
    data_file = run / "checkpoints" / "train-2.data-00000-of-00001"
    data_file.write_bytes(data_file.read_bytes()[:8])
    os.remove(run / "checkpoints" / "train-0.data-00000-of-00001")
    before = tree(run)
    trainer = Trainer(TINY, options(crashed["data"], run))
    with pytest.raises(CheckpointError, match=r"(?s)cannot resume: no train checkpoint .* can be read"
                                              r".*\n  train-2: .*\n  train-0: .*\(pretrain-2\) are not used"
                                              r".*--no-resume"):
        trainer.run()                                # pretrain-2 is readable, but would restart phase 2
    assert tree(run) == before                       # no file created, modified or deleted


def test_changed_network_size_lists_the_keys_before_restoring_anything(crashed, tmp_path, caplog):
    run = copy_run(crashed, tmp_path)
    before = tree(run)
    wider = dataclasses.replace(TINY, channels=16, disc_channels=12, train_steps=9)   # train_steps may change
    trainer = Trainer(wider, options(crashed["data"], run))
    with caplog.at_level(logging.WARNING):
        with pytest.raises(ConfigMismatch, match=r"(?s)another configuration.*\n  channels: 8 -> 16\n"
                                                 r"  disc_channels: 8 -> 12\nResume with the old values"):
            trainer.run()
    assert trainer.gan is None and trainer.pretrainer is None   # compared before any model was built
    assert not [r for r in caplog.records if r.name.startswith("tensorflow")]   # no per-variable warnings
    assert tree(run) == before


def test_a_second_process_on_the_run_folder_is_refused(crashed, tmp_path):
    run = copy_run(crashed, tmp_path)
    before = tree(run)
    with RunLock(str(run)) as other:                 # flock conflicts between two opens, as between processes
        other.acquire()
        trainer = Trainer(TINY, options(crashed["data"], run))
        with pytest.raises(RunFolderBusy, match=f"run folder {run} is in use by another wbc-train process"):
            trainer.run()
    assert trainer.gan is None                       # refused before reading a checkpoint
    assert tree(run) == before


def test_kill_9_mid_run_then_resume(crashed, tmp_path):
    run = tmp_path / "run"
    flags = ["--patch-size", "32", "--batch-size", "2", "--channels", "8", "--disc-channels", "8",
             "--superpixel-segments", "16", "--save-every", "1", "--sample-every", "1000",
             "--keep-checkpoints", "3"]
    # Phase 2 straight from the crashed run's pre-trained generator: the child reaches its
    # adversarial steps sooner, and every step saves a checkpoint, so the kill lands near a save.
    cmd = [sys.executable, "-m", "wbc_tf.cli.train", "--data", crashed["data"], "--output-dir", str(run),
           "--vgg-weights", options(crashed["data"], run).vgg_weights, "--no-progress", "--phase", "train",
           "--init-weights", str(crashed["run"] / "pretrain_generator.weights.h5"),
           "--train-steps", "100000"] + flags
    log_path = tmp_path / "child.log"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    with open(log_path, "w") as child_log:
        child = subprocess.Popen(cmd, stdout=child_log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and child.poll() is None:
                state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
                latest = os.path.basename(state.model_checkpoint_path) if state else ""
                if latest in ("train-3", "train-4", "train-5"):
                    break
                time.sleep(0.05)
            assert child.poll() is None, log_path.read_text()[-3000:]
        finally:
            os.kill(child.pid, signal.SIGKILL)        # no clean-up handlers run, like a crash
            child.wait()
    latest = tf.train.get_checkpoint_state(str(run / "checkpoints")).model_checkpoint_path
    step = int(latest.rsplit("-", 1)[1])
    assert os.path.basename(latest).startswith("train-") and step >= 3

    # The child may have completed one more save between our last look and the kill.
    config = dataclasses.replace(TINY, save_every=1, sample_every=1000, keep_checkpoints=3,
                                 train_steps=step + 2)
    trainer = Trainer(config, options(crashed["data"], run, phase="train")).prepare()
    phase, restored = trainer.restore_latest()
    assert phase == TRAIN and restored in (step, step + 1)
    assert int(trainer.gan.g_optimizer.iterations) == restored == int(trainer.gan.d_optimizer.iterations)
    assert_state_equals_checkpoint(trainer, TRAIN, run / "checkpoints" / f"train-{restored}", tmp_path)
    assert trainer.run() == (TRAIN, step + 2)
    assert int(trainer.gan.g_optimizer.iterations) == step + 2
    assert len(glob.glob(str(run / "checkpoints" / "*.index"))) <= 4   # keep 3 (+ an orphan at most)


def test_phase_train_needs_a_pretrained_generator(crashed, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="--phase train needs a pre-trained generator"):
        Trainer(TINY, options(crashed["data"], run, phase="train")).prepare()
    assert not run.exists()                                      # failed early, wrote nothing


def test_init_weights_start_phase_2_and_skip_pre_training(crashed, tmp_path):
    weights = str(crashed["run"] / "pretrain_generator.weights.h5")
    run = tmp_path / "run"
    config = dataclasses.replace(TINY, train_steps=0)
    trainer = Trainer(config, options(crashed["data"], run, phase="train", init_weights=weights))
    assert trainer.run() == (TRAIN, 0)
    assert sorted(os.listdir(run / "checkpoints")) == [
        "checkpoint", "train-0.data-00000-of-00001", "train-0.index"]                # no pre-training
    expected = load_generator_weights(build_generator(8), weights)
    exported = load_generator_weights(build_generator(8), str(run / "generator.npz"))
    for a, b in zip(expected.weights, exported.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    release = options(crashed["data"], tmp_path / "run2", phase="train", init_weights=BUNDLED)
    with pytest.raises(WeightConversionError, match="shape mismatch"):  # the release has 32 channels, not 8
        Trainer(config, release).prepare()           # checked before the run folder is made
    assert not (tmp_path / "run2").exists()


def test_vgg_weights_fail_early_and_clearly(crashed, tmp_path, monkeypatch):
    run = tmp_path / "run"
    missing = RunOptions(data=crashed["data"], output_dir=str(run), vgg_weights=str(tmp_path / "nope.h5"))
    with pytest.raises(WeightConversionError, match="no such VGG weights file"):
        Trainer(TINY, missing).prepare()
    vgg_path = os.path.join(os.path.dirname(crashed["data"]), "vgg19_random.npy")
    vgg = np.load(vgg_path, allow_pickle=True).item()
    del vgg["conv4_4"]
    vgg["conv2_1"] = [vgg["conv2_1"][0][:, :, :32], vgg["conv2_1"][1]]
    np.save(tmp_path / "vgg19_no_fc.npy", vgg, allow_pickle=True)
    damaged = dataclasses.replace(missing, vgg_weights=str(tmp_path / "vgg19_no_fc.npy"))
    with pytest.raises(WeightConversionError, match=r"(?s)shape mismatch conv2_1: \(3, 3, 32, 128\).*"
                                                    r"vs \(3, 3, 64, 128\).*missing: conv4_4"):
        Trainer(TINY, damaged).prepare()

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")           # what keras.utils.get_file raises offline

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras.applications, "VGG19", offline)
    imagenet = RunOptions(data=crashed["data"], output_dir=str(run))
    with pytest.raises(WeightConversionError, match="(?s)VGG19 ImageNet weights.*--vgg-weights"):
        Trainer(TINY, imagenet).prepare()
    assert not run.exists()
    assert Trainer(TINY, dataclasses.replace(imagenet, phase="pretrain")).prepare()  # phase 1 needs no VGG


def test_no_resume_moves_old_run_aside_and_tensorboard_is_optional(crashed, tmp_path, monkeypatch, caplog):
    run = copy_run(crashed, tmp_path)
    names = ("generator.weights.h5", "pretrain_generator.npz", "samples/train_000002.jpg",
             "checkpoints/train-2.index")
    old = {name: (run / name).read_bytes() for name in names}
    real_find_spec = wbc_callbacks.importlib.util.find_spec
    monkeypatch.setattr(wbc_callbacks.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a))
    monkeypatch.setattr(wbc_callbacks.TensorBoard, "_warned", False)
    config = dataclasses.replace(TINY, pretrain_steps=1)
    with caplog.at_level(logging.WARNING):
        result = Trainer(config, options(crashed["data"], run, phase="pretrain", resume=False)).run()
        stand_in = types.SimpleNamespace(out_dir=str(run), phase_name=Trainer.phase_name)
        wbc_callbacks.TensorBoard().begin_phase(stand_in, PRETRAIN, 0, 1)   # a second logger stays quiet
    assert result == (PRETRAIN, 1)
    assert sum("tensorboard is not installed" in r.getMessage() for r in caplog.records) == 1
    (previous,) = glob.glob(str(run / "previous-*"))
    for name, content in old.items():                              # moved, not deleted
        assert open(os.path.join(previous, name), "rb").read() == content, name
    assert not (run / "generator.weights.h5").exists()
    assert sorted(os.listdir(run / "checkpoints")) == ["checkpoint", "pretrain-1.data-00000-of-00001",
                                                       "pretrain-1.index"]
    assert sorted(os.listdir(run / "samples")) == ["pretrain_000001.jpg"]
    assert os.listdir(run / "logs") == []                          # no TensorBoard, no event files


def test_sigterm_saves_the_current_step_and_the_resume_replays_it(crashed, tmp_path, caplog):
    run = copy_run(crashed, tmp_path)
    data = shutil.copytree(crashed["data"], tmp_path / "data")     # the same images in another folder
    vgg = options(crashed["data"], run).vgg_weights
    handler = signal.getsignal(signal.SIGTERM)

    def sigterm_at_3(trainer, phase, step, values):
        if (phase, step) == (TRAIN, 3):
            os.kill(os.getpid(), signal.SIGTERM)                   # as a pre-empted node gets it

    trainer = Trainer(TINY, options(str(data), run, vgg_weights=vgg), callbacks=[sigterm_at_3])
    with caplog.at_level(logging.WARNING):
        with pytest.raises(Interrupted, match="stopped by SIGTERM after train step 3; "
                                              "checkpoint train-3 is saved") as info:
            trainer.run()
    assert info.value.signum == signal.SIGTERM and signal.getsignal(signal.SIGTERM) == handler
    assert f"--data differs from the run's ({crashed['data']!r}, now {str(data)!r}); resuming" in caplog.text
    assert tf.train.get_checkpoint_state(str(run / "checkpoints")).model_checkpoint_path.endswith("train-3")
    # save_every is 2: only the signal saved step 3; its weights are the crashed run's step 3, bit for bit.
    exported = load_generator_weights(build_generator(8), str(run / "generator.npz"))
    for v in exported.weights:
        np.testing.assert_array_equal(v.numpy(), crashed["at_crash"][v.path], err_msg=v.path)
    assert int(checkpoint_tensors(run / "checkpoints" / "train-3")["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 3


def test_a_non_finite_weight_stops_before_anything_of_its_step_is_written(crashed, tmp_path):
    run = tmp_path / "run"

    def poison_at_2(trainer, phase, step, values):                 # finite loss, NaN weights after the update
        if step == 2:
            kernel = trainer.generator.weights[0]
            kernel.assign(tf.fill(kernel.shape, math.nan))

    config = dataclasses.replace(TINY, pretrain_steps=4, save_every=1)
    trainer = Trainer(config, options(crashed["data"], run, phase="pretrain"), callbacks=[poison_at_2])
    with pytest.raises(NonFiniteError, match=r"is not finite after pretrain step 2: the run diverged; "
                                             r"nothing of step 2 was written; the last checkpoint is "
                                             r"pretrain-1"):
        trainer.run()
    assert sorted(os.listdir(run / "checkpoints")) == ["checkpoint", "pretrain-1.data-00000-of-00001",
                                                       "pretrain-1.index"]
    assert all_finite(run) and (run / "pretrain_generator.npz").is_file()


def test_the_non_finite_check_names_the_step_and_the_term():
    mine = object()
    order = [type(c) for c in Trainer(TINY, RunOptions(), callbacks=[mine])._callbacks()]
    assert order == [wbc_callbacks.TensorBoard, wbc_callbacks.StopOnNonFinite, object,   # losses checked
                     wbc_callbacks.SampleWriter]                                          # before samples
    trainer = types.SimpleNamespace(phase_name=Trainer.phase_name, nothing_written=lambda step: f"N{step}")
    check = wbc_callbacks.StopOnNonFinite()
    check(trainer, TRAIN, 7, {"g_loss_total": 1.0, "d_loss_total": 2.0})
    with pytest.raises(NonFiniteError, match=r"diverged at train step 7: g_loss_total = nan, "
                                             r"d_loss_blur = inf; N7\. Lower --learning-rate"):
        check(trainer, TRAIN, 7, {"g_loss_total": math.nan, "d_loss_blur": math.inf, "tv_loss": 1.0})


def test_vanished_training_images_stop_the_run_at_once(crashed, tmp_path):
    root = shutil.copytree(crashed["data"], tmp_path / "data")
    config = dataclasses.replace(TINY, pretrain_steps=50, save_every=1, sample_every=1000)
    # No decoded-image cache: every step reads its files.
    data = wbc_data.scan_training_data(str(root), config, need_cartoons=False, cache_mb=0)

    def delete_photos_at_1(trainer, phase, step, values):
        if step == 1:
            for name in ("photo_face", "photo_scenery"):
                shutil.rmtree(root / name)

    trainer = Trainer(config, options(str(root), tmp_path / "run", phase="pretrain", vgg_weights="random"),
                      data=data, callbacks=[delete_photos_at_1])
    with pytest.raises(RunStopped, match=r"(?s)pretrain step \d+: the training data failed .*No such file.*"
                                         r"no longer a folder: .*photo_face.*fix the dataset"):
        trainer.run()                                # never a hang: every later step would fail too
    assert int(trainer.step) < config.pretrain_steps
