"""Generator: architecture, TF1 padding/resize semantics, and numbers against an independent forward pass."""

import numpy as np
import pytest
import tensorflow as tf

from tests import reference
from wbc_tf.generator import LegacyBilinearUpsample, build_generator
from wbc_tf.guided_filter import guided_filter
from wbc_tf.weights import generator_to_tf1_dict, load_generator_weights

EXPECTED_SHAPES = {
    "Conv": (7, 7, 3, 32), "Conv_1": (3, 3, 32, 32), "Conv_2": (3, 3, 32, 64),
    "Conv_3": (3, 3, 64, 64), "Conv_4": (3, 3, 64, 128),
    **{f"block_{i}/conv{j}": (3, 3, 128, 128) for i in range(4) for j in (1, 2)},
    "Conv_5": (3, 3, 128, 64), "Conv_6": (3, 3, 64, 64), "Conv_7": (3, 3, 64, 32),
    "Conv_8": (3, 3, 32, 32), "Conv_9": (7, 7, 32, 3),
}


@pytest.fixture(scope="module")
def released():
    g = build_generator()
    load_generator_weights(g)
    return g


def test_parameter_count_and_every_variable_shape():
    g = build_generator()
    assert g.count_params() == 1_467_075
    shapes = {w.path: tuple(w.shape) for w in g.weights}
    expected = {}
    for scope, k in EXPECTED_SHAPES.items():
        expected[f"{scope}/kernel"] = k
        expected[f"{scope}/bias"] = (k[-1],)
    assert shapes == expected
    assert len(shapes) == 36


def test_leaky_relu_slope_is_0_2():
    g = build_generator()
    slopes = {layer.negative_slope for layer in g.layers if "lrelu" in layer.name}
    assert slopes == {0.2}


def test_multiple_of_4_rule():
    g = build_generator(channels=4, num_blocks=1)
    for h, w in [(64, 68), (8, 4), (36, 52)]:
        assert g(np.zeros((1, h, w, 3), np.float32)).shape == (1, h, w, 3)
    for h, w in [(66, 64), (64, 30), (10, 12)]:
        with pytest.raises(ValueError, match="multiple of 4"):
            g(np.zeros((1, h, w, 3), np.float32))


def test_legacy_resize_matches_closed_form(rng):
    x = rng.standard_normal((2, 5, 7, 3)).astype(np.float32)
    got = LegacyBilinearUpsample()(x).numpy()
    want = reference.upsample2x_legacy(x)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # The half-pixel resize (UpSampling2D / tf.image.resize) is measurably different.
    half = tf.image.resize(x, (10, 14), method="bilinear").numpy()
    assert np.abs(half - want).max() > 0.1


def test_stride2_same_padding_is_asymmetric(rng):
    """TF 'SAME' at stride 2 on an even size pads 0 before and 1 after (docs/fidelity.md §2.2)."""
    g = build_generator()
    conv = g.get_layer("Conv_1")
    x = rng.standard_normal((1, 8, 8, 32)).astype(np.float32)
    kernel, bias = conv.kernel.numpy(), conv.bias.numpy()
    got = conv(x).numpy()
    np.testing.assert_allclose(got, reference.conv2d_same(x, kernel, bias, 2), atol=1e-5)   # pads (0, 1)
    sym = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, 2, "VALID") + bias
    assert np.abs(got - sym.numpy()[:, :4, :4]).max() > 0.1  # PyTorch-style padding=1 differs


def test_released_generator_and_filter_match_independent_forward(released, astronaut_rgb):
    """Keras generator + guided filter vs raw-op/NumPy reference on a real photo (max |Δ| ≤ 1e-4)."""
    bgr = astronaut_rgb[:256, 128:384, ::-1]  # (256, 256, 3) BGR crop with face and background
    x = reference.normalize(bgr)[None]
    tensors = generator_to_tf1_dict(released)
    want_g = reference.generator_forward(tensors, x)
    got_g = released(x).numpy()
    assert np.abs(got_g - want_g).max() <= 1e-4
    want = reference.guided_filter(x, want_g, 1, 5e-3)
    got = guided_filter(x, got_g, 1, 5e-3).numpy()
    assert np.abs(got - want).max() <= 1e-4
    # The output really is a cartoon, not the identity: a sanity bound on the change.
    assert np.abs(got - x).mean() > 0.02


def test_rgb_weight_flip_equals_bgr_path(released, rng):
    """docs/fidelity.md §12: flipping Conv's input axis and Conv_9's output axis serves RGB exactly."""
    x_bgr = rng.uniform(-1, 1, (1, 32, 40, 3)).astype(np.float32)
    tensors = generator_to_tf1_dict(released)
    flipped = dict(tensors)
    flipped["generator/Conv/weights"] = tensors["generator/Conv/weights"][:, :, ::-1]
    flipped["generator/Conv_9/weights"] = tensors["generator/Conv_9/weights"][..., ::-1]
    flipped["generator/Conv_9/biases"] = tensors["generator/Conv_9/biases"][::-1]
    g_rgb = build_generator()
    load_generator_weights(g_rgb, {k: np.ascontiguousarray(v) for k, v in flipped.items()})
    got = g_rgb(x_bgr[..., ::-1].copy()).numpy()[..., ::-1]
    np.testing.assert_allclose(got, released(x_bgr).numpy(), atol=1e-5)
