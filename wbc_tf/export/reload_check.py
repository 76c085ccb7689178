"""Run a SavedModel's signatures in a *fresh* process: ``python -m wbc_tf.export.reload_check``.

The parent process writes the inputs to an ``.npz`` and compares what comes back, so the check
covers what a server sees: only the files on disk, no Python objects shared with the exporter.

Input ``.npz``: ``uint8_<i>`` (H, W, 3) uint8 RGB images for ``cartoonize`` (one call each) and
``encoded_<i>`` (bytes as uint8 vectors) sent together as one batch to ``serving_default``; with a
``strength`` (a float32 (1,) array) the same go to ``cartoonize_strength`` and ``serving_strength``
(only the first ``strength_encoded`` encoded files, when given).
Output ``.npz``: ``uint8_<i>`` results and ``png_<i>`` (PNG bytes as uint8 vectors), and
``strength_uint8_<i>`` / ``strength_png_<i>`` from the strength signatures.

Usage: ``python -m wbc_tf.export.reload_check SAVED_MODEL_DIR INPUTS.npz OUTPUTS.npz``
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run(saved_model_dir, inputs_path, outputs_path):
    """Load ``saved_model_dir``, run the signatures on ``inputs_path``, write ``outputs_path``."""
    import numpy as np
    import tensorflow as tf

    from wbc_tf.export import saved_model as sm

    loaded = tf.saved_model.load(saved_model_dir)
    results = {}
    with np.load(inputs_path) as data:
        encoded = sorted((k for k in data.files if k.startswith("encoded_")), key=lambda k: int(k[8:]))
        runs = [("", {}, sm.UINT8_SIGNATURE, sm.BYTES_SIGNATURE, encoded)]
        if "strength" in data.files:
            strength = {sm.STRENGTH_INPUT: tf.constant(data["strength"], tf.float32)}
            count = int(data["strength_encoded"]) if "strength_encoded" in data.files else len(encoded)
            runs.append(("strength_", strength, sm.UINT8_STRENGTH_SIGNATURE, sm.BYTES_STRENGTH_SIGNATURE,
                         encoded[:count]))
        for prefix, extra, uint8_name, bytes_name, keys in runs:
            uint8_fn, bytes_fn = loaded.signatures[uint8_name], loaded.signatures[bytes_name]
            for key in sorted(k for k in data.files if k.startswith("uint8_")):
                out = uint8_fn(**{sm.UINT8_INPUT: tf.constant(data[key][None])}, **extra)[sm.UINT8_OUTPUT]
                results[prefix + key] = out.numpy()[0]
            if keys:
                batch = tf.constant([data[k].tobytes() for k in keys])
                pngs = bytes_fn(**{sm.BYTES_INPUT: batch}, **extra)[sm.BYTES_OUTPUT].numpy()
                for key, png in zip(keys, pngs):
                    results[prefix + "png_" + key[8:]] = np.frombuffer(png, dtype=np.uint8)
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
