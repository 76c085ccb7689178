"""Mixed precision (``TrainConfig.precision``, `wbc_tf.precision`) on CPU: the policy stays scoped to the
models built for it, the float32 islands (G's last layer, D logits, spectral norm, losses) stay float32, a
bfloat16 step is finite and close to the float32 one, float16 scales the loss of every optimiser.

float16 convolutions have no fast CPU kernels (a VGG backward takes minutes), so the float16 GAN step
runs with a one-conv stand-in for the VGG; bfloat16 runs the real networks.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import helpers, reference
from wbc_tf import losses, precision
from wbc_tf.config import TrainConfig
from wbc_tf.gan import GeneratorPretrainer, WhiteBoxGAN, build_training_generator, build_white_box_gan
from wbc_tf.weights import gan_to_tf1_dict, load_gan_tf1_dict

TINY = TrainConfig(channels=8, num_blocks=1, disc_channels=8, superpixel_segments=30, superpixel_workers=1)
BF16 = dataclasses.replace(TINY, precision="mixed_bfloat16")
FP16 = dataclasses.replace(TINY, precision="mixed_float16")


def _batch(seed=0, n=2, size=32):
    rng = np.random.default_rng(seed)
    return tuple(tf.constant(rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")) for _ in range(2))


def _gan(config, weights=None, vgg=None):
    keras.utils.set_random_seed(0)
    gan = build_white_box_gan(config, vgg_weights=vgg)
    if weights is not None:
        load_gan_tf1_dict(gan, weights)
    return gan


def _updates(before, after, scope):
    names = [k for k in before if k.startswith(scope) and not k.endswith("/u")]
    return np.concatenate([(after[k] - before[k]).ravel() for k in names])


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _compute_dtype(model, name):
    return model.get_layer(name).compute_dtype


def test_policy_is_scoped_and_the_float32_islands_stay_float32():
    gan = _gan(BF16)
    assert keras.config.dtype_policy().name == "float32"          # no global policy left behind
    g, ds, dt, vgg = gan.generator, gan.surface_discriminator, gan.texture_discriminator, gan.vgg
    assert _compute_dtype(g, "Conv") == "bfloat16"
    assert g.get_layer("block_0").conv1.compute_dtype == "bfloat16"      # a sub-layer of a custom layer
    assert _compute_dtype(g, "Conv_9") == "float32"               # G's last layer
    for d in (ds, dt):
        assert _compute_dtype(d, "conv0_1") == "bfloat16" and _compute_dtype(d, "conv_out") == "float32"
    assert _compute_dtype(vgg, "conv1_1") == "bfloat16"
    assert _compute_dtype(vgg, "caffe_preprocess") == "float32"
    assert {w.dtype for m in (g, ds, dt, vgg) for w in m.weights} == {"float32"}   # float32 variables
    photo, _ = _batch()
    assert gan.generate(photo).dtype == tf.float32
    assert all(t.dtype == tf.float32 for t in gan.discriminate(photo, (0.1, 0.6, 0.3)))
    assert gan.vgg(photo).dtype == tf.bfloat16
    # a float32 model built afterwards is float32
    assert _compute_dtype(build_training_generator(TINY), "Conv") == "float32"


def test_models_of_another_precision_are_refused():
    gan = _gan(TINY)
    with pytest.raises(ValueError, match="generator computes in float32 but precision is 'mixed_bfloat16'"):
        GeneratorPretrainer(gan.generator, BF16)
    with pytest.raises(ValueError, match="computes in float32"):
        WhiteBoxGAN(gan.generator, gan.surface_discriminator, gan.texture_discriminator, gan.vgg, config=BF16)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_losses_reduce_in_float32(dtype):
    rng = np.random.default_rng(3)
    a, b = (tf.cast(rng.normal(size=(2, 4, 4, 8)) * 3.0, dtype) for _ in range(2))
    a32, b32 = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    for fn, args, args32 in (
            (losses.vgg_l1_loss, (a, b), (a32, b32)),
            (losses.lsgan_generator_loss, (a,), (a32,)),
            (losses.lsgan_discriminator_loss, (a, b), (a32, b32)),
            (losses.total_variation_loss, (a,), (a32,)),
            (losses.pixel_l1_loss, (a32, b), (a32, b32))):
        got = fn(*args)
        assert got.dtype == tf.float32, fn.__name__
        assert float(got) == float(fn(*args32)), fn.__name__


def test_bfloat16_step_is_finite_and_close_to_float32():
    """Same weights, same batch, same colour-shift draws: the ten logged values agree to < 0.5 %, the
    updates point the same way, and the spectral-norm ``u`` (float32 power iteration) is the float32 one."""
    vgg = helpers.random_vgg_weights(np.random.default_rng(1))
    photo, cartoon = _batch()
    f32 = _gan(TINY, vgg=vgg)
    start = gan_to_tf1_dict(f32)
    bf16 = _gan(BF16, weights=start, vgg=vgg)
    results = {}
    for name, gan in (("float32", f32), ("bfloat16", bf16)):
        gan.compile()
        logs = gan.train_step((photo, cartoon))
        results[name] = ({k: float(v) for k, v in logs.items()}, gan_to_tf1_dict(gan))
    (want, after32), (got, after16) = results["float32"], results["bfloat16"]
    for name, value in want.items():
        assert np.isfinite(got[name]), name
        assert got[name] == pytest.approx(value, rel=5e-3), name
    assert _cosine(_updates(start, after32, "generator"), _updates(start, after16, "generator")) > 0.7
    for scope in ("disc_blur", "disc_gray"):
        assert _cosine(_updates(start, after32, scope), _updates(start, after16, scope)) > 0.95, scope
    for name in (k for k in start if k.endswith("/u")):
        # faithful SN: 3 power iterations per step from the pre-step kernel, in float32 (bfloat16: ~1e-3 off)
        np.testing.assert_allclose(after16[name], reference.power_iteration(
            start[name.replace("/u", "/kernel")], start[name], 3)[0], rtol=1e-4, atol=1e-5)


def test_bfloat16_pretrainer_step_is_close_to_float32():
    photo, _ = _batch(4)
    values = []
    generator32 = build_training_generator(TINY)
    for config in (TINY, BF16):
        generator = build_training_generator(config)
        generator.set_weights(generator32.get_weights())
        pre = GeneratorPretrainer(generator, config)
        pre.compile()
        values.append(float(pre.train_step(photo)["recon_loss"]))
    assert np.isfinite(values[1]) and values[1] == pytest.approx(values[0], rel=5e-3)
    assert values[1] != values[0]                    # the generator did compute in bfloat16


def _stand_in_vgg(policy):
    """A one-conv (B, H, W, 3) -> (B, H/8, W/8, 16) feature extractor (the real VGG is minutes in float16)."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(16, 3, strides=8, padding="same", dtype=policy, name="conv1_1")(inputs)
    model = keras.Model(inputs, x)
    model.set_weights([np.random.default_rng(2).normal(0, 0.3, w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def test_float16_scales_the_loss_of_both_gan_optimisers():
    """With SGD(1) the update is -gradient: a float16 step that did not scale the loss (or did not
    unscale the gradients) would be 2¹⁵ times off; here it matches the float32 step."""
    photo, cartoon = _batch(5, size=16)
    updates = {}
    start = None
    for config in (TINY, FP16):
        keras.utils.set_random_seed(0)
        base = build_white_box_gan(config, vgg_weights=None)
        if start is None:
            start = gan_to_tf1_dict(base)
        load_gan_tf1_dict(base, start)
        gan = WhiteBoxGAN(base.generator, base.surface_discriminator, base.texture_discriminator,
                          _stand_in_vgg(precision.dtype_policy(config.precision)), config=config)
        gan.compile(g_optimizer=keras.optimizers.SGD(1.0), d_optimizer=keras.optimizers.SGD(1.0))
        logs = gan.train_step((photo, cartoon))
        assert all(np.isfinite(float(v)) for v in logs.values())
        updates[config.precision] = (gan, gan_to_tf1_dict(gan))
    gan16 = updates["mixed_float16"][0]
    for opt in (gan16.g_optimizer, gan16.d_optimizer):
        assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
        assert float(opt.dynamic_scale) == 2.0 ** 15                 # no overflow: nothing skipped
    assert not isinstance(updates["float32"][0].g_optimizer, keras.optimizers.LossScaleOptimizer)
    for scope in ("generator", "disc_blur", "disc_gray"):
        a = _updates(start, updates["float32"][1], scope)
        b = _updates(start, updates["mixed_float16"][1], scope)
        assert _cosine(a, b) > 0.9, scope
        assert np.linalg.norm(b) / np.linalg.norm(a) == pytest.approx(1.0, abs=0.1), scope


def test_float16_pretrainer_scales_its_loss():
    photo, _ = _batch(6, size=16)
    deltas = []
    generator32 = build_training_generator(TINY)
    for config in (TINY, FP16):
        generator = build_training_generator(config)
        generator.set_weights(generator32.get_weights())
        pre = GeneratorPretrainer(generator, config)
        pre.compile(optimizer=keras.optimizers.SGD(1.0))
        assert isinstance(pre.optimizer, keras.optimizers.LossScaleOptimizer) == (config is FP16)
        assert np.isfinite(float(pre.train_step(photo)["recon_loss"]))
        deltas.append(np.concatenate([(w - w0).ravel() for w, w0 in
                                      zip(generator.get_weights(), generator32.get_weights())]))
    assert _cosine(*deltas) > 0.9
    assert np.linalg.norm(deltas[1]) / np.linalg.norm(deltas[0]) == pytest.approx(1.0, abs=0.1)
