"""Real photos for the export checks and the int8 calibration, all shipped with scikit-image.

Nothing is downloaded: only files inside the scikit-image wheel are used. The check photos and
the calibration photos are disjoint, so quantisation is not judged on its own calibration data.
"""

import cv2
import numpy as np

from wbc_tf.export.graph import MULTIPLE

# Check photos: one square, one non-square (H, W already multiples of 8).
CHECK_PHOTOS = ("astronaut", "coffee")          # 512x512, 400x600
# Calibration photos for the int8 variant (cats, a rocket launch, a street scene).
CALIBRATION_PHOTOS = ("chelsea", "rocket", "motorcycle")


def load_photo(name):
    """A scikit-image photo by name as uint8 RGB (H, W, 3)."""
    from skimage import data
    if name == "motorcycle":
        image = data.stereo_motorcycle()[0]  # left view of the stereo pair
    else:
        image = getattr(data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def load_image_file(path):
    """An image file as uint8 RGB (H, W, 3), read like ``cv2.imread`` (alpha dropped, grey expanded)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def crop_to_multiple(image, multiple=MULTIPLE):
    """Top-left crop of (H, W, 3) to multiples of ``multiple``, like the original (spec §4)."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


def fit_to_size(image, size):
    """Resize (INTER_AREA, keeping the aspect ratio) to cover ``size`` = (H, W), then top-left crop."""
    th, tw = size
    h, w = image.shape[:2]
    scale = max(th / h, tw / w)
    if scale != 1:
        nh, nw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(image, (nw, nh), interpolation=interp)
    return np.ascontiguousarray(image[:th, :tw])


def check_photos(extra_paths=()):
    """``{name: uint8 RGB}`` of the check photos (bundled + ``extra_paths``), cropped to multiples of 8."""
    photos = {name: crop_to_multiple(load_photo(name)) for name in CHECK_PHOTOS}
    for path in extra_paths:
        photos[str(path)] = crop_to_multiple(load_image_file(path))
    return photos


def calibration_images(size=None, crop=256):
    """Float32 RGB 0..255 batches (1, h, w, 3) for the int8 converter's representative dataset.

    Args:
        size: fixed (H, W) of a fixed-shape model; None = a dynamic model, fed whole photos
            (cropped to multiples of 8) and ``crop``-sized tiles of them.
        crop: tile size for dynamic models (more samples without more pixels).
    """
    batches = []
    for name in CALIBRATION_PHOTOS:
        photo = load_photo(name)
        if size is not None:
            tiles = [fit_to_size(photo, size)]
        else:
            whole = crop_to_multiple(photo)
            h, w = whole.shape[:2]
            tiles = [whole, whole[:crop, :crop], whole[h - crop:, w - crop:]]
        batches += [t[None].astype(np.float32) for t in tiles]
    return batches
