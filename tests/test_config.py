"""`wbc_tf.config`: every default has one home, every choice one spelling, every check one place."""

import ast
import dataclasses
import inspect
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from wbc_tf import config as cfg
from wbc_tf.config import ExportConfig, InferenceConfig, RunOptions, TrainConfig

PACKAGE = pathlib.Path(cfg.__file__).parent

# Parameter names that mirror a config field: a literal default for one of them outside config.py
# restates a default that config.py owns.
CONFIG_MIRRORS = {"r", "radius", "eps", "gf_radius", "gf_eps", "short_side", "max_size", "fit", "rounding",
                  "channels", "num_blocks", "disc_channels", "n_segments", "compactness", "sigma",
                  "colouring", "opset", "onnx_opset", "patch_size", "batch_size", "face_every"}


def _literal_defaults(path):
    """``[(function, parameter, value)]`` for parameters in CONFIG_MIRRORS with a literal default."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args.posonlyargs + node.args.args
        pairs = list(zip(args[len(args) - len(node.args.defaults):], node.args.defaults))
        pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if arg.arg in CONFIG_MIRRORS and isinstance(default, ast.Constant) and default.value is not None:
                found.append((node.name, arg.arg, default.value))
    return found


def test_no_module_restates_a_config_default():
    offenders = {str(p.relative_to(PACKAGE)): _literal_defaults(p)
                 for p in PACKAGE.rglob("*.py") if p.name != "config.py"}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_shared_defaults_agree():
    from wbc_tf.discriminator import build_surface_discriminator, build_texture_discriminator
    from wbc_tf.export import graph, onnx_export, saved_model, tflite
    from wbc_tf.generator import build_generator
    from wbc_tf.guided_filter import GuidedFilter
    from wbc_tf.inference import resize_crop, resized_size
    from wbc_tf.representations import (slic_labels, structure_representation, superpixel_batch,
                                        superpixel_image, surface_representation)

    inference, export, train = InferenceConfig(), ExportConfig(), TrainConfig()
    # The export ships the inference guided filter.
    assert (export.gf_radius, export.gf_eps) == (inference.gf_radius, inference.gf_eps)
    layer = GuidedFilter()
    assert (layer.radius, layer.eps) == (inference.gf_radius, inference.gf_eps)
    assert (graph.GF_RADIUS, graph.GF_EPS) == (export.gf_radius, export.gf_eps)

    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()
                if p.default is not inspect.Parameter.empty}

    for fn in (saved_model.export_saved_model, saved_model.serving_module, tflite.convert,
               tflite.float_function, onnx_export.export_onnx):
        d = defaults(fn)
        assert (d["radius"], d["eps"]) == (export.gf_radius, export.gf_eps), fn.__name__
    assert defaults(onnx_export.export_onnx)["opset"] == export.onnx_opset
    for fn in (resized_size, resize_crop):
        assert defaults(fn)["short_side"] == inference.short_side
    d = defaults(build_generator)
    assert (d["channels"], d["num_blocks"]) == (train.channels, train.num_blocks)
    for fn in (build_surface_discriminator, build_texture_discriminator):
        assert defaults(fn)["channels"] == train.disc_channels
    assert defaults(surface_representation) == {"radius": train.surface_radius, "eps": train.surface_eps}
    for fn in (slic_labels, superpixel_image, superpixel_batch, structure_representation):
        d = defaults(fn)
        assert (d["n_segments"], d["compactness"], d["sigma"]) == (
            train.superpixel_segments, train.superpixel_compactness, train.superpixel_sigma), fn.__name__
        assert d.get("colouring", train.superpixel_colouring) == train.superpixel_colouring


def test_changing_a_default_in_config_changes_it_everywhere(tmp_path):
    """Edit one default in a copy of the package: the export, the layers and the CLI all follow."""
    copy = tmp_path / "wbc_tf"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "pretrained"))
    source = (copy / "config.py").read_text()
    for old, new in (("    gf_eps: float = 5e-3\n", "    gf_eps: float = 7e-2\n"),
                     ("superpixel_segments: int = 200", "superpixel_segments: int = 123"),
                     ("    onnx_opset: int = 17\n", "    onnx_opset: int = 15\n")):
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    (copy / "config.py").write_text(source)
    probe = textwrap.dedent("""
        import inspect, io, contextlib
        from wbc_tf.config import ExportConfig
        from wbc_tf.export import graph, onnx_export, tflite
        from wbc_tf.guided_filter import GuidedFilter
        from wbc_tf.representations import structure_representation
        from wbc_tf.cli import export as cli_export
        d = lambda fn, name: inspect.signature(fn).parameters[name].default
        help_text = cli_export.build_parser().format_help()
        print(ExportConfig().gf_eps, GuidedFilter().eps, graph.GF_EPS, d(tflite.convert, "eps"),
              d(structure_representation, "n_segments"), d(onnx_export.export_onnx, "opset"),
              "(default: 0.07)" in " ".join(help_text.split()))
    """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
                              "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["0.07", "0.07", "0.07", "0.07", "123", "15", "True"]


@pytest.mark.parametrize("cls, field", [
    (InferenceConfig, "fit"), (InferenceConfig, "rounding"), (TrainConfig, "superpixel_colouring"),
    (TrainConfig, "sn_update"), (TrainConfig, "output_activation"), (RunOptions, "phase"),
    (RunOptions, "strategy")])
def test_literal_fields_reject_unknown_values(cls, field):
    with pytest.raises(ValueError, match=f"^{field}: 'bogus' not accepted; choose from "):
        cls(**{field: "bogus"})


def test_tuple_of_literals_is_checked_per_item():
    assert ExportConfig(variants=("fp16",)).variants == ("fp16",)
    with pytest.raises(ValueError, match="variants: 'fp8' not accepted"):
        ExportConfig(variants=("fp32", "fp8"))
    with pytest.raises(ValueError, match="formats: 'coreml' not accepted"):
        ExportConfig(formats=("coreml",))


@pytest.mark.parametrize("cls, values, match", [
    (InferenceConfig, dict(short_side=4), "short_side must be 0 .off. or >= 8"),
    (InferenceConfig, dict(max_size=-1), "max_size must be 0"),
    (InferenceConfig, dict(gf_eps=0.0), "gf_eps must be > 0"),
    (InferenceConfig, dict(gf_radius=-1), "gf_radius must be >= 0"),
    (TrainConfig, dict(face_every=0), "face_every must be >= 1"),
    (TrainConfig, dict(save_every=0), "save_every must be >= 1"),
    (TrainConfig, dict(keep_checkpoints=0), "keep_checkpoints must be >= 1"),
    (TrainConfig, dict(surface_eps=0.0), "surface_eps must be > 0"),
    (TrainConfig, dict(learning_rate=0.0), "learning_rate must be > 0"),
    (ExportConfig, dict(fixed_size="513"), "multiples of 8"),
    (ExportConfig, dict(threads=-2), "threads must be >= 0"),
])
def test_numeric_checks(cls, values, match):
    with pytest.raises(ValueError, match=match):
        cls(**values)


def test_defaults_are_valid_and_frozen():
    for cls in (InferenceConfig, TrainConfig, RunOptions, ExportConfig):
        instance = cls()
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(instance, dataclasses.fields(cls)[0].name, None)


def test_cli_choices_come_from_the_literals():
    from wbc_tf.cli import cartoonize, export, train
    with pytest.raises(SystemExit):
        cartoonize.build_parser().parse_args(["x", "-o", "y", "--fit", "centre"])
    args = cartoonize.build_parser().parse_args(["x", "-o", "y", "--fit", "pad"])
    assert args.fit == "pad"
    parser = export.build_parser()
    assert parser.parse_args(["--output-dir", "o", "--variants", "int8"]).variants == ["int8"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--output-dir", "o", "--variants", "fp8"])
    help_text = " ".join(train.build_parser().format_help().split())
    for literal in (cfg.SnUpdate, cfg.OutputActivation, cfg.SuperpixelColouring, cfg.Phase, cfg.Strategy):
        assert "{" + ",".join(cfg.choices(literal)) + "}" in help_text
