"""Losses on fixed tiny inputs against hand-computed values (docs/fidelity.md §7)."""

import numpy as np
import pytest
import tensorflow as tf

from tests import reference
from wbc_tf import losses

FAKE = np.array([0.5, -1.0, 2.0, 1.0], np.float32).reshape(1, 2, 2, 1)   # a 2×2 patch map
REAL = np.array([1.0, 0.0, 2.0, 0.5], np.float32).reshape(1, 2, 2, 1)


def test_lsgan_generator_hand_value():
    # mean((f − 1)²) = (0.25 + 4 + 1 + 0) / 4
    assert float(losses.lsgan_generator_loss(FAKE)) == pytest.approx(1.3125, rel=1e-7)


def test_lsgan_discriminator_hand_value_with_half():
    # ½·[(0 + 1 + 1 + 0.25)/4 + (0.25 + 1 + 4 + 1)/4] = ½·(0.5625 + 1.5625)
    assert float(losses.lsgan_discriminator_loss(REAL, FAKE)) == pytest.approx(1.0625, rel=1e-7)
    # perfect D: real → 1, fake → 0 gives 0; the ½ is on D only
    assert float(losses.lsgan_discriminator_loss(np.ones(4), np.zeros(4))) == 0.0
    assert float(losses.lsgan_generator_loss(np.zeros(4))) == 1.0


def test_total_variation_hand_value():
    img = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32).reshape(1, 2, 2, 1)
    # Δh = [2, 3] → 6.5; Δw = [1, 2] → 2.5; (6.5 + 2.5) / (3·2·2) = 0.75
    assert float(losses.total_variation_loss(img)) == pytest.approx(0.75, rel=1e-7)


def test_total_variation_uses_3hw_whatever_the_channels():
    rng = np.random.default_rng(0)
    for channels in (3, 1):
        img = rng.normal(size=(2, 5, 4, channels)).astype(np.float64)
        assert float(losses.total_variation_loss(img)) == pytest.approx(reference.total_variation_loss(img),
                                                                        rel=1e-12)


def test_vgg_l1_double_normalisation():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 1, 2, 2)   # h=1, w=2, c=2
    b = np.zeros_like(a)
    # mean|a − b| = 2.5, then / (h·w·c = 4)
    assert float(losses.vgg_l1_loss(a, b)) == pytest.approx(0.625, rel=1e-7)
    assert float(losses.content_loss(a, b)) == float(losses.structure_loss(b, a)) == pytest.approx(0.625)


def test_pixel_l1():
    photo = np.array([0.5, -0.5, 1.0, 0.0], np.float32).reshape(1, 2, 2, 1)
    assert float(losses.pixel_l1_loss(photo, np.zeros_like(photo))) == pytest.approx(0.5, rel=1e-7)


def test_total_objectives_are_the_original_weighted_sums():
    tv, g_blur, g_gray, photo, superpixel = 2e-5, 0.9, 1.1, 3e-4, 5e-4
    expected = reference.generator_total_loss(tv, g_blur, g_gray, photo, superpixel)
    got = losses.generator_total_loss(tf.constant(tv), g_blur, g_gray, photo, superpixel)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert float(losses.discriminator_total_loss(tf.constant(0.4), 0.7)) == pytest.approx(1.1)


def test_patch_maps_of_any_shape():
    fake = tf.ones((3, 32, 32, 1)) * 0.5
    assert float(losses.lsgan_generator_loss(fake)) == pytest.approx(0.25)
    assert float(losses.lsgan_discriminator_loss(tf.ones((3, 32, 32, 1)), fake)) == pytest.approx(0.125)
