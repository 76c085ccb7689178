"""Compare the structure target of `wbc_tf.slic_tf` (TF ops only) with the scikit-image one.

Inputs: ``--batch`` random 256×256 crops of the photos shipped with scikit-image (BGR, [-1, 1]),
and the training generator's output on them, ``GF(photo, G(photo))`` with the bundled pretrained
weights and the training guided filter (`TrainConfig.gf_radius`, `TrainConfig.gf_eps`).

Reported, for each input set:

* ARI: adjusted Rand index of the TF labels against `wbc_tf.representations.slic_labels`, per image
  and averaged; the ceiling is scikit-image against itself on the mirrored image (mirrored back);
* the structure loss ``mean|VGG(target) − VGG(output)| / (h·w·c)`` (`wbc_tf.losses.structure_loss`)
  with each target, and their ratio. No ImageNet VGG weights are available offline here, so the VGG
  is `wbc_tf.vgg.build_vgg(None)` (random Glorot weights, seed ``--seed``): the ratio is the point,
  not the absolute value;
* the time per batch of: scikit-image serial, in threads (`superpixel_batch`, one per CPU), in a
  process pool (2 processes); TF eagerly, as a graph (`tf.function`) and XLA-compiled. Each time is
  the best of ``--repeats`` runs (the machine may be shared); the load average is printed with it.

Usage::

    python benchmarks/bench_superpixel.py                       # 16 × 256², 3 repeats
    python benchmarks/bench_superpixel.py --update-stride 2 --repeats 5
    python benchmarks/bench_superpixel.py --batch 4 --no-eager
"""

import argparse
import concurrent.futures
import functools
import multiprocessing
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import skimage  # noqa: E402
import tensorflow as tf  # noqa: E402
from skimage import data  # noqa: E402

from wbc_tf import losses, slic_tf  # noqa: E402
from wbc_tf.config import TrainConfig  # noqa: E402
from wbc_tf.generator import build_generator  # noqa: E402
from wbc_tf.guided_filter import guided_filter  # noqa: E402
from wbc_tf.representations import slic_labels, superpixel_batch, superpixel_image  # noqa: E402
from wbc_tf.vgg import build_vgg  # noqa: E402
from wbc_tf.weights import load_generator_weights  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "cat",
          "motorcycle_left")
SIZE = 256


def adjusted_rand_index(a, b):
    """Adjusted Rand index of two label maps of the same shape (1 = the same partition)."""
    a = np.unique(np.ravel(a), return_inverse=True)[1]
    b = np.unique(np.ravel(b), return_inverse=True)[1]
    pairs = lambda counts: float((counts * (counts - 1) / 2).sum())   # noqa: E731
    joint = pairs(np.bincount(a * (b.max() + 1) + b).astype(np.float64))
    sum_a, sum_b = pairs(np.bincount(a).astype(np.float64)), pairs(np.bincount(b).astype(np.float64))
    expected = sum_a * sum_b / pairs(np.array([a.size], np.float64))
    return (joint - expected) / ((sum_a + sum_b) / 2 - expected)


def photo_crops(batch, seed):
    """(batch, 256, 256, 3) float32 BGR [-1, 1] random crops, cycling through the bundled photos."""
    rng = np.random.default_rng(seed)
    names = [n for n in PHOTOS if hasattr(data, n)]
    crops = []
    for i in range(batch):
        photo = getattr(data, names[i % len(names)])()
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, -1)
        y = rng.integers(0, photo.shape[0] - SIZE + 1)
        x = rng.integers(0, photo.shape[1] - SIZE + 1)
        crops.append(photo[y:y + SIZE, x:x + SIZE, :3][..., ::-1] / 127.5 - 1.0)
    return np.stack(crops).astype(np.float32)


def generator_outputs(photos):
    """The training ``output = GF(photo, G(photo), r, eps)`` with the bundled pretrained weights."""
    config = TrainConfig()
    generator = build_generator()
    load_generator_weights(generator)
    x = tf.constant(photos)
    return guided_filter(x, generator(x, training=False), config.gf_radius, config.gf_eps).numpy()


def best_time(fn, repeats):
    """Best wall time of ``repeats`` calls (after a warm-up call) and the load average after them."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), os.getloadavg()[0]


@functools.lru_cache(maxsize=None)
def _target_and_labels_fn(items):
    kwargs = dict(items)

    def fn(images):
        labels = slic_tf.slic_labels_tf(images, **kwargs)
        segments = tf.shape(images)[0] * slic_tf.slic_cells(images.shape[1], images.shape[2])
        return slic_tf.segment_means_tf(images, labels, segments), labels

    return tf.function(fn, jit_compile=True)


def target_and_labels(images, tf_kwargs):
    """The TF target and labels of ``images``, one XLA-compiled function for both."""
    return _target_and_labels_fn(tuple(sorted(tf_kwargs.items())))(tf.constant(images))


def compare(name, images, tf_kwargs, vgg):
    """ARI and structure loss of the TF target against scikit-image's on one batch."""
    skimage_target = superpixel_batch(images)
    tf_target, tf_labels = [t.numpy() for t in target_and_labels(images, tf_kwargs)]
    sk_labels = [slic_labels(image) for image in images]
    ari = [adjusted_rand_index(t, s) for t, s in zip(tf_labels, sk_labels)]
    mirrored = [slic_labels(image[:, ::-1])[:, ::-1] for image in images]
    ceiling = [adjusted_rand_index(s, m) for s, m in zip(sk_labels, mirrored)]
    vgg_output = vgg(images)
    loss_sk = float(losses.structure_loss(vgg(skimage_target), vgg_output))
    loss_tf = float(losses.structure_loss(vgg(tf_target), vgg_output))
    segments_sk = np.mean([len(np.unique(s)) for s in sk_labels])
    segments_tf = np.mean([len(np.unique(t)) for t in tf_labels])
    print(f"{name}: ARI tf vs skimage {np.mean(ari):.3f} (min {np.min(ari):.3f}, max {np.max(ari):.3f}); "
          f"skimage vs mirrored skimage {np.mean(ceiling):.3f}")
    print(f"{name}: structure loss skimage {loss_sk:.4e}, tf {loss_tf:.4e}, "
          f"tf/skimage {loss_tf / loss_sk:.3f}; segments per image skimage {segments_sk:.1f}, "
          f"tf {segments_tf:.1f}; "
          f"mean |tf − skimage| per pixel {np.abs(tf_target - skimage_target).mean():.4f}")
    return loss_tf / loss_sk


def timings(images, tf_kwargs, repeats, eager):
    """Time per batch of every path, printed as it goes."""
    x = tf.constant(images)
    tf_fn = functools.partial(slic_tf.superpixel_batch_tf, **tf_kwargs)
    graph = tf.function(tf_fn)
    xla = tf.function(tf_fn, jit_compile=True)
    start = time.perf_counter()
    xla(x).numpy()
    print(f"  (XLA compile + first call: {time.perf_counter() - start:.1f} s)")
    # spawned workers: forking a process that runs TF threads can deadlock
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        list(pool.map(superpixel_image, images[:2]))               # start the workers
        paths = [
            ("skimage serial", lambda: superpixel_batch(images, workers=1)),
            (f"skimage threads ({os.cpu_count()})", lambda: superpixel_batch(images)),
            ("skimage process pool (2)", lambda: np.stack(list(pool.map(superpixel_image, images)))),
        ]
        if eager:
            paths.append(("tf eager", lambda: tf_fn(x).numpy()))
        paths += [("tf graph", lambda: graph(x).numpy()), ("tf XLA", lambda: xla(x).numpy())]
        results = {}
        for label, fn in paths:
            seconds, load = best_time(fn, 1 if label == "tf eager" else repeats)
            results[label] = seconds
            print(f"  {label:28s} {seconds * 1000:8.1f} ms   (load {load:.1f})", flush=True)
    threads = results[f"skimage threads ({os.cpu_count()})"]
    print(f"  tf XLA / skimage threads = {results['tf XLA'] / threads:.3f}; "
          f"tf graph / skimage threads = {results['tf graph'] / threads:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (the best is reported)")
    parser.add_argument("--seed", type=int, default=0, help="crop positions and the random VGG")
    parser.add_argument("--update-stride", type=int, default=1, help="slic_tf update_stride")
    parser.add_argument("--iterations", type=int, default=10, help="slic_tf iterations")
    parser.add_argument("--no-eager", dest="eager", action="store_false", help="skip the (slow) eager timing")
    args = parser.parse_args()

    tf_kwargs = dict(update_stride=args.update_stride, iterations=args.iterations)
    print(f"{platform.node()}: nproc {os.cpu_count()}, load average {os.getloadavg()}, TF {tf.__version__}, "
          f"scikit-image {skimage.__version__}; batch {args.batch} x {SIZE}^2; slic_tf {tf_kwargs}")
    photos = photo_crops(args.batch, args.seed)
    outputs = generator_outputs(photos)
    keras.utils.set_random_seed(args.seed)
    vgg = build_vgg(None)      # random weights: no ImageNet VGG offline
    print("VGG: random Glorot weights (seed {}), not ImageNet".format(args.seed))
    ratios = [compare(name, images, tf_kwargs, vgg)
              for name, images in [("photos", photos), ("generator outputs", outputs)]]
    print(f"structure loss tf/skimage averaged over both sets: {np.mean(ratios):.3f}")
    print(f"time per {args.batch} x {SIZE}^2 batch (generator outputs):")
    timings(outputs, tf_kwargs, args.repeats, args.eager)
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
