"""Time one adversarial train step (default: batch 16 × 256², the original's setting) and break it down.

Random weights everywhere (VGG included: ``vgg_weights=None``), so nothing is downloaded. Each part is
timed in its own `tf.function` after a warm-up call, as it runs inside `WhiteBoxGAN.train_step`:

* G:          generator + training guided filter, forward and backward (G step) + the D step's fresh forward
* VGG:        three conv4_4 passes (output, photo, superpixel) + the backward through VGG(output)
* D:          both discriminators: fake branches with input gradients (G step), real + fake branches
              with weight gradients (D step), surface guided filter and colour shift included
* superpixel: SLIC + mean colouring of the batch (the tf.numpy_function), with 1 and N threads

Usage::

    python benchmarks/bench_train_step.py                  # 16 × 256², best of 3 steps
    python benchmarks/bench_train_step.py --batch 4 --size 128 --steps 3
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wbc_tf.config import TrainConfig  # noqa: E402
from wbc_tf.gan import build_white_box_gan  # noqa: E402
from wbc_tf.representations import sample_color_shift_weights, superpixel_batch  # noqa: E402


def timed(fn, repeats):
    fn()  # warm-up: tracing and first-call allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if isinstance(out, (tf.Tensor, list, tuple, dict)):
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
        times.append(time.perf_counter() - start)
    return min(times)  # the machine may be shared: the fastest run is the least disturbed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions (the minimum is reported)")
    parser.add_argument("--workers", type=int, default=0, help="SLIC threads in the step (0 = CPU count)")
    args = parser.parse_args()

    config = TrainConfig(superpixel_workers=args.workers)
    gan = build_white_box_gan(config, vgg_weights=None)
    gan.compile()
    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, 3)
    photo = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    cartoon = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    print(f"batch {args.batch} x {args.size}^2, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"TF {tf.__version__}, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")

    step = tf.function(gan.train_step)
    total = timed(lambda: step((photo, cartoon)), args.steps)

    g_vars = gan.generator.trainable_weights

    @tf.function
    def g_part():
        with tf.GradientTape() as tape:
            out = gan.generate(photo, training=True)
            loss = tf.reduce_mean(out)
        grads = tape.gradient(loss, g_vars)
        fresh = gan.generate(photo, training=True)          # the D step's forward
        return [grads[0], fresh]

    output = tf.Variable(gan.generate(photo))
    superpixel = tf.constant(superpixel_batch(output.numpy(), workers=config.superpixel_workers or None))

    @tf.function
    def vgg_part():
        with tf.GradientTape() as tape:
            tape.watch(output)
            f_out = gan.vgg(output)
            loss = (tf.reduce_mean(tf.abs(gan.vgg(photo) - f_out))
                    + tf.reduce_mean(tf.abs(gan.vgg(superpixel) - f_out)))
        return tape.gradient(loss, output)

    d_vars = gan.discriminator_weights

    @tf.function
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
            loss = sum(tf.reduce_mean(t) for t in real + fake)
        return [g_in] + tape.gradient(loss, d_vars)

    out_np = output.numpy()
    parts = {
        "G (fwd+bwd, + D-step fwd)": timed(g_part, args.steps),
        "VGG (3 fwd + 1 bwd)": timed(vgg_part, args.steps),
        "D (both, G- and D-step)": timed(d_part, args.steps),
        f"superpixel ({config.superpixel_workers or os.cpu_count()} threads)":
            timed(lambda: superpixel_batch(out_np, workers=config.superpixel_workers or None), args.steps),
    }
    serial = timed(lambda: superpixel_batch(out_np, workers=1), 1)

    print(f"\none train step: {total:.2f} s")
    for name, t in parts.items():
        print(f"  {name:32s} {t:7.2f} s  ({100 * t / total:4.1f} %)")
    rest = total - sum(parts.values())
    print(f"  {'rest (optimisers, losses, glue)':32s} {rest:7.2f} s  ({100 * rest / total:4.1f} %)")
    print(f"superpixel serial (1 thread): {serial:.2f} s = {1000 * serial / args.batch:.0f} ms/image")


if __name__ == "__main__":
    main()
