"""``disc_sn``: layout, parameter counts, the forward pass against tests/reference.py, the SN ``u`` update.

The TF1 names and the strict conversion are tested with `wbc_tf.weights` (tests/test_weights.py)."""

import numpy as np
import pytest

from tests import helpers, reference
from wbc_tf.discriminator import build_discriminator, build_surface_discriminator, build_texture_discriminator
from wbc_tf.weights import assign_tf1_discriminator, discriminator_to_tf1_dict


def _random_tf1_dict(rng, scope, in_channels):
    """Random weights under the original's names and shapes (the strict assignment checks the model's)."""
    return helpers.random_tf1_weights(reference.discriminator_shapes(scope, in_channels, channels=8), rng,
                                      bias_std=0.3)


def test_parameter_counts_match_the_original():
    blur, gray = build_surface_discriminator(), build_texture_discriminator()
    assert sum(int(np.prod(w.shape)) for w in blur.trainable_weights) == 287_137
    assert sum(int(np.prod(w.shape)) for w in gray.trainable_weights) == 286_561
    # plus one non-trainable u of (1, C_out) per layer
    assert blur.count_params() == 287_137 + 32 + 32 + 64 + 64 + 128 + 128 + 1


@pytest.mark.parametrize("in_channels,scope", [(3, "disc_blur"), (1, "disc_gray")])
def test_forward_matches_raw_reference(rng, in_channels, scope):
    model = build_discriminator(in_channels, channels=8, name=scope)
    tensors = _random_tf1_dict(rng, scope, in_channels)
    assign_tf1_discriminator(model, tensors)
    x = rng.uniform(-1, 1, size=(2, 40, 24, in_channels)).astype("float32")
    out = model(x).numpy()
    assert out.shape == (2, 5, 3, 1)   # raw patch logits, H/8 × W/8
    np.testing.assert_allclose(out, reference.discriminator_forward(tensors, x, scope), rtol=1e-5, atol=1e-5)


def test_training_call_updates_every_u_once(rng):
    model = build_discriminator(3, channels=8)
    tensors = _random_tf1_dict(rng, "disc_blur", 3)
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
            u_hat = reference.power_iteration(tensors[name.replace("/u", "/kernel")], tensors[name])[0]
            np.testing.assert_allclose(after[name], u_hat, rtol=1e-4, atol=1e-6)
        else:
            np.testing.assert_array_equal(after[name], tensors[name])
