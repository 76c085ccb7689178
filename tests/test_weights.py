"""`wbc_tf.weights`: the TF1 name tables (generator, discriminators, GAN), strict loading with loud
failures, the TF1 checkpoint / ``.npz`` / ``.weights.h5`` files, `convert`, and the one spelling of
the bundled release weights."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from wbc_tf.config import TrainConfig
from wbc_tf.discriminator import build_discriminator, build_surface_discriminator, build_texture_discriminator
from wbc_tf.gan import build_white_box_gan
from wbc_tf.generator import build_generator
from wbc_tf.weights import (BUNDLED, WeightConversionError, assign_tf1_discriminator, convert,
                            discriminator_name_table, discriminator_to_tf1_dict, gan_name_table,
                            gan_to_tf1_dict, generator_name_table, generator_to_tf1_dict, load_gan_tf1_dict,
                            load_generator_weights, pretrained_checkpoint_dir, read_npz, read_tf1_checkpoint,
                            save_npz)

SHARED_NPZ = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "pretrained",
                          "wbc_generator_fp16recovered.npz")


def _save_v2_bundle(prefix, tensors):
    """Write a TF1 name-based (V2 bundle) checkpoint with arbitrary names and no ``checkpoint`` file."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def _random_like(table, rng):
    """``{tf1_name: float32 array}`` of the table's shapes (``u`` from N(0, 1), the rest N(0, 0.3²))."""
    return {name: rng.normal(scale=1.0 if name.endswith("/u") else 0.3, size=var.shape).astype("float32")
            for name, var in table.items()}


@pytest.fixture(scope="module")
def released_tensors():
    return read_tf1_checkpoint(pretrained_checkpoint_dir())


def _assert_same(got, want):
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


# ---- the generator ----------------------------------------------------------------------------------

def test_bundled_checkpoint_has_the_36_release_tensors(released_tensors):
    assert len(released_tensors) == 36
    assert all(k.startswith("generator/") for k in released_tensors)
    assert sum(v.size for v in released_tensors.values()) == 1_467_075
    assert all(v.dtype == np.float32 for v in released_tensors.values())
    g = build_generator()
    assert set(generator_name_table(g)) == set(released_tensors)


def test_default_load_is_the_release(released_tensors):
    g = load_generator_weights(build_generator())
    _assert_same(generator_to_tf1_dict(g), released_tensors)


@pytest.mark.skipif(not os.path.exists(SHARED_NPZ), reason="shared release .npz not beside the repo")
def test_shared_npz_equals_bundled_checkpoint(released_tensors):
    _assert_same(read_npz(SHARED_NPZ), released_tensors)


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
        _assert_same(generator_to_tf1_dict(load_generator_weights(build_generator(), path)), want)


def test_tf1_checkpoint_written_from_dict_round_trips(tmp_path, rng):
    g = build_generator(channels=8, num_blocks=2)
    tensors = _random_like(generator_name_table(g), rng)
    _save_v2_bundle(str(tmp_path / "model-7"), tensors)
    load_generator_weights(g, str(tmp_path / "model-7"))
    _assert_same(generator_to_tf1_dict(g), tensors)


def test_non_generator_tensors_are_ignored(tmp_path, released_tensors):
    tensors = dict(released_tensors)
    tensors["disc_blur/conv0_1/kernel"] = np.zeros((3, 3, 3, 32), np.float32)
    _save_v2_bundle(str(tmp_path / "model-1"), tensors)
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
    _save_v2_bundle(str(tmp_path / "model-1"), tensors)
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


# ---- the discriminators ---------------------------------------------------------------------------

def test_discriminator_tf1_names_and_shapes():
    table = discriminator_name_table(build_texture_discriminator())
    assert len(table) == 21
    assert tuple(table["disc_gray/conv0_1/kernel"].shape) == (3, 3, 1, 32)
    assert tuple(table["disc_gray/conv0_1/u"].shape) == (1, 32)
    assert tuple(table["disc_gray/conv2_2/kernel"].shape) == (3, 3, 128, 128)
    assert tuple(table["disc_gray/conv_out/kernel"].shape) == (1, 1, 128, 1)
    assert tuple(table["disc_gray/conv_out/u"].shape) == (1, 1)
    assert tuple(table["disc_gray/conv_out/bias"].shape) == (1,)
    blur = discriminator_name_table(build_surface_discriminator())
    assert tuple(blur["disc_blur/conv0_1/kernel"].shape) == (3, 3, 3, 32)
    assert not blur["disc_blur/conv1_1/u"].trainable


def test_discriminator_round_trip_and_strictness(rng):
    model = build_discriminator(1, channels=8, name="disc_gray")
    tensors = _random_like(discriminator_name_table(model), rng)
    # tensors of other scopes are ignored
    assign_tf1_discriminator(model, {**tensors, "disc_blur/conv0_1/kernel": np.zeros(1)})
    _assert_same(discriminator_to_tf1_dict(model), tensors)

    missing = dict(tensors)
    del missing["disc_gray/conv1_2/u"]
    with pytest.raises(WeightConversionError, match="conv1_2/u"):
        assign_tf1_discriminator(model, missing)
    with pytest.raises(WeightConversionError, match="unused.*conv9_9"):
        assign_tf1_discriminator(model, {**tensors, "disc_gray/conv9_9/kernel": np.zeros(1)})
    bad = dict(tensors)
    bad["disc_gray/conv0_1/kernel"] = np.zeros((3, 3, 3, 8), "float32")
    with pytest.raises(WeightConversionError, match="shape mismatch"):
        assign_tf1_discriminator(model, bad)


# ---- the whole GAN --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gan_and_weights():
    """A WhiteBoxGAN of the original's layout (4 blocks; narrow, random VGG) and random TF1 weights."""
    gan = build_white_box_gan(TrainConfig(channels=8, disc_channels=8), vgg_weights=None)
    weights = _random_like(gan_name_table(gan), np.random.default_rng(42))
    load_gan_tf1_dict(gan, weights)
    return gan, weights


def test_gan_tf1_dict_round_trip_and_strictness(gan_and_weights):
    gan, weights = gan_and_weights
    names = set(gan_to_tf1_dict(gan))
    assert len(names) == 36 + 2 * 21
    assert {"generator/Conv/weights", "disc_blur/conv0_1/u", "disc_gray/conv_out/u"} <= names
    _assert_same(gan_to_tf1_dict(gan), weights)
    # TF1 optimizer bookkeeping is skipped; everything else must match exactly
    extra = {"generator/Conv/weights/Adam": np.zeros(1), "beta1_power": np.zeros(()), "global_step": 0}
    assert load_gan_tf1_dict(gan, {**weights, **extra}) is gan
    other = {k: v + 1 for k, v in weights.items()}
    with pytest.raises(WeightConversionError, match="missing in checkpoint: disc_gray/conv0_2/u"):
        load_gan_tf1_dict(gan, {k: v for k, v in other.items() if k != "disc_gray/conv0_2/u"})
    with pytest.raises(WeightConversionError, match="unused checkpoint tensors: disc_edge/conv0_1/kernel"):
        load_gan_tf1_dict(gan, {**other, "disc_edge/conv0_1/kernel": np.zeros(1)})
    with pytest.raises(WeightConversionError, match="shape mismatch: generator/Conv_9/biases"):
        load_gan_tf1_dict(gan, {**other, "generator/Conv_9/biases": np.zeros(4, "float32")})
    _assert_same(gan_to_tf1_dict(gan), weights)             # a failed load assigns nothing


# ---- convert (what wbc-convert does) --------------------------------------------------------------

def test_convert_tf1_to_npz_to_h5_to_tf1_keeps_every_array(tmp_path, rng):
    tensors = _random_like(generator_name_table(build_generator()), rng)
    _save_v2_bundle(str(tmp_path / "model-5"), tensors)
    assert convert(str(tmp_path / "model-5"), str(tmp_path / "a.npz")) == str(tmp_path / "a.npz")
    _assert_same(read_npz(tmp_path / "a.npz"), tensors)
    assert convert(str(tmp_path / "a.npz"), str(tmp_path / "b.weights.h5")) == str(tmp_path / "b.weights.h5")
    prefix = convert(str(tmp_path / "b.weights.h5"), str(tmp_path / "out" / "saved_models"), name="model-9")
    assert prefix == str(tmp_path / "out" / "saved_models" / "model-9")
    # what the original cartoonize.py does: tf.train.latest_checkpoint on the folder
    assert tf.train.latest_checkpoint(str(tmp_path / "out" / "saved_models")) == prefix
    _assert_same(read_tf1_checkpoint(prefix), tensors)


def test_convert_fails_loudly(tmp_path):
    with pytest.raises(WeightConversionError, match="cannot read TF1 checkpoint"):
        convert(str(tmp_path / "nope"), str(tmp_path / "a.npz"))
    assert not (tmp_path / "a.npz").exists()


# ---- the bundled release: one spelling ------------------------------------------------------------

def test_none_and_bundled_load_the_same_release(released_tensors):
    assert BUNDLED == "bundled"
    for source in (None, "bundled"):
        g = build_generator()                    # fresh random weights each time
        assert load_generator_weights(g, source) is g
        _assert_same(generator_to_tf1_dict(g), released_tensors)


def test_convert_reads_bundled(tmp_path, released_tensors):
    convert("bundled", str(tmp_path / "g.npz"))
    _assert_same(read_npz(tmp_path / "g.npz"), released_tensors)


def test_cartoonize_cli_takes_bundled(tmp_path, astronaut_rgb):
    import cv2

    from wbc_tf.cli import cartoonize
    photo = tmp_path / "astro.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(astronaut_rgb[::8, ::8, ::-1]))     # 64 x 64 BGR
    assert cartoonize.build_parser().parse_args([str(photo), "-o", "o"]).weights == "bundled"
    for weights, out in (("bundled", "a"), (pretrained_checkpoint_dir(), "b")):
        assert cartoonize.main([str(photo), "-o", str(tmp_path / out), "--weights", weights, "-q"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a" / "astro.png")),
                                  cv2.imread(str(tmp_path / "b" / "astro.png")))


def test_export_and_train_clis_take_bundled(released_tensors):
    from wbc_tf.cli import export, train
    from wbc_tf.cli.args import dataclass_from_args
    from wbc_tf.config import ExportConfig, RunOptions

    parser = export.build_parser()
    for argv in ([], ["--weights", "bundled"]):
        config = dataclass_from_args(ExportConfig, parser.parse_args(["--output-dir", "o", *argv]))
        assert config.weights == "bundled"
    _assert_same(generator_to_tf1_dict(load_generator_weights(build_generator(), config.weights)),
                 released_tensors)
    parser = train.build_parser()
    for argv in (["--init-weights"], ["--init-weights", "bundled"]):
        options = dataclass_from_args(RunOptions, parser.parse_args(["--data", "d", *argv]))
        assert options.init_weights == "bundled"
    assert dataclass_from_args(RunOptions, parser.parse_args(["--data", "d"])).init_weights is None
