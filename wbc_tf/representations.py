"""The three white-box representations of the paper, as the original code builds them (docs/fidelity.md §6).

All inputs are (B, H, W, 3) float32 **BGR** tensors in [-1, 1].

* **Surface** (§6.1): the self-guided filter GF(x, x, r=5, eps=0.2). Differentiable.
* **Texture** (§6.2): the random colour shift to grey. One scalar weight per channel per step,
  w_b ~ U(0.014, 0.214), w_g ~ U(0.487, 0.687), w_r ~ U(0.199, 0.399) (Rec.601 luma ± 0.1),
  applied in **BGR** order and normalised by their sum; shared by the whole batch and by the real
  and fake branches of one step. Differentiable in the image.
* **Structure** (§6.3): SLIC superpixels of the *detached* output, each segment painted with its
  mean colour. NumPy/scikit-image on the host, behind one `tf.numpy_function`, which is why the
  training step cannot be XLA-compiled (``PyFunc`` has no XLA kernel) and why it is not part of
  any exported model. Deterministic given its input.

Faithfulness of the structure target to scikit-image 0.14.5 (the original's pinned version):

* 0.14.5 smooths with a Gaussian (σ=1, reflect, truncate 4, spatial only) **before** ``rgb2lab``;
  modern ``slic`` smooths after it, so we smooth ourselves, convert ourselves and call ``slic``
  with ``sigma=0, convert2lab=False``;
* modern ``slic`` min–max rescales its input to [0, 1]; we pass ``compactness / (max − min)`` so
  the internal distance equals 0.14.5's |ΔLab|²/compactness² + |Δpos|²/step² on raw Lab;
* Lab is computed from the BGR data *as if it were RGB*, in [-1, 1], like the original;
* ``label2rgb(kind='mix')`` was the per-segment mean in 0.14.5 (``kind='avg'``, ``bg_label=-1``):
  every segment (label 0 included) gets the per-channel mean of the *un-smoothed* input.

Remaining differences, not verified bit-exactly (no 0.14.5 build is installable on Python 3.11):
the computation runs in float64 (0.14.5 kept float32 input in float32 for the Gaussian and Lab
steps), and the Cython k-means / connectivity code of the installed scikit-image is used as is.

The paper's *adaptive colouring* (mean / mean+median / median by segment standard deviation,
docs/fidelity.md §11.1 corrected mode) is available with ``colouring="adaptive"``.
"""

import concurrent.futures
import functools
import os

import keras
import numpy as np
import tensorflow as tf
from scipy import ndimage
from skimage import color, segmentation

from wbc_tf.config import TrainConfig
from wbc_tf.guided_filter import guided_filter

_SEGMENTS = TrainConfig.superpixel_segments
_COMPACTNESS = TrainConfig.superpixel_compactness
_SIGMA = TrainConfig.superpixel_sigma
_COLOURING = TrainConfig.superpixel_colouring

# Texture: uniform ranges of the per-step weights, in BGR order (utils.color_shift, mode 'uniform').
COLOR_SHIFT_RANGES = ((0.014, 0.214), (0.487, 0.687), (0.199, 0.399))  # (b, g, r)
# Adaptive colouring thresholds of the paper (0–255 units), converted to [-1, 1] data units.
ADAPTIVE_GAMMA1 = 20.0 / 127.5
ADAPTIVE_GAMMA2 = 40.0 / 127.5


# --- surface -------------------------------------------------------------------------------------

def surface_representation(images, radius=TrainConfig.surface_radius, eps=TrainConfig.surface_eps):
    """Self-guided filter ``GF(x, x, r, eps)`` of (B, H, W, 3) images (train.py L54–55)."""
    return guided_filter(images, images, radius, eps)


# --- texture -------------------------------------------------------------------------------------

def sample_color_shift_weights(seed, dtype="float32"):
    """Draw the three per-step colour-shift weights, shape (3,), ordered (w_b, w_g, w_r).

    Args:
        seed: a `keras.random.SeedGenerator` (advanced by one draw) or an int.
    """
    u = keras.random.uniform((3,), seed=seed, dtype=dtype)    # U(0, 1) per channel
    low = tf.constant([r[0] for r in COLOR_SHIFT_RANGES], dtype=dtype)
    high = tf.constant([r[1] for r in COLOR_SHIFT_RANGES], dtype=dtype)
    return low + (high - low) * u


def color_shift(images, weights):
    """Grey image ``(w_b·B + w_g·G + w_r·R) / (w_b + w_g + w_r)``, (B, H, W, 3) → (B, H, W, 1).

    ``images`` are BGR: channel 0 gets ``weights[0]`` (w_b), channel 2 gets ``weights[2]`` (w_r).
    A convex combination, so the [-1, 1] range is preserved.
    """
    weights = tf.cast(tf.convert_to_tensor(weights), images.dtype)
    b, g, r = tf.split(images, 3, axis=-1)                    # (B, H, W, 1) each
    w_b, w_g, w_r = weights[0], weights[1], weights[2]
    return (w_b * b + w_g * g + w_r * r) / (w_b + w_g + w_r)


# --- structure (NumPy / scikit-image) ------------------------------------------------------------

def slic_labels(image, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA):
    """SLIC labels (H, W), starting at 0, of one (H, W, 3) BGR [-1, 1] image, emulating skimage 0.14.5.

    ``slic(image, n_segments, compactness, sigma, convert2lab=True)`` of 0.14.5: Gaussian smoothing
    on the raw data, ``rgb2lab`` of the BGR-as-RGB values, no rescaling, max_iter 10,
    connectivity enforced with size factors 0.5 / 3.
    """
    img = np.asarray(image, dtype=np.float64)
    if sigma > 0:
        img = ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect", truncate=4.0)
    lab = color.rgb2lab(img)                                  # (H, W, 3), BGR read as RGB
    span = float(lab.max() - lab.min())
    # modern slic divides by (max - min) first; scale compactness so lab/compactness is unchanged
    effective = compactness / span if span > 0 else compactness
    return segmentation.slic(
        lab, n_segments=n_segments, compactness=effective, max_num_iter=10, sigma=0,
        convert2lab=False, enforce_connectivity=True, min_size_factor=0.5, max_size_factor=3,
        start_label=0, channel_axis=-1)


def _segment_means(values, flat, n):
    """(n, C) float64 means of the columns of ``values`` (H·W, C) per label of ``flat``; 0 if empty."""
    counts = np.bincount(flat, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(flat, values[:, c], minlength=n) for c in range(values.shape[1])], -1)
    return sums / np.maximum(counts, 1)[:, None]


def mean_colour(image, labels):
    """Paint segments with its per-channel mean: ``label2rgb(labels, image, kind='avg', bg_label=-1)``."""
    flat = labels.ravel()
    pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
    means = _segment_means(pixels, flat, int(flat.max()) + 1)
    return means[labels].astype(image.dtype)


def adaptive_colour(image, labels, gamma1=ADAPTIVE_GAMMA1, gamma2=ADAPTIVE_GAMMA2):
    """The paper's adaptive colouring (docs/fidelity.md §6.4 / §11.1 corrected mode).

    With s the standard deviation of all values of a segment (channels pooled): s < γ1 → mean
    colour; γ1 ≤ s ≤ γ2 → ½(mean + median); s > γ2 → per-channel median. The thresholds default to
    the paper's 20 and 40 (0–255 units) expressed in the [-1, 1] units of the data.
    """
    flat = labels.ravel()
    n = int(flat.max()) + 1
    pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)   # (H·W, C)
    means = _segment_means(pixels, flat, n)                           # (n, C)
    sq = _segment_means(pixels ** 2, flat, n)                         # (n, C) mean of squares
    pooled_mean = means.mean(axis=1)
    pooled_var = np.maximum(sq.mean(axis=1) - pooled_mean ** 2, 0.0)
    std = np.sqrt(pooled_var)                                 # (n,)
    medians = np.stack([np.asarray(ndimage.median(pixels[:, c], flat, np.arange(n)))
                        for c in range(pixels.shape[1])], -1)
    colours = np.where((std < gamma1)[:, None], means,
                       np.where((std <= gamma2)[:, None], 0.5 * (means + medians), medians))
    return colours[labels].astype(image.dtype)


def superpixel_image(image, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, colouring=_COLOURING):
    """Structure target of one (H, W, 3) image: SLIC segments painted by ``colouring``."""
    labels = slic_labels(image, n_segments, compactness, sigma)
    if colouring == "mean":
        return mean_colour(image, labels)
    if colouring == "adaptive":
        return adaptive_colour(image, labels)
    raise ValueError(f"colouring must be 'mean' or 'adaptive', got {colouring!r}")


@functools.lru_cache(maxsize=None)
def _thread_pool(workers):
    return concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wbc_slic")


def default_workers():
    """Worker threads for the batch: the CPU count (SLIC's Cython loops and SciPy release the GIL)."""
    return max(1, os.cpu_count() or 1)


def superpixel_batch(images, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, colouring=_COLOURING,
                     workers=None):
    """`superpixel_image` over a (B, H, W, 3) NumPy batch, in a thread pool of ``workers`` threads.

    ``workers=None`` uses `default_workers`; 1 runs serially in the calling thread.
    """
    images = np.asarray(images)
    fn = functools.partial(superpixel_image, n_segments=n_segments, compactness=compactness,
                           sigma=sigma, colouring=colouring)
    workers = default_workers() if workers is None else int(workers)
    if workers <= 1 or len(images) <= 1:
        out = [fn(im) for im in images]
    else:
        out = list(_thread_pool(workers).map(fn, images))
    return np.stack(out).astype(images.dtype, copy=False)


def structure_representation(images, n_segments=_SEGMENTS, compactness=_COMPACTNESS, sigma=_SIGMA, colouring=_COLOURING,
                             workers=None):
    """`superpixel_batch` of ``stop_gradient(images)`` as a graph op with the input's static shape.

    A single `tf.numpy_function`: host-side, not differentiable (the result is a constant target,
    as the NumPy feed was in the original), not XLA-compilable and not serialisable into a
    SavedModel. Under `tf.distribute` it runs once per replica on that replica's images.
    """
    images = tf.stop_gradient(tf.convert_to_tensor(images))
    fn = functools.partial(superpixel_batch, n_segments=n_segments, compactness=compactness,
                           sigma=sigma, colouring=colouring, workers=workers)
    out = tf.numpy_function(fn, [images], images.dtype, name="superpixel")
    out.set_shape(images.shape)
    return out
