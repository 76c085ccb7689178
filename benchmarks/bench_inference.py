"""Inference benchmark: Keras path vs a raw ``tf.nn`` graph, GFLOP/s, and CLI folder throughput.

Run:  python benchmarks/bench_inference.py [--reps 7] [--images 8] [--json results.json]

1. Network (generator + guided filter) on one 720×1280 image:
   * "keras": `wbc_tf.inference.Cartoonizer.forward`, the ``tf.function`` around the Keras model
     that the package uses;
   * "raw": the same ops written with ``tf.nn.conv2d`` / ``bias_add`` / ``leaky_relu`` /
     ``ResizeBilinear`` on the same variables, in a ``tf.function`` with the same signature.
   Repetitions are interleaved (keras, raw, raw, keras, …) so drift on a shared machine hits
   both alike; medians are reported. Requirement: keras / raw ≤ 1.1.
2. GFLOP/s from 124,608 multiply-accumulates per input pixel (sum over the 18 convs of
   kh·kw·Cin·Cout / stride-area, spec §2.1), 2 FLOP per MAC; the guided filter is not counted.
3. Folder throughput: ``wbc-cartoonize`` (in-process ``main``) on N 1080×1920 JPEGs (resized to
   720×1280 by the pipeline, written as PNG) versus the network alone on the same N inputs, and
   versus a plain sequential read → cartoonize → write loop; the three are interleaved per round.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wbc_tf.cli import cartoonize as cli  # noqa: E402
from wbc_tf.config import InferenceConfig  # noqa: E402
from wbc_tf.guided_filter import guided_filter  # noqa: E402
from wbc_tf.image_io import read_image, write_image  # noqa: E402

MAC_PER_PIXEL = 124_608


def raw_forward_fn(generator, gf_radius=1, gf_eps=5e-3):
    """The network as raw tf.nn ops on ``generator``'s variables, traced like the Keras path."""
    layer = generator.get_layer

    def conv(h, lay, stride=1, act=True):
        h = tf.nn.bias_add(tf.nn.conv2d(h, lay.kernel, stride, "SAME"), lay.bias)
        return tf.nn.leaky_relu(h, alpha=0.2) if act else h

    def up(h):
        return tf.raw_ops.ResizeBilinear(images=h, size=tf.shape(h)[1:3] * 2,
                                         align_corners=False, half_pixel_centers=False)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def forward(x):
        x0 = conv(x, layer("Conv"))
        x1 = conv(conv(x0, layer("Conv_1"), 2), layer("Conv_2"))
        h = conv(conv(x1, layer("Conv_3"), 2), layer("Conv_4"))
        for i in range(4):
            block = layer(f"block_{i}")
            h = conv(conv(h, block.conv1), block.conv2, act=False) + h
        h = up(conv(h, layer("Conv_5"))) + x1
        h = up(conv(conv(h, layer("Conv_6")), layer("Conv_7"))) + x0
        y = conv(conv(h, layer("Conv_8")), layer("Conv_9"), act=False)
        return guided_filter(x, y, gf_radius, gf_eps)

    return forward


def _timed(fn, x):
    """(wall seconds, process CPU seconds) of one call; .numpy() waits for the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(x).numpy()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_network(cartoonizer, height, width, reps):
    """Interleaved timings of the Keras path and the raw graph on one (1, h, w, 3) input.

    On a shared machine a neighbour's burst can double one timing, so besides the ratio of the
    medians this reports the median of the per-repetition ratios (each pair runs back to back)
    and the ratio of the minima (the least-disturbed runs).
    """
    x = tf.random.stateless_uniform((1, height, width, 3), seed=(1, 2), minval=-1, maxval=1)
    fns = {"keras": cartoonizer.forward, "raw": raw_forward_fn(cartoonizer.generator)}
    same = bool(np.array_equal(fns["keras"](x).numpy(), fns["raw"](x).numpy()))  # also the warm-up
    wall = {"keras": [], "raw": []}
    cpu = {"keras": [], "raw": []}
    for r in range(reps):
        for name in (("keras", "raw") if r % 2 == 0 else ("raw", "keras")):
            w, c = _timed(fns[name], x)
            wall[name].append(w)
            cpu[name].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    gflop = 2 * MAC_PER_PIXEL * height * width / 1e9
    return {
        "size": [height, width], "reps": reps, "bit_identical_outputs": same,
        "keras_s": wall["keras"], "raw_s": wall["raw"], "keras_cpu_s": cpu["keras"], "raw_cpu_s": cpu["raw"],
        "keras_median_s": med["keras"], "raw_median_s": med["raw"],
        "keras_min_s": min(wall["keras"]), "raw_min_s": min(wall["raw"]),
        "ratio_of_medians": med["keras"] / med["raw"],
        "median_of_paired_ratios": statistics.median(k / r for k, r in zip(wall["keras"], wall["raw"])),
        "ratio_of_minima": min(wall["keras"]) / min(wall["raw"]),
        "cpu_ratio_of_medians": statistics.median(cpu["keras"]) / statistics.median(cpu["raw"]),
        "gflop_per_image": gflop,
        "keras_gflops": gflop / med["keras"], "raw_gflops": gflop / med["raw"],
        "keras_gflops_best": gflop / min(wall["keras"]), "raw_gflops_best": gflop / min(wall["raw"]),
    }


def make_photos(folder, n, height=1080, width=1920):
    """n JPEGs of real scikit-image photos, resized to (height, width)."""
    from skimage import data
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    paths = []
    for i in range(n):
        rgb = np.roll(sources[i % len(sources)], 37 * i, axis=1)  # not byte-identical files
        bgr = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (width, height), interpolation=cv2.INTER_CUBIC)
        path = os.path.join(folder, f"photo_{i:02d}.jpg")
        cv2.imwrite(path, bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(path)
    return paths


def bench_folder(cartoonizer, n, rounds):
    """Per-image wall time of the CLI, a sequential loop and the model alone on the same n photos.

    The three are interleaved ``rounds`` times (the machine may be shared); per method the wall
    and process-CPU seconds per image of every round, their medians and minima, and the CLI /
    model-only ratio per round (its median and its value in the least-disturbed round).
    """
    times = {"cli": [], "sequential": [], "model_only": []}
    cpu = {"cli": [], "sequential": [], "model_only": []}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in")
        os.makedirs(src)
        paths = make_photos(src, n)
        inputs = [cartoonizer.preprocess(read_image(p)[0])[0] for p in paths]  # (1, 720, 1280, 3)
        cli.main([paths[0], "-o", os.path.join(tmp, "warm"), "-q"])  # build/trace outside the timing
        def sequential(r):
            os.makedirs(os.path.join(tmp, f"seq{r}"))
            for p in paths:
                out = cartoonizer.cartoonize_bgr(read_image(p)[0])
                write_image(os.path.join(tmp, f"seq{r}", os.path.basename(p)[:-4] + ".png"), out)

        def model_only(r):
            for x in inputs:
                cartoonizer.run_network(x)

        def run_cli(r):
            assert cli.main([src, "-o", os.path.join(tmp, f"cli{r}"), "-q"]) == 0

        for r in range(rounds):
            for name, fn in (("cli", run_cli), ("sequential", sequential), ("model_only", model_only)):
                wall, cpu_start = time.perf_counter(), time.process_time()
                fn(r)
                times[name].append((time.perf_counter() - wall) / n)
                cpu[name].append((time.process_time() - cpu_start) / n)
            ratios.append(times["cli"][-1] / times["model_only"][-1])
    result = {"images": n, "rounds": rounds, "input_size": [1080, 1920],
              "network_size": list(inputs[0].shape[1:3])}
    for k, v in times.items():
        result[f"{k}_per_image_s"] = v
        result[f"{k}_cpu_per_image_s"] = cpu[k]
        result[f"{k}_median_s"] = statistics.median(v)
        result[f"{k}_min_s"] = min(v)
    result["cli_over_model_per_round"] = ratios
    result["cli_over_model"] = statistics.median(ratios)
    best = min(range(rounds), key=lambda i: times["model_only"][i])  # the least-disturbed round
    result["cli_over_model_quietest_round"] = ratios[best]
    result["sequential_over_model_quietest_round"] = times["sequential"][best] / times["model_only"][best]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="interleaved repetitions per path (default 9)")
    parser.add_argument("--images", type=int, default=8,
                        help="photos for the folder benchmark (default 8; 0 skips it)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the folder benchmark")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    cartoonizer = cli.load_cartoonizer(None, InferenceConfig())
    net = bench_network(cartoonizer, args.height, args.width, args.reps)
    folder = bench_folder(cartoonizer, args.images, args.rounds) if args.images else None
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()[0]},
        "network": net, "folder": folder,
    }

    h, w = net["size"]
    print(f"network {h}x{w} (generator + guided filter), {args.reps} interleaved reps; "
          f"wall time median / best:")
    for name in ("keras", "raw"):
        label = "keras path" if name == "keras" else "raw tf.nn "
        print(f"  {label} {net[name + '_median_s'] * 1e3:8.1f} / {net[name + '_min_s'] * 1e3:8.1f} ms   "
              f"{net[name + '_gflops']:6.1f} / {net[name + '_gflops_best']:6.1f} GFLOP/s")
    print(f"  keras / raw: ratio of medians {net['ratio_of_medians']:.3f}, median of paired ratios "
          f"{net['median_of_paired_ratios']:.3f}, ratio of minima {net['ratio_of_minima']:.3f}, "
          f"CPU-time ratio {net['cpu_ratio_of_medians']:.3f}  (requirement <= 1.1)")
    print(f"  outputs bit-identical: {net['bit_identical_outputs']}; "
          f"{net['gflop_per_image']:.1f} GFLOP per image ({MAC_PER_PIXEL:,} MAC/pixel x 2)")
    print(f"  load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if folder is None:
        return _finish(args, result, net)
    print(f"folder: {folder['images']} JPEGs 1080x1920 -> 720x1280 PNG, "
          f"{folder['rounds']} interleaved rounds; "
          f"ms/image median / best:")
    labels = (("cli", "wbc-cartoonize "), ("sequential", "sequential loop"),
              ("model_only", "model only     "))
    for name, label in labels:
        print(f"  {label} {folder[name + '_median_s'] * 1e3:8.1f} / {folder[name + '_min_s'] * 1e3:8.1f}")
    print(f"  wbc-cartoonize / model only: median over rounds {folder['cli_over_model']:.3f}, "
          f"quietest round {folder['cli_over_model_quietest_round']:.3f} "
          f"(sequential loop: {folder['sequential_over_model_quietest_round']:.3f})")
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}")
    return _finish(args, result, net)


def _finish(args, result, net):
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if net["median_of_paired_ratios"] <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
