"""Frozen configuration dataclasses: the single source of defaults.

Command-line parsers are derived from these fields (`wbc_tf.cli`), so a default lives in one place.
Each default is the original TF1 code's value unless the comment says otherwise (spec §4, §7, §8).
"""

import dataclasses

# The accepted values of the str-valued option fields, shared by the validators (`wbc_tf.inference`,
# `wbc_tf.gan`) and the CLI choices; the first one is the original's behaviour (the default).
FITS = ("crop", "pad")
ROUNDINGS = ("truncate", "round")
SUPERPIXEL_COLOURINGS = ("mean", "adaptive")
SN_UPDATES = ("every_call", "once_per_d_step")
OUTPUT_ACTIVATIONS = ("none", "clip", "tanh")


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """How a photo becomes a cartoon (spec §4, ``test_code/cartoonize.py``)."""

    # Shorter image side is reduced to this (INTER_AREA, int() truncation) when larger; 0 = never.
    short_side: int = 720
    # Optional cap on the longer side after the short-side rule (0 = none; not in the original).
    max_size: int = 0
    # 'crop': top-left crop to multiples of 8 (original). 'pad': reflect-pad to a multiple of 8
    # and crop back, so the output has exactly the input size.
    fit: str = "crop"
    # Guided filter applied to G(photo) with the photo as guide (cartoonize.py L28).
    gf_radius: int = 1
    gf_eps: float = 5e-3
    # Output rounding: 'truncate' like the original astype(uint8), or 'round'.
    rounding: str = "truncate"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Pre-training and adversarial training (spec §7, §8: ``pretrain.py`` and ``train.py``)."""

    # --- data ---
    patch_size: int = 256            # crops are exactly 256x256 in the original
    batch_size: int = 16             # images per step (the global batch with several GPUs)
    face_every: int = 5              # a face batch on every 5th iteration (t % 5 == 0)
    # Not in the original (spec §11.23), off by default: images larger than patch_size are always
    # random-cropped; exactly patch_size² images pass untouched.
    random_flip: bool = False        # random horizontal flip of every patch
    resize_small: bool = False       # smaller images: error (False) or bilinear up-scale (True)
    # --- optimisation (Adam 2e-4, beta1 0.5, beta2 0.99, eps 1e-8; Keras' default eps is 1e-7) ---
    learning_rate: float = 2e-4      # Adam learning rate, constant, for G (both phases) and D
    beta_1: float = 0.5              # Adam beta1
    beta_2: float = 0.99             # Adam beta2
    adam_epsilon: float = 1e-8       # Adam epsilon (TF1 AdamOptimizer default)
    pretrain_steps: int = 50_000     # phase 1 (pretrain.py): generator-only pixel-L1 steps
    train_steps: int = 100_000       # the release was taken at 34,000
    # --- networks ---
    channels: int = 32               # generator base width (c, 2c, 4c)
    num_blocks: int = 4              # generator residual blocks
    disc_channels: int = 32          # discriminator base width
    # --- loss weights: g = 1e4 tv + 0.1 surface + 1 texture + 200 (content + structure) ---
    tv_weight: float = 1e4           # total-variation weight
    surface_weight: float = 0.1      # surface (blur) GAN loss weight
    texture_weight: float = 1.0      # texture (grey) GAN loss weight
    content_weight: float = 200.0    # VGG content loss weight (photo vs output)
    structure_weight: float = 200.0  # VGG structure loss weight (superpixel vs output)
    # --- representations ---
    gf_radius: int = 1               # guided filter radius on G's output
    gf_eps: float = 1e-2             # training output filter (inference uses 5e-3, spec §11.3)
    surface_radius: int = 5          # surface representation: self-guided filter radius
    surface_eps: float = 0.2         # surface representation: self-guided filter eps
    superpixel_segments: int = 200   # SLIC segments per image (structure target)
    superpixel_compactness: float = 10.0  # SLIC compactness
    superpixel_sigma: float = 1.0    # SLIC Gaussian pre-smoothing sigma
    superpixel_colouring: str = "mean"  # 'mean' (original) or 'adaptive' (paper)
    superpixel_workers: int = 0      # SLIC threads per batch; 0 = os.cpu_count() (original: 16 processes)
    # --- spec §11 corrected modes (defaults are the original's behaviour) ---
    sn_update: str = "every_call"    # SN u write-back: 'every_call' (original) or 'once_per_d_step' (§11.7)
    raw_output_for_losses: bool = False  # True: losses and D see G(photo), not GF(photo, G(photo)) (§11.8)
    output_activation: str = "none"  # applied to G(photo): 'none' (original), 'clip' or 'tanh' (§11.9)
    # --- bookkeeping ---
    save_every: int = 500            # steps between checkpoints and weight exports
    sample_every: int = 500          # steps between sample grids (samples/ and TensorBoard)
    keep_checkpoints: int = 20       # newest checkpoints kept (the original's max_to_keep)
    seed: int = 0                    # seeds sampling, initialisation, colour shift (original: unseeded)
