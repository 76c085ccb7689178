"""Strategies, TF_CONFIG, the global-batch split and who writes; two real workers on 127.0.0.1.

The two-worker test starts three ``wbc-train`` processes: two workers of a
``MultiWorkerMirroredStrategy`` cluster (one CPU replica each, batch 1 per worker) and one
default-strategy process, all with global batch 2, the same seed, the same starting generator and
a fixed random VGG19. The chief's final checkpoint must hold the single process's values, every
tensor within 1e-4 of its largest magnitude (measured: 2.6e-6 at most, Adam slots and ``u``
included; float sums in another order), and worker 1 must write nothing into its run folder.
"""

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import random_vgg_weights, write_dataset
from wbc_tf import distribute
from wbc_tf.generator import build_generator
from wbc_tf.weights import save_generator_weights

CLUSTER = {"cluster": {"worker": ["127.0.0.1:20000", "127.0.0.1:20001"]},
           "task": {"type": "worker", "index": 0}}


# --- one process --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default", "mirrored"])
def test_tf_config_without_multiworker_is_a_warning(name, monkeypatch, caplog):
    monkeypatch.setenv("TF_CONFIG", json.dumps(CLUSTER))
    with caplog.at_level(logging.WARNING, logger="wbc_tf.distribute"):
        strategy = distribute.make_strategy(name)
    assert strategy.num_replicas_in_sync == 1
    (record,) = caplog.records
    assert record.name == "wbc_tf.distribute"
    assert "TF_CONFIG is set" in record.getMessage() and "--strategy multiworker" in record.getMessage()
    monkeypatch.delenv("TF_CONFIG")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wbc_tf.distribute"):
        distribute.make_strategy(name)
    assert caplog.records == []


@pytest.mark.parametrize("tf_config, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "needs a 'cluster'"),
    (json.dumps({"cluster": CLUSTER["cluster"]}), "needs this process's 'task'"),
    (json.dumps({**CLUSTER, "task": {"type": "worker", "index": 2}}), "is not in the cluster"),
])
def test_malformed_tf_config_is_one_clear_error(tf_config, message, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(distribute.DistributeError, match=message):
        distribute.make_strategy("multiworker")
    with pytest.raises(ValueError, match="not accepted"):
        distribute.make_strategy("tpu")


def test_multiworker_after_the_first_tf_op_is_a_clear_error(monkeypatch):
    tf.constant(1.0) + 1.0                      # TensorFlow has started in this process
    monkeypatch.setenv("TF_CONFIG", json.dumps(CLUSTER))
    with pytest.raises(RuntimeError, match="must be created before TensorFlow runs any op"):
        distribute.make_strategy("multiworker")


def test_single_process_describes_itself_and_writes_the_run_folder(tmp_path):
    strategy = distribute.make_strategy("default")
    device = (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[0].name
    assert distribute.describe(strategy) == ("default strategy: 1 worker, 1 replica in sync; "
                                             f"devices here: {device}")
    assert distribute.is_chief(strategy) and distribute.worker_index(strategy) == (0, 1)
    with distribute.write_dir(str(tmp_path / "run"), strategy) as out:
        assert out == str(tmp_path / "run")
    distribute.check_same_everywhere(strategy, "anything", (1, 2))     # one worker: nothing to check


def test_replica_rows_give_each_replica_its_rows_of_every_global_batch():
    # Global batch 8 of 4 replicas, 2 per pipeline (worker); row value = 100·step + row.
    steps = tf.data.Dataset.range(3).map(lambda t: tf.range(8, dtype=tf.int64) + 100 * t)
    pairs = steps.map(lambda x: (x, -x))
    for pipeline in (0, 1):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                             num_replicas_in_sync=4)
        got = [x.tolist() for x in distribute.replica_rows(steps, 4, context).as_numpy_iterator()]
        mine = (2 * pipeline, 2 * pipeline + 1)                # replicas of this pipeline
        rows = [[100 * t + 2 * r, 100 * t + 2 * r + 1] for t in range(3) for r in mine]
        assert got == rows
        got = [(x.tolist(), y.tolist())
               for x, y in distribute.replica_rows(pairs, 4, context).as_numpy_iterator()]
        assert got == [(r, [-v for v in r]) for r in rows]
    with pytest.raises(ValueError, match="batch_size 8 is the global batch; it must be divisible by the 3"):
        distribute.replica_rows(steps, 3, tf.distribute.InputContext(1, 0, 3))


# --- two workers ----------------------------------------------------------------------------------------

def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _checkpoint(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _files(root):
    """Relative paths under ``root``; TensorBoard event files (named by host, pid, time) by folder."""
    out = set()
    for folder, _, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            out.add(os.path.dirname(rel) + "/events.*" if name.startswith("events.out.tfevents.") else rel)
    return out


def _start_train(log_path, argv, cluster=None, index=None, tmpdir=None):
    """``(Popen, log file)`` of ``python -m wbc_tf.cli.train argv`` on the CPU, stdout and stderr in
    ``log_path``; a worker of ``cluster`` (TF_CONFIG) when ``index`` is given."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    if index is not None:
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-m", "wbc_tf.cli.train"] + argv, stdout=log,
                            stderr=subprocess.STDOUT, env=env), log


@contextlib.contextmanager
def _reaped():
    """A dict to fill with ``{name: (Popen, log file)}``; on exit every child still running is killed and
    every log closed."""
    children = {}
    try:
        yield children
    finally:
        for child, log in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
            log.close()


def test_two_workers_end_with_the_weights_of_one_process(tmp_path):
    data = write_dataset(tmp_path / "data")
    vgg = tmp_path / "vgg19_random.npy"
    np.save(vgg, random_vgg_weights(np.random.default_rng(0), with_conv5=False), allow_pickle=True)
    keras.utils.set_random_seed(3)
    start = str(tmp_path / "start.weights.h5")                 # phase 2 straight from a fixed generator
    save_generator_weights(build_generator(8), start)
    flags = ["--data", data, "--vgg-weights", str(vgg), "--no-progress", "--phase", "train",
             "--init-weights", start, "--train-steps", "2", "--batch-size", "2", "--patch-size", "32",
             "--channels", "8", "--disc-channels", "8", "--superpixel-segments", "16",
             "--superpixel-workers", "1", "--save-every", "2", "--sample-every", "2"]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    worker1_tmp = tmp_path / "worker1_tmp"
    worker1_tmp.mkdir()
    runs = {"chief": ("multiworker", 0), "worker1": ("multiworker", 1), "single": ("default", None)}
    with _reaped() as children:
        for name, (strategy, index) in runs.items():
            argv = ["--output-dir", str(tmp_path / f"run_{name}"), "--strategy", strategy] + flags
            children[name] = _start_train(tmp_path / f"{name}.log", argv, cluster, index,
                                          worker1_tmp if name == "worker1" else None)
        deadline = time.monotonic() + 900                       # generous: the machine may be shared
        for name, (child, _) in children.items():
            child.wait(timeout=max(1.0, deadline - time.monotonic()))
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in runs}
    for name, (child, _) in children.items():
        assert child.returncode == 0, f"{name}:\n{logs[name][-4000:]}"

    # Every strategy says at start where it runs.
    assert "INFO: MultiWorkerMirroredStrategy: worker 0 of 2 (chief: writes the run folder), 2 replicas in " \
           "sync; devices here: /job:worker/replica:0/task:0/device:CPU:0" in logs["chief"]
    assert "INFO: MultiWorkerMirroredStrategy: worker 1 of 2 (not chief), 2 replicas" in logs["worker1"]
    assert "INFO: default strategy: 1 worker, 1 replica in sync" in logs["single"]

    # Worker 1 wrote into its own temporary folder, removed at the end, and nothing into its run folder.
    (temp,) = re.findall(r"writes its checkpoints, weights and logs into (\S+), removed", logs["worker1"])
    assert os.path.dirname(temp) == str(worker1_tmp) and not os.path.exists(temp)
    assert not (tmp_path / "run_worker1").exists() and os.listdir(worker1_tmp) == []
    chief, single = tmp_path / "run_chief", tmp_path / "run_single"
    assert _files(chief) == _files(single) and "checkpoints/train-2.index" in _files(chief)

    # Same values as one process with the same global batch: every tensor of the final checkpoint
    # (G, both Ds with their u, both Adams, the colour-shift RNG), within 1e-4 of its largest value.
    ours = _checkpoint(chief / "checkpoints" / "train-2")
    theirs = _checkpoint(single / "checkpoints" / "train-2")
    assert ours.keys() == theirs.keys() and len(ours) > 100
    for key, want in theirs.items():
        got = ours[key]
        if want.dtype.kind == "f":
            scale = float(np.max(np.abs(want))) if want.size else 0.0
            assert np.max(np.abs(got - want), initial=0.0) <= 1e-4 * scale, key
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)
    # ... which is a real test: the two adversarial steps moved every G tensor by more than 10x that
    # (measured: 2e-3 of its largest value at least). G's weights are saved under the G optimiser.
    start_weights = _checkpoint(chief / "checkpoints" / "train-0")
    g_keys = [key for key in ours if key.startswith("g_optimizer/_trainable_variables/")]
    assert len(g_keys) == len(build_generator(8).trainable_weights)
    for key in g_keys:
        assert np.max(np.abs(ours[key] - start_weights[key])) > 1e-3 * np.max(np.abs(ours[key])), key


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_every_worker_at_the_same_step(tmp_path):
    """A pre-empted node: SIGTERM reaches worker 1 only. Both workers stop after the same step with exit
    143, the chief saving that step's checkpoint into the run folder and naming the other worker."""
    data = write_dataset(tmp_path / "data")
    flags = ["--data", data, "--vgg-weights", "random", "--no-progress", "--phase", "train",
             "--init-weights", "--train-steps", "1000", "--batch-size", "2", "--patch-size", "32",
             "--superpixel-segments", "16", "--superpixel-workers", "1", "--save-every", "1000",
             "--sample-every", "1000", "--strategy", "multiworker"]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    run = tmp_path / "run"
    with _reaped() as children:
        for index in (0, 1):
            children[index] = _start_train(tmp_path / f"worker{index}.log",
                                           ["--output-dir", str(run)] + flags, cluster, index, tmp_path)
        deadline = time.monotonic() + 600
        while not (run / "checkpoints" / "train-0.index").exists():   # adversarial step 0 is saved
            assert time.monotonic() < deadline and all(c.poll() is None for c, _ in children.values())
            time.sleep(0.2)
        time.sleep(3)                                                  # a few steps into the run
        children[1][0].send_signal(signal.SIGTERM)
        for child, _ in children.values():
            child.wait(timeout=max(1.0, deadline - time.monotonic()))
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in (0, 1)]
    assert [c.returncode for c, _ in children.values()] == [143, 143], logs
    stops = [re.findall(r"wbc-train: stopped by SIGTERM(.*) after train step (\d+);", text) for text in logs]
    (elsewhere, chief_step), = stops[0]
    (here, worker_step), = stops[1]
    assert elsewhere == " (sent to another worker)" and here == "" and chief_step == worker_step
    assert 0 < int(chief_step) < 1000
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith(f"train-{chief_step}")
