"""Image comparison metrics, all in 0..255 units on (H, W, 3) arrays."""

import numpy as np


def max_abs_diff(a, b):
    """max |a − b| in 0..255 units."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def psnr(a, b, peak=255.0):
    """PSNR in dB of ``a`` against ``b`` (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def truncate(image):
    """The original's ``np.clip(y, 0, 255).astype(np.uint8)``: clip, then truncate toward zero."""
    return np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)


def equal_fraction(a, b):
    """Fraction of equal values after the truncating uint8 cast of both (1.0 = identical)."""
    return float(np.mean(truncate(a) == truncate(b)))


def compare(output, reference):
    """``{'max_abs', 'psnr', 'equal'}`` of an output against the reference (both 0..255)."""
    return {"max_abs": max_abs_diff(output, reference), "psnr": psnr(output, reference),
            "equal": equal_fraction(output, reference)}
