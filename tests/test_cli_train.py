"""``wbc-train`` / ``python train.py``: flags derived from the dataclasses, --dry-run, an end-to-end run, and
the exit status and one line of every way a run can be refused or stop (unreadable checkpoints, a changed
network size, divergence, a full disk, SIGTERM and SIGINT)."""

import dataclasses
import errno
import glob
import json
import os
import re
import runpy
import shutil
import signal
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from tests.helpers import write_dataset
from wbc_tf import checkpoints as wbc_checkpoints
from wbc_tf import trainer as wbc_trainer
from wbc_tf.cli.args import dataclass_from_args
from wbc_tf.cli.train import build_parser, main
from wbc_tf.config import BUNDLED, RunOptions, TrainConfig
from wbc_tf.gan import METRIC_NAMES
from wbc_tf.generator import build_generator
from wbc_tf.weights import load_generator_weights

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--patch-size", "32", "--batch-size", "2", "--channels", "8", "--disc-channels", "8",
              "--superpixel-segments", "16", "--pretrain-steps", "2", "--train-steps", "2",
              "--save-every", "1", "--sample-every", "2", "--vgg-weights", "random", "--no-progress"]
TINY = TrainConfig(patch_size=32, batch_size=2, channels=8, disc_channels=8, superpixel_segments=16,
                   pretrain_steps=2, train_steps=2, save_every=1, sample_every=2)


def tree(root):
    """{relative path: (size, mtime_ns)} of everything under ``root``."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.stat(path)
            out[os.path.relpath(path, root)] = (st.st_size if name in files else -1, st.st_mtime_ns)
    return out


def finite_files(run):
    """Every float tensor of every checkpoint and every weight file of ``run``: are they all finite?"""
    ok = []
    for index in glob.glob(str(run / "checkpoints" / "*.index")):
        reader = tf.train.load_checkpoint(index[: -len(".index")])
        for key in reader.get_variable_to_shape_map():
            value = np.asarray(reader.get_tensor(key))
            ok.append(value.dtype.kind != "f" or bool(np.isfinite(value).all()))
    for npz in glob.glob(str(run / "*.npz")):
        with np.load(npz) as z:
            ok += [bool(np.isfinite(z[k]).all()) for k in z.files]
    return bool(ok) and all(ok)


def read_events(folder):
    """{tag: {step: value}} of the scalars, and {tag: steps} of the images, in a TensorBoard folder."""
    scalars, images = {}, {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
                elif plugin == "images":
                    images.setdefault(value.tag, []).append(event.step)
    return scalars, images


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """``main`` run end to end (2 pre-training + 2 adversarial steps) under MirroredStrategy."""
    root = tmp_path_factory.mktemp("cli")
    data = write_dataset(root / "data")
    run = root / "run"
    code = main(["--data", data, "--output-dir", str(run), "--strategy", "mirrored"] + TINY_FLAGS)
    return {"code": code, "data": data, "run": run}


def test_defaults_are_the_dataclass_defaults():
    parser = build_parser()
    args = parser.parse_args(["--data", "d"])
    assert dataclass_from_args(TrainConfig, args) == TrainConfig()
    assert dataclass_from_args(RunOptions, args) == RunOptions(data="d")
    for field in dataclasses.fields(TrainConfig):
        assert parser.get_default(field.name) == field.default, field.name
    args = parser.parse_args(["--data", "d", "--batch-size", "8", "--random-flip", "--no-resume",
                              "--init-weights", "--learning-rate", "1e-4", "--phase", "train"])
    expected = TrainConfig(batch_size=8, random_flip=True, learning_rate=1e-4)
    assert dataclass_from_args(TrainConfig, args) == expected
    assert dataclass_from_args(RunOptions, args) == RunOptions(data="d", resume=False, init_weights=BUNDLED,
                                                               phase="train")
    assert parser.parse_args(["--data", "d", "--init-weights", "g.npz"]).init_weights == "g.npz"
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--strategy", "tpu"])


def help_entries(text):
    """``{invocation: help text}`` of every option listed in argparse ``--help`` output."""
    entries, current = {}, None
    for line in text.splitlines():
        option = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if option:
            current = option.group(1)
            entries[current] = option.group(2) or ""
        elif current is not None and line.startswith("    ") and line.strip():
            entries[current] = f"{entries[current]} {line.strip()}".strip()    # a wrapped help line
        else:
            current = None
    return entries


def test_help_explains_every_flag(capsys):
    text = build_parser().format_help()
    entries = help_entries(text)
    usage = text.split("\n\n")[0]
    flags = {part.split(" ")[0] for invocation in entries for part in invocation.split(", ")}
    assert flags >= set(re.findall(r"(?<=[\[ |])--?[a-z][\w-]*", usage))      # every flag has an entry
    for invocation, help_text in entries.items():
        assert len(help_text.split("(default")[0].strip()) > 8, invocation
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--train-steps" in out and "examples:" in out
    assert "wbc-train --data dataset --output-dir runs/exp1" in out


def test_train_py_shim_runs_the_cli(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["train.py", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(REPO, "train.py"), run_name="__main__")
    assert exit_info.value.code == 0
    assert "usage: wbc-train" in capsys.readouterr().out


def test_data_errors_exit_2_and_write_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["--data", str(tmp_path / "missing"), "--output-dir", str(run)] + TINY_FLAGS) == 2
    assert "wbc-train: error: --data" in capsys.readouterr().err
    os.makedirs(tmp_path / "d" / "photo")
    assert main(["--data", str(tmp_path / "d"), "--output-dir", str(run)] + TINY_FLAGS) == 2
    assert "missing folder(s)" in capsys.readouterr().err
    assert not run.exists()


def test_dry_run_prints_config_and_data_and_writes_nothing(tmp_path, capsys):
    data = write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    before = tree(tmp_path)
    assert main(["--data", data, "--output-dir", str(run), "--dry-run", "--batch-size", "3",
                 "--patch-size", "32"]) == 0
    assert tree(tmp_path) == before and not run.exists()
    out = capsys.readouterr().out
    record = json.loads(out[out.index("{"): out.index("\n}\n") + 2])
    assert record["config"] == dataclasses.asdict(TrainConfig(batch_size=3, patch_size=32))
    assert record["run"]["output_dir"] == str(run)
    assert "photo_face: 4 images (0 exactly 32², 4 larger → random crop, 0 smaller)" in out
    assert "VGG19: ImageNet weights" in out and "fresh start" in out
    assert "plan: pre-train 50000 steps (pixel L1), then adversarial training 100000 steps" in out


def test_end_to_end_run_writes_the_run_folder(finished_run, capsys):
    assert finished_run["code"] == 0
    run = finished_run["run"]
    with open(run / "config.json") as f:
        record = json.load(f)
    assert TrainConfig(**record["config"]) == TINY
    assert record["run"]["strategy"] == "mirrored" and record["run"]["data"] == finished_run["data"]

    state = tf.train.get_checkpoint_state(str(run / "checkpoints"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "pretrain-1", "pretrain-2", "train-0", "train-1", "train-2"]

    h5 = load_generator_weights(build_generator(8), str(run / "generator.weights.h5"))
    npz = load_generator_weights(build_generator(8), str(run / "generator.npz"))
    pre = load_generator_weights(build_generator(8), str(run / "pretrain_generator.npz"))
    for a, b, c in zip(h5.weights, npz.weights, pre.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert any(not np.array_equal(a.numpy(), c.numpy()) for a, c in zip(h5.weights, pre.weights))

    assert sorted(os.listdir(run / "samples")) == ["pretrain_000002.jpg", "train_000002.jpg"]
    grid = cv2.imread(str(run / "samples" / "train_000002.jpg"))
    assert grid.shape == (4 * 32, 2 * 32, 3)     # face photo/output rows, scenery photo/output rows

    pytest.importorskip("tensorboard")
    scalars, images = read_events(str(run / "logs" / "train"))
    assert set(scalars) == set(METRIC_NAMES) | {"learning_rate"}
    for tag, by_step in scalars.items():
        assert sorted(by_step) == [0, 1] and all(np.isfinite(v) for v in by_step.values()), tag
    assert scalars["learning_rate"][0] == np.float32(2e-4)
    assert images == {"samples": [2]}
    scalars, images = read_events(str(run / "logs" / "pretrain"))
    assert set(scalars) == {"recon_loss", "learning_rate"} and sorted(scalars["recon_loss"]) == [0, 1]


def test_dry_run_on_a_finished_run_reports_resume_and_changes_nothing(finished_run, capsys):
    run = finished_run["run"]
    before = tree(run)
    assert main(["--data", finished_run["data"], "--output-dir", str(run), "--dry-run"] + TINY_FLAGS) == 0
    assert tree(run) == before
    out = capsys.readouterr().out
    assert f"would resume from {run / 'checkpoints' / 'train-2'}, train phase" in out
    assert "VGG19: random weights" in out


def test_unusable_resumes_exit_2_and_change_no_file(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run["run"], run)
    before = tree(run)
    wider = TINY_FLAGS + ["--disc-channels", "16"]                # the last value wins
    assert main(["--data", finished_run["data"], "--output-dir", str(run)] + wider) == 2
    err = capsys.readouterr().err
    assert "wbc-train: error: run folder" in err and "\n  disc_channels: 8 -> 16\n" in err
    assert tree(run) == before

    for data_file in glob.glob(str(run / "checkpoints" / "train-*.data-*")):
        with open(data_file, "r+b") as f:
            f.truncate(16)
    before = tree(run)
    assert main(["--data", finished_run["data"], "--output-dir", str(run)] + TINY_FLAGS) == 2
    err = capsys.readouterr().err
    assert "wbc-train: error: cannot resume: no train checkpoint" in err and "Traceback" not in err
    named = [line.split(":")[0].strip() for line in err.splitlines() if line.startswith("  ")]
    assert named == ["train-2", "train-1", "train-0"]              # each one, with its reason
    assert tree(run) == before                                    # every train-* unreadable: nothing changed


def pretrain_flags(data, run, *extra):
    flags = dict(zip(TINY_FLAGS[::2], TINY_FLAGS[1::2]))
    flags.update(dict(zip(extra[::2], extra[1::2])))
    return ["--data", data, "--output-dir", str(run), "--phase", "pretrain", "--no-progress"] + [
        x for kv in flags.items() for x in kv if x != "--no-progress"]


def test_diverging_pretraining_exits_1_and_leaves_no_nan_weights(tmp_path, capsys):
    data = write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    flags = pretrain_flags(data, run, "--pretrain-steps", "30", "--learning-rate", "1.0", "--save-every", "1")
    assert main(flags) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wbc-train")]
    assert len(err) == 1 and err[0].startswith("wbc-train: error: ") and "diverged" in err[0], err
    step = int(re.search(r"nothing of step (\d+) was written", err[0]).group(1))
    assert step < 30 and not glob.glob(str(run / "checkpoints" / f"pretrain-{step}.*"))
    assert finite_files(run) and (run / "pretrain_generator.npz").is_file()


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    def full(model, path, name="model"):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wbc_checkpoints, "save_generator_weights", full)
    data = write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert main(pretrain_flags(data, run, "--pretrain-steps", "1")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    h5 = run / "pretrain_generator.weights.h5"
    assert [line for line in err.splitlines() if line.startswith("wbc-train")] == [
        f"wbc-train: error: no space left on the device while writing {h5}: free some space, then run the "
        f"same command again to resume from the last checkpoint"]
    assert not [p for p in glob.glob(str(run / "**" / "*"), recursive=True) if ".tmp" in p]
    assert os.path.isfile(run / "checkpoints" / "pretrain-1.index")   # the checkpoint came first


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_save_then_exit_128_plus_signal(tmp_path, capsys, monkeypatch, signum, status):
    def signal_at_1(trainer, phase, step, values):
        if step == 1:
            os.kill(os.getpid(), signum)

    class SignalledTrainer(wbc_trainer.Trainer):
        def __init__(self, config, options):
            super().__init__(config, options, callbacks=[signal_at_1])

    monkeypatch.setattr(wbc_trainer, "Trainer", SignalledTrainer)
    data = write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert main(pretrain_flags(data, run, "--pretrain-steps", "5", "--save-every", "4")) == status
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wbc-train")]
    name = signal.Signals(signum).name
    assert err == [f"wbc-train: stopped by {name} after pretrain step 1; checkpoint pretrain-1 is saved: "
                   f"run the same command again to resume"]
    assert os.path.isfile(run / "checkpoints" / "pretrain-1.index") and finite_files(run)


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["no-xla", "xla"])
def test_accelerator_flags_finish_and_resume_to_a_longer_schedule(tmp_path, capsys, jit):
    """The issue's command with every accelerator option (TF superpixels, mixed bfloat16, and with
    ``xla`` the whole step XLA-compiled: 95 s here, three compiles, so slow) at the default network
    size finishes; the same command with ``--train-steps 6`` resumes at adversarial step 4 and ends
    at 6, and every weight it leaves is finite."""
    data = write_dataset(tmp_path / "data", size=(80, 96))
    run = tmp_path / "run"
    flags = ["--data", data, "--output-dir", str(run), "--pretrain-steps", "2", "--train-steps", "4",
             "--batch-size", "2", "--patch-size", "64", "--vgg-weights", "random", "--superpixel", "tf",
             "--precision", "mixed_bfloat16", "--no-progress"] + ["--jit-compile"] * jit
    assert main(flags) == 0
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("train-4")
    flags[flags.index("--train-steps") + 1] = "6"
    capsys.readouterr()
    assert main(flags) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "train step 4)" in err, err
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("train-6")
    assert finite_files(run) and (run / "generator.weights.h5").is_file()
