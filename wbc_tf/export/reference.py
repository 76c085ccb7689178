"""The Keras reference every artefact is checked against: the original pipeline around the Keras model.

It mirrors ``test_code/cartoonize.py`` (spec §4) step by step: NumPy does the BGR flip, the
``/127.5 − 1`` normalisation and the ``(y + 1)·127.5`` / clip / ``astype(uint8)`` post-processing,
and TF runs only G and the guided filter, as one graph with dynamic H and W, which is what the
original's TF1 session ran. (Running that core eagerly instead differs in the 6th significant
digit, because Grappler's constant folding reorders a sum inside the guided filter; a graph is
what the original, `keras.Model.predict` and TF Serving all run.)

The only addition: sizes that are not multiples of 8 are reflect-padded at the bottom/right and
cropped back (the SavedModel's behaviour), where the original would crop the image instead.
"""

import numpy as np

from wbc_tf.export.graph import CartoonGraph
from wbc_tf.inference import MULTIPLE, normalize


class KerasReference:
    """Reference outputs for a generator.

    Args:
        generator: a `build_generator` model with weights (BGR [-1, 1] in and out).
        radius, eps: guided filter (original inference: 1, 5e-3).

    Example:
        >>> ref = KerasReference(generator)
        >>> ref.float_rgb(photo)   # (H, W, 3) float32 0..255, before truncation
        >>> ref.uint8_rgb(photo)   # (H, W, 3) uint8, what the original writes (in RGB)
    """

    def __init__(self, generator, radius=1, eps=5e-3):
        # Same (inlined) core graph as the exported artefacts; the NumPy framing is separate.
        self._graph = CartoonGraph(generator, radius, eps, barrier=False)

    def float_rgb(self, image):
        """(H, W, 3) uint8 RGB, any H, W ≥ 8 → float32 RGB 0..255, clipped, not truncated."""
        image = np.asarray(image)
        h, w = image.shape[:2]
        padded = np.pad(image, [(0, -h % MULTIPLE), (0, -w % MULTIPLE), (0, 0)], mode="reflect")
        photo = normalize(padded[None, :, :, ::-1])                        # (1, H', W', 3) BGR
        out = self._graph.core(photo).numpy()
        out = np.clip((out + 1) * 127.5, 0, 255)
        return np.ascontiguousarray(out[0, :h, :w, ::-1])

    def uint8_rgb(self, image):
        """(H, W, 3) uint8 RGB → uint8 RGB with the original's truncating cast."""
        return self.float_rgb(image).astype(np.uint8)
