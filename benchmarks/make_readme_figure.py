"""Make ``docs/before_after.jpg``: a scikit-image photo and its cartoon, side by side.

Run:  python benchmarks/make_readme_figure.py [--photo coffee|astronaut|chelsea] [--out docs/before_after.jpg]

Uses the package exactly as a user would (`Cartoonizer.from_pretrained()`, bundled weights,
original defaults); the cartoon is the top-left multiple-of-8 crop, so the photo is cropped the
same way to line the two up.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from wbc_tf.inference import Cartoonizer  # noqa: E402

GAP = 8  # white pixels between the two panels


def _label(panel, text):
    """Write ``text`` in the top-left corner (white on a dark box), in place."""
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    cv2.rectangle(panel, (0, 0), (tw + 12, th + base + 10), (0, 0, 0), -1)
    cv2.putText(panel, text, (6, th + 5), font, scale, (255, 255, 255), thick, cv2.LINE_AA)


def make_figure(rgb, cartoonizer):
    """(H, 2W + GAP, 3) RGB: photo (cropped like the cartoon) | cartoon."""
    cartoon = cartoonizer.cartoonize(rgb)
    h, w = cartoon.shape[:2]
    before = np.ascontiguousarray(rgb[:h, :w])
    after = np.ascontiguousarray(cartoon)
    _label(before, "photo")
    _label(after, "wbc_tf cartoon (release weights)")
    gap = np.full((h, GAP, 3), 255, np.uint8)
    return np.concatenate([before, gap, after], axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", default="coffee", choices=["coffee", "astronaut", "chelsea"])
    parser.add_argument("--out", default=os.path.join("docs", "before_after.jpg"))
    parser.add_argument("--quality", type=int, default=88)
    args = parser.parse_args(argv)

    figure = make_figure(getattr(data, args.photo)(), Cartoonizer.from_pretrained())
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    cv2.imwrite(args.out, figure[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    size_kib = os.path.getsize(args.out) / 1024
    print(f"wrote {args.out}: {figure.shape[1]}x{figure.shape[0]}, {size_kib:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
