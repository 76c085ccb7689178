"""Make ``docs/strength_strip.jpg``: one scikit-image photo at style strengths 0, 0.25, 0.5, 0.75 and 1.

Run:  python benchmarks/make_strength_strip.py [--photo coffee|astronaut|chelsea] [--out docs/strength_strip.jpg]

Uses the package as a user would: one `Cartoonizer` per strength (`InferenceConfig(strength=s)`,
bundled weights, the original's other defaults), each panel then scaled to ``--width`` px
(INTER_AREA) and labelled. Also prints, for the record, how many output values the cartoon clips
(the reason the blend happens after the clip: docs/inference.md, "Style strength").
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from wbc_tf.config import InferenceConfig  # noqa: E402
from wbc_tf.inference import Cartoonizer  # noqa: E402

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
GAP = 6  # white pixels between panels


def label(panel, text):
    """Write ``text`` in the top-left corner (white on a dark box), in place."""
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    cv2.rectangle(panel, (0, 0), (tw + 10, th + base + 8), (0, 0, 0), -1)
    cv2.putText(panel, text, (5, th + 4), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def make_strip(rgb, generator, width):
    """(h, 5·width + 4·GAP, 3) RGB: the photo at each of `STRENGTHS`, left to right."""
    panels = []
    for s in STRENGTHS:
        out = Cartoonizer(generator, InferenceConfig(strength=s)).cartoonize(rgb)
        h = round(out.shape[0] * width / out.shape[1])
        panel = np.ascontiguousarray(cv2.resize(out, (width, h), interpolation=cv2.INTER_AREA))
        label(panel, f"strength {s:g}")
        panels.append(panel)
    gap = np.full((panels[0].shape[0], GAP, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)


def clipped_fraction(rgb, cartoonizer):
    """Fraction of the cartoon's values outside 0..255 before the clip (and the largest overshoot)."""
    y = cartoonizer.cartoonize_float(np.ascontiguousarray(rgb[..., ::-1]))
    values = (y.astype(np.float64) + 1) * 127.5
    outside = (values < 0) | (values > 255)
    return float(outside.mean()), float(max(-values.min(), values.max() - 255, 0))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", default="coffee", choices=["coffee", "astronaut", "chelsea"])
    parser.add_argument("--out", default=os.path.join("docs", "strength_strip.jpg"))
    parser.add_argument("--width", type=int, default=300, help="width of each panel in px")
    parser.add_argument("--quality", type=int, default=88)
    args = parser.parse_args(argv)

    rgb = getattr(data, args.photo)()
    cartoonizer = Cartoonizer.from_pretrained()
    strip = make_strip(rgb, cartoonizer.generator, args.width)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    cv2.imwrite(args.out, strip[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    size_kib = os.path.getsize(args.out) / 1024
    print(f"wrote {args.out}: {strip.shape[1]}x{strip.shape[0]}, {size_kib:.0f} KiB")
    fraction, overshoot = clipped_fraction(rgb, cartoonizer)
    print(f"{args.photo}: {100 * fraction:.2f} % of the cartoon's values are clipped (overshoot up to "
          f"{overshoot:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
