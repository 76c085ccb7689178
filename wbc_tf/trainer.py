"""The training run: pre-training, then adversarial training, resumable at any step (docs/fidelity.md §8).

Phase 1 (``pretrain.py``) fits the generator alone with pixel L1 for ``pretrain_steps``; phase 2
(``train.py``) trains the `WhiteBoxGAN` for ``train_steps``, its generator initialised from phase
1 (or from ``init_weights``, e.g. the released model, in which case phase 1 is skipped). As in the
original, the discriminators and the Adam states of phase 2 start fresh. Each phase is one row of
`PHASES` (`PhaseSpec`: name, model, checkpointed state, length, data, weight file, sample output).

Run folder (``output_dir``)::

    config.json                    resolved TrainConfig + run options, written before training
    .lock                          locked while a process trains in the folder (`wbc_tf.run_folder`)
    checkpoints/                   pretrain-<step>.*, train-<step>.* + 'checkpoint' index (resume)
    logs/pretrain, logs/train      TensorBoard: the original's scalars every step, sample grids
    samples/<phase>_<step>.jpg     photo | output grids, face rows then scenery rows
    pretrain_generator.{weights.h5,npz}   phase-1 generator (every save_every steps and at the end)
    generator.{weights.h5,npz}     phase-2 generator: ``wbc-cartoonize --weights .../generator.weights.h5``
    previous-<time>/               what ``--no-resume`` set aside (never deleted)

Why a hand-written loop and not ``fit``: the run is two phases with one step counter each, the
data stream is indexed by that step (`wbc_tf.data`), and the checkpoint must hold the step, the
phase, both models' states and every optimiser; ``fit`` only checkpoints at epoch or
``save_freq`` boundaries through ``BackupAndRestore``, which knows nothing of phases. The loop
calls the models' own ``train_step`` inside one `tf.function`, through ``strategy.run`` so that the
default and the mirrored strategy share one code path; with ``jit_compile`` (TF superpixels only)
each replica's step is XLA-compiled. The Keras trackers are reset before each step, so the
logged values are per-step values like the original's ``add_summary`` every iteration. After
each step the callbacks run (`wbc_tf.callbacks`: TensorBoard, the non-finite check, the caller's,
the sample grids), then, every ``save_every`` steps, the checkpoint and the weight files.

Resume: every ``save_every`` steps a `tf.train.Checkpoint` of the phase's state is saved
(`wbc_tf.checkpoints`, ``max_to_keep=keep_checkpoints``):

* phase 1: generator, pre-training Adam (slots and ``iterations``), step, phase;
* phase 2: generator, both discriminators (``u`` vectors included: non-trainable weights of the
  models), both Adams, the colour-shift `SeedGenerator` state, step, phase.

The data position needs no state: batch ``t`` is a pure function of (seed, phase, t). A resume
continues the newest phase from its newest readable checkpoint, never an earlier phase's
(`wbc_tf.checkpoints.restore_newest`), and only with a configuration that fits the run folder's
``config.json`` (`wbc_tf.run_folder.check_resume`).

Never losing a run:

* everything that can be checked is checked before the run folder is touched: the flags, the data,
  the VGG weights (keys and shapes), ``--init-weights`` and the strategy (`Trainer.prepare`), then
  the lock, ``config.json`` and the checkpoint to resume (`Trainer.run`); a refused run changes no
  file of the folder;
* a NaN or infinite loss stops the run at that step, before anything of the step is written, and
  every checkpointed variable (weights and optimiser slots) is checked finite before each save;
* a training image that can no longer be read (deleted file or folder) stops the run at once with
  `RunStopped` naming it;
* SIGTERM or SIGINT: the current step ends, a checkpoint is saved and `Interrupted` is raised
  (a second signal stops at once); a full disk raises `wbc_tf.checkpoints.DiskFullError`;
* the temporary files of a killed run are removed when the next one starts.

Example::

    from wbc_tf.config import RunOptions, TrainConfig
    from wbc_tf.trainer import Trainer
    Trainer(TrainConfig(), RunOptions(data="dataset", output_dir="runs/exp1")).run()
"""

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import threading
import typing

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

import wbc_tf
from wbc_tf import callbacks as wbc_callbacks
from wbc_tf import checkpoints
from wbc_tf import data as wbc_data
from wbc_tf import distribute, run_folder
from wbc_tf.checkpoints import CheckpointError, DiskFullError, NonFiniteError, RunStopped  # noqa: F401
from wbc_tf.config import RANDOM_VGG
from wbc_tf.gan import GeneratorPretrainer, build_training_generator, build_white_box_gan
from wbc_tf.weights import BUNDLED, load_generator_weights

log = logging.getLogger(__name__)

PRETRAIN, TRAIN = 0, 1                       # values of the checkpointed `phase` variable


class Interrupted(RunStopped):
    """SIGTERM or SIGINT stopped the run (after saving a checkpoint, unless it was a second signal).

    Attributes:
        signum: the signal; a command exits with ``128 + signum`` (143, 130).
    """

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum


# --- the phases -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PhaseSpec:
    """One training phase: what it trains, for how long, on which data, and what it writes."""

    index: int                   # the checkpointed `phase` value
    name: str                    # checkpoints/<name>-<step>, logs/<name>, samples/<name>_<step>.jpg
    build: typing.Callable       # trainer -> the compiled model whose train_step the phase runs
    state: typing.Callable       # model -> {key: trackable} checkpointed besides step and phase
    steps: str                   # the TrainConfig field holding the phase's length
    dataset: typing.Callable     # (data, config, start_step) -> the step-indexed tf.data.Dataset
    stem: str                    # the exported generator: <stem>.weights.h5 and <stem>.npz
    sample: typing.Callable      # (model, photo) -> what the sample grids show


def _pretrain_state(pre):
    return {"generator": pre.generator, "optimizer": pre.optimizer}


def _train_state(gan):
    return {"generator": gan.generator, "surface_discriminator": gan.surface_discriminator,
            "texture_discriminator": gan.texture_discriminator, "g_optimizer": gan.g_optimizer,
            "d_optimizer": gan.d_optimizer, "color_shift_seed": gan.color_shift_seed.state}


# The datasets are looked up when called (lambdas), so a test can stand in for them.
PHASES = (
    PhaseSpec(PRETRAIN, "pretrain", build=lambda trainer: trainer._build_pretrainer(), state=_pretrain_state,
              steps="pretrain_steps",
              dataset=lambda data, config, start: wbc_data.make_pretrain_dataset(data, config, start),
              stem="pretrain_generator",
              sample=lambda pre, photo: pre(photo, training=False)),        # raw G output, as pretrain.py
    PhaseSpec(TRAIN, "train", build=lambda trainer: trainer._build_gan(), state=_train_state,
              steps="train_steps",
              dataset=lambda data, config, start: wbc_data.make_train_dataset(data, config, start),
              stem="generator",
              sample=lambda gan, photo: gan.generate(photo, training=False)),  # GF(photo, G(photo)): train.py
)
PHASE_NAMES = tuple(spec.name for spec in PHASES)


# --- set-up helpers ---------------------------------------------------------------------------------

def describe_vgg(spec):
    """One line on where the VGG weights would come from, without loading or downloading them."""
    from wbc_tf.vgg import KERAS_NOTOP_FILE, keras_cache_dir
    if spec == RANDOM_VGG:
        return "VGG19: random weights (tests only; losses are meaningless)"
    if spec == "imagenet":
        cache = os.path.join(keras_cache_dir(), KERAS_NOTOP_FILE)
        found = os.path.isfile(cache)
        where = f"cached at {cache}" if found else f"not cached: would download {KERAS_NOTOP_FILE}"
        return f"VGG19: ImageNet weights, {where}"
    return f"VGG19: {spec} ({'found' if os.path.isfile(spec) else 'MISSING'})"


def resolve_vgg_weights(spec):
    """Load and check the VGG19 weights now (phase 2 needs them; failing after pre-training would waste it).

    Returns:
        ``{conv{b}_{i}: [kernel, bias]}``, or None for ``'random'``.

    Raises:
        wbc_tf.weights.WeightConversionError: with instructions (offline: ``--vgg-weights PATH``), or
            naming each missing or mis-shaped layer of conv1_1 … conv4_4.
    """
    from wbc_tf.vgg import check_vgg_weights, vgg_weights_dict
    if spec == RANDOM_VGG:
        log.warning("VGG19 has random weights: the content/structure losses are meaningless (tests only)")
        return None
    tensors = vgg_weights_dict(spec)
    check_vgg_weights(tensors)
    return tensors


def _op_error_text(error):
    """The useful part of a tf.data error message (the file and what is wrong with it)."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{function_node[^}]*\}\}\s*", "", text)
    text = re.sub(r"Error in user-defined function passed to \S+ transformation with iterator: \S+: ",
                  "", text)
    return (text.strip().splitlines() or [""])[0][:300]


@contextlib.contextmanager
def _stop_on_signals(trainer):
    """SIGTERM / SIGINT within the block set ``trainer._stop_signal`` (the loop saves, then raises
    `Interrupted`); a second one raises `Interrupted` at once. Main thread only (Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if trainer._stop_signal is not None:
            last = trainer.last_checkpoint or "none"
            raise Interrupted(signum, f"stopped at once by a second {name}; run the same command again to "
                                      f"resume from the last checkpoint ({last})")
        trainer._stop_signal = signum
        log.warning("%s: finishing the current step, then saving a checkpoint and stopping "
                    "(send it again to stop at once)", name)

    trainer._stop_signal = None
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for s in previous:
            signal.signal(s, handler)
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


class Trainer:
    """One run folder: builds what each phase needs, restores, trains, checkpoints, exports.

    Args:
        config: `wbc_tf.config.TrainConfig`.
        options: `RunOptions`.
        data: an already scanned `wbc_tf.data.TrainingData` (default: scan ``options.data``).
        callbacks: callables ``callback(trainer, phase, step, values)`` run after every training
            step, before that step's checkpoint, weights or samples are written (so a callback
            that raises leaves the run folder as it was after the previous step); ``values`` are
            the step's logged scalars. Monitoring hooks, and the tests' crash injection
            (`wbc_tf.callbacks`).
    """

    def __init__(self, config, options, data=None, callbacks=()):
        self.config = config
        self.options = options
        self.callbacks = list(callbacks)
        self.run_dir = options.output_dir
        self.ckpt_dir = os.path.join(self.run_dir, checkpoints.CHECKPOINTS)
        self.data = data
        self.strategy = None
        self.generator = None
        self.pretrainer = None
        self.gan = None
        self._vgg = None
        # Where this process writes run-folder files: run_dir, or a worker's temporary folder (run()).
        self.out_dir = self.run_dir
        # The step and phase tf.Variables, made by prepare() after the strategy (TensorFlow needs a
        # multi-worker strategy before its first op in the process).
        self.step = self.phase = None
        self.last_checkpoint = None      # name of the newest checkpoint restored or saved
        self._stop_signal = None         # set by SIGTERM / SIGINT during run()

    # --- set-up ------------------------------------------------------------------------------

    @property
    def skips_pretraining(self):
        o = self.options
        return o.phase == "train" or o.init_weights is not None or self.config.pretrain_steps <= 0

    @property
    def runs_adversarial(self):
        return self.options.phase in ("all", "train")

    @staticmethod
    def phase_name(phase):
        """``'pretrain'`` or ``'train'``."""
        return PHASES[phase].name

    def prepare(self):
        """Check everything that can fail early: data, VGG weights, init weights, strategy, batch split.

        Writes nothing.
        """
        c = self.config
        o = self.options
        if os.path.exists(self.run_dir) and not os.path.isdir(self.run_dir):
            raise run_folder.RunFolderError(f"--output-dir {self.run_dir} exists and is not a folder")
        has_checkpoints = o.resume and bool(checkpoints.checkpoint_candidates(self.ckpt_dir))
        if o.phase == "train" and o.init_weights is None and not has_checkpoints:
            raise CheckpointError(
                "--phase train needs a pre-trained generator: a run folder (--output-dir) with "
                "pre-training checkpoints, or --init-weights [PATH] (no PATH: the released weights)")
        self.strategy = distribute.make_strategy(o.strategy)   # first: before any TF op (multiworker)
        log.info("%s", distribute.describe(self.strategy))
        # Plain (not mirrored) counters, only ever changed from Python between steps.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.phase = tf.Variable(PRETRAIN, dtype=tf.int64, trainable=False, name="phase")
        if self.data is None:
            self.data = wbc_data.scan_training_data(o.data, c, need_cartoons=self.runs_adversarial,
                                                    cache_mb=o.data_cache_mb)
        replicas = self.strategy.num_replicas_in_sync
        if c.batch_size % replicas:
            raise ValueError(f"batch_size {c.batch_size} is the global batch; it must be divisible by "
                             f"the {replicas} replicas of the {o.strategy} strategy")
        if self.runs_adversarial:
            self._vgg = resolve_vgg_weights(o.vgg_weights)
            if o.init_weights is not None:
                # Into a throw-away generator: a missing file or another network size fails now.
                load_generator_weights(build_training_generator(c), o.init_weights)
        return self

    def _build_generator(self):
        if self.generator is None:
            with self.strategy.scope():
                self.generator = build_training_generator(self.config)   # at config.precision
        return self.generator

    def _build_pretrainer(self):
        if self.pretrainer is None:
            with self.strategy.scope():
                self.pretrainer = GeneratorPretrainer(self._build_generator(), self.config)
                self.pretrainer.compile()
        return self.pretrainer

    def _build_gan(self):
        if self.gan is None:
            if self.options.vgg_weights != RANDOM_VGG and self._vgg is None:  # a --phase pretrain resume
                self._vgg = resolve_vgg_weights(self.options.vgg_weights)
            with self.strategy.scope():
                self.gan = build_white_box_gan(self.config, vgg_weights=self._vgg,
                                               generator=self._build_generator())
                self.gan.compile()
        return self.gan

    def checkpoint(self, phase):
        """The `tf.train.Checkpoint` of one phase (objects built on demand)."""
        spec = PHASES[phase]
        return tf.train.Checkpoint(**spec.state(spec.build(self)), step=self.step, phase=self.phase)

    def sample_output(self, phase, photo):
        """What the sample grid of ``phase`` shows for ``photo`` (B, P, P, 3) BGR [-1, 1]."""
        spec = PHASES[phase]
        return spec.sample(spec.build(self), photo)

    def _state(self, phase):
        spec = PHASES[phase]
        return spec.state(spec.build(self))

    def _state_variables(self, phase):
        """The variables the phase checkpoints: models (``u`` vectors included) and optimisers (slots)."""
        out = []
        for obj in self._state(phase).values():
            if isinstance(obj, keras.Model):
                out += obj.weights
            elif isinstance(obj, keras.optimizers.Optimizer):
                out += obj.variables
        return out

    def _apply_learning_rate(self, phase):
        """After a restore: the configured learning rate (a resume may lower it) for every optimiser."""
        for obj in self._state(phase).values():
            if isinstance(obj, keras.optimizers.Optimizer):
                current = float(keras.ops.convert_to_numpy(obj.learning_rate))
                if current != np.float32(self.config.learning_rate):
                    obj.learning_rate = self.config.learning_rate

    # --- run folder -----------------------------------------------------------------------------

    def run_record(self):
        """What config.json holds: the resolved config, the run options and the versions."""
        return {"config": dataclasses.asdict(self.config),
                "run": dataclasses.asdict(self.options),
                "versions": {"wbc_tf": wbc_tf.__version__, "tensorflow": tf.__version__,
                             "keras": keras.__version__}}

    def _start_run_folder(self, lock):
        """Lock out_dir, remove a killed run's leftovers, set a run aside (--no-resume), write config.json."""
        os.makedirs(self.out_dir, exist_ok=True)
        lock.acquire()
        lock.record_owner()
        removed = checkpoints.clean_leftovers(self.out_dir)
        if removed:
            log.info("removed %d temporary file(s) an interrupted run left: %s", len(removed),
                     ", ".join(os.path.relpath(p, self.out_dir) for p in removed[:5]))
        if not self.options.resume:
            moved = run_folder.set_aside(self.out_dir)
            if moved:
                log.warning("--no-resume: the previous run's files moved into %s", moved)
        for sub in (checkpoints.CHECKPOINTS, "logs", "samples"):
            os.makedirs(os.path.join(self.out_dir, sub), exist_ok=True)
        checkpoints.atomic_write_text(os.path.join(self.out_dir, run_folder.CONFIG_FILE),
                                      json.dumps(self.run_record(), indent=2, sort_keys=False) + "\n")

    # --- restore ----------------------------------------------------------------------------------

    def restore_latest(self):
        """Restore the newest readable checkpoint of the newest phase, after checking config.json.

        Returns:
            ``(phase, step)`` restored, or None if the folder has no checkpoint.

        Raises:
            wbc_tf.run_folder.ConfigMismatch: the configuration does not fit the run folder.
            CheckpointError: no checkpoint of the newest phase can be restored (each failure listed).
        """
        if not checkpoints.checkpoint_candidates(self.ckpt_dir):
            return None
        run_folder.check_resume(self.run_dir, self.run_record())
        phase, prefix = checkpoints.restore_newest(self.ckpt_dir, PHASE_NAMES, self.checkpoint)
        self.phase.assign(phase)
        self.last_checkpoint = os.path.basename(prefix)
        self._apply_learning_rate(phase)
        log.info("resumed from %s (%s step %d)", prefix, PHASE_NAMES[phase], int(self.step))
        return phase, int(self.step)

    def _resume_point(self):
        """For --dry-run: what a resume would do, in words. Reads only."""
        try:
            found = checkpoints.resume_candidates(self.ckpt_dir, PHASE_NAMES)
            if found is None:
                return "fresh start"
            run_folder.check_resume(self.run_dir, self.run_record())
        except (CheckpointError, run_folder.RunFolderError) as e:
            return f"cannot resume: {e}"
        phase, prefixes = found
        for prefix in prefixes:
            try:
                checkpoints.verify_readable(prefix, phase)
            except Exception:  # unreadable: the run would skip it too
                continue
            return f"would resume from {prefix}, {PHASE_NAMES[phase]} phase"
        return f"cannot resume: no {PHASE_NAMES[phase]} checkpoint can be read"

    def describe(self):
        """The ``--dry-run`` report: config, data, VGG source, resume point and plan. Writes nothing."""
        c, o = self.config, self.options
        if self.data is None:
            self.data = wbc_data.scan_training_data(o.data, c, need_cartoons=self.runs_adversarial,
                                                    cache_mb=o.data_cache_mb)
        lines = ["resolved configuration:", json.dumps(self.run_record(), indent=2), "",
                 self.data.summary(c.patch_size)]
        if self.runs_adversarial:
            lines.append(describe_vgg(o.vgg_weights))
        lines.append(f"run folder: {self.run_dir} ({self._resume_point() if o.resume else 'fresh start'})")
        plan = []
        if o.phase in ("all", "pretrain") and not self.skips_pretraining:
            plan.append(f"pre-train {c.pretrain_steps} steps (pixel L1)")
        if self.runs_adversarial:
            start = ("--init-weights " + o.init_weights) if o.init_weights else (
                "the pre-trained generator" if not self.skips_pretraining else "the run folder's generator")
            plan.append(f"adversarial training {c.train_steps} steps from {start}")
        lines.append("plan: " + ", then ".join(plan)
                     + f"; checkpoint + export every {c.save_every} steps, samples every {c.sample_every}")
        return "\n".join(lines)

    # --- the loop -----------------------------------------------------------------------------------

    def _distributed_step(self, model):
        strategy = self.strategy
        # XLA compiles the per-replica step, as Keras' fit does (TrainConfig refuses jit_compile with
        # the scikit-image superpixels: a tf.numpy_function has no XLA kernel)
        replica_step = (tf.function(model.train_step, jit_compile=True) if self.config.jit_compile
                        else model.train_step)

        @tf.function(jit_compile=False)
        def step(batch):
            per_replica = strategy.run(replica_step, args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in per_replica.items()}
        return step

    def nothing_written(self, step):
        """The sentence every early stop ends with: what the run folder holds now."""
        return (f"nothing of step {step} was written; the last checkpoint is "
                f"{self.last_checkpoint or 'none'}")

    def data_problem(self, error, phase, step):
        """`RunStopped` for training images that cannot be read before ``step`` (`wbc_data.DataError`
        from `wbc_data.checked`, or a TensorFlow error of an eager read)."""
        text = (str(error) if isinstance(error, wbc_data.DataError)
                else f"a training image cannot be read ({_op_error_text(error)})")
        folders = [self.data.root] + [f.path for pair in self.data.domains.values() for f in pair if f]
        gone = [f for f in folders if not os.path.isdir(f)]
        return RunStopped(f"{PHASE_NAMES[phase]} step {step}: {text}"
                          + (f" (no longer a folder: {', '.join(gone)})" if gone else "")
                          + f". {self.nothing_written(step)}: fix the dataset, then run the same command "
                            f"again to resume")

    def _next_batch(self, batches, phase, step):
        try:
            return next(batches)
        except wbc_data.DataError as e:
            raise self.data_problem(e, phase, step) from e

    def _save(self, phase, step, saver):
        """Checkpoint ``step`` and export the generator, once every weight and optimiser slot is finite
        (Adam's second moments overflow to inf a step before the weights turn NaN)."""
        try:
            checkpoints.check_finite(self._state_variables(phase), f"after {PHASE_NAMES[phase]} step {step}")
        except NonFiniteError as e:
            raise NonFiniteError(f"{e}; {self.nothing_written(step)}. Lower --learning-rate and run the "
                                 f"same command to resume from it, or start over with --no-resume") from None
        self.last_checkpoint = os.path.basename(saver.save(step))
        checkpoints.export_generator(self.generator, self.out_dir, PHASES[phase].stem)

    def _stop_if_signalled(self, phase, step, saver, saved):
        # every worker asks every other: a signal to one worker stops all of them at this step
        signum = distribute.max_everywhere(self.strategy, self._stop_signal or 0)
        if not signum:
            return
        elsewhere = "" if self._stop_signal else " (sent to another worker)"
        self._stop_signal = self._stop_signal or signum
        if not saved:
            self._save(phase, step, saver)
        name = signal.Signals(signum).name
        saved = (f"checkpoint {self.last_checkpoint} is saved" if self.last_checkpoint
                 else "no checkpoint was written yet")
        raise Interrupted(signum, f"stopped by {name}{elsewhere} after {PHASE_NAMES[phase]} step {step}; "
                                  f"{saved}: run the same command again to resume")

    def _callbacks(self):
        tensorboard = wbc_callbacks.TensorBoard()
        return [tensorboard, wbc_callbacks.StopOnNonFinite(), *self.callbacks,
                wbc_callbacks.SampleWriter(tensorboard)]

    def _run_phase(self, phase, start):
        """Train phase ``phase`` from step ``start`` to its end; log, sample, checkpoint, export."""
        spec, c = PHASES[phase], self.config
        total = getattr(c, spec.steps)
        model = spec.build(self)
        optimizer = model.g_optimizer                 # both models name their G optimiser so
        saver = checkpoints.PhaseSaver(self.checkpoint(phase), self.out_dir, spec.name, c.keep_checkpoints)
        self.phase.assign(phase)
        self.step.assign(start)
        if start >= total:
            log.info("%s already complete (%d/%d steps)", spec.name, start, total)
            checkpoints.export_generator(self.generator, self.out_dir, spec.stem)
            return
        self._stop_if_signalled(phase, start, saver, saved=True)     # a signal during the set-up
        dataset = distribute.distribute_batches(self.strategy, lambda: spec.dataset(self.data, c, start))
        step_fn = self._distributed_step(model)
        callbacks = self._callbacks()
        bar = tqdm(total=total, initial=start, desc=spec.name, unit="step",
                   dynamic_ncols=True, disable=not self.options.progress)
        begun = []
        try:
            for callback in callbacks:
                getattr(callback, "begin_phase", lambda *a: None)(self, phase, start, total)
                begun.append(callback)
            batches = wbc_data.checked(dataset, start_step=start)   # a failed read: DataError, at once
            for t in range(start, total):
                done = t + 1
                batch = self._next_batch(batches, phase, done)
                model.reset_metrics()                      # per-step values, not running means
                values = {k: float(v) for k, v in step_fn(batch).items()}
                self.step.assign(done)
                # convert_to_numpy also reads a MirroredVariable (float() does not)
                values["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                bar.set_postfix({k: f"{values[k]:.4g}" for k in ("g_loss_total", "d_loss_total", "recon_loss")
                                 if k in values}, refresh=False)
                bar.update(1)
                for callback in callbacks:
                    callback(self, phase, done, values)
                saved = done % c.save_every == 0 or done == total
                if saved:
                    self._save(phase, done, saver)
                self._stop_if_signalled(phase, done, saver, saved)
        finally:
            bar.close()
            for callback in reversed(begun):
                getattr(callback, "end_phase", lambda *a: None)(self, phase)

    def _enter_adversarial(self, restored_phase, restored_step):
        """Initialise phase 2's generator (phase 1 result or init_weights) and checkpoint it as step 0."""
        o = self.options
        self._build_generator()
        if o.init_weights is not None:
            load_generator_weights(self.generator, o.init_weights)
            log.info("adversarial training starts from %s",
                     "the released weights" if o.init_weights == BUNDLED else o.init_weights)
        elif restored_phase == PRETRAIN:
            if restored_step < self.config.pretrain_steps:
                log.warning("pre-training stopped at step %d of %d; adversarial training starts from it",
                            restored_step, self.config.pretrain_steps)
        elif o.phase == "train":
            raise CheckpointError(
                "--phase train needs a pre-trained generator: a run folder with pre-training checkpoints, "
                "or --init-weights [PATH] (no PATH: the released weights)")
        else:
            log.warning("pretrain_steps=0 and no --init-weights: "
                        "adversarial training starts from a random generator")
        self._build_gan()
        self.phase.assign(TRAIN)
        self.step.assign(0)
        checkpoints.check_finite(self.generator.weights, "in the generator adversarial training starts from")
        saver = checkpoints.PhaseSaver(self.checkpoint(TRAIN), self.out_dir, PHASE_NAMES[TRAIN],
                                       self.config.keep_checkpoints)
        self.last_checkpoint = os.path.basename(saver.save(0))

    def run(self):
        """Run (or resume) the phases the options ask for. Returns ``(phase, step)`` at the end.

        Every worker reads the run folder; the chief writes into it, the others into their own
        temporary folder (`wbc_tf.distribute.write_dir`), removed at the end.

        Raises:
            wbc_tf.run_folder.RunFolderError: the folder is in use, or does not fit the configuration.
            CheckpointError: no checkpoint of the newest phase can be restored.
            RunStopped: the run stopped early (`Interrupted`, NaN, full disk, unreadable data);
                the folder holds its last complete checkpoint.
        """
        if self.strategy is None:
            self.prepare()
        try:
            with _stop_on_signals(self), distribute.write_dir(self.run_dir, self.strategy) as self.out_dir:
                return self._run_phases()
        except (OSError, tf.errors.OpError) as e:
            if checkpoints.is_disk_full(e):   # a write without its own path (TensorBoard, samples)
                raise DiskFullError(f"no space left on the device ({_op_error_text(e)}): free some space, "
                                    f"then run the same command again to resume") from e
            raise
        finally:
            self.out_dir = self.run_dir

    def _run_phases(self):
        keras.utils.set_random_seed(self.config.seed)         # before any model is built
        with run_folder.RunLock(self.out_dir) as lock:
            lock.acquire(create=False)                        # refuse now if another process holds it
            restored = self.restore_latest() if self.options.resume else None
            # A barrier, too: no worker writes (train-0, say) before every worker has restored.
            distribute.check_same_everywhere(self.strategy, "resume point (phase, step)",
                                             restored or (-1, -1))
            self._start_run_folder(lock)                      # after it: a failed resume writes nothing
            return self._train(restored)

    def _train(self, restored):
        phase, step = restored if restored else (None, 0)
        if self.options.init_weights is not None and phase == TRAIN:
            log.warning("resuming adversarial training; --init-weights is ignored")

        if phase in (None, PRETRAIN):
            if not self.skips_pretraining:
                self._run_phase(PRETRAIN, step)
                phase, step = PRETRAIN, self.config.pretrain_steps
            if not self.runs_adversarial:
                return PRETRAIN, int(self.step)
            self._enter_adversarial(phase, step)
            step = 0
        elif not self.runs_adversarial:
            log.info("this run folder is already in adversarial training; nothing to pre-train")
            return TRAIN, int(self.step)
        self._run_phase(TRAIN, step)
        return TRAIN, int(self.step)
