"""Generator weights: the released TF1 checkpoint, ``.npz`` files and Keras ``.weights.h5``.

The TF1 checkpoint (``model-33999``, spec §2.1) is read with `tf.train.load_checkpoint`: no TF1
graph, no ``tf.compat.v1`` session. Every one of its 36 variables is mapped by an explicit name
table; a missing, unused or mis-shaped tensor raises `WeightConversionError` naming it.
Kernels are HWIO in both TF1 and Keras, so no transposes are needed.

The released weights ship inside the package (``wbc_tf/pretrained/``; CC BY-NC-SA 4.0, see
``wbc_tf/pretrained/PROVENANCE.md``), so `load_generator_weights(model)` works offline.

Example::

    from wbc_tf.generator import build_generator
    from wbc_tf.weights import load_generator_weights
    g = build_generator()
    load_generator_weights(g)                       # bundled release
    load_generator_weights(g, "path/saved_models")  # TF1 checkpoint dir or prefix
    load_generator_weights(g, "gen.npz")            # {TF1 name: array}
    load_generator_weights(g, "gen.weights.h5")     # Keras weights
"""

import os
from importlib import resources

import numpy as np
import tensorflow as tf

# TF1 (slim) scope = Keras layer path. slim names unscoped convs Conv, Conv_1, ... in creation
# order; the residual blocks between them have explicit scopes block_i/conv1|conv2 (spec §2.1).
_CONVS_BEFORE_BLOCKS = ("Conv", "Conv_1", "Conv_2", "Conv_3", "Conv_4")
_CONVS_AFTER_BLOCKS = ("Conv_5", "Conv_6", "Conv_7", "Conv_8", "Conv_9")


class WeightConversionError(ValueError):
    """A checkpoint does not match the model: missing, unused or mis-shaped tensors."""


def generator_name_table(model):
    """Return ``{tf1_name: keras_variable}`` for a generator built by `build_generator`.

    TF1 ``generator/<scope>/weights|biases`` ↔ Keras ``<scope>/kernel|bias`` (same HWIO layout).
    Works for any ``num_blocks`` (the table follows the model's own block layers).
    """
    by_path = {w.path: w for w in model.weights}
    blocks = sorted({p.split("/")[0] for p in by_path if p.startswith("block_")},
                    key=lambda s: int(s.split("_")[1]))
    scopes = (list(_CONVS_BEFORE_BLOCKS) + [f"{b}/conv{j}" for b in blocks for j in (1, 2)]
              + list(_CONVS_AFTER_BLOCKS))
    table = {}
    for scope in scopes:
        for tf1_suffix, keras_suffix in (("weights", "kernel"), ("biases", "bias")):
            path = f"{scope}/{keras_suffix}"
            if path not in by_path:
                raise WeightConversionError(f"model has no variable {path!r} (is it a build_generator model?)")
            table[f"generator/{scope}/{tf1_suffix}"] = by_path[path]
    if len(table) != len(by_path):
        extra = sorted(set(by_path) - {v.path for v in table.values()})
        raise WeightConversionError(f"model variables not covered by the name table: {extra}")
    return table


def pretrained_checkpoint_dir():
    """Directory of the bundled release checkpoint (``checkpoint`` + ``model-33999.*``)."""
    return str(resources.files("wbc_tf") / "pretrained" / "saved_models")


def _checkpoint_prefix(path):
    """Resolve a TF1 checkpoint directory or prefix to a prefix that `tf.train.load_checkpoint` reads."""
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:  # no 'checkpoint' file: take the single *.index in the dir
            index = sorted(f for f in os.listdir(path) if f.endswith(".index"))
            if len(index) != 1:
                raise WeightConversionError(
                    f"{path}: no 'checkpoint' file and {len(index)} '*.index' files; pass the prefix")
            prefix = os.path.join(path, index[0][: -len(".index")])
        return prefix
    if path.endswith(".index") or ".data-" in path:
        return path.split(".index")[0].split(".data-")[0]
    return path


def read_tf1_checkpoint(path):
    """Read every tensor of a TF1 name-based checkpoint into ``{name: np.ndarray}``.

    Args:
        path: a directory with a ``checkpoint`` file (like ``test_code/saved_models``), a
            prefix (``.../model-33999``), or its ``.index`` / ``.data-*`` file.
    """
    prefix = _checkpoint_prefix(os.fspath(path))
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as e:  # NotFoundError / DataLossError: say which file
        raise WeightConversionError(f"cannot read TF1 checkpoint {prefix!r}: {e}") from e
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def read_npz(path):
    """Read ``{tf1_name: array}`` from an ``.npz`` written by `save_npz` (or the shared release)."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_npz(model, path):
    """Write the generator as ``{tf1_name: array}`` to ``path`` (``.npz``)."""
    np.savez(os.fspath(path), **generator_to_tf1_dict(model))


def generator_to_tf1_dict(model):
    """Return ``{tf1_name: np.ndarray}`` for the generator, the inverse of `assign_tf1_dict`."""
    return {name: var.numpy() for name, var in generator_name_table(model).items()}


def assign_strict(table, source, what):
    """Assign ``source[name]`` to ``table[name]`` for every name, or nothing at all.

    Args:
        table: ``{tf1_name: variable}`` of the model (or models) being loaded.
        source: ``{tf1_name: array}`` already restricted to the names that must match.
        what: what is being loaded, for the error message (``"generator"``, ``"disc_blur"``, …).

    Raises:
        WeightConversionError: listing every missing, unused and mis-shaped tensor.
    """
    missing = sorted(set(table) - set(source))
    unused = sorted(set(source) - set(table))
    shapes = [f"{k}: checkpoint {tuple(np.shape(source[k]))} vs model {tuple(v.shape)}"
              for k, v in table.items() if k in source and tuple(np.shape(source[k])) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append("missing in checkpoint: " + ", ".join(missing))
    if unused:
        problems.append("unused checkpoint tensors: " + ", ".join(unused))
    if shapes:
        problems.append("shape mismatch: " + "; ".join(shapes))
    if problems:
        raise WeightConversionError(f"{what} weights do not match the model:\n  " + "\n  ".join(problems))
    for name, var in table.items():
        var.assign(np.asarray(source[name], dtype=var.dtype))


def assign_tf1_dict(model, tensors, prefix="generator/"):
    """Assign ``{tf1_name: array}`` to the generator, strictly.

    Tensors outside ``prefix`` (e.g. ``disc_*`` or Adam slots in a full training checkpoint) are
    ignored; inside it every name must be used exactly once with the right shape.

    Raises:
        WeightConversionError: listing every missing, unused and mis-shaped tensor.
    """
    source = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    assign_strict(generator_name_table(model), source, "generator")


def load_generator_weights(model, source=None):
    """Load generator weights into ``model`` from ``source`` (default: the bundled release).

    Args:
        model: a `build_generator` model.
        source: None (bundled ``model-33999``), a TF1 checkpoint directory or prefix, an ``.npz``
            of ``{tf1_name: array}``, a Keras ``.weights.h5``, or a ``{tf1_name: array}`` dict.

    Returns:
        ``model``, for chaining.
    """
    if source is None:
        source = pretrained_checkpoint_dir()
    if isinstance(source, dict):
        assign_tf1_dict(model, source)
        return model
    path = os.fspath(source)
    if path.endswith(".weights.h5"):
        if not os.path.isfile(path):
            raise WeightConversionError(f"no such weights file: {path}")
        model.load_weights(path)
    elif path.endswith(".npz"):
        if not os.path.isfile(path):
            raise WeightConversionError(f"no such weights file: {path}")
        assign_tf1_dict(model, read_npz(path))
    else:
        assign_tf1_dict(model, read_tf1_checkpoint(path))
    return model
