"""`ExportConfig`: every export option and its default, in one frozen dataclass.

The ``wbc-export`` flags are derived from these fields (`wbc_tf.cli.args`), so a default lives
here only. Guided-filter defaults are the original inference values (spec §3.3).
"""

import dataclasses
import re
from typing import Optional

FORMATS = ("saved_model", "tflite", "onnx")
VARIANTS = ("fp32", "fp16", "dynamic_range", "int8")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``wbc-export`` writes and checks."""

    # Folder that receives saved_model/, wbc_*.tflite and wbc.onnx (created if missing).
    output_dir: str = "wbc_export"
    # Generator weights: TF1 checkpoint dir/prefix, .npz or .weights.h5; empty = bundled release.
    weights: Optional[str] = None
    # Artefact families to write (onnx needs the optional tf2onnx/onnxruntime extra).
    formats: tuple[str, ...] = FORMATS
    # TFLite variants: fp32, fp16 (weights), dynamic_range (int8 weights), int8 (calibrated).
    variants: tuple[str, ...] = VARIANTS
    # Extra TFLite files with a static input shape: 'N' (NxN) or 'HxW'; '0' = none. Multiples of 8.
    fixed_size: str = "512"
    # Compare every artefact with the Keras reference after writing it (exit status 1 on failure).
    check: bool = True
    # Extra photos (paths) for the checks, next to the bundled scikit-image photos.
    check_images: tuple[str, ...] = ()
    # Guided-filter radius r (window 2r+1) on G(photo), guided by the photo (original: 1).
    gf_radius: int = 1
    # Guided-filter eps in [-1, 1] data units (original inference: 5e-3; training used 1e-2).
    gf_eps: float = 5e-3
    # ONNX opset for tf2onnx.
    onnx_opset: int = 17
    # LiteRT interpreter threads for the checks; 0 = all cores.
    threads: int = 0

    def __post_init__(self):
        bad = sorted(set(self.formats) - set(FORMATS))
        if bad:
            raise ValueError(f"unknown format(s) {bad}; choose from {FORMATS}")
        bad = sorted(set(self.variants) - set(VARIANTS))
        if bad:
            raise ValueError(f"unknown TFLite variant(s) {bad}; choose from {VARIANTS}")
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
    if h < 8 or w < 8 or h % 8 or w % 8:
        raise ValueError(f"fixed size {h}x{w}: height and width must be multiples of 8 (>= 8)")
    return h, w
