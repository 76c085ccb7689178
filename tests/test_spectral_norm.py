"""Spectral normalisation: σ against SVD, the gradient through σ, the u write-back rules (docs/fidelity.md §5.2)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import reference
from wbc_tf.spectral_norm import SpectralNormConv2D, spectral_normalize


def _layer(rng, filters=6, c_in=4, k=3, strides=1):
    layer = SpectralNormConv2D(filters, k, strides=strides, name="conv0_1")
    layer.build((None, None, None, c_in))
    layer.kernel.assign(rng.normal(size=(k, k, c_in, filters)).astype("float32"))
    layer.bias.assign(rng.normal(size=(filters,)).astype("float32"))
    return layer


def test_sigma_one_iteration_matches_explicit_formula(rng):
    kernel = rng.normal(size=(3, 3, 4, 6)).astype("float32")
    u = rng.normal(size=(1, 6)).astype("float32")
    kernel_sn, u_hat, sigma = spectral_normalize(tf.constant(kernel), tf.constant(u))
    ref_u, _, ref_sigma = reference.power_iteration(kernel, u)
    np.testing.assert_allclose(float(sigma), ref_sigma, rtol=1e-5)
    np.testing.assert_allclose(u_hat.numpy(), ref_u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernel_sn.numpy(), kernel / ref_sigma, rtol=1e-5, atol=1e-6)


def test_sigma_converges_to_largest_singular_value(rng):
    layer = _layer(rng)
    x = tf.constant(rng.normal(size=(1, 5, 5, 4)).astype("float32"))
    for _ in range(60):  # each training call is one power iteration with write-back
        layer(x, training=True)
    w = layer.kernel.numpy().reshape(-1, 6)
    sigma_svd = np.linalg.svd(w, compute_uv=False)[0]
    _, _, sigma = spectral_normalize(tf.convert_to_tensor(layer.kernel), tf.convert_to_tensor(layer.u))
    np.testing.assert_allclose(float(sigma), sigma_svd, rtol=1e-4)
    # the normalised kernel has spectral norm 1
    kernel_sn = layer.normalized_kernel().numpy().reshape(-1, 6)
    np.testing.assert_allclose(np.linalg.svd(kernel_sn, compute_uv=False)[0], 1.0, rtol=1e-4)


def test_forward_is_conv_with_kernel_over_sigma(rng):
    layer = _layer(rng, strides=2)
    x = rng.normal(size=(2, 8, 8, 4)).astype("float32")
    _, _, sigma = reference.power_iteration(layer.kernel.numpy(), layer.u.numpy())
    expected = reference.conv2d_same(x, layer.kernel.numpy() / sigma, layer.bias.numpy(), 2)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert layer(x).shape == (2, 4, 4, 6)


def test_gradient_flows_through_sigma(rng):
    """d loss / d K equals autodiff of K / (v̂ W ûᵀ) with û, v̂ constants; differs from the no-σ-gradient."""
    layer = _layer(rng)
    x = tf.constant(rng.normal(size=(2, 6, 6, 4)).astype("float32"))
    g = tf.constant(rng.normal(size=(2, 6, 6, 6)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) * g)
    grad = tape.gradient(loss, layer.kernel).numpy()

    kernel = tf.constant(layer.kernel.numpy(), tf.float64)
    u_hat, v_hat, _ = reference.power_iteration(layer.kernel.numpy(), layer.u.numpy())
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        w = tf.reshape(kernel, (-1, 6))
        sigma = tf.reshape(tf.constant(v_hat) @ w @ tf.constant(u_hat.T), ())
        y = tf.nn.conv2d(tf.cast(x, tf.float64), kernel / sigma, 1, "SAME")
        ref_loss = tf.reduce_sum(y * tf.cast(g, tf.float64))
    ref_grad = tape.gradient(ref_loss, kernel).numpy()
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-5 * np.abs(ref_grad).max())

    # without the σ path (what keras.layers.SpectralNormalization differentiates) it is different
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        y = tf.nn.conv2d(tf.cast(x, tf.float64), kernel / tf.stop_gradient(sigma), 1, "SAME")
        no_sigma = tape.gradient(tf.reduce_sum(y * tf.cast(g, tf.float64)), kernel).numpy()
    assert np.abs(no_sigma - ref_grad).max() > 1e-2 * np.abs(ref_grad).max()


def test_u_written_back_on_every_training_call_only(rng):
    layer = _layer(rng)
    x = tf.constant(rng.normal(size=(1, 4, 4, 4)).astype("float32"))
    u0 = layer.u.numpy().copy()
    kernel_before = layer.kernel.numpy().copy()
    layer(x)
    layer(x, training=False)
    np.testing.assert_array_equal(layer.u.numpy(), u0)            # no write without training
    layer(x, training=True)
    u1 = layer.u.numpy().copy()
    np.testing.assert_allclose(u1, reference.power_iteration(kernel_before, u0)[0], rtol=1e-5, atol=1e-6)
    layer(x, training=True)
    u2 = layer.u.numpy()
    assert not np.allclose(u1, u0) and not np.array_equal(u2, u1)  # changes on each call
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel_before)  # raw kernel kept


def test_u_written_inside_tf_function(rng):
    layer = _layer(rng)
    x = tf.constant(rng.normal(size=(1, 4, 4, 4)).astype("float32"))

    @tf.function
    def two_calls():
        layer(x, training=True)
        return layer(x, training=True)

    u0 = layer.u.numpy().copy()
    two_calls()
    u_ref = reference.power_iteration(layer.kernel.numpy(), u0, iterations=2)[0]   # one per call
    np.testing.assert_allclose(layer.u.numpy(), u_ref, rtol=1e-5, atol=1e-6)


def test_variables_and_initialisation():
    keras.utils.set_random_seed(1)
    layer = SpectralNormConv2D(4096, 1)
    layer.build((None, None, None, 2))
    assert [w.name for w in layer.trainable_weights] == ["kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["u"]
    u = layer.u.numpy()
    assert u.shape == (1, 4096)
    # N(0, 1) like tf.random_normal_initializer(), not Keras SN's TruncatedNormal(0.02)
    assert abs(u.mean()) < 0.1 and abs(u.std() - 1.0) < 0.05
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)


def test_get_config_round_trip():
    layer = SpectralNormConv2D(8, 3, strides=2, power_iterations=2, name="conv1_1")
    clone = SpectralNormConv2D.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.strides, clone.power_iterations, clone.name) == (
        8, 3, 2, 2, "conv1_1")


@pytest.mark.parametrize("iterations", [1, 3])
def test_power_iterations_argument(rng, iterations):
    kernel = rng.normal(size=(3, 3, 2, 5)).astype("float32")
    u = rng.normal(size=(1, 5)).astype("float32")
    ref_u, _, ref_sigma = reference.power_iteration(kernel, u, iterations)
    _, u_hat, sigma = spectral_normalize(tf.constant(kernel), tf.constant(u), iterations)
    np.testing.assert_allclose(float(sigma), ref_sigma, rtol=1e-5)
    np.testing.assert_allclose(u_hat.numpy(), ref_u, rtol=1e-4, atol=1e-6)
