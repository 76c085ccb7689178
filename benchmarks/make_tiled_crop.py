"""Make ``docs/tiled_crop.jpg``: a 1:1 crop of a full-resolution cartoon made in tiles, with its seams.

Run:  python benchmarks/make_tiled_crop.py [--side 2048] [--tile 512] [--crop 384] [--out docs/tiled_crop.jpg]

The scikit-image astronaut (512²), scaled to ``--side``² (INTER_CUBIC: a stand-in for a large scan, no
photo that large ships offline), is cartoonized at full resolution (``short_side=0``) twice with the
bundled weights: forced into ``--tile`` px tiles, and whole. The picture shows, for the ``--crop`` px
square around a point where four tiles meet: the photo, the tiled cartoon with the tile borders drawn
in, and ``|tiled − untiled|`` amplified 50× (black = equal). Prints max |Δ| inside and at the seams.
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
from wbc_tf.tiling import split_axis  # noqa: E402

from make_strength_strip import GAP, label  # noqa: E402  (this folder: scripts run from it)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), os.pardir, "docs",
                                                      "tiled_crop.jpg"))
    args = parser.parse_args(argv)

    photo = cv2.resize(data.astronaut(), (args.side, args.side), interpolation=cv2.INTER_CUBIC)
    tiled_cfg = InferenceConfig(short_side=0, tile=args.tile)
    generator = Cartoonizer.from_pretrained().generator                  # one generator for both runs
    tiled = Cartoonizer(generator, tiled_cfg).cartoonize(photo)
    whole = Cartoonizer(generator, InferenceConfig(short_side=0, memory_budget="64GB")).cartoonize(photo)
    assert tiled.shape == whole.shape == photo.shape, (tiled.shape, whole.shape)
    diff = np.abs(tiled.astype(int) - whole.astype(int)).max(-1)

    # seams: the centre of each blend band between two tiles (the same cuts on both axes)
    spans = split_axis(args.side, args.tile, tiled_cfg.tile_overlap)
    cuts = [s.keep_start + s.ramp_in // 2 for s in spans[1:]]
    centre = cuts[len(cuts) // 2]
    lo = int(np.clip(centre - args.crop // 2, 0, args.side - args.crop))
    box = np.s_[lo:lo + args.crop, lo:lo + args.crop]

    marked = np.ascontiguousarray(tiled[box])
    for c in cuts:
        if lo <= c < lo + args.crop:
            marked[:, c - lo] = marked[c - lo, :] = (255, 0, 255)
    amplified = np.repeat(np.clip(diff[box] * 50, 0, 255).astype(np.uint8)[..., None], 3, -1)
    panels = [np.ascontiguousarray(photo[box]), marked, amplified]
    for panel, text in zip(panels, ["photo (1:1 crop)", f"tiled cartoon, {args.tile} px tiles",
                                    "|tiled - whole| x 50"]):
        label(panel, text)
    gap = np.full((args.crop, GAP, 3), 255, np.uint8)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    cv2.imwrite(args.out, strip[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])

    seam = np.zeros(diff.shape, bool)
    for c in cuts:
        seam[max(c - 8, 0):c + 8, :] = seam[:, max(c - 8, 0):c + 8] = True
    print(f"{args.side}x{args.side}, {len(spans)}x{len(spans)} tiles of <= {args.tile} px, "
          f"overlap {tiled_cfg.tile_overlap}: max |tiled - whole| {diff.max()} "
          f"(within 8 px of a seam {diff[seam].max() if seam.any() else 0}, elsewhere "
          f"{diff[~seam].max()}); wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
