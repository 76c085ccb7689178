"""Time the adversarial train step (default: batch 16 × 256², the original's setting) and break it down,
for every combination of ``--superpixel {skimage,tf}`` × ``--precision {float32,mixed_bfloat16}`` ×
XLA off/on (scikit-image cannot be compiled, so ``skimage`` runs without XLA only).

Random weights everywhere (VGG included), so nothing is downloaded. Each part is timed in its own
`tf.function` (XLA-compiled when the step is), after a warm-up call, as it runs inside
`WhiteBoxGAN.train_step`:

* G:          generator + training guided filter, forward and backward to *every* weight (G step),
              plus the D step's fresh forward
* VGG:        three conv4_4 passes (output, photo, superpixel) + the backward through VGG(output)
* D:          both discriminators: fake branches with input gradients (G step), real + fake branches
              with weight gradients (D step), surface guided filter and colour shift included
* superpixel: the structure target of the batch (`WhiteBoxGAN.structure_target`)
* rest:       the step minus the parts (optimisers, losses, glue; negative when the parts, timed
              alone, overlap less than inside the step)

Every timing is the best of ``--repeats`` runs: the machine may be shared, the fastest run is the least
disturbed. The whole steps of all configurations are interleaved (one step of each per round), so that
their ratios hold under a changing load; the parts are timed afterwards, one configuration at a time.
The load average is printed with each measurement. ``--slic-pool`` also compares the
scikit-image SLIC in threads (what training uses) with a process pool of the same size.

Usage::

    python benchmarks/bench_train.py                              # all 6 configurations, 16 × 256²
    python benchmarks/bench_train.py --superpixel tf --xla on --repeats 2
    python benchmarks/bench_train.py --batch 4 --size 128 --no-parts --slic-pool
"""

import argparse
import concurrent.futures
import multiprocessing
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wbc_tf.config import TrainConfig  # noqa: E402
from wbc_tf.gan import build_white_box_gan  # noqa: E402
from wbc_tf.representations import (sample_color_shift_weights, superpixel_batch,  # noqa: E402
                                    superpixel_image)

PART_NAMES = ("G", "VGG", "D", "superpixel")


def timed(fn, repeats):
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up call (tracing, compilation)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())
        times.append(time.perf_counter() - start)
    return min(times)


def part_functions(gan, photo, cartoon, jit):
    """The four parts of one train step as zero-argument functions (compiled like the step)."""
    function = lambda f: tf.function(f, jit_compile=jit)  # noqa: E731
    g_vars = gan.generator.trainable_weights
    d_vars = gan.discriminator_weights
    output = tf.Variable(gan.generate(photo))
    superpixel = tf.constant(gan.structure_target(output))

    @function
    def g_part():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(gan.generate(photo, training=True))
        grads = tape.gradient(loss, g_vars)      # all of them: returning one lets TF prune the others
        fresh = gan.generate(photo, training=True)          # the D step's forward
        return grads + [fresh]

    @function
    def vgg_part():
        with tf.GradientTape() as tape:
            tape.watch(output)
            f_out = tf.cast(gan.vgg(output), tf.float32)
            loss = (tf.reduce_mean(tf.abs(tf.cast(gan.vgg(photo), tf.float32) - f_out))
                    + tf.reduce_mean(tf.abs(tf.cast(gan.vgg(superpixel), tf.float32) - f_out)))
        return tape.gradient(loss, output)

    @function
    def d_part():
        w = sample_color_shift_weights(gan.color_shift_seed)
        with tf.GradientTape() as tape:                     # G step: gradient to the fake input
            tape.watch(output)
            blur, gray = gan.discriminate(output, w, update_u=True)
            loss = tf.reduce_mean(blur) + tf.reduce_mean(gray)
        g_in = tape.gradient(loss, output)
        with tf.GradientTape() as tape:                     # D step: weight gradients, real + fake
            real = gan.discriminate(cartoon, w, update_u=True)
            fake = gan.discriminate(output, w, update_u=True)
            loss = tf.add_n([tf.reduce_mean(t) for t in real + fake])
        return [g_in] + tape.gradient(loss, d_vars)

    # the scikit-image path is a tf.numpy_function: XLA cannot compile it (TrainConfig refuses it too)
    superpixel_fn = tf.function(gan.structure_target, jit_compile=jit and gan.config.superpixel == "tf")
    return {"G": g_part, "VGG": vgg_part, "D": d_part, "superpixel": lambda: superpixel_fn(output)}


def bench_steps(gans, photo, cartoon, repeats):
    """Best step time of every configuration, the configurations interleaved over ``repeats`` rounds.

    Interleaving makes the comparison fair on a shared machine: a burst of load hits every
    configuration of a round, not one configuration's whole series.
    """
    steps = {key: tf.function(gan.train_step, jit_compile=key[2]) for key, gan in gans.items()}
    for key, step in steps.items():
        step((photo, cartoon))                                   # tracing, XLA compilation
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), step((photo, cartoon)))
            times[key].append(time.perf_counter() - start)
    return {key: min(t) for key, t in times.items()}


def bench_parts(gan, jit, photo, cartoon, repeats):
    """``{'G': s, 'VGG': s, 'D': s, 'superpixel': s}`` of one configuration."""
    return {name: timed(fn, repeats) for name, fn in part_functions(gan, photo, cartoon, jit).items()}


def _slic_one(image):
    return superpixel_image(image)


def bench_slic_pool(images, workers, repeats):
    """Best seconds per batch: scikit-image SLIC in a thread pool vs a spawned process pool."""
    threads = timed(lambda: superpixel_batch(images, workers=workers), repeats)
    serial = timed(lambda: superpixel_batch(images, workers=1), 1)
    context = multiprocessing.get_context("spawn")   # fork after TensorFlow started is unsafe
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(time.sleep, [2.0] * workers))   # start every worker (spawned on demand) first
        processes = timed(lambda: list(pool.map(_slic_one, list(images))), repeats)
    return {"serial": serial, f"{workers} threads": threads, f"{workers} processes": processes}


def configurations(args):
    for superpixel in args.superpixel:
        for precision in args.precision:
            for xla in args.xla:
                if xla == "on" and superpixel == "skimage":
                    continue                      # a tf.numpy_function cannot be XLA-compiled
                yield superpixel, precision, xla == "on"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repetitions / rounds (the minimum is reported)")
    parser.add_argument("--workers", type=int, default=0, help="SLIC threads in the step (0 = CPU count)")
    parser.add_argument("--superpixel", nargs="+", default=["skimage", "tf"], choices=["skimage", "tf"])
    parser.add_argument("--precision", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--xla", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--parts", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the parts of the step")
    parser.add_argument("--slic-pool", action="store_true", help="compare SLIC threads with a process pool")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")                # one retracing warning per configuration otherwise

    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, 3)
    photo = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    cartoon = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    print(f"batch {args.batch} x {args.size}^2, {os.cpu_count()} CPUs, TF {tf.__version__}, "
          f"best of {args.repeats}")

    gans = {}
    for superpixel, precision, jit in configurations(args):
        config = TrainConfig(batch_size=args.batch, patch_size=args.size, superpixel=superpixel,
                             precision=precision, jit_compile=jit, superpixel_workers=args.workers)
        gans[superpixel, precision, jit] = build_white_box_gan(config, vgg_weights=None)
        gans[superpixel, precision, jit].compile()
    load = os.getloadavg()[0]
    steps = bench_steps(gans, photo, cartoon, args.repeats)
    print(f"steps interleaved over {args.repeats} rounds (load {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after)", flush=True)
    rows = []
    for key, gan in gans.items():
        superpixel, precision, jit = key
        load = os.getloadavg()[0]
        result = {"step": steps[key]}
        if args.parts:
            result.update(bench_parts(gan, jit, photo, cartoon, args.repeats))
            result["rest"] = result["step"] - sum(result[name] for name in PART_NAMES)
        rows.append((key, result, load))
        cells = "  ".join(f"{k} {v:6.2f}" for k, v in result.items())
        print(f"[load {load:4.1f}] {superpixel:7s} {precision:14s} XLA {'on ' if jit else 'off'}  {cells}",
              flush=True)

    print("\n| superpixel | precision | XLA | step (s) | steps/s | × float32 | " +
          " | ".join(f"{p} (s)" for p in PART_NAMES + ("rest",)) + " | load |")
    print("|---|---|---|---:|---:|---:|" + "---:|" * (len(PART_NAMES) + 1) + "---:|")
    for (superpixel, precision, jit), result, load in rows:
        base = steps.get((superpixel, "float32", jit))
        ratio = f"{result['step'] / base:.2f}" if base else "–"
        parts = " | ".join(f"{result[p]:.2f}" if p in result else "–" for p in PART_NAMES + ("rest",))
        print(f"| {superpixel} | {precision} | {'on' if jit else 'off'} | {result['step']:.2f} | "
              f"{1 / result['step']:.3f} | {ratio} | {parts} | {load:.1f} |")

    if args.slic_pool:
        workers = args.workers or os.cpu_count()
        images = np.clip(photo.numpy(), -1, 1)
        print(f"\nscikit-image SLIC, {args.batch} x {args.size}^2 "
              f"(s per batch, load {os.getloadavg()[0]:.1f}):")
        for name, seconds in bench_slic_pool(images, workers, args.repeats).items():
            print(f"  {name:14s} {seconds:6.2f}  ({1000 * seconds / args.batch:.0f} ms/image)")


if __name__ == "__main__":
    main()
