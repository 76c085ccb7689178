"""Every configuration dataclass of the package: the single home of each default and accepted value.

* `InferenceConfig`: how a photo becomes a cartoon (``wbc-cartoonize``, `wbc_tf.inference`).
* `TrainConfig`: the training recipe (``wbc-train`` hyper-parameters, `wbc_tf.gan`, `wbc_tf.data`).
* `RunOptions`: where and how a training run runs (data folder, run folder, strategy, resume).
* `ExportConfig`: what ``wbc-export`` writes and checks.
* `PrepareConfig`: how ``wbc-prepare-data`` builds a training folder from photos and videos.
* `BatchOptions`: which files ``wbc-cartoonize`` reads and writes, and how (`wbc_tf.batch`).
* `ServeOptions`: where ``wbc-serve`` listens and what its page accepts.
* `ConsoleOptions`: ``--verbose`` and ``--debug`` of every command.

The command-line flags are derived from these fields (`wbc_tf.cli.args`): the comment on a field is its
``--help`` text, a ``Literal`` type gives its choices. Every class validates itself in ``__post_init__``,
so a bad value fails where it is made, with one message naming the field. Defaults are the original TF1
code's values unless a comment says otherwise (docs/fidelity.md §4, §7, §8). Values shared between
classes (the inference guided filter, used again by the export) are written once and referenced.

This module imports nothing heavy: ``--help`` and the config checks run without TensorFlow.
"""

import dataclasses
import math
import re
import typing
from typing import Literal, Optional

# The pipeline works on multiples of 8 (the original crops to them; the generator itself needs 4).
MULTIPLE = 8

# Accepted values; the first one of each is the original's behaviour (the default).
Fit = Literal["crop", "pad"]
Rounding = Literal["truncate", "round"]
InferencePrecision = Literal["float32", "bfloat16"]
SuperpixelColouring = Literal["mean", "adaptive"]
SnUpdate = Literal["every_call", "once_per_d_step"]
OutputActivation = Literal["none", "clip", "tanh"]
Superpixel = Literal["skimage", "tf"]
Precision = Literal["float32", "mixed_float16", "mixed_bfloat16"]
Phase = Literal["all", "pretrain", "train"]
Strategy = Literal["default", "mirrored", "multiworker"]
ExportFormat = Literal["saved_model", "tflite", "onnx"]
TFLiteVariant = Literal["fp32", "fp16", "dynamic_range", "int8"]

BUNDLED = "bundled"        # the spelling of the bundled release weights wherever a weights path is taken
RANDOM_VGG = "random"      # --vgg-weights random: an untrained VGG19 (smoke tests only)
# Pixel limit of wbc-cartoonize and the SavedModel, read from a file's header before decoding: 200 MP
# accepts 108 MP phone photos and 150 MP medium-format photos; 30000x30000 (900 MP) is refused.
MAX_PIXELS = 200_000_000


def choices(literal):
    """The accepted values of a ``Literal`` type alias, e.g. ``choices(Fit) == ('crop', 'pad')``."""
    return typing.get_args(literal)


def _check_choices(config):
    """Raise ValueError for a ``Literal`` field (or tuple of them) holding a value it does not accept."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        tp, value = hints[field.name], getattr(config, field.name)
        if typing.get_origin(tp) is tuple and typing.get_origin(typing.get_args(tp)[0]) is Literal:
            allowed = choices(typing.get_args(tp)[0])
            bad = sorted(set(value) - set(allowed))
        elif typing.get_origin(tp) is Literal:
            allowed = choices(tp)
            bad = [] if value in allowed else [value]
        else:
            continue
        if bad:
            raise ValueError(f"{field.name}: {', '.join(map(repr, bad))} not accepted; choose from "
                             f"{', '.join(allowed)}")


def _check_at_least(config, minimum, *names):
    for name in names:
        if getattr(config, name) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {getattr(config, name)}")


def _check_off_or_multiple(config, *names):
    for name in names:
        value = getattr(config, name)
        if value < 0 or 0 < value < MULTIPLE:
            raise ValueError(f"{name} must be 0 (off) or >= {MULTIPLE}, got {value}")


def _check_strength(strength, name="strength"):
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise ValueError(f"{name} must be a number from 0 (the photo) to 1 (the cartoon), got {strength!r}")


def _check_guided_filter(radius, eps, prefix="gf"):
    if radius < 0:
        raise ValueError(f"{prefix}_radius must be >= 0, got {radius}")
    if eps <= 0:
        raise ValueError(f"{prefix}_eps must be > 0, got {eps}")


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """How a photo becomes a cartoon (the original ``cartoonize.py``; docs/fidelity.md §4)."""

    # Shorter image side is reduced to this (INTER_AREA, int() truncation) when larger; 0 = never.
    short_side: int = 720
    # Optional cap on the longer side after the short-side rule (0 = none; not in the original).
    max_size: int = 0
    # 'crop': top-left crop to multiples of 8 (original). 'pad': reflect-pad to a multiple of 8
    # and crop back, so the output has exactly the input size.
    fit: Fit = "crop"
    # Guided-filter box radius r (window 2r+1) applied to G(photo), guided by the photo (original: 1).
    gf_radius: int = 1
    # Guided-filter regulariser eps, in [-1, 1] data units (original inference: 5e-3; training uses
    # its own, 1e-2: docs/fidelity.md §3.3).
    gf_eps: float = 5e-3
    # Output rounding: 'truncate' like the original astype(uint8), or 'round'.
    rounding: Rounding = "truncate"
    # Style strength 0..1 (not in the original): 1 = the cartoon (the original's output, bit for bit),
    # 0 = the photo (resized and cropped like the cartoon); in between, a cross-fade of the two in 0..255.
    strength: float = 1.0
    # --- memory and speed (not in the original; the defaults compute exactly as it does) ---
    # Peak memory the network (generator + guided filter, about 460 MB per megapixel) may use on one
    # image, e.g. 1GB, 1.5GB, 800MB (a plain number: MB); a larger image runs in overlapping tiles.
    memory_budget: str = "1GB"
    # Tile side in px, a multiple of 8: 0 = tiles only when an image is over --memory-budget; N = always
    # tiles of at most NxN px (at least 3x --tile-overlap).
    tile: int = 0
    # Overlap of neighbouring tiles in px (a multiple of 8); each drops its outer part and the central
    # 16 px are blended. From 144 (2 x 64, the network's receptive-field radius, + 16) the output equals
    # the untiled one up to float rounding, seams included.
    tile_overlap: int = 144
    # 'float32' (original) or 'bfloat16': the generator computes in bfloat16 (a quarter to half of the
    # time on CPUs with AMX or AVX512-BF16; PSNR 62 dB against float32), the guided filter in float32.
    precision: InferencePrecision = "float32"

    def __post_init__(self):
        _check_choices(self)
        _check_off_or_multiple(self, "short_side", "max_size")
        _check_guided_filter(self.gf_radius, self.gf_eps)
        _check_strength(self.strength)
        parse_memory(self.memory_budget)  # raises on a malformed or non-positive budget
        if self.tile_overlap < 0 or self.tile_overlap % MULTIPLE:
            raise ValueError(f"tile_overlap must be a multiple of {MULTIPLE} (>= 0), got {self.tile_overlap}")
        if self.tile < 0 or self.tile % MULTIPLE or 0 < self.tile < max(3 * self.tile_overlap, MULTIPLE):
            raise ValueError(f"tile must be 0 (automatic) or a multiple of {MULTIPLE} of at least 3 x "
                             f"tile_overlap = {max(3 * self.tile_overlap, MULTIPLE)}, got {self.tile}")

    @property
    def memory_budget_bytes(self):
        """``memory_budget`` in bytes."""
        return parse_memory(self.memory_budget)


_MEMORY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)i?b?")
_MEMORY_UNITS = {"k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def parse_memory(value):
    """``'1GB'``, ``'1.5G'``, ``'800MB'``, ``'800MiB'`` → bytes (binary units); an int or a bare number: MB.

    Raises:
        ValueError: malformed, or not > 0.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"memory_budget must look like 1GB or 800MB, got {value!r}")
    match = _MEMORY.fullmatch(str(value).strip().lower())
    if not match:
        raise ValueError(f"memory_budget must look like 1GB or 800MB, got {value!r}")
    number, unit = float(match.group(1)), match.group(2) or "m"
    if number <= 0:
        raise ValueError(f"memory_budget must be > 0, got {value!r}")
    return int(number * _MEMORY_UNITS[unit])


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Pre-training and adversarial training (the original ``pretrain.py`` and ``train.py``).

    See docs/fidelity.md §7 (losses) and §8 (training procedure).
    """

    # --- data ---
    patch_size: int = 256            # crops are exactly 256x256 in the original
    batch_size: int = 16             # images per step (the global batch with several GPUs)
    face_every: int = 5              # a face batch on every 5th iteration (t % 5 == 0)
    # Not in the original (docs/fidelity.md §11.23), off by default: images larger than patch_size are
    # always random-cropped; exactly patch_size² images pass untouched.
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
    gf_eps: float = 1e-2             # training output filter (inference uses 5e-3, docs/fidelity.md §11.3)
    surface_radius: int = 5          # surface representation: self-guided filter radius
    surface_eps: float = 0.2         # surface representation: self-guided filter eps
    superpixel_segments: int = 200   # SLIC segments per image (structure target)
    superpixel_compactness: float = 10.0  # SLIC compactness
    superpixel_sigma: float = 1.0    # SLIC Gaussian pre-smoothing sigma
    superpixel_colouring: SuperpixelColouring = "mean"  # 'mean' (original) or 'adaptive' (paper)
    superpixel_workers: int = 0      # SLIC threads per batch; 0 = os.cpu_count() (original: 16 processes)
    # Structure-target SLIC: 'skimage' (the original's scikit-image SLIC on the host, in threads) or
    # 'tf' (TensorFlow ops only: runs on the accelerator and compiles under XLA; mean colouring only).
    superpixel: Superpixel = "skimage"
    # --- corrected modes (docs/fidelity.md §11; defaults are the original's behaviour) ---
    # Spectral-norm u write-back: on every discriminator call (original) or once per D step
    # (docs/fidelity.md §11.7).
    sn_update: SnUpdate = "every_call"
    # True: the losses and D see G(photo), not GF(photo, G(photo)) (docs/fidelity.md §11.8).
    raw_output_for_losses: bool = False
    # Applied to G(photo): 'none' (original, linear), 'clip' or 'tanh' (docs/fidelity.md §11.9).
    output_activation: OutputActivation = "none"
    # --- speed (not in the original; the defaults compute exactly as it does) ---
    # Compute dtype of the convolutions (variables stay float32): 'float32', 'mixed_bfloat16'
    # (CPUs with AMX/AVX512-BF16, TPUs, recent GPUs) or 'mixed_float16' (GPUs; both optimisers
    # get dynamic loss scaling). Guided filters, colour shift, spectral norm, losses and the
    # generator's last layer stay float32.
    precision: Precision = "float32"
    # XLA-compile the whole train step (needs --superpixel tf: scikit-image runs on the host).
    jit_compile: bool = False
    # --- bookkeeping ---
    save_every: int = 500            # steps between checkpoints and weight exports
    sample_every: int = 500          # steps between sample grids (samples/ and TensorBoard)
    keep_checkpoints: int = 20       # newest checkpoints kept (the original's max_to_keep)
    seed: int = 0                    # seeds sampling, initialisation, colour shift (original: unseeded)

    def __post_init__(self):
        _check_choices(self)
        _check_at_least(self, 1, "patch_size", "batch_size", "face_every", "channels", "num_blocks",
                        "disc_channels", "superpixel_segments", "save_every", "sample_every",
                        "keep_checkpoints")
        _check_at_least(self, 0, "pretrain_steps", "train_steps", "superpixel_workers")
        _check_guided_filter(self.gf_radius, self.gf_eps)
        _check_guided_filter(self.surface_radius, self.surface_eps, prefix="surface")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.jit_compile and self.superpixel == "skimage":
            raise ValueError("jit_compile needs superpixel='tf' (--superpixel tf): the scikit-image SLIC "
                             "is a tf.numpy_function, which XLA cannot compile")
        if self.superpixel == "tf" and self.superpixel_colouring != "mean":
            raise ValueError(f"superpixel='tf' paints segments with their mean colour only; "
                             f"superpixel_colouring={self.superpixel_colouring!r} needs superpixel='skimage'")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how to run; everything that is not a training hyper-parameter (`TrainConfig`)."""

    # Dataset folder holding photo_face, photo_scenery, cartoon_face, cartoon_scenery (the original
    # layout), or photo + cartoon for a single domain.
    data: str = ""
    # Run folder: config.json, checkpoints/, logs/, samples/ and the exported generator weights.
    output_dir: str = "runs"
    # VGG19 for the content/structure losses: 'imagenet' (Keras cache, else one download), a path to
    # vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 or to the original vgg19_no_fc.npy, or
    # 'random' (untrained; smoke tests only).
    vgg_weights: str = "imagenet"
    # Start adversarial training from these generator weights (.weights.h5, .npz or a TF1 checkpoint)
    # and skip pre-training; the flag without a value means the bundled released weights ('bundled').
    init_weights: Optional[str] = None
    # 'all': pre-train then train; 'pretrain' or 'train': that phase only.
    phase: Phase = "all"
    # 'default': one device. 'mirrored': tf.distribute.MirroredStrategy over all visible GPUs.
    # 'multiworker': tf.distribute.MultiWorkerMirroredStrategy, one process per machine, the cluster
    # read from TF_CONFIG; the chief writes the run folder. batch_size is the global batch.
    strategy: Strategy = "default"
    resume: bool = True              # continue from the run folder's latest checkpoint, if it has one
    progress: bool = True            # show a tqdm progress bar with the losses
    # Memory (MB) for a one-time cache of decoded training images, so that large sources are not
    # decoded again on every step (wbc_tf.data); 0 = no cache. Same batches either way.
    data_cache_mb: int = 4096

    def __post_init__(self):
        _check_choices(self)
        _check_at_least(self, 0, "data_cache_mb")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``wbc-export`` writes and checks."""

    # Folder for saved_model/, *.tflite, wbc.onnx and export_report.json (created if missing).
    output_dir: str = "wbc_export"
    # Generator weights: 'bundled' (the release model-33999 shipped with the package; None or empty
    # mean the same), a TF1 checkpoint dir/prefix, an .npz or a .weights.h5.
    weights: Optional[str] = BUNDLED
    # Artefact families to write (onnx needs the optional tf2onnx/onnxruntime extra).
    formats: tuple[ExportFormat, ...] = choices(ExportFormat)
    # TFLite variants: fp32, fp16 (weights), dynamic_range (int8 weights), int8 (calibrated).
    variants: tuple[TFLiteVariant, ...] = choices(TFLiteVariant)
    # Also write fixed-shape TFLite files of this size: 512 (= 512x512) or HxW, multiples of 8; 0 = none.
    fixed_size: str = "512"
    # Compare every artefact with the Keras reference after writing it (exit status 1 on failure).
    check: bool = True
    # Extra photos (paths) for the checks, next to the bundled scikit-image photos.
    check_images: tuple[str, ...] = ()
    # Guided-filter radius r (window 2r+1) on G(photo), guided by the photo (the inference default).
    gf_radius: int = InferenceConfig.gf_radius
    # Guided-filter eps in [-1, 1] data units (the inference default).
    gf_eps: float = InferenceConfig.gf_eps
    # ONNX opset for tf2onnx.
    onnx_opset: int = 17
    # LiteRT interpreter threads for the checks; 0 = all cores.
    threads: int = 0
    # --- SavedModel request limits (in the graph: each request is checked against them) ---
    # serving_default (and serving_strength) reduce a photo whose shorter side is larger to this, like
    # wbc-cartoonize --short-side (INTER_AREA, the same pixels); 0 = never (each image at its own size).
    serving_short_side: int = InferenceConfig.short_side
    # serving_default refuses an image with more pixels than this (e.g. 200M or 30000x30000), read from
    # its header before anything is decoded (an InvalidArgument error naming the image); 0 = no limit.
    serving_max_pixels: int = MAX_PIXELS
    # Every signature refuses a network input (after the short-side rule, padded to multiples of 8) of
    # more pixels than this: the SavedModel does not tile, and the network needs about 480 bytes per
    # pixel on a CPU (4M: about 2 GB); 0 = no limit.
    serving_max_network_pixels: int = 4_000_000

    def __post_init__(self):
        _check_choices(self)
        _check_guided_filter(self.gf_radius, self.gf_eps)
        _check_at_least(self, 0, "threads", "serving_max_pixels", "serving_max_network_pixels")
        _check_off_or_multiple(self, "serving_short_side")
        parse_size(self.fixed_size)  # raises on a malformed size

    @property
    def fixed_hw(self):
        """``(H, W)`` of the fixed-size TFLite files, or None."""
        return parse_size(self.fixed_size)


def parse_size(text):
    """``'512'`` → (512, 512); ``'512x768'`` → (512, 768); ``'0'``, ``'none'``, '' → None.

    Raises:
        ValueError: malformed, or not a multiple of 8 (the exported graphs need multiples of 8).
    """
    text = str(text).strip().lower()
    if text in ("", "0", "none", "no"):
        return None
    match = re.fullmatch(r"(\d+)(?:[x×,](\d+))?", text)
    if not match:
        raise ValueError(f"fixed size must look like 512 or 512x768, got {text!r}")
    h = int(match.group(1))
    w = int(match.group(2) or h)
    if h < MULTIPLE or w < MULTIPLE or h % MULTIPLE or w % MULTIPLE:
        raise ValueError(f"fixed size {h}x{w}: height and width must be multiples of {MULTIPLE} (>= {MULTIPLE})")
    return h, w


# --- wbc-prepare-data ---------------------------------------------------------------------------------

CropMode = Literal["random", "centre", "resize"]
ImageFormat = Literal["png", "jpg"]
# The training layouts (wbc_tf.data), {domain: (photo folder, cartoon folder)}: the four folders of
# the original, or photo + cartoon; and the same folders as flat tuples, photos first.
TWO_DOMAIN_FOLDERS = {"face": ("photo_face", "cartoon_face"), "scenery": ("photo_scenery", "cartoon_scenery")}
ONE_DOMAIN_FOLDERS = {"all": ("photo", "cartoon")}
TWO_DOMAIN_LAYOUT = tuple(pair[i] for i in (0, 1) for pair in TWO_DOMAIN_FOLDERS.values())
ONE_DOMAIN_LAYOUT = tuple(pair[i] for i in (0, 1) for pair in ONE_DOMAIN_FOLDERS.values())


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """How ``wbc-prepare-data`` turns photos and videos into a training folder (`wbc_tf.prepare_data`)."""

    # --- sources: image files, videos, or folders of them (walked recursively) per target folder ---
    photo_face: tuple[str, ...] = ()       # sources of OUTPUT_DIR/photo_face (real faces)
    photo_scenery: tuple[str, ...] = ()    # sources of OUTPUT_DIR/photo_scenery (real scenery)
    cartoon_face: tuple[str, ...] = ()     # sources of OUTPUT_DIR/cartoon_face (cartoon faces)
    cartoon_scenery: tuple[str, ...] = ()  # sources of OUTPUT_DIR/cartoon_scenery (cartoon scenery)
    photo: tuple[str, ...] = ()            # single-domain layout: sources of OUTPUT_DIR/photo
    cartoon: tuple[str, ...] = ()          # single-domain layout: sources of OUTPUT_DIR/cartoon
    # The dataset folder to fill (wbc-train --data); created if missing.
    output_dir: str = "dataset"
    # --- images ---
    # 'random': crops-per-image random crops at full resolution; 'centre': the centre crop; 'resize':
    # the shorter side scaled to size (INTER_AREA), then the centre crop.
    mode: CropMode = "random"
    size: int = TrainConfig.patch_size  # side of the square outputs (wbc-train --patch-size)
    crops_per_image: int = 1         # random mode: crops per image or video frame
    seed: int = 0                    # random mode: a crop's position depends only on it and the file name
    # Images with a side below size: skipped and counted, or scaled up (bilinear) until the shorter
    # side is size.
    upscale_small: bool = False
    # --- videos ---
    every_seconds: float = 1.0       # one frame every N seconds of video, starting with the first frame
    max_frames: int = 0              # frames taken per video at most; 0 = no limit
    # --- duplicates (exact copies, same pixels, are always dropped) ---
    # Also drop an image whose 64-bit difference hash is within this many bits of one already kept in
    # the same folder (re-encoded or brightened copies, video frames of a still shot; try 5); 0 = off.
    near_duplicate_bits: int = 0
    # --- output ---
    format: ImageFormat = "png"      # output file type
    jpg_quality: int = 95            # JPEG quality (0-100) with --format jpg
    overwrite: bool = False          # replace existing output files (otherwise they are kept and counted)
    workers: int = 0                 # image-decoding threads; 0 = one per CPU core (at most 8)
    progress: bool = True            # show a tqdm progress bar (rate and ETA)

    def __post_init__(self):
        _check_choices(self)
        for name in TWO_DOMAIN_LAYOUT + ONE_DOMAIN_LAYOUT:
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"{name} must be a tuple of paths, got {value!r}")
        if self.sources(TWO_DOMAIN_LAYOUT) and self.sources(ONE_DOMAIN_LAYOUT):
            raise ValueError("give sources for photo_face/photo_scenery/cartoon_face/cartoon_scenery or for "
                             "photo/cartoon, not both: wbc-train reads one layout")
        _check_at_least(self, 1, "size", "crops_per_image")
        _check_at_least(self, 0, "max_frames", "near_duplicate_bits", "jpg_quality", "workers")
        if self.every_seconds <= 0:
            raise ValueError(f"every_seconds must be > 0, got {self.every_seconds}")
        if self.near_duplicate_bits > 64:
            raise ValueError(f"near_duplicate_bits must be <= 64 (the hash has 64 bits), got "
                             f"{self.near_duplicate_bits}")
        if self.jpg_quality > 100:
            raise ValueError(f"jpg_quality must be <= 100, got {self.jpg_quality}")

    def sources(self, folders=TWO_DOMAIN_LAYOUT + ONE_DOMAIN_LAYOUT):
        """``{target folder: source paths}`` of the given folders that have sources, in layout order."""
        return {name: tuple(getattr(self, name)) for name in folders if getattr(self, name)}


# --- wbc-cartoonize: files in, files out ---------------------------------------------------------------

_PIXEL_UNITS = {"": 1, "k": 10**3, "m": 10**6, "mp": 10**6, "g": 10**9, "gp": 10**9}


def parse_pixels(text):
    """A pixel count: ``'200000000'``, ``'200M'``, ``'200MP'``, ``'1.5G'`` or ``'30000x30000'`` → int.

    Raises:
        ValueError: anything else, or a negative count.
    """
    text = str(text).strip().lower().replace("_", "")
    size = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", text)
    if size:
        return int(size.group(1)) * int(size.group(2))
    number = re.fullmatch(r"(\d+(?:\.\d*)?(?:e\d+)?)\s*([a-z]*)", text)
    if not number or number.group(2) not in _PIXEL_UNITS:
        raise ValueError(f"a pixel count looks like 200000000, 200M, 1.5G or 30000x30000, got {text!r}")
    return int(float(number.group(1)) * _PIXEL_UNITS[number.group(2)])


def parse_seconds(text):
    """A time: ``'12.5'``, ``'1:05'`` (mm:ss) or ``'0:01:05.5'`` (h:mm:ss) → seconds as a float.

    Raises:
        ValueError: anything else, or a negative time.
    """
    text = str(text).strip()
    match = re.fullmatch(r"(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)", text)
    if not match:
        raise ValueError(f"a time looks like 12.5 (seconds), 1:05 or 0:01:05.5, got {text!r}")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """How ``wbc-cartoonize`` and `wbc_tf.batch` turn files into outputs (the pipeline: `InferenceConfig`)."""

    # Where results go, as OUTPUT_DIR/<input stem>.<format>; created if missing (not an existing file).
    output_dir: str = "cartoons"
    recursive: bool = False          # also walk sub-folders of folder inputs, keeping their relative paths
    format: ImageFormat = "png"      # output image format; videos are always written as .mp4
    jpg_quality: int = 95            # JPEG quality 0-100 for --format jpg (OpenCV's default)
    # Generator weights: 'bundled' (the release model-33999 shipped with the package), a TF1 checkpoint
    # folder or prefix, an .npz or a .weights.h5.
    weights: str = BUNDLED
    overwrite: bool = False          # replace existing output files (otherwise they are skipped, with a line)
    # Reattach the input's alpha channel (resized/cropped like the picture) to the output; forces PNG.
    # Otherwise alpha is dropped, like cv2.imread.
    keep_alpha: bool = False
    # Refuse images with more pixels than this, read from the file header before anything is decoded
    # (decompression bombs); the default accepts any phone or camera photo. 0 = no limit.
    max_pixels: int = MAX_PIXELS
    # Images or video frames per network call: 0 = auto (1 on a CPU; on a GPU, consecutive inputs of the
    # same size, up to 4 megapixels or 8 inputs per call).
    batch_size: int = 0
    quiet: bool = False              # no progress bar, no 'skipping' lines, no summary (errors still shown)
    # --- videos ---
    # Convert each video from this time on, in seconds (12.5) or [h:]mm:ss (1:05, 0:01:05.5); the audio
    # is cut to the same window.
    start: float = 0.0
    duration: float = 0.0            # seconds of each video to convert from --start (same forms); 0 = all

    def __post_init__(self):
        _check_choices(self)
        _check_at_least(self, 0, "jpg_quality", "max_pixels", "batch_size", "start", "duration")
        if self.jpg_quality > 100:
            raise ValueError(f"jpg_quality must be <= 100, got {self.jpg_quality}")
        if not all(math.isfinite(getattr(self, name)) for name in ("start", "duration")):
            raise ValueError(f"start and duration must be finite, got {self.start} and {self.duration}")

    @property
    def image_ext(self):
        """Extension of image outputs, with the dot: ``.png``, or ``.jpg`` (never with ``keep_alpha``)."""
        return ".png" if self.keep_alpha else "." + self.format


# --- wbc-serve: the local web page ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How ``wbc-serve`` (`wbc_tf.serve`) serves the page: where it listens and what it accepts."""

    # Address to listen on; the default is reachable from this computer only (0.0.0.0: every network).
    host: str = "127.0.0.1"
    port: int = 8000                 # TCP port (0 = any free port, printed at start)
    # Generator weights: 'bundled' (the release model-33999 shipped with the package), a TF1 checkpoint
    # folder or prefix, an .npz or a .weights.h5.
    weights: str = BUNDLED
    max_upload_mb: float = 50.0      # refuse uploads larger than this many megabytes (10^6 bytes)
    # Refuse images (and video frames) with more pixels than this, read from the header before decoding.
    max_pixels: int = 50_000_000
    # Requests waiting for the one model instance (one runs at a time); when full, new ones get
    # 'busy, try again' (HTTP 503), so many users cannot exhaust memory.
    queue_size: int = 4
    max_video_seconds: float = 10.0  # videos are cut to their first this many seconds (0 = whole video)

    def __post_init__(self):
        _check_at_least(self, 0, "port", "max_pixels", "max_video_seconds")
        _check_at_least(self, 1, "queue_size")
        if self.port > 65535:
            raise ValueError(f"port must be <= 65535, got {self.port}")
        if not 0 < self.max_upload_mb < float("inf"):  # also refuses NaN
            raise ValueError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if not self.host:
            raise ValueError("host must not be empty")

    @property
    def max_upload_bytes(self):
        """`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * 1_000_000)


@dataclasses.dataclass(frozen=True)
class ConsoleOptions:
    """What every command prints besides its own lines (``wbc_tf.cli.console``)."""

    # Also show the start-up and codec lines of TensorFlow, absl, OpenCV, libpng and FFmpeg.
    verbose: bool = False
    debug: bool = False              # print the traceback of an unexpected error (otherwise: one line)
