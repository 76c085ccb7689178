"""Surface, texture and structure representations (docs/fidelity.md §6)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage import color, transform

from tests import reference
from wbc_tf.representations import (ADAPTIVE_GAMMA1, ADAPTIVE_GAMMA2, COLOR_SHIFT_RANGES, adaptive_colour,
                                    color_shift, mean_colour, sample_color_shift_weights, slic_labels,
                                    structure_representation, superpixel_batch, superpixel_image,
                                    surface_representation)


@pytest.fixture(scope="module")
def astronaut_bgr(astronaut_rgb):
    rgb = transform.resize(astronaut_rgb, (96, 96), anti_aliasing=True)
    return (rgb[..., ::-1] * 2.0 - 1.0).astype(np.float32)   # BGR, [-1, 1]


def test_surface_is_self_guided_filter_r5_eps02(rng):
    x = rng.uniform(-1, 1, size=(1, 14, 12, 3)).astype("float32")
    np.testing.assert_allclose(surface_representation(x).numpy(), reference.surface(x), atol=2e-5)


def test_color_shift_weights_land_on_bgr_channels():
    w = (0.1, 0.6, 0.3)   # (w_b, w_g, w_r)
    for channel in range(3):
        x = np.zeros((1, 2, 2, 3), np.float32)
        x[..., channel] = 1.0
        gray = color_shift(tf.constant(x), w).numpy()
        assert gray.shape == (1, 2, 2, 1)
        np.testing.assert_allclose(gray, w[channel] / sum(w), rtol=1e-6)


def test_color_shift_hand_value_and_range():
    x = np.array([0.2, -0.4, 0.8], np.float32).reshape(1, 1, 1, 3)   # B, G, R
    w = (0.114, 0.587, 0.299)
    expected = (0.114 * 0.2 + 0.587 * -0.4 + 0.299 * 0.8) / 1.0
    np.testing.assert_allclose(color_shift(x, w).numpy().item(), expected, rtol=1e-5)
    y = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype("float32")
    g = color_shift(y, (0.2, 0.5, 0.3)).numpy()
    assert g.min() >= -1.0 and g.max() <= 1.0


def test_sampled_weights_ranges_order_and_seed():
    seed = keras.random.SeedGenerator(7)
    draws = np.stack([sample_color_shift_weights(seed).numpy() for _ in range(300)])
    assert draws.shape == (300, 3)
    np.testing.assert_allclose(COLOR_SHIFT_RANGES, np.stack([reference.color_shift_weights(np.zeros(3)),
                                                             reference.color_shift_weights(np.ones(3))], -1))
    for i, (low, high) in enumerate(COLOR_SHIFT_RANGES):      # index 0 is blue
        assert draws[:, i].min() >= low and draws[:, i].max() <= high
        assert draws[:, i].max() - draws[:, i].min() > 0.15   # covers its ±0.1 range
    assert len(np.unique(draws[:, 0])) == 300                 # a new draw every call
    again = keras.random.SeedGenerator(7)
    np.testing.assert_array_equal(sample_color_shift_weights(again).numpy(), draws[0])


def test_structure_constant_per_segment_and_mean_colour(astronaut_bgr):
    labels = slic_labels(astronaut_bgr, n_segments=50)
    out = superpixel_image(astronaut_bgr, n_segments=50)
    assert labels.min() == 0 and out.dtype == np.float32 and out.shape == astronaut_bgr.shape
    assert 20 <= labels.max() + 1 <= 80
    for lab in np.unique(labels):
        seg = out[labels == lab]
        np.testing.assert_array_equal(seg, np.broadcast_to(seg[0], seg.shape))          # constant
        np.testing.assert_allclose(seg[0], astronaut_bgr[labels == lab].mean(axis=0), atol=1e-6)  # its mean
    # the same as skimage's label2rgb(kind='avg', bg_label=-1): label 0 is not painted black
    expected = color.label2rgb(labels, astronaut_bgr, kind="avg", bg_label=-1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_slic_emulates_smoothing_before_lab_and_no_rescale(astronaut_bgr):
    """0.14.5 semantics: no min–max rescale, so shifting the data changes the Lab distances and labels."""
    ours = slic_labels(astronaut_bgr, n_segments=50)
    again = slic_labels(astronaut_bgr.copy(), n_segments=50)
    np.testing.assert_array_equal(ours, again)        # deterministic
    # modern slic rescales to [0, 1], so it is invariant to an affine change of the data; the
    # original was not (Lab of values in [-1, 1] differs from Lab of values in [0, 1])
    shifted = slic_labels((astronaut_bgr + 1) / 2, n_segments=50)
    assert not np.array_equal(ours, shifted)


def test_adaptive_colouring_thresholds_in_data_units():
    labels = np.repeat(np.arange(3), 4).reshape(3, 4)          # three segments of 4 pixels, rows
    image = np.zeros((3, 4, 3), np.float32)
    image[0] = np.array([0.0, 0.0, 0.0, 0.1])[:, None]         # pooled std ≈ 0.043 < γ1 (0.157) → mean
    image[1] = np.array([0.0, 0.0, 0.0, 0.8])[:, None]         # std ≈ 0.346 > γ2 (0.314) → median
    image[2] = np.array([0.0, 0.0, 0.1, 0.5])[:, None]         # std ≈ 0.206 in [γ1, γ2] → ½(mean+median)
    stds = [image[i].std() for i in range(3)]
    assert stds[0] < ADAPTIVE_GAMMA1 < stds[2] < ADAPTIVE_GAMMA2 < stds[1]
    out = adaptive_colour(image, labels)
    np.testing.assert_allclose(out[0], 0.025, atol=1e-6)
    np.testing.assert_allclose(out[1], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[2], 0.5 * (0.15 + 0.05), atol=1e-6)
    np.testing.assert_allclose(mean_colour(image, labels)[1], 0.2, atol=1e-6)


def test_structure_op_in_tf_function_matches_numpy_and_threads(astronaut_bgr, rng):
    batch = np.stack([astronaut_bgr, np.clip(astronaut_bgr + 0.1 * rng.standard_normal(astronaut_bgr.shape),
                                             -1.2, 1.2).astype("float32")])
    serial = superpixel_batch(batch, n_segments=40, workers=1)
    np.testing.assert_array_equal(superpixel_batch(batch, n_segments=40, workers=2), serial)

    @tf.function(input_signature=[tf.TensorSpec((2, 96, 96, 3), tf.float32)])
    def op(x):
        out = structure_representation(x, n_segments=40, workers=2)
        assert out.shape == (2, 96, 96, 3)     # static shape survives the numpy_function
        return out

    np.testing.assert_array_equal(op(batch).numpy(), serial)
    adaptive = superpixel_batch(batch, n_segments=40, colouring="adaptive", workers=1)
    assert adaptive.shape == batch.shape and not np.array_equal(adaptive, serial)


def test_structure_has_no_gradient(rng):
    x = tf.Variable(rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(structure_representation(x, n_segments=4, workers=1))
    assert tape.gradient(y, x) is None
    with pytest.raises(ValueError, match="colouring"):
        superpixel_image(x.numpy()[0], n_segments=4, colouring="mix")
