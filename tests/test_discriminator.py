"""``disc_sn``: layout, parameter counts, a raw tf.nn reference forward, the SN ``u`` update.

The TF1 names and the strict conversion are tested with `wbc_tf.weights` (tests/test_weights.py)."""

import numpy as np
import pytest
import tensorflow as tf

from wbc_tf.discriminator import build_discriminator, build_surface_discriminator, build_texture_discriminator
from wbc_tf.weights import assign_tf1_discriminator, discriminator_name_table, discriminator_to_tf1_dict

# (scope, stride) in order; kernel 3×3 except conv_out (1×1)
LAYOUT = [("conv0_1", 2), ("conv0_2", 1), ("conv1_1", 2), ("conv1_2", 1), ("conv2_1", 2), ("conv2_2", 1),
          ("conv_out", 1)]


def _reference_disc(x, tensors, scope):
    """disc_sn(patch=True) from a TF1-named dict with tf.nn ops and NumPy spectral norm (float64)."""
    h = tf.constant(x, tf.float64)
    for i, (layer, stride) in enumerate(LAYOUT):
        k = tensors[f"{scope}/{layer}/kernel"].astype(np.float64)
        w = k.reshape(-1, k.shape[-1])
        u = tensors[f"{scope}/{layer}/u"].astype(np.float64)
        v = u @ w.T
        v /= np.sqrt(max((v * v).sum(), 1e-12))
        u_hat = v @ w
        u_hat /= np.sqrt(max((u_hat * u_hat).sum(), 1e-12))
        sigma = (v @ w @ u_hat.T).item()
        h = tf.nn.conv2d(h, k / sigma, stride, "SAME") + tensors[f"{scope}/{layer}/bias"].astype(np.float64)
        if i < len(LAYOUT) - 1:
            h = tf.nn.leaky_relu(h, 0.2)
    return h.numpy()


def _random_tf1_dict(model, rng, scope):
    out = {}
    for name, var in discriminator_name_table(model, scope).items():
        scale = 1.0 if name.endswith("/u") else 0.3
        out[name] = rng.normal(scale=scale, size=var.shape).astype("float32")
    return out


def test_parameter_counts_match_the_original():
    blur, gray = build_surface_discriminator(), build_texture_discriminator()
    assert sum(int(np.prod(w.shape)) for w in blur.trainable_weights) == 287_137
    assert sum(int(np.prod(w.shape)) for w in gray.trainable_weights) == 286_561
    # plus one non-trainable u of (1, C_out) per layer
    assert blur.count_params() == 287_137 + 32 + 32 + 64 + 64 + 128 + 128 + 1


@pytest.mark.parametrize("in_channels,scope", [(3, "disc_blur"), (1, "disc_gray")])
def test_forward_matches_raw_reference(rng, in_channels, scope):
    model = build_discriminator(in_channels, channels=8, name=scope)
    tensors = _random_tf1_dict(model, rng, scope)
    assign_tf1_discriminator(model, tensors)
    x = rng.uniform(-1, 1, size=(2, 40, 24, in_channels)).astype("float32")
    out = model(x).numpy()
    assert out.shape == (2, 5, 3, 1)   # raw patch logits, H/8 × W/8
    np.testing.assert_allclose(out, _reference_disc(x, tensors, scope), rtol=1e-5, atol=1e-5)


def test_training_call_updates_every_u_once(rng):
    model = build_discriminator(3, channels=8)
    tensors = _random_tf1_dict(model, rng, "disc_blur")
    assign_tf1_discriminator(model, tensors)
    x = rng.uniform(-1, 1, size=(1, 16, 16, 3)).astype("float32")
    model(x, training=False)
    after = discriminator_to_tf1_dict(model)
    for name in tensors:
        np.testing.assert_array_equal(after[name], tensors[name])
    model(x, training=True)
    after = discriminator_to_tf1_dict(model)
    for name in tensors:
        if name.endswith("/u"):
            k = tensors[name.replace("/u", "/kernel")].astype(np.float64)
            w = k.reshape(-1, k.shape[-1])
            v = tensors[name] @ w.T
            v /= np.linalg.norm(v)
            u_hat = v @ w
            u_hat /= np.linalg.norm(u_hat)
            np.testing.assert_allclose(after[name], u_hat, rtol=1e-4, atol=1e-6)
        else:
            np.testing.assert_array_equal(after[name], tensors[name])
