"""Guided filter against a NumPy reference, plus its invariants and gradients."""

import numpy as np
import pytest
import tensorflow as tf

from tests import reference
from wbc_tf.guided_filter import GuidedFilter, box_filter, guided_filter


@pytest.mark.parametrize("r,eps", [(1, 5e-3), (1, 1e-2), (5, 0.2)])
def test_matches_numpy_reference(rng, r, eps):
    x = rng.uniform(-1, 1, (2, 23, 31, 3)).astype(np.float32)
    y = np.tanh(x * 2 + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    got = guided_filter(x, y, r, eps).numpy()
    np.testing.assert_allclose(got, reference.guided_filter(x, y, r, eps), atol=2e-5)


def test_box_filter_is_zero_padded_sum_over_window():
    x = np.ones((1, 4, 5, 1), np.float32)
    n = box_filter(x, 1).numpy()[0, :, :, 0] * 9  # counts of in-image pixels per 3x3 window
    np.testing.assert_allclose(n[0], [4, 6, 6, 6, 4], atol=1e-5)
    np.testing.assert_allclose(n[1], [6, 9, 9, 9, 6], atol=1e-5)


def test_constant_image_is_unchanged():
    x = np.full((1, 16, 16, 3), 0.3, np.float32)
    for r, eps in [(1, 5e-3), (5, 0.2)]:
        np.testing.assert_allclose(guided_filter(x, x, r, eps).numpy(), x, atol=1e-6)
    y = np.full((1, 16, 16, 3), -0.7, np.float32)
    guide = np.random.rand(1, 16, 16, 3).astype(np.float32)
    np.testing.assert_allclose(guided_filter(guide, y, 1, 5e-3).numpy(), y, atol=1e-5)


def test_per_channel_and_permutation_commutes(rng):
    x = rng.uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    y = rng.uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    out = guided_filter(x, y, 1, 1e-2).numpy()
    perm = [2, 0, 1]
    np.testing.assert_allclose(guided_filter(x[..., perm], y[..., perm], 1, 1e-2).numpy(), out[..., perm],
                               atol=1e-6)
    # Channel 0 of the output does not depend on channel 1 of the guide.
    x2 = x.copy()
    x2[..., 1] = 0
    np.testing.assert_allclose(guided_filter(x2, y, 1, 1e-2).numpy()[..., 0], out[..., 0], atol=1e-6)


def test_gradients_are_finite_through_both_roles(rng):
    x = tf.Variable(rng.uniform(-1, 1, (1, 10, 10, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(guided_filter(x, x, 5, 0.2) ** 2)
    grad = tape.gradient(loss, x).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    # Compare with a central finite difference in float64 on one element.
    i = (0, 4, 6, 1)
    h = 1e-3
    base = x.numpy().astype(np.float64)

    def f(v):
        return (reference.guided_filter(v, v, 5, 0.2) ** 2).sum()
    plus, minus = base.copy(), base.copy()
    plus[i] += h
    minus[i] -= h
    np.testing.assert_allclose(grad[i], (f(plus) - f(minus)) / (2 * h), rtol=2e-3)


def test_layer_config_round_trip(rng):
    layer = GuidedFilter(radius=2, eps=0.1, name="gf")
    clone = GuidedFilter.from_config(layer.get_config())
    assert (clone.radius, clone.eps, clone.name) == (2, 0.1, "gf")
    x = rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(layer([x, x]).numpy(), guided_filter(x, x, 2, 0.1).numpy())
