"""Every weight format of the package: the TF1 variable names and the files that hold them.

The models (`wbc_tf.generator`, `wbc_tf.discriminator`, `wbc_tf.gan`) hold no conversion code;
this module maps them to the original's TF1 variable names and reads and writes three formats:

* TF1 name-based checkpoints (the released ``model-33999``, docs/fidelity.md §2.1), read with
  `tf.train.load_checkpoint` and written with the ``SaveV2`` op: no TF1 graph, no
  ``tf.compat.v1`` session;
* ``.npz`` files of ``{TF1 name: array}``;
* Keras ``.weights.h5`` files.

Every variable is mapped by an explicit name table; a missing, unused or mis-shaped tensor
raises `WeightConversionError` naming it, and nothing is assigned unless everything matches.
Kernels are HWIO in both TF1 and Keras, so no transposes are needed.

The released weights ship inside the package (``wbc_tf/pretrained/``; CC BY-NC-SA 4.0, see
``wbc_tf/pretrained/PROVENANCE.md``), so `load_generator_weights(model)` works offline. Wherever
a weights path is taken, they are spelled `BUNDLED` (``"bundled"``); None means the same.

Example::

    from wbc_tf.generator import build_generator
    from wbc_tf.weights import convert, load_generator_weights
    g = build_generator()
    load_generator_weights(g)                       # bundled release (also: "bundled")
    load_generator_weights(g, "path/saved_models")  # TF1 checkpoint dir or prefix
    load_generator_weights(g, "gen.npz")            # {TF1 name: array}
    load_generator_weights(g, "gen.weights.h5")     # Keras weights
    convert("bundled", "out/saved_models")          # what wbc-convert does
"""

import os
from importlib import resources

import numpy as np
import tensorflow as tf

from wbc_tf.config import BUNDLED
from wbc_tf.discriminator import LAYER_NAMES, SURFACE_SCOPE, TEXTURE_SCOPE
from wbc_tf.generator import build_generator


# TF1 (slim) scope = Keras layer path. slim names unscoped convs Conv, Conv_1, ... in creation
# order; the residual blocks between them have explicit scopes block_i/conv1|conv2 (docs/fidelity.md §2.1).
_CONVS_BEFORE_BLOCKS = ("Conv", "Conv_1", "Conv_2", "Conv_3", "Conv_4")
_CONVS_AFTER_BLOCKS = ("Conv_5", "Conv_6", "Conv_7", "Conv_8", "Conv_9")
# TF1 optimizer bookkeeping that may sit in a full training checkpoint; never model weights.
_TF1_OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
_TF1_OPTIMIZER_NAMES = ("beta1_power", "beta2_power", "global_step")


# --- errors and strict assignment -----------------------------------------------------------------

class WeightConversionError(ValueError):
    """A checkpoint does not match the model: missing, unused or mis-shaped tensors."""


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


# --- name tables: {tf1_name: keras_variable} ------------------------------------------------------

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
                raise WeightConversionError(
                    f"model has no variable {path!r} (is it a build_generator model?)")
            table[f"generator/{scope}/{tf1_suffix}"] = by_path[path]
    if len(table) != len(by_path):
        extra = sorted(set(by_path) - {v.path for v in table.values()})
        raise WeightConversionError(f"model variables not covered by the name table: {extra}")
    return table


def discriminator_name_table(model, scope=None):
    """Return ``{tf1_name: keras_variable}``: ``<scope>/<layer>/kernel|bias|u`` for every SN layer.

    Layer names are the TF1 scopes (``conv0_1`` … ``conv2_2``, ``conv_out``), one line per layer.
    ``scope`` defaults to the model name. Raises `WeightConversionError` if a layer is missing or
    the model holds variables the table does not cover.
    """
    scope = scope or model.name
    table = {}
    for layer_name in LAYER_NAMES:
        try:
            layer = model.get_layer(layer_name)
        except ValueError as e:
            raise WeightConversionError(
                f"model {model.name!r} has no layer {layer_name!r} "
                "(is it a build_discriminator model?)") from e
        for var_name in ("kernel", "bias", "u"):
            table[f"{scope}/{layer_name}/{var_name}"] = getattr(layer, var_name)
    covered = {id(v) for v in table.values()}
    extra = [w.path for w in model.weights if id(w) not in covered]
    if extra:
        raise WeightConversionError(f"model variables not covered by the name table: {extra}")
    return table


def gan_name_table(gan):
    """``{tf1_name: variable}`` for ``generator/…``, ``disc_blur/…``, ``disc_gray/…`` (``u`` included).

    Args:
        gan: a `wbc_tf.gan.WhiteBoxGAN` (anything with ``generator``, ``surface_discriminator`` and
            ``texture_discriminator``).
    """
    table = dict(generator_name_table(gan.generator))
    table.update(discriminator_name_table(gan.surface_discriminator, SURFACE_SCOPE))
    table.update(discriminator_name_table(gan.texture_discriminator, TEXTURE_SCOPE))
    return table


# --- {tf1_name: array} dicts in and out -----------------------------------------------------------

def generator_to_tf1_dict(model):
    """Return ``{tf1_name: np.ndarray}`` for the generator, the inverse of `assign_tf1_dict`."""
    return {name: var.numpy() for name, var in generator_name_table(model).items()}


def assign_tf1_dict(model, tensors, prefix="generator/"):
    """Assign ``{tf1_name: array}`` to the generator, strictly.

    Tensors outside ``prefix`` (e.g. ``disc_*`` or Adam slots in a full training checkpoint) are
    ignored; inside it every name must be used exactly once with the right shape.

    Raises:
        WeightConversionError: listing every missing, unused and mis-shaped tensor.
    """
    source = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    assign_strict(generator_name_table(model), source, "generator")


def discriminator_to_tf1_dict(model, scope=None):
    """Return ``{tf1_name: np.ndarray}`` (kernels, biases and ``u``) for one discriminator."""
    return {name: var.numpy() for name, var in discriminator_name_table(model, scope).items()}


def assign_tf1_discriminator(model, tensors, scope=None):
    """Assign ``{tf1_name: array}`` to a discriminator, strictly (like `assign_tf1_dict`).

    Tensors outside ``<scope>/`` are ignored; inside it every name (``u`` included) must be used
    exactly once with the right shape.

    Raises:
        WeightConversionError: listing every missing, unused and mis-shaped tensor.
    """
    scope = scope or model.name
    source = {k: v for k, v in tensors.items() if k.startswith(scope + "/")}
    assign_strict(discriminator_name_table(model, scope), source, scope)


def gan_to_tf1_dict(gan):
    """``{tf1_name: np.ndarray}`` of G and both Ds of a `WhiteBoxGAN`, under the original's variable names."""
    return {name: var.numpy() for name, var in gan_name_table(gan).items()}


def _is_tf1_optimizer_name(name):
    last = name.split("/")[-1]
    return (name.endswith(_TF1_OPTIMIZER_SUFFIXES) or last in _TF1_OPTIMIZER_NAMES
            or last.startswith(("beta1_power_", "beta2_power_")))


def load_gan_tf1_dict(gan, tensors):
    """Assign ``{tf1_name: array}`` to G and both Ds of a `WhiteBoxGAN`, strictly.

    Every generator / ``disc_blur`` / ``disc_gray`` variable (``u`` included) must be present
    with the right shape, and every other key is an error, except TF1 Adam bookkeeping
    (``…/Adam``, ``…/Adam_1``, ``beta1_power``, ``beta2_power``, ``global_step``), which is
    skipped. Nothing is assigned unless everything matches.

    Returns:
        ``gan``, for chaining.

    Raises:
        WeightConversionError: listing every missing, unused and mis-shaped tensor.
    """
    source = {k: v for k, v in tensors.items() if not _is_tf1_optimizer_name(k)}
    assign_strict(gan_name_table(gan), source, "GAN")
    return gan


# --- files: TF1 checkpoints, .npz, .weights.h5 ----------------------------------------------------

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


def write_tf1_checkpoint(tensors, folder, name="model"):
    """Write ``{tf1_name: array}`` as a TF1 name-based checkpoint ``folder/name`` + ``folder/checkpoint``.

    Uses the ``SaveV2`` op under the given names, plus the ``checkpoint`` index file that
    ``tf.train.latest_checkpoint`` reads, so the original ``test_code/cartoonize.py``
    (``tf.train.latest_checkpoint('saved_models')``) can restore it.

    Returns:
        The checkpoint prefix.
    """
    os.makedirs(folder, exist_ok=True)
    prefix = os.path.join(folder, name)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    with open(os.path.join(folder, "checkpoint"), "w") as f:  # what tf.train.latest_checkpoint reads
        f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    return prefix


def read_npz(path):
    """Read ``{tf1_name: array}`` from an ``.npz`` written by `save_npz` (or the shared release)."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_npz(model, path):
    """Write the generator as ``{tf1_name: array}`` to ``path`` (``.npz``)."""
    np.savez(os.fspath(path), **generator_to_tf1_dict(model))


def weights_format(path):
    """``'npz'``, ``'h5'`` or ``'tf1'`` from a path's name (``*.npz``, ``*.weights.h5``, anything else)."""
    if path.endswith(".npz"):
        return "npz"
    if path.endswith(".weights.h5"):
        return "h5"
    return "tf1"


def load_generator_weights(model, source=None):
    """Load generator weights into ``model`` from ``source`` (default: the bundled release).

    Args:
        model: a `build_generator` model.
        source: None or `BUNDLED` (``"bundled"``: the release ``model-33999`` shipped with the
            package), a TF1 checkpoint directory or prefix, an ``.npz`` of ``{tf1_name: array}``,
            a Keras ``.weights.h5``, or a ``{tf1_name: array}`` dict.

    Returns:
        ``model``, for chaining.
    """
    if source is None or source == BUNDLED:
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


def save_generator_weights(model, path, name="model"):
    """Save the generator in the format `weights_format` reads from ``path``.

    Args:
        model: a `build_generator` model.
        path: ``*.npz`` (``{tf1_name: array}``), ``*.weights.h5`` (Keras), or a folder for a TF1
            checkpoint (created if missing).
        name: the checkpoint prefix name inside a TF1 folder.

    Returns:
        The path written (for TF1: the checkpoint prefix).
    """
    path = os.fspath(path)
    kind = weights_format(path)
    if kind == "npz":
        save_npz(model, path)
        return path
    if kind == "h5":
        model.save_weights(path)
        return path
    return write_tf1_checkpoint(generator_to_tf1_dict(model), path, name)


def convert(source, destination, name="model"):
    """Load generator weights from ``source`` and save them to ``destination`` (``wbc-convert``).

    The formats follow the paths (`weights_format`); the result is read back and compared with
    the source, value for value.

    Args:
        source: anything `load_generator_weights` takes (None or `BUNDLED`: the release).
        destination: ``*.npz``, ``*.weights.h5``, or a folder for a TF1 checkpoint.
        name: the checkpoint prefix name inside a TF1 ``destination`` folder.

    Returns:
        The path written (for TF1: the checkpoint prefix).

    Raises:
        WeightConversionError: unreadable or mismatching source, or a read-back that differs
            from what was written.
    """
    model = build_generator()
    load_generator_weights(model, source)
    os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
    written = save_generator_weights(model, destination, name)

    check = load_generator_weights(build_generator(), destination)  # read back, compare exactly
    for (key, a), b in zip(generator_to_tf1_dict(model).items(), generator_to_tf1_dict(check).values()):
        if not np.array_equal(a, b):
            raise WeightConversionError(f"read-back of {destination} differs at {key}")
    return written
