"""``wbc-export`` without the optional LiteRT package: the TFLite files are still written and listed,
their checks are skipped with a note (like ONNX without tf2onnx), and the exit status is 0."""

import json
import sys

from wbc_tf.cli.export import REPORT_FILE, main
from wbc_tf.export import exporter
from wbc_tf.generator import build_generator


def test_without_litert_tflite_checks_are_skipped_with_a_note(tmp_path, capsys, monkeypatch):
    # A narrow generator (random weights) keeps the conversion quick; the skip does not depend on it.
    monkeypatch.setattr(exporter, "load_generator", lambda weights: build_generator(8, 1))
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "ai_edge_litert.schema_py_generated"):
        monkeypatch.setitem(sys.modules, name, None)                    # import now raises ImportError
    code = main(["--output-dir", str(tmp_path), "--formats", "tflite", "--variants", "fp32",
                 "--fixed-size", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "not checking the TFLite files: pip install ai-edge-litert" in out
    row = next(line for line in out.splitlines() if line.startswith("wbc_fp32.tflite"))
    assert "skipped: ai-edge-litert not installed" in row and row.rstrip().endswith("SKIP")
    assert "wbc_fp32.tflite: " in out and "CONV_2D×" in out            # ops listed with TF's schema
    assert (tmp_path / "wbc_fp32.tflite").stat().st_size > 1e4
    (entry,) = json.loads((tmp_path / REPORT_FILE).read_text())
    assert entry["result"] == "SKIP" and entry["info"]["non_builtin"] == []
