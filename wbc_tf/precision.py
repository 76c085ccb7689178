"""Mixed precision for training (``TrainConfig.precision``), scoped to the models built for it.

``'float32'`` is the original's arithmetic and changes nothing: the builders get ``dtype=None`` and
their layers follow the global Keras policy, as before. ``'mixed_bfloat16'`` / ``'mixed_float16'``
build every layer with an explicit `keras.DTypePolicy` (float32 variables, 16-bit compute), so no
global policy is ever set and models of different precisions can live in one process.

What stays float32 under a mixed policy, and why:

* the generator's last layer (its output is what the guided filter and every loss see) and the
  discriminators' ``conv_out`` logits: each a single cheap conv;
* the guided filters (training output and surface representation): variances of nearly flat
  windows cancel catastrophically in 16 bits; they run on the float32 generator output;
* the colour shift, the VGG Caffe preprocessing (``(x+1)·127.5 − mean`` is exact in float32);
* the spectral-norm power iteration, σ and ``u`` (`wbc_tf.spectral_norm` reads the float32 variables);
* every loss reduction (`wbc_tf.losses` promotes 16-bit inputs to float32).

``'mixed_float16'`` also wraps both optimisers in `keras.optimizers.LossScaleOptimizer` (dynamic
loss scaling); the train steps call ``optimizer.scale_loss`` before differentiating, which is the
identity for an unwrapped optimiser.
"""

import keras

FLOAT32 = "float32"
FLOAT16 = "mixed_float16"


def dtype_policy(precision):
    """The `keras.DTypePolicy` to build models with, or None for ``'float32'`` (the global policy)."""
    if precision == FLOAT32:
        return None
    return keras.DTypePolicy(precision)


def float32_island(policy):
    """``dtype`` for the layers that stay float32: ``'float32'`` under a mixed policy, else None."""
    return None if policy is None else FLOAT32


def compute_dtype(precision):
    """The compute dtype name of ``precision``: ``'float32'``, ``'bfloat16'`` or ``'float16'``."""
    return FLOAT32 if precision == FLOAT32 else keras.DTypePolicy(precision).compute_dtype


def check_model(model, precision, what):
    """Raise ValueError unless the first layer with weights of ``model`` computes in ``precision``.

    Catches a model built for another precision (e.g. a float32 generator handed to a
    ``mixed_bfloat16`` GAN), which would silently train at the wrong precision.
    """
    layer = next((layer for layer in model._flatten_layers(include_self=False) if layer.weights), None)
    want = compute_dtype(precision)
    if layer is not None and layer.compute_dtype != want:
        raise ValueError(
            f"the {what} computes in {layer.compute_dtype} but precision is {precision!r}: build it with "
            f"dtype=wbc_tf.precision.dtype_policy({precision!r})")


def loss_scaled(optimizer, precision):
    """``optimizer`` wrapped in a dynamic `keras.optimizers.LossScaleOptimizer` for ``'mixed_float16'``."""
    if precision != FLOAT16 or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")
