"""Batches/s of the training input pipeline (`wbc_tf.data`) on 1080p JPEG sources, before and after.

Writes ``--files`` 1920×1080 JPEGs per folder (``photo/``, ``cartoon/``; quality 95 by
``cv2.imwrite``, 4:2:0) made from scikit-image photos (crops of astronaut, coffee, chelsea, rocket,
…, up-scaled bicubically, every other round mirrored), then times the same step-indexed stream
read three ways, interleaved round by round, each round on a fresh iterator after 2 warm-up batches:

* ``full``:   every image decoded in full on every step (``decode='full'``): what the pipeline did
              before the fast reads (`wbc_tf.data.load_patch` per image);
* ``window``: no cache (``--data-cache-mb 0``): each JPEG decodes only its crop window;
* ``cached``: the default: decoded once into memory (``--data-cache-mb``), then crops.

Each line: median batches/s over the rounds, CPU seconds per batch (all threads), the ratio to
``full``, and the load average before and after. All three give the same batches (checked on the
first steps). The machine may be shared: compare the ratios, and read the load.

Usage::

    python benchmarks/bench_data.py                       # train stream, 32 + 32 files, 16 × 256²
    python benchmarks/bench_data.py --dataset pretrain --rounds 5 --seconds 20
"""

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wbc_tf import data as wbc_data  # noqa: E402
from wbc_tf.config import RunOptions, TrainConfig  # noqa: E402

MODES = ("full", "window", "cached")
SIZE = (1920, 1080)                                 # (W, H), as cv2.resize takes it


def source_photos():
    """RGB uint8 photos shipped with scikit-image (no download)."""
    from skimage import data
    names = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
             "retina")
    return [getattr(data, name)()[..., :3] for name in names] + [data.stereo_motorcycle()[0]]


def write_sources(folder, count, seed):
    """``count`` 1080p JPEGs: a random 16:9 crop (>= 60 % of the width) of a photo, up-scaled."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = source_photos()
    for k in range(count):
        rgb = photos[k % len(photos)]
        h, w = rgb.shape[:2]
        cw = int(rng.uniform(0.6, 1.0) * min(w, h * 16 / 9))
        ch = int(cw * 9 / 16)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = rgb[y:y + ch, x:x + cw]
        if (k // len(photos)) % 2:
            crop = crop[:, ::-1]
        bgr = cv2.resize(np.ascontiguousarray(crop[..., ::-1]), SIZE, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(os.path.join(folder, f"{k:03d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])


def make(data, config, kind, mode, start_step=0):
    make_fn = wbc_data.make_train_dataset if kind == "train" else wbc_data.make_pretrain_dataset
    return make_fn(data, config, start_step=start_step, decode="full" if mode == "full" else "auto")


def time_round(dataset, seconds, min_batches):
    """(batches/s, CPU s per batch) of a fresh iterator, after 2 warm-up batches."""
    iterator = iter(dataset)
    for _ in range(2):
        next(iterator)
    wall, cpu, n = time.perf_counter(), time.process_time(), 0
    while n < min_batches or time.perf_counter() - wall < seconds:
        tf.nest.map_structure(lambda t: t.numpy(), next(iterator))
        n += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    del iterator
    return n / wall, cpu / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=32, help="1080p JPEGs per folder")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-size", type=int, default=256)
    parser.add_argument("--dataset", choices=("train", "pretrain"), default="train",
                        help="train: photo + cartoon batches per step; pretrain: photos only")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0, help="minimum timed seconds per round")
    parser.add_argument("--min-batches", type=int, default=4, help="minimum timed batches per round")
    parser.add_argument("--cache-mb", type=int, default=RunOptions.data_cache_mb)
    parser.add_argument("--work-dir", help="where the sources are written (default: a temp folder)")
    args = parser.parse_args()

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_data_")
    for name, seed in (("photo", 0), ("cartoon", 1)):
        if not os.path.isdir(os.path.join(work, name)):
            write_sources(os.path.join(work, name), args.files, seed)
    config = TrainConfig(batch_size=args.batch_size, patch_size=args.patch_size)
    need_cartoons = args.dataset == "train"
    scanned = wbc_data.scan_training_data(work, config, need_cartoons=need_cartoons, cache_mb=args.cache_mb)
    datas = {"full": scanned, "window": dataclasses.replace(scanned, cache_mb=0), "cached": scanned}
    start = time.perf_counter()
    datasets = {mode: make(datas[mode], config, args.dataset, mode) for mode in MODES}   # builds the cache
    build = time.perf_counter() - start
    cache = datas["cached"]._cache.get("decoded")
    mb = cache.nbytes / 2 ** 20 if cache else 0.0
    jpeg_bytes = sum(os.path.getsize(os.path.join(work, n, f)) for n in ("photo", "cartoon")
                     if os.path.isdir(os.path.join(work, n)) for f in os.listdir(os.path.join(work, n)))
    print(f"{args.dataset} stream, batch {args.batch_size} x {args.patch_size}^2, {args.files} "
          f"{SIZE[0]}x{SIZE[1]} JPEGs (q95) per folder ({jpeg_bytes / 2 ** 20:.0f} MB on disk), "
          f"{os.cpu_count()} CPUs, TF {tf.__version__}")
    print(f"cache: {len(cache.entries) if cache else 0} images, {mb:.0f} MB, built in {build:.1f} s "
          f"(one-time, at the first dataset)")

    # Same batches every way: the first 3 steps of each stream.
    first = {mode: list(datasets[mode].take(3)) for mode in MODES}
    for mode in MODES[1:]:
        for a, b in zip(tf.nest.flatten(first["full"]), tf.nest.flatten(first[mode])):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{mode} != full")
    print("same batches: full == window == cached on steps 0-2")

    results = {mode: [] for mode in MODES}
    for r in range(args.rounds):
        for mode in MODES:
            load_before = os.getloadavg()[0]
            rate, cpu = time_round(make(datas[mode], config, args.dataset, mode, start_step=100 * r),
                                   args.seconds, args.min_batches)
            results[mode].append((rate, cpu, load_before, os.getloadavg()[0]))
            print(f"  round {r}: {mode:6s} {rate:7.2f} batches/s, {cpu:.3f} CPU s/batch, "
                  f"load {load_before:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)

    base = statistics.median(x[0] for x in results["full"])
    print(f"\n| read | batches/s (median of {args.rounds}) | CPU s/batch | vs full | load before/after |")
    print("|---|---:|---:|---:|---|")
    for mode in MODES:
        rate = statistics.median(x[0] for x in results[mode])
        cpu = statistics.median(x[1] for x in results[mode])
        loads = ", ".join(f"{a:.1f}/{b:.1f}" for _, _, a, b in results[mode])
        print(f"| {mode} | {rate:.2f} | {cpu:.3f} | {rate / base:.1f}x | {loads} |")


if __name__ == "__main__":
    main()
