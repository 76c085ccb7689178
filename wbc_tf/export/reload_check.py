"""Run a SavedModel's two signatures in a *fresh* process: ``python -m wbc_tf.export.reload_check``.

The parent process writes the inputs to an ``.npz`` and compares what comes back, so the check
covers what a server sees: only the files on disk, no Python objects shared with the exporter.

Input ``.npz``: ``uint8_<i>`` (H, W, 3) uint8 RGB images for ``cartoonize`` (one call each) and
``encoded_<i>`` (bytes as uint8 vectors) sent together as one batch to ``serving_default``.
Output ``.npz``: ``uint8_<i>`` results and ``png_<i>`` (PNG bytes as uint8 vectors).

Usage: ``python -m wbc_tf.export.reload_check SAVED_MODEL_DIR INPUTS.npz OUTPUTS.npz``
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run(saved_model_dir, inputs_path, outputs_path):
    """Load ``saved_model_dir``, run both signatures on ``inputs_path``, write ``outputs_path``."""
    import numpy as np
    import tensorflow as tf

    from wbc_tf.export.saved_model import (BYTES_INPUT, BYTES_OUTPUT, BYTES_SIGNATURE, UINT8_INPUT,
                                           UINT8_OUTPUT, UINT8_SIGNATURE)

    loaded = tf.saved_model.load(saved_model_dir)
    uint8_fn = loaded.signatures[UINT8_SIGNATURE]
    bytes_fn = loaded.signatures[BYTES_SIGNATURE]
    results = {}
    with np.load(inputs_path) as data:
        for key in sorted(k for k in data.files if k.startswith("uint8_")):
            out = uint8_fn(**{UINT8_INPUT: tf.constant(data[key][None])})[UINT8_OUTPUT]
            results[key] = out.numpy()[0]
        keys = sorted((k for k in data.files if k.startswith("encoded_")), key=lambda k: int(k[8:]))
        if keys:
            batch = tf.constant([data[k].tobytes() for k in keys])
            pngs = bytes_fn(**{BYTES_INPUT: batch})[BYTES_OUTPUT].numpy()
            for key, png in zip(keys, pngs):
                results["png_" + key[8:]] = np.frombuffer(png, dtype=np.uint8)
    np.savez(outputs_path, **results)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    run(*argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
