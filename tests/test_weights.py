"""TF1 checkpoint / npz / .weights.h5 conversion: strict name table, loud failures."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from wbc_tf.generator import build_generator
from wbc_tf.weights import (WeightConversionError, generator_name_table, generator_to_tf1_dict,
                            load_generator_weights, pretrained_checkpoint_dir, read_npz,
                            read_tf1_checkpoint, save_npz)

SHARED_NPZ = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "pretrained",
                          "wbc_generator_fp16recovered.npz")


def write_tf1_checkpoint(prefix, tensors):
    """Write a TF1 name-based (V2 bundle) checkpoint with arbitrary names, without a TF1 graph."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


@pytest.fixture(scope="module")
def released_tensors():
    return read_tf1_checkpoint(pretrained_checkpoint_dir())


def test_bundled_checkpoint_has_the_36_release_tensors(released_tensors):
    assert len(released_tensors) == 36
    assert all(k.startswith("generator/") for k in released_tensors)
    assert sum(v.size for v in released_tensors.values()) == 1_467_075
    assert all(v.dtype == np.float32 for v in released_tensors.values())
    g = build_generator()
    assert set(generator_name_table(g)) == set(released_tensors)


def test_default_load_is_the_release(released_tensors):
    g = load_generator_weights(build_generator())
    got = generator_to_tf1_dict(g)
    for k, v in released_tensors.items():
        np.testing.assert_array_equal(got[k], v)


@pytest.mark.skipif(not os.path.exists(SHARED_NPZ), reason="shared release .npz not beside the repo")
def test_shared_npz_equals_bundled_checkpoint(released_tensors):
    npz = read_npz(SHARED_NPZ)
    assert set(npz) == set(released_tensors)
    for k in npz:
        np.testing.assert_array_equal(npz[k], released_tensors[k])


def test_checkpoint_dir_prefix_and_index_paths(tmp_path, released_tensors):
    src = pretrained_checkpoint_dir()
    prefix = os.path.join(src, "model-33999")
    for path in (src, prefix, prefix + ".index", prefix + ".data-00000-of-00001"):
        assert set(read_tf1_checkpoint(path)) == set(released_tensors)
    # A directory without the 'checkpoint' text file still works when it holds one bundle.
    d = tmp_path / "nockpt"
    d.mkdir()
    for f in os.listdir(src):
        if f != "checkpoint":
            shutil.copy(os.path.join(src, f), d / f)
    assert set(read_tf1_checkpoint(str(d))) == set(released_tensors)


def test_npz_and_keras_h5_round_trip(tmp_path, rng):
    g = build_generator()
    for w in g.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32))
    save_npz(g, tmp_path / "g.npz")
    g.save_weights(str(tmp_path / "g.weights.h5"))
    want = generator_to_tf1_dict(g)
    for path in (tmp_path / "g.npz", tmp_path / "g.weights.h5"):
        got = generator_to_tf1_dict(load_generator_weights(build_generator(), path))
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])


def test_tf1_checkpoint_written_from_dict_round_trips(tmp_path, rng):
    g = build_generator(channels=8, num_blocks=2)
    tensors = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in generator_to_tf1_dict(g).items()}
    write_tf1_checkpoint(str(tmp_path / "model-7"), tensors)
    load_generator_weights(g, str(tmp_path / "model-7"))
    got = generator_to_tf1_dict(g)
    for k in tensors:
        np.testing.assert_array_equal(got[k], tensors[k])


def test_non_generator_tensors_are_ignored(tmp_path, released_tensors):
    tensors = dict(released_tensors)
    tensors["disc_blur/conv0_1/kernel"] = np.zeros((3, 3, 3, 32), np.float32)
    write_tf1_checkpoint(str(tmp_path / "model-1"), tensors)
    load_generator_weights(build_generator(), str(tmp_path / "model-1"))


@pytest.mark.parametrize("case", ["missing", "unused", "shape"])
def test_conversion_errors_name_the_tensor(tmp_path, released_tensors, case):
    tensors = dict(released_tensors)
    if case == "missing":
        del tensors["generator/block_2/conv1/biases"]
        match = "missing in checkpoint: generator/block_2/conv1/biases"
    elif case == "unused":
        tensors["generator/Conv_10/weights"] = np.zeros((1, 1, 3, 3), np.float32)
        match = "unused checkpoint tensors: generator/Conv_10/weights"
    else:
        tensors["generator/Conv_9/weights"] = np.zeros((3, 3, 32, 3), np.float32)
        match = r"generator/Conv_9/weights: checkpoint \(3, 3, 32, 3\) vs model \(7, 7, 32, 3\)"
    write_tf1_checkpoint(str(tmp_path / "model-1"), tensors)
    for source in (str(tmp_path / "model-1"), tensors):
        with pytest.raises(WeightConversionError, match=match):
            load_generator_weights(build_generator(), source)


def test_bad_paths_fail_loudly(tmp_path):
    g = build_generator()
    with pytest.raises(WeightConversionError, match="cannot read TF1 checkpoint"):
        load_generator_weights(g, str(tmp_path / "nothing-here"))
    with pytest.raises(WeightConversionError, match="no such weights file"):
        load_generator_weights(g, str(tmp_path / "nothing.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightConversionError, match="pass the prefix"):
        load_generator_weights(g, str(tmp_path / "empty"))
    # A generator of another width cannot take the release.
    with pytest.raises(WeightConversionError, match="shape mismatch"):
        load_generator_weights(build_generator(channels=16))
