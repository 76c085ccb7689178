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
   kh·kw·Cin·Cout / stride-area, docs/fidelity.md §2.1), 2 FLOP per MAC; the guided filter is not counted.
3. Folder throughput: ``wbc-cartoonize`` (in-process ``main``) on N 1080×1920 JPEGs (resized to
   720×1280 by the pipeline, written as PNG) versus the network alone on the same N inputs, and
   versus a plain sequential read → cartoonize → write loop; the three are interleaved per round.
4. Precision (``--precision``, on by default): the float32 and the ``precision='bfloat16'`` network
   at 720×1280, interleaved in this one run: time ratio, and PSNR / max |Δ| of bfloat16 against
   float32 on four real photos, on the uint8 output and on the float output before truncation.
5. The last 7×7 conv (``--last-conv``): its share of the float32 network time, its GFLOP/s, and a
   space-to-depth formulation of the same conv (2×2 blocks: a 4×4 conv 128 → 12 channels on
   half-resolution blocks, then depth-to-space) with its time and its effect on the output.
6. Memory (``--memory``): peak RSS of the untiled network per megapixel, one child process per
   size (the figure behind `wbc_tf.tiling.NETWORK_BYTES_PER_PIXEL`).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
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
from wbc_tf.inference import Cartoonizer, denormalize, denormalize_float, normalize  # noqa: E402

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


def real_photos(height, width):
    """The four scikit-image photos resized to (height, width): (1, h, w, 3) float32 network inputs."""
    from skimage import data
    out = {}
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        rgb = getattr(data, name)()
        bgr = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (width, height), interpolation=cv2.INTER_CUBIC)
        out[name] = normalize(bgr)[None]
    return out


def _psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _interleaved(fns, x, reps):
    """{name: [wall seconds]} of ``fn(x).numpy()``, the order reversed every other repetition."""
    times = {name: [] for name in fns}
    for r in range(reps):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            times[name].append(_timed(fns[name], x)[0])
    return times


def bench_precision(cartoonizer, height, width, reps):
    """float32 vs bfloat16 network (generator + guided filter) at (height, width), in one run."""
    bf16 = Cartoonizer(cartoonizer.generator, InferenceConfig(precision="bfloat16"))
    photos = real_photos(height, width)
    accuracy = {}
    for name, x in photos.items():
        ref, got = cartoonizer.forward(x).numpy()[0], bf16.forward(x).numpy()[0]
        ref_u8, got_u8 = denormalize(ref), denormalize(got)
        accuracy[name] = {
            "psnr_uint8_db": _psnr(ref_u8, got_u8),
            "psnr_float_db": _psnr(denormalize_float(ref), denormalize_float(got)),
            "max_abs_uint8": int(np.abs(ref_u8.astype(np.int16) - got_u8.astype(np.int16)).max()),
            "equal_uint8": float(np.mean(ref_u8 == got_u8))}
    x = photos["astronaut"]
    times = _interleaved({"float32": cartoonizer.forward, "bfloat16": bf16.forward}, x, reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "size": [height, width], "reps": reps, "times_s": times, "median_s": med,
        "ratio_of_medians": med["bfloat16"] / med["float32"],
        "median_of_paired_ratios": statistics.median(
            b / f for f, b in zip(times["float32"], times["bfloat16"])),
        "ratio_of_minima": min(times["bfloat16"]) / min(times["float32"]),
        "accuracy": accuracy,
        "min_psnr_uint8_db": min(a["psnr_uint8_db"] for a in accuracy.values()),
        "min_psnr_float_db": min(a["psnr_float_db"] for a in accuracy.values()),
        "max_abs_uint8": max(a["max_abs_uint8"] for a in accuracy.values()),
    }


def space_to_depth_kernel(kernel, block=2):
    """A k×k SAME conv kernel (k, k, C, O) as a VALID conv on ``block``-sized space-to-depth blocks.

    Output pixel ``r`` of the SAME conv reads padded rows ``r … r + k − 1``; output block ``i`` (rows
    ``block·i + dy``) reads padded blocks ``i … i + n − 1`` with ``n = ceil((k − 1) / block) + 1``.
    Returns the (n, n, block²·C, block²·O) kernel; channel order is that of tf.nn.space_to_depth.
    """
    k, _, c, o = kernel.shape
    n = -(-(k - 1) // block) + 1
    out = np.zeros((n, n, block, block, c, block, block, o), np.float32)
    for by in range(n):
        for bx in range(n):
            for sy in range(block):
                for sx in range(block):
                    for dy in range(block):
                        for dx in range(block):
                            ky, kx = block * by + sy - dy, block * bx + sx - dx
                            if 0 <= ky < k and 0 <= kx < k:
                                out[by, bx, sy, sx, :, dy, dx, :] = kernel[ky, kx]
    return out.reshape(n, n, block * block * c, block * block * o)


def bench_last_conv(cartoonizer, height, width, reps):
    """Share, GFLOP/s and a space-to-depth alternative of the last conv (Conv_9, 7×7, 32 → 3)."""
    import keras
    generator = cartoonizer.generator
    layer = generator.get_layer("Conv_9")
    kernel, bias = layer.kernel, layer.bias
    k = kernel.shape[0]
    trunk = keras.Model(generator.input, generator.get_layer("lrelu_8").output)
    block = 2
    s2d_kernel = tf.constant(space_to_depth_kernel(kernel.numpy(), block))
    n = s2d_kernel.shape[0]
    spec = [tf.TensorSpec([None, None, None, kernel.shape[2]], tf.float32)]

    @tf.function(input_signature=spec)
    def conv(h):
        return tf.nn.bias_add(tf.nn.conv2d(h, kernel, 1, "SAME"), bias)

    @tf.function(input_signature=spec)
    def conv_s2d(h):
        after = (n - 1) * block - k // 2
        padded = tf.pad(h, [[0, 0], [k // 2, after], [k // 2, after], [0, 0]])
        y = tf.nn.conv2d(tf.nn.space_to_depth(padded, block), s2d_kernel, 1, "VALID")
        return tf.nn.bias_add(tf.nn.depth_to_space(y, block), bias)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def forward_s2d(x):
        return guided_filter(x, conv_s2d(trunk(x, training=False)), cartoonizer.config.gf_radius,
                             cartoonizer.config.gf_eps)

    photos = real_photos(height, width)
    x = photos["astronaut"]
    h = tf.constant(trunk(x, training=False).numpy())
    conv_out = conv(h).numpy()
    agreement = {}
    for name, photo in photos.items():
        ref = denormalize(cartoonizer.forward(photo).numpy()[0])
        got = denormalize(forward_s2d(photo).numpy()[0])
        agreement[name] = {"equal_uint8": float(np.mean(ref == got)),
                           "max_abs_uint8": int(np.abs(ref.astype(np.int16) - got.astype(np.int16)).max())}
    conv_times = _interleaved({"conv": conv, "conv_s2d": conv_s2d}, h, reps)
    net_times = _interleaved({"network": cartoonizer.forward, "network_s2d": forward_s2d}, x, reps)
    med = {k_: statistics.median(v) for k_, v in {**conv_times, **net_times}.items()}
    gflop = 2 * k * k * kernel.shape[2] * kernel.shape[3] * height * width / 1e9
    return {
        "size": [height, width], "reps": reps, "median_s": med,
        "conv_share_of_network": med["conv"] / med["network"],
        "conv_gflops": gflop / med["conv"], "conv_s2d_effective_gflops": gflop / med["conv_s2d"],
        "s2d_over_conv": med["conv_s2d"] / med["conv"],
        "network_s2d_over_network": med["network_s2d"] / med["network"],
        "s2d_conv_max_abs_diff": float(np.abs(conv_s2d(h).numpy() - conv_out).max()),
        "s2d_pipeline_agreement": agreement,
    }


_MEMORY_CHILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from wbc_tf.inference import Cartoonizer

def high_water():  # this process's own peak RSS (ru_maxrss would include the parent's at fork)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

h, w = int(sys.argv[1]), int(sys.argv[2])
c = Cartoonizer.from_pretrained()
c.run_network(np.zeros((1, 64, 64, 3), np.float32))  # trace and warm up outside the measurement
x = np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
before = high_water()
c._run_whole(x)
print(before, high_water())
"""


def bench_memory(sizes=((512, 512), (720, 1280), (1024, 2048), (2048, 2048))):
    """Peak-RSS growth of the untiled network, one child process per (h, w); bytes per pixel."""
    rows = []
    for h, w in sizes:
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(h), str(w)], capture_output=True,
                             text=True, check=True).stdout.split()
        before, peak = int(out[-2]), int(out[-1])
        rows.append({"size": [h, w], "megapixels": h * w / 1e6, "rss_before_network_bytes": before,
                     "peak_rss_bytes": peak, "network_bytes_per_pixel": (peak - before) / (h * w)})
    return {"sizes": rows, "max_bytes_per_pixel": max(r["network_bytes_per_pixel"] for r in rows)}


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
    parser.add_argument("--precision", action=argparse.BooleanOptionalAction, default=True,
                        help="float32 vs bfloat16 network in this run (default on)")
    parser.add_argument("--last-conv", action="store_true",
                        help="the last 7x7 conv: share, GFLOP/s, space-to-depth alternative")
    parser.add_argument("--memory", action="store_true",
                        help="peak RSS per megapixel of the untiled network (child processes)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    cartoonizer = cli.load_cartoonizer(None, InferenceConfig())
    net = bench_network(cartoonizer, args.height, args.width, args.reps)
    precision = bench_precision(cartoonizer, args.height, args.width, args.reps) if args.precision else None
    last_conv = bench_last_conv(cartoonizer, args.height, args.width, args.reps) if args.last_conv else None
    memory = bench_memory() if args.memory else None
    folder = bench_folder(cartoonizer, args.images, args.rounds) if args.images else None
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()[0]},
        "network": net, "precision": precision, "last_conv": last_conv, "memory": memory, "folder": folder,
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
    if precision is not None:
        p = precision
        print(f"precision {h}x{w}, {args.reps} interleaved reps: float32 "
              f"{p['median_s']['float32'] * 1e3:.1f} ms, bfloat16 {p['median_s']['bfloat16'] * 1e3:.1f} ms "
              f"(medians)")
        print(f"  bfloat16 / float32: ratio of medians {p['ratio_of_medians']:.3f}, median of paired ratios "
              f"{p['median_of_paired_ratios']:.3f}, ratio of minima {p['ratio_of_minima']:.3f}  "
              f"(requirement <= 0.6)")
        for name, a in p["accuracy"].items():
            print(f"  {name:9s} PSNR float {a['psnr_float_db']:.1f} dB, uint8 {a['psnr_uint8_db']:.1f} dB, "
                  f"max |d| {a['max_abs_uint8']}, {a['equal_uint8']:.2%} of uint8 values equal")
        print(f"  worst: PSNR float {p['min_psnr_float_db']:.1f} dB (requirement >= 60), uint8 "
              f"{p['min_psnr_uint8_db']:.1f} dB, max |d| {p['max_abs_uint8']}")
    if last_conv is not None:
        c = last_conv
        print(f"last conv (7x7, 32 -> 3) at {h}x{w}: {c['median_s']['conv'] * 1e3:.1f} ms = "
              f"{c['conv_share_of_network']:.1%} of the network, {c['conv_gflops']:.1f} GFLOP/s")
        print(f"  space-to-depth 2x2: {c['median_s']['conv_s2d'] * 1e3:.1f} ms ({c['s2d_over_conv']:.2f}x, "
              f"{c['conv_s2d_effective_gflops']:.1f} effective GFLOP/s), conv max |d| "
              f"{c['s2d_conv_max_abs_diff']:.1e}; whole network {c['network_s2d_over_network']:.3f}x")
        for name, a in c["s2d_pipeline_agreement"].items():
            print(f"  {name:9s} vs float32 path: {a['equal_uint8']:.4%} of uint8 values equal, "
                  f"max |d| {a['max_abs_uint8']}")
    if memory is not None:
        for row in memory["sizes"]:
            print(f"memory {row['size'][0]}x{row['size'][1]} ({row['megapixels']:.2f} MP): peak RSS "
                  f"{row['peak_rss_bytes'] / 2 ** 30:.2f} GiB, network "
                  f"{row['network_bytes_per_pixel']:.0f} B/pixel")
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
    ok = net["median_of_paired_ratios"] <= 1.1
    if result["precision"] is not None:
        p = result["precision"]
        ok = ok and p["median_of_paired_ratios"] <= 0.6 and p["min_psnr_float_db"] >= 60
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
