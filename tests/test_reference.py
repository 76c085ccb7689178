"""`tests/reference.py` itself: its single-op pieces against the TF1 ops they describe, and hand values.

The reference is NumPy only; here each TF op it re-derives (``conv2d`` / ``max_pool`` with 'SAME',
the legacy ``resize_bilinear``, the depthwise box filter divided by its window count,
``l2_normalize``, ``leaky_relu``) is the oracle, so the tests that compare the package against the
reference compare it against the original's ops.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests import reference


def test_same_padding_split_hand_values():
    assert reference.same_pads(8, 3, 2) == (0, 1)       # stride 2 on an even size: 0 before, 1 after
    assert reference.same_pads(8, 3, 1) == (1, 1)
    assert reference.same_pads(8, 7, 1) == (3, 3)
    assert reference.same_pads(9, 3, 2) == (1, 1)
    assert reference.same_pads(5, 1, 1) == (0, 0)


@pytest.mark.parametrize("x_shape, k_shape, stride", [
    ((2, 13, 17, 5), (3, 3, 5, 7), 1), ((2, 13, 17, 5), (3, 3, 5, 7), 2), ((1, 12, 16, 4), (3, 3, 4, 4), 2),
    ((2, 12, 16, 9), (7, 7, 9, 3), 1), ((2, 9, 11, 6), (7, 7, 6, 2), 2), ((1, 8, 8, 3), (1, 1, 3, 1), 1),
    ((1, 100, 150, 64), (3, 3, 64, 64), 1),    # several im2col bands
    ((1, 200, 300, 32), (7, 7, 32, 3), 1),     # several bands of the few-outputs path
])
def test_conv2d_same_equals_tf_conv2d(rng, x_shape, k_shape, stride):
    x, kernel = rng.normal(size=x_shape), rng.normal(size=k_shape)
    bias = rng.normal(size=k_shape[-1])
    want = tf.nn.conv2d(x, kernel, stride, "SAME").numpy() + bias
    np.testing.assert_allclose(reference.conv2d_same(x, kernel, bias, stride), want, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("hw", [(8, 6), (7, 9), (1, 3)])
def test_max_pool_equals_tf_same_pool(rng, hw):
    x = rng.normal(size=(2,) + hw + (3,)).astype(np.float32)      # a max is exact in any precision
    np.testing.assert_array_equal(reference.max_pool_2x2_same(x), tf.nn.max_pool2d(x, 2, 2, "SAME").numpy())


def test_legacy_upsample_equals_tf1_resize_bilinear(rng):
    x = rng.standard_normal((2, 5, 7, 3))
    tf1 = tf.compat.v1.image.resize_bilinear(x, (10, 14), align_corners=False, half_pixel_centers=False)
    np.testing.assert_allclose(reference.upsample2x_legacy(x), tf1.numpy(), atol=1e-6)
    # On a hand example: [0, 2, 10] -> [0, 1, 2, 6, 10, 10] (the last value is repeated).
    row = reference.upsample2x_legacy(np.array([0.0, 2.0, 10.0]).reshape(1, 1, 3, 1))[0, 0, :, 0]
    np.testing.assert_array_equal(row, [0, 1, 2, 6, 10, 10])


@pytest.mark.parametrize("r", [1, 5])
def test_box_mean_equals_depthwise_box_over_window_count(rng, r):
    """The original's box(x)/N: depthwise 1/(2r+1)² taps, zero 'SAME' padding, divided by box(1)."""
    x = rng.normal(size=(2, 9, 14, 3))
    k = 2 * r + 1

    def box(z):
        taps = tf.ones([k, k, z.shape[-1], 1], tf.float64) / k ** 2
        return tf.nn.depthwise_conv2d(z, taps, [1, 1, 1, 1], "SAME")

    want = box(x) / box(tf.ones([1, 9, 14, 1], tf.float64))
    np.testing.assert_allclose(reference.box_mean(x, r), want.numpy(), rtol=1e-12, atol=1e-13)


def test_guided_filter_hand_properties(rng):
    flat = np.full((1, 6, 7, 3), 0.3)
    np.testing.assert_allclose(reference.guided_filter(flat, flat, 1, 5e-3), flat, atol=1e-15)
    x, y = rng.uniform(-1, 1, (2, 1, 6, 7, 3))
    # eps → ∞: A → 0 and b → mean(y), so the output is the box mean of the box mean of the input
    np.testing.assert_allclose(reference.guided_filter(x, y, 1, 1e12),
                               reference.box_mean(reference.box_mean(y, 1), 1), atol=1e-10)


def test_l2_normalize_and_lrelu_equal_tf(rng):
    z = rng.normal(size=(1, 17))
    np.testing.assert_allclose(reference.l2_normalize(z), tf.nn.l2_normalize(z).numpy(), rtol=1e-14)
    np.testing.assert_array_equal(reference.l2_normalize(np.zeros((1, 3))), np.zeros((1, 3)))
    # TF's default alpha is 0.2 held as a float32 attribute, hence rtol 1e-7
    np.testing.assert_allclose(reference.lrelu(z), tf.nn.leaky_relu(z).numpy(), rtol=1e-7)


def test_power_iteration_converges_to_the_largest_singular_value(rng):
    kernel = rng.normal(size=(3, 3, 4, 6))
    _, _, sigma = reference.power_iteration(kernel, rng.normal(size=(1, 6)), iterations=200)
    np.testing.assert_allclose(sigma, np.linalg.svd(kernel.reshape(-1, 6), compute_uv=False)[0], rtol=1e-10)


def test_loss_hand_values():
    fake = np.array([0.5, -1.0, 2.0, 1.0]).reshape(1, 2, 2, 1)
    real = np.array([1.0, 0.0, 2.0, 0.5]).reshape(1, 2, 2, 1)
    assert reference.lsgan_generator_loss(fake) == pytest.approx(1.3125, rel=1e-15)
    assert reference.lsgan_discriminator_loss(real, fake) == pytest.approx(1.0625, rel=1e-15)
    image = np.array([[0.0, 1.0], [2.0, 4.0]]).reshape(1, 2, 2, 1)
    assert reference.total_variation_loss(image) == pytest.approx(0.75, rel=1e-15)
    a = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    assert reference.vgg_l1_loss(a, np.zeros_like(a)) == pytest.approx(0.625, rel=1e-15)


def test_inference_script_geometry_and_value_mapping():
    assert reference.output_size(1080, 1920) == (720, 1280)
    assert reference.output_size(1003, 730) == (984, 720)        # 720·1003/730 = 989.26 → 989 → 984
    assert reference.output_size(500, 3000) == (496, 3000)       # the rule is about the shorter side
    image = np.arange(15 * 17 * 3, dtype=np.uint8).reshape(15, 17, 3)
    np.testing.assert_array_equal(reference.resize_crop(image), image[:8, :16])
    np.testing.assert_array_equal(reference.postprocess(np.array([254.9 / 127.5 - 1, 3.0, -3.0, 0.0])),
                                  [254, 255, 0, 127])            # truncation, clip
