"""The export report: a plain-text table for the terminal and a JSON file for tools."""

import json
import math


def human_size(n):
    """Bytes as '5.9 MB' / '812 kB' (decimal units, like file managers)."""
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} kB"
    return f"{n} B"


def table(results):
    """Fixed-width table: file, size, check, measured (worst photo), result."""
    header = ("file", "size", "check", "measured (worst photo)", "result")
    rows = [(r.artefact, human_size(r.size) if r.size else "-", r.check, r.measured or "-", r.status)
            for r in results]
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*header), line] + [fmt.format(*row) for row in rows])


def op_lists(results):
    """One line per TFLite file: its ops with counts and the GPU-delegate verdict."""
    lines = []
    for r in results:
        ops = r.info.get("ops")
        if ops is None or not r.artefact.endswith(".tflite"):
            continue
        gpu = {True: "GPU delegate: compatible", False: "GPU delegate: NOT compatible",
               None: "GPU delegate: unknown"}[r.info.get("gpu_compatible")]
        listed = ", ".join(f"{k}×{v}" for k, v in ops.items())
        lines.append(f"{r.artefact}: {listed}  [{gpu}]")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json(results, path):
    """Write every result (with per-photo metrics, op lists, GPU verdicts) to ``path``."""
    data = [_jsonable({"artefact": r.artefact, "size": r.size, "check": r.check, "result": r.status,
                       "measured": r.measured, "per_image": r.per_image, "info": r.info})
            for r in results]
    with open(path, "w") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
