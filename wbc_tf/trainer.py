"""The training run: pre-training, then adversarial training, resumable at any step (spec §8).

Phase 1 (``pretrain.py``) fits the generator alone with pixel L1 for ``pretrain_steps``; phase 2
(``train.py``) trains the `WhiteBoxGAN` for ``train_steps``, its generator initialised from phase
1 (or from ``init_weights``, e.g. the released model, in which case phase 1 is skipped). As in the
original, the discriminators and the Adam states of phase 2 start fresh.

Run folder (``output_dir``)::

    config.json                    resolved TrainConfig + run options, written before training
    checkpoints/                   pretrain-<step>.*, train-<step>.* + 'checkpoint' index (resume)
    logs/pretrain, logs/train      TensorBoard: the original's scalars every step, sample grids
    samples/<phase>_<step>.jpg     photo | output grids, face rows then scenery rows
    pretrain_generator.{weights.h5,npz}   phase-1 generator (every save_every steps and at the end)
    generator.{weights.h5,npz}     phase-2 generator: ``wbc-cartoonize --weights .../generator.weights.h5``

Why a hand-written loop and not ``fit``: the run is two phases with one step counter each, the
data stream is indexed by that step (`wbc_tf.data`), and the checkpoint must hold the step, the
phase, both models' states and every optimiser; ``fit`` only checkpoints at epoch or
``save_freq`` boundaries through ``BackupAndRestore``, which knows nothing of phases. The loop
calls the models' own ``train_step`` inside one `tf.function` (``jit_compile=False``: the
superpixel target is a ``tf.numpy_function``), through ``strategy.run`` so that the default and
the mirrored strategy share one code path. The Keras trackers are reset before each step, so the
logged values are per-step values like the original's ``add_summary`` every iteration.

Resume: every ``save_every`` steps a `tf.train.Checkpoint` of the phase's state is written by a
`tf.train.CheckpointManager` (``max_to_keep=keep_checkpoints``):

* phase 1: generator, pre-training Adam (slots and ``iterations``), step, phase;
* phase 2: generator, both discriminators (``u`` vectors included: non-trainable weights of the
  models), both Adams, the colour-shift `SeedGenerator` state, step, phase.

The data position needs no state: batch ``t`` is a pure function of (seed, phase, t).

Crash safety (verified with strace on TF 2.21): a save writes the shard and index into
``<prefix>_temp/`` (each via a temp file + rename), renames the data file to its final name,
writes the final ``.index`` **in place** (not atomic), removes the temp folder, and only then
replaces the ``checkpoint`` index file atomically (temp + rename), and only after that deletes
checkpoints beyond ``max_to_keep``. So a kill at any moment leaves the ``checkpoint`` index
pointing at complete checkpoints; what can be left behind is an orphan ``<prefix>_temp/`` or a
half-written newest ``.index`` that the index does not list. `restore_latest` trusts the index,
tries its checkpoints newest first, falls back to older ones when one cannot be read (e.g. a
truncated data file), with a warning, and raises `CheckpointError` listing every failure if
none can. Our own files (weights, config.json, samples) are written to a temp name and renamed.
Power loss (unflushed page cache) is not covered: nothing here calls fsync.

Example::

    from wbc_tf.config import RunOptions, TrainConfig
    from wbc_tf.trainer import Trainer
    Trainer(TrainConfig(), RunOptions(data="dataset", output_dir="runs/exp1")).run()
"""

import dataclasses
import glob
import importlib.util
import json
import logging
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

import wbc_tf
from wbc_tf import data as wbc_data
from wbc_tf.config import RANDOM_VGG
from wbc_tf.gan import GeneratorPretrainer, build_white_box_gan
from wbc_tf.generator import build_generator
from wbc_tf.image_io import write_image
from wbc_tf.weights import BUNDLED, load_generator_weights, save_generator_weights

log = logging.getLogger(__name__)

PRETRAIN, TRAIN = 0, 1                       # values of the checkpointed `phase` variable
PHASE_NAMES = ("pretrain", "train")
_PHASE_KEY = "phase/.ATTRIBUTES/VARIABLE_VALUE"
_SAMPLES_PER_DOMAIN = 4                       # images per domain in a sample grid


class CheckpointError(RuntimeError):
    """No checkpoint in the run folder can be restored."""


# --- small file helpers ---------------------------------------------------------------------------

def _atomic_write_text(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def export_generator(generator, run_dir, stem):
    """Write ``<stem>.weights.h5`` (Keras) and ``<stem>.npz`` (TF1 names), each atomically."""
    h5 = os.path.join(run_dir, f"{stem}.weights.h5")
    tmp_h5 = os.path.join(run_dir, f".{stem}.{os.getpid()}.tmp.weights.h5")  # must end in .weights.h5
    save_generator_weights(generator, tmp_h5)
    os.replace(tmp_h5, h5)
    npz = os.path.join(run_dir, f"{stem}.npz")
    tmp_npz = os.path.join(run_dir, f".{stem}.{os.getpid()}.tmp.npz")
    save_generator_weights(generator, tmp_npz)
    os.replace(tmp_npz, npz)
    return h5, npz


def sample_grid(photos, outputs):
    """uint8 BGR grid: for each domain a row of photos above a row of outputs.

    Args:
        photos, outputs: ``{domain: (N, P, P, 3)}`` float BGR [-1, 1] (outputs are clipped,
            unlike the original's wrapping uint8 cast, spec §11.18).
    """
    rows = []
    for domain in photos:
        for images in (photos[domain], outputs[domain]):
            x = np.clip((np.asarray(images) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
            rows.append(np.concatenate(list(x), axis=1))               # (P, N·P, 3)
    return np.concatenate(rows, axis=0)                                 # (2·domains·P, N·P, 3)


# --- checkpoints ----------------------------------------------------------------------------------

def checkpoint_candidates(ckpt_dir):
    """Checkpoint prefixes to try, newest first: those the ``checkpoint`` index lists, then orphans.

    Orphans (an ``.index`` the atomic index file does not list: an interrupted save, or a
    damaged index) come last, newest modification first.
    """
    listed = []
    state = tf.train.get_checkpoint_state(ckpt_dir)
    if state is not None:
        listed = list(reversed(state.all_model_checkpoint_paths))
        if state.model_checkpoint_path and state.model_checkpoint_path not in listed[:1]:
            listed.insert(0, state.model_checkpoint_path)
        listed = [p if os.path.isabs(p) else os.path.join(ckpt_dir, p) for p in listed]
    on_disk = [p[: -len(".index")] for p in glob.glob(os.path.join(ckpt_dir, "*.index"))]
    orphans = sorted((p for p in on_disk if p not in listed), key=lambda p: -os.path.getmtime(p + ".index"))
    seen, ordered = set(), []
    for p in listed + orphans:
        if p not in seen:
            seen.add(p)
            ordered.append(p)
    return ordered


def checkpoint_phase(prefix):
    """The ``phase`` stored in checkpoint ``prefix`` (reads the index and one scalar)."""
    return int(tf.train.load_checkpoint(prefix).get_tensor(_PHASE_KEY))


class _Logger:
    """TensorBoard writers for ``logs/<phase>``; a no-op, announced once, without tensorboard."""

    _warned = False

    def __init__(self, log_dir, phase_name):
        self.enabled = importlib.util.find_spec("tensorboard") is not None
        if not self.enabled:
            if not _Logger._warned:
                log.warning("tensorboard is not installed: training continues without TensorBoard logs "
                            "(pip install 'wbc_tf[train]' or pip install tensorboard)")
                _Logger._warned = True
            return
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, phase_name))

    def scalars(self, values, step):
        if self.enabled:
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, value)

    def image(self, name, bgr, step):
        if self.enabled:
            with self.writer.as_default(step=step):
                tf.summary.image(name, bgr[None, ..., ::-1], max_outputs=1)   # (1, H, W, 3) RGB

    def close(self):
        if self.enabled:
            self.writer.flush()
            self.writer.close()


def make_strategy(name):
    """``'default'`` → the default (single-device) strategy; ``'mirrored'`` → `MirroredStrategy`."""
    if name == "default":
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy()  # 'mirrored': RunOptions accepts only these two


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
    """Load the VGG19 weights now (phase 2 needs them; failing after pre-training would waste it).

    Returns:
        ``{conv{b}_{i}: [kernel, bias]}``, or None for ``'random'``.

    Raises:
        wbc_tf.weights.WeightConversionError: with instructions (offline: ``--vgg-weights PATH``).
    """
    from wbc_tf.vgg import vgg_weights_dict
    if spec == RANDOM_VGG:
        log.warning("VGG19 has random weights: the content/structure losses are meaningless (tests only)")
        return None
    return vgg_weights_dict(spec)


class Trainer:
    """One run folder: builds what each phase needs, restores, trains, checkpoints, exports.

    Args:
        config: `wbc_tf.config.TrainConfig`.
        options: `RunOptions`.
        data: an already scanned `wbc_tf.data.TrainingData` (default: scan ``options.data``).
        callbacks: callables ``callback(trainer, phase, step, values)`` run after every training
            step, before that step's checkpoint, weights or samples are written (so a callback
            that raises leaves the run folder as it was after the previous step); ``values`` are
            the step's logged scalars. Monitoring hooks, and the tests' crash injection.
    """

    def __init__(self, config, options, data=None, callbacks=()):
        self.config = config
        self.options = options
        self.callbacks = list(callbacks)
        self.run_dir = options.output_dir
        self.ckpt_dir = os.path.join(self.run_dir, "checkpoints")
        self.data = data
        self.strategy = None
        self.generator = None
        self.pretrainer = None
        self.gan = None
        self._vgg = None
        self._sample_photos = None
        # Plain (not mirrored) counters, only ever changed from Python between steps.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.phase = tf.Variable(PRETRAIN, dtype=tf.int64, trainable=False, name="phase")

    # --- set-up ------------------------------------------------------------------------------

    @property
    def skips_pretraining(self):
        o = self.options
        return o.phase == "train" or o.init_weights is not None or self.config.pretrain_steps <= 0

    @property
    def runs_adversarial(self):
        return self.options.phase in ("all", "train")

    def prepare(self):
        """Check everything that can fail early: data, VGG weights, strategy, batch split.

        Writes nothing.
        """
        c = self.config
        o = self.options
        has_checkpoints = (o.resume and os.path.isdir(self.ckpt_dir)
                           and bool(checkpoint_candidates(self.ckpt_dir)))
        if o.phase == "train" and o.init_weights is None and not has_checkpoints:
            raise CheckpointError(
                "--phase train needs a pre-trained generator: a run folder (--output-dir) with "
                "pre-training checkpoints, or --init-weights [PATH] (no PATH: the released weights)")
        if self.data is None:
            self.data = wbc_data.scan_training_data(o.data, c, need_cartoons=self.runs_adversarial)
        self.strategy = make_strategy(self.options.strategy)
        replicas = self.strategy.num_replicas_in_sync
        if c.batch_size % replicas:
            raise ValueError(f"batch_size {c.batch_size} is the global batch; it must be divisible by "
                             f"the {replicas} replicas of the {o.strategy} strategy")
        if self.runs_adversarial:
            self._vgg = resolve_vgg_weights(o.vgg_weights)
        return self

    def _build_generator(self):
        if self.generator is None:
            with self.strategy.scope():
                self.generator = build_generator(self.config.channels, self.config.num_blocks)
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
        if phase == PRETRAIN:
            pre = self._build_pretrainer()
            return tf.train.Checkpoint(generator=pre.generator, optimizer=pre.optimizer,
                                       step=self.step, phase=self.phase)
        gan = self._build_gan()
        return tf.train.Checkpoint(
            generator=gan.generator, surface_discriminator=gan.surface_discriminator,
            texture_discriminator=gan.texture_discriminator, g_optimizer=gan.g_optimizer,
            d_optimizer=gan.d_optimizer, color_shift_seed=gan.color_shift_seed.state,
            step=self.step, phase=self.phase)

    def _manager(self, phase):
        return tf.train.CheckpointManager(self.checkpoint(phase), self.ckpt_dir,
                                          max_to_keep=self.config.keep_checkpoints,
                                          checkpoint_name=PHASE_NAMES[phase])

    # --- run folder -----------------------------------------------------------------------------

    def run_record(self):
        """What config.json holds: the resolved config, the run options and the versions."""
        return {"config": dataclasses.asdict(self.config),
                "run": dataclasses.asdict(self.options),
                "versions": {"wbc_tf": wbc_tf.__version__, "tensorflow": tf.__version__,
                             "keras": keras.__version__}}

    def _start_run_folder(self):
        """Create the folders, set checkpoints aside for --no-resume, write config.json."""
        os.makedirs(self.run_dir, exist_ok=True)
        if not self.options.resume and os.path.isdir(self.ckpt_dir) and os.listdir(self.ckpt_dir):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for name in ("checkpoints", "logs"):
                src = os.path.join(self.run_dir, name)
                if os.path.isdir(src):
                    shutil.move(src, f"{src}.old-{stamp}")
            log.warning("--no-resume: previous checkpoints and logs moved to *.old-%s", stamp)
        for sub in ("checkpoints", "logs", "samples"):
            os.makedirs(os.path.join(self.run_dir, sub), exist_ok=True)
        path = os.path.join(self.run_dir, "config.json")
        record = self.run_record()
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    old = json.load(f).get("config", {})
            except (OSError, ValueError):
                old = {}
            changed = {k: (old[k], v) for k, v in record["config"].items() if k in old and old[k] != v}
            if changed:
                log.warning("config differs from the run folder's config.json: %s",
                            ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        _atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False) + "\n")

    # --- restore ----------------------------------------------------------------------------------

    def restore_latest(self):
        """Restore the newest readable checkpoint of the run folder.

        Returns:
            ``(phase, step)`` restored, or None if the folder has no checkpoint.

        Raises:
            CheckpointError: checkpoints exist but none can be restored (each failure listed).
        """
        candidates = checkpoint_candidates(self.ckpt_dir) if os.path.isdir(self.ckpt_dir) else []
        failures = []
        for prefix in candidates:
            try:
                phase = checkpoint_phase(prefix)
                ckpt = self.checkpoint(phase)
                ckpt.save_counter  # noqa: B018  create it, so that assert_consumed can match it
                ckpt.read(prefix).assert_consumed()
            except Exception as e:  # DataLoss / OutOfRange / NotFound / mismatched shapes: try older
                reason = str(e).splitlines()[0][:300] if str(e) else ""
                failures.append(f"{os.path.basename(prefix)}: {type(e).__name__}: {reason}")
                continue
            if failures:
                log.warning("restored %s after skipping unreadable checkpoint(s):\n  %s",
                            os.path.basename(prefix), "\n  ".join(failures))
            if phase == PRETRAIN and self.gan is not None:
                self.gan = None  # a failed newer phase-2 read may have written into it: rebuild fresh
            self.phase.assign(phase)
            log.info("resumed from %s (%s step %d)", prefix, PHASE_NAMES[phase], int(self.step))
            return phase, int(self.step)
        if failures:
            raise CheckpointError(
                f"no checkpoint in {self.ckpt_dir} can be restored (did the network size in the config "
                f"change? compare with config.json; or start over with --no-resume):\n  "
                + "\n  ".join(failures))
        return None

    def describe(self):
        """The ``--dry-run`` report: config, data, VGG source, resume point and plan. Writes nothing."""
        c, o = self.config, self.options
        if self.data is None:
            self.data = wbc_data.scan_training_data(o.data, c, need_cartoons=self.runs_adversarial)
        lines = ["resolved configuration:", json.dumps(self.run_record(), indent=2), "",
                 self.data.summary(c.patch_size)]
        if self.runs_adversarial:
            lines.append(describe_vgg(o.vgg_weights))
        resume_from = None
        if o.resume and os.path.isdir(self.ckpt_dir):
            for prefix in checkpoint_candidates(self.ckpt_dir):
                try:
                    resume_from = (prefix, PHASE_NAMES[checkpoint_phase(prefix)])
                    break
                except Exception:  # unreadable: the run would skip it too
                    continue
        lines.append(f"run folder: {self.run_dir} ("
                     + (f"would resume from {resume_from[0]}, {resume_from[1]} phase" if resume_from
                        else "fresh start") + ")")
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

        @tf.function(jit_compile=False)  # the superpixel tf.numpy_function has no XLA kernel
        def step(batch):
            per_replica = strategy.run(model.train_step, args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in per_replica.items()}
        return step

    def _samples(self, phase, step, logger):
        """Write ``samples/<phase>_<step>.jpg`` and the same grid to TensorBoard."""
        if self._sample_photos is None:
            self._sample_photos = {k: v.numpy() for k, v in wbc_data.sample_photos(
                self.data, self.config, _SAMPLES_PER_DOMAIN).items()}
        outputs = {}
        for domain, photo in self._sample_photos.items():
            if phase == PRETRAIN:
                out = self.pretrainer(photo, training=False)        # raw G output, as pretrain.py writes
            else:
                out = self.gan.generate(photo, training=False)      # GF(photo, G(photo)), as train.py writes
            outputs[domain] = out.numpy()
        grid = sample_grid(self._sample_photos, outputs)
        write_image(os.path.join(self.run_dir, "samples", f"{PHASE_NAMES[phase]}_{step:06d}.jpg"), grid)
        logger.image("samples", grid, step)

    def _run_phase(self, phase, start, total):
        """Train phase ``phase`` from step ``start`` to ``total``; checkpoint, log, sample, export."""
        c = self.config
        model = self.pretrainer if phase == PRETRAIN else self.gan
        optimizer = model.g_optimizer                 # both models name their G optimiser so
        manager = self._manager(phase)
        stem = "pretrain_generator" if phase == PRETRAIN else "generator"
        self.phase.assign(phase)
        self.step.assign(start)
        if start >= total:
            log.info("%s already complete (%d/%d steps)", PHASE_NAMES[phase], start, total)
            export_generator(self.generator, self.run_dir, stem)
            return
        make = wbc_data.make_pretrain_dataset if phase == PRETRAIN else wbc_data.make_train_dataset
        dataset = self.strategy.experimental_distribute_dataset(make(self.data, c, start_step=start))
        step_fn = self._distributed_step(model)
        logger = _Logger(os.path.join(self.run_dir, "logs"), PHASE_NAMES[phase])
        self._sample_photos = None
        bar = tqdm(total=total, initial=start, desc=PHASE_NAMES[phase], unit="step",
                   dynamic_ncols=True, disable=not self.options.progress)
        try:
            for t, batch in zip(range(start, total), dataset):
                model.reset_metrics()                      # per-step values, not running means
                values = {k: float(v) for k, v in step_fn(batch).items()}
                self.step.assign(t + 1)
                # convert_to_numpy also reads a MirroredVariable (float() does not)
                values["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                logger.scalars(values, t)                  # TB step = 0-based iteration, like add_summary
                bar.set_postfix({k: f"{values[k]:.4g}" for k in ("g_loss_total", "d_loss_total", "recon_loss")
                                 if k in values}, refresh=False)
                bar.update(1)
                done = t + 1
                for callback in self.callbacks:
                    callback(self, phase, done, values)
                if done % c.save_every == 0 or done == total:
                    manager.save(checkpoint_number=done)
                    export_generator(self.generator, self.run_dir, stem)
                if done % c.sample_every == 0 or done == total:
                    self._samples(phase, done, logger)
        finally:
            bar.close()
            logger.close()

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
        self._manager(TRAIN).save(checkpoint_number=0)

    def run(self):
        """Run (or resume) the phases the options ask for. Returns ``(phase, step)`` at the end."""
        if self.strategy is None:
            self.prepare()
        keras.utils.set_random_seed(self.config.seed)         # before any model is built
        restored = self.restore_latest() if self.options.resume else None
        self._start_run_folder()                              # after it: a failed resume writes nothing
        phase, step = restored if restored else (None, 0)
        if self.options.init_weights is not None and phase == TRAIN:
            log.warning("resuming adversarial training; --init-weights is ignored")

        if phase in (None, PRETRAIN):
            if not self.skips_pretraining:
                if phase is None:
                    self._build_pretrainer()
                self._run_phase(PRETRAIN, step, self.config.pretrain_steps)
                phase, step = PRETRAIN, self.config.pretrain_steps
            if not self.runs_adversarial:
                return PRETRAIN, int(self.step)
            self._enter_adversarial(phase, step)
            step = 0
        elif not self.runs_adversarial:
            log.info("this run folder is already in adversarial training; nothing to pre-train")
            return TRAIN, int(self.step)
        self._run_phase(TRAIN, step, self.config.train_steps)
        return TRAIN, int(self.step)
