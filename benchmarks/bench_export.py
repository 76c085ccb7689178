"""Latency of every exported artefact next to Keras, on this machine's CPU.

Usage::

    wbc-export --output-dir OUT                 # once
    python benchmarks/bench_export.py OUT [--sizes 512x512 720x1280] [--repeats 5] [--json out.json]

For each artefact in OUT and each size: one warm-up call (allocation, XNNPACK packing, graph
optimisation), then ``--repeats`` timed calls. The table shows the best (minimum) time, the one
least disturbed by other processes on a shared machine; the JSON also has the median. LiteRT and
onnxruntime use all cores (``os.cpu_count()`` threads); TensorFlow uses its default thread pools. Inputs are a real photo
(scikit-image's astronaut) fitted to the size. Fixed-size TFLite files run only at their size.

Rows:
* Keras (graph): the generator + guided filter as one graph (`Cartoonizer.cartoonize_float` of the
  checks' reference: NumPy pre/post-processing around a `tf.function`, like ``Model.predict``), float output;
* Keras (eager): the same two calls made eagerly;
* SavedModel ``cartoonize``: uint8 in/out, reloaded with `tf.saved_model.load`;
* every ``*.tflite`` (LiteRT ``ai_edge_litert``, XNNPACK on) and ``wbc.onnx`` (onnxruntime CPU).
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _time(fn, repeats):
    """``(best, median)`` wall time in ms over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times), 1000 * statistics.median(times)


def _size_of(path):
    from wbc_tf.export.saved_model import directory_size
    return directory_size(path) if os.path.isdir(path) else os.path.getsize(path)


def runners(out_dir, generator):
    """``[(name, path or None, runner factory, fixed (H, W) or None)]`` for what OUT contains."""
    import tensorflow as tf

    from wbc_tf.config import TFLiteVariant, choices
    from wbc_tf.export import tflite as tfl
    from wbc_tf.export.saved_model import UINT8_INPUT, UINT8_SIGNATURE
    from wbc_tf.export.verify import reference_cartoonizer

    def eager():
        from wbc_tf.guided_filter import guided_filter

        def run(image):  # the generator and guided filter called eagerly, NumPy around them
            photo = image[None, :, :, ::-1].astype("float32") / 127.5 - 1
            return guided_filter(photo, generator(photo), 1, 5e-3).numpy()
        return run

    def graph():
        cartoonizer = reference_cartoonizer(generator)
        return lambda image: cartoonizer.cartoonize_float(image[..., ::-1])

    rows = [("Keras (graph)", None, graph, None),
            ("Keras (eager)", None, eager, None)]
    saved = os.path.join(out_dir, "saved_model")
    if os.path.isdir(saved):
        def saved_model_runner():
            fn = tf.saved_model.load(saved).signatures[UINT8_SIGNATURE]
            return lambda image: fn(**{UINT8_INPUT: tf.constant(image[None])})
        rows.append(("SavedModel cartoonize", saved, saved_model_runner, None))
    def order(path):  # dynamic before fixed, then fp32, fp16, dynamic_range, int8
        name = os.path.basename(path)
        variant = next((i for i, v in enumerate(choices(TFLiteVariant)) if name.startswith(f"wbc_{v}")), 9)
        return ("x" in name.split("_")[-1], variant, name)

    for path in sorted(glob.glob(os.path.join(out_dir, "*.tflite")), key=order):
        runner = tfl.TFLiteRunner(path)
        fixed = None if runner.dynamic else tuple(int(v) for v in runner._shape[1:3])
        rows.append((os.path.basename(path), path, lambda p=path: tfl.TFLiteRunner(p), fixed))
    onnx_path = os.path.join(out_dir, "wbc.onnx")
    if os.path.exists(onnx_path):
        from wbc_tf.export.onnx_export import OnnxRunner
        rows.append(("wbc.onnx", onnx_path, lambda: OnnxRunner(onnx_path), None))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder written by wbc-export")
    parser.add_argument("--sizes", nargs="+", default=["512x512", "720x1280"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)

    from wbc_tf.export import verify
    from wbc_tf.config import parse_size
    from wbc_tf.export.exporter import load_generator
    from wbc_tf.export.report import human_size

    sizes = [parse_size(s) for s in args.sizes]
    photo = verify.load_photo("astronaut")
    inputs = {size: verify.fit_to_size(photo, size) for size in sizes}
    generator = load_generator()
    results = []
    for name, path, factory, fixed in runners(args.out_dir, generator):
        run = factory()
        row = {"artefact": name, "size": _size_of(path) if path else None, "ms": {}, "median_ms": {}}
        for size in sizes:
            if fixed is not None and fixed != size:
                continue
            label = f"{size[0]}x{size[1]}"
            image = inputs[size]
            row["ms"][label], row["median_ms"][label] = _time(lambda: run(image), args.repeats)
            print(f"{name:34s} {label}: best {row['ms'][label]:6.0f} ms, median "
                  f"{row['median_ms'][label]:6.0f} ms", file=sys.stderr, flush=True)
        results.append(row)

    labels = [f"{h}x{w}" for h, w in sizes]
    print(f"\nCPU: {os.cpu_count()} cores; LiteRT/onnxruntime threads = {os.cpu_count()}; "
          f"best of {args.repeats} after one warm-up\n")
    print("| artefact | file size | " + " | ".join(f"{label} (ms)" for label in labels) + " |")
    print("|---|---:|" + "---:|" * len(labels))
    for row in results:
        cells = [f"{row['ms'][label]:.0f}" if label in row["ms"] else "–" for label in labels]
        size = human_size(row["size"]) if row["size"] else "–"
        print(f"| {row['artefact']} | {size} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu_count": os.cpu_count(), "repeats": args.repeats, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
