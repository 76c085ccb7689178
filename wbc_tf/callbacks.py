"""The trainer's per-step callbacks: TensorBoard scalars, sample grids, the non-finite check.

A callback is any callable ``callback(trainer, phase, step, values)``, run after every training
step (``step`` counts from 1, like the checkpoint names), before that step's checkpoint and weight
files are written, so a callback that raises leaves the run folder as it was after the previous
checkpoint. ``values`` are the step's logged scalars (plus ``learning_rate``). A `StepCallback`
may also define ``begin_phase(trainer, phase, start, total)`` and ``end_phase(trainer, phase)``.

`wbc_tf.trainer.Trainer` runs, in order: `TensorBoard` (so a diverging loss still shows),
`StopOnNonFinite`, the callbacks given to it, then `SampleWriter`. Every file goes into
``trainer.out_dir`` (`wbc_tf.distribute.write_dir`).

Example::

    def print_loss(trainer, phase, step, values):
        print(step, values.get("g_loss_total"))
    Trainer(config, options, callbacks=[print_loss]).run()
"""

import importlib.util
import logging
import math
import os

import numpy as np
import tensorflow as tf

from wbc_tf import data as wbc_data
from wbc_tf.checkpoints import NonFiniteError
from wbc_tf.image_io import write_image

log = logging.getLogger(__name__)

SAMPLES_PER_DOMAIN = 4                       # images per domain in a sample grid


class StepCallback:
    """Base class of the built-in callbacks: every hook does nothing."""

    def begin_phase(self, trainer, phase, start, total):
        pass

    def __call__(self, trainer, phase, step, values):
        pass

    def end_phase(self, trainer, phase):
        pass


class StopOnNonFinite(StepCallback):
    """Raise `NonFiniteError` naming the step and the term as soon as a logged value is NaN or inf."""

    def __call__(self, trainer, phase, step, values):
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            terms = ", ".join(f"{k} = {values[k]}" for k in bad)
            raise NonFiniteError(
                f"the run diverged at {trainer.phase_name(phase)} step {step}: {terms}; "
                f"{trainer.nothing_written(step)}. Lower --learning-rate and run the same command to "
                f"resume from it, or start over with --no-resume")


class TensorBoard(StepCallback):
    """``logs/<phase>``: every scalar of every step (TensorBoard step = 0-based iteration, like the
    original's ``add_summary``) and the sample grids. Without tensorboard: a no-op, announced once."""

    _warned = False

    def __init__(self):
        self.writer = None

    @staticmethod
    def available():
        return importlib.util.find_spec("tensorboard") is not None

    def begin_phase(self, trainer, phase, start, total):
        if not self.available():
            if not TensorBoard._warned:
                log.warning("tensorboard is not installed: training continues without TensorBoard logs "
                            "(pip install 'wbc_tf[train]' or pip install tensorboard)")
                TensorBoard._warned = True
            return
        self.writer = tf.summary.create_file_writer(
            os.path.join(trainer.out_dir, "logs", trainer.phase_name(phase)))

    def __call__(self, trainer, phase, step, values):
        if self.writer is not None:
            with self.writer.as_default(step=step - 1):
                for name, value in values.items():
                    tf.summary.scalar(name, value)

    def image(self, name, bgr, step):
        """Log one uint8 BGR image at ``step``."""
        if self.writer is not None:
            with self.writer.as_default(step=step):
                tf.summary.image(name, bgr[None, ..., ::-1], max_outputs=1)   # (1, H, W, 3) RGB

    def end_phase(self, trainer, phase):
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def sample_grid(photos, outputs):
    """uint8 BGR grid: for each domain a row of photos above a row of outputs.

    Args:
        photos, outputs: ``{domain: (N, P, P, 3)}`` float BGR [-1, 1] (outputs are clipped,
            unlike the original's wrapping uint8 cast, docs/fidelity.md §11.18).
    """
    rows = []
    for domain in photos:
        for images in (photos[domain], outputs[domain]):
            # nan_to_num: a diverged step's outputs show grey, not an invalid cast (the run stops after it)
            x = np.clip((np.nan_to_num(np.asarray(images)) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
            rows.append(np.concatenate(list(x), axis=1))               # (P, N·P, 3)
    return np.concatenate(rows, axis=0)                                 # (2·domains·P, N·P, 3)


class SampleWriter(StepCallback):
    """``samples/<phase>_<step>.jpg`` every ``sample_every`` steps and at the end of a phase: the same
    photos for the whole run, through the phase's own output (`wbc_tf.trainer.PhaseSpec.sample`).

    Args:
        tensorboard: a `TensorBoard` callback that also gets the grid, or None.
    """

    def __init__(self, tensorboard=None):
        self.tensorboard = tensorboard
        self.photos = None
        self.total = None

    def begin_phase(self, trainer, phase, start, total):
        self.total = total
        if self.photos is None:
            try:
                self.photos = {k: v.numpy() for k, v in wbc_data.sample_photos(
                    trainer.data, trainer.config, SAMPLES_PER_DOMAIN).items()}
            except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:  # the data went away
                raise trainer.data_problem(e, phase, start + 1) from e

    def __call__(self, trainer, phase, step, values):
        if step % trainer.config.sample_every and step != self.total:
            return
        outputs = {domain: trainer.sample_output(phase, photo).numpy()
                   for domain, photo in self.photos.items()}
        grid = sample_grid(self.photos, outputs)
        name = f"{trainer.phase_name(phase)}_{step:06d}.jpg"
        write_image(os.path.join(trainer.out_dir, "samples", name), grid)
        if self.tensorboard is not None:
            self.tensorboard.image("samples", grid, step)
