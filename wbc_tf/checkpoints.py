"""The files a training run writes: atomic writes, checkpoints (find, save, restore), generator weights.

Every function that writes takes the folder it writes into: the run folder itself, or, on a worker
that is not the chief, that worker's own temporary folder (`wbc_tf.distribute.write_dir`). Reading
(resume) is always from the run folder.

**Atomic writes.** Our own files (weights, ``config.json``) are written to a temporary name in the
same folder, ``.<name>.<pid>.tmp<suffix>``, and renamed over the target (`atomic_write`), so a kill
never leaves a half-written file under a final name; a failed write removes its temporary file.
What a killed process still leaves behind (our temporary files, TensorFlow's ``<prefix>_temp/``
checkpoint folders and ``checkpoint.tmp<hex>`` index files, `wbc_tf.image_io`'s ``.<name>.<pid>.part``)
is removed by `clean_leftovers` when the next run starts. A full disk (``ENOSPC``) while writing
becomes one `DiskFullError` naming the file.

**Checkpoints** are ``checkpoints/<phase>-<step>.{index,data-*}`` plus TensorFlow's ``checkpoint``
index file. How TensorFlow 2.21 saves (verified with strace): the shard and index go into
``<prefix>_temp/`` (each via a temp file + rename), the data file is renamed to its final name,
the final ``.index`` is written **in place** (not atomic), the temp folder is removed, and only
then is the ``checkpoint`` index replaced atomically, and only after that are checkpoints beyond
``max_to_keep`` deleted. So a kill at any moment leaves the index listing complete checkpoints;
what can be left is an orphan ``<prefix>_temp/`` or a half-written newest ``.index`` that the
index does not list. Power loss (unflushed page cache) is not covered: nothing here calls fsync.

**Restore** (`restore_newest`) resumes the *newest phase* only: the phase of the newest checkpoint
the index lists. It tries that phase's checkpoints newest first, falling back to older ones of the
same phase with a warning, and never to an earlier phase: falling back from adversarial training
to pre-training would restart adversarial training at step 0 and overwrite its weights. Each
candidate is read in full on its own first (every tensor, so a truncated or missing file fails
before any model variable is touched), then restored with ``assert_consumed``. If none can be
read, `CheckpointError` names each checkpoint and why, and nothing has been written.

Example::

    restored = restore_newest("runs/exp1/checkpoints", ("pretrain", "train"), checkpoint_of_phase)
    saver = PhaseSaver(checkpoint, "runs/exp1", "train", keep=20)
    saver.save(500)
    export_generator(generator, "runs/exp1", "generator")   # generator.weights.h5 + generator.npz
"""

import contextlib
import errno
import glob
import logging
import os
import re
import shutil

import keras
import numpy as np
import tensorflow as tf

from wbc_tf.weights import save_generator_weights

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"                      # the sub-folder of the run folder
_PHASE_KEY = "phase/.ATTRIBUTES/VARIABLE_VALUE"  # the checkpointed `phase` variable
_NAME = re.compile(r"^(?P<phase>[A-Za-z_]+)-(?P<step>\d+)$")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")
# What interrupted writes leave: TensorFlow's checkpoint temp folders, temp files (ours: .x.<pid>.tmp*,
# TF's index: checkpoint.tmp<hex>), wbc_tf.image_io's .x.<pid>.part.
_LEFTOVER_DIRS = ("*_temp",)
_LEFTOVER_FILES = ("*.tmp*", ".*.tmp*", ".*.part")


class CheckpointError(RuntimeError):
    """No checkpoint of the run folder can be restored (or the run cannot start from it)."""


class RunStopped(RuntimeError):
    """The run stopped before its end; the run folder holds its last complete checkpoint."""


class DiskFullError(RunStopped):
    """No space left on the device while writing a file of the run."""


class NonFiniteError(RunStopped):
    """A loss or a weight is NaN or infinite: the run diverged."""


# --- writing files --------------------------------------------------------------------------------

def is_disk_full(error):
    """True for ENOSPC / EDQUOT, as an `OSError` or as a TensorFlow error message."""
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        return True
    text = getattr(error, "message", None) or str(error)
    return isinstance(error, (OSError, tf.errors.OpError)) and any(t in text for t in _DISK_FULL_TEXT)


@contextlib.contextmanager
def disk_full_as_error(path):
    """Within the block, a full disk becomes `DiskFullError` naming ``path``; other errors pass."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        if not is_disk_full(e):
            raise
        raise DiskFullError(f"no space left on the device while writing {path}: free some space, then "
                            f"run the same command again to resume from the last checkpoint") from e


def temp_path(path, suffix=""):
    """``<folder>/.<name>.<pid>.tmp<suffix>``: a temporary name next to ``path`` (`clean_leftovers`)."""
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp{suffix}")


def atomic_write(path, write, suffix=""):
    """Call ``write(tmp)`` for a temporary path next to ``path``, then rename it to ``path``.

    Args:
        path: the final file.
        write: ``write(tmp_path)`` writes the whole file.
        suffix: the temporary name's ending, for writers that insist on one (``.weights.h5``).

    Raises:
        DiskFullError: no space left; the temporary file is removed and ``path`` is unchanged.
    """
    tmp = temp_path(path, suffix)
    try:
        with disk_full_as_error(path):
            write(tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (`atomic_write`)."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    return atomic_write(path, write)


def check_finite(variables, what):
    """Raise `NonFiniteError` naming the first variable holding a NaN or an infinity.

    Args:
        variables: Keras / TF variables (mirrored ones too).
        what: when, for the message (``'after train step 500'``).
    """
    for var in variables:
        if not np.isfinite(keras.ops.convert_to_numpy(var)).all():
            raise NonFiniteError(f"{getattr(var, 'path', var.name)} is not finite {what}: the run diverged")


def export_generator(generator, directory, stem):
    """Write ``<stem>.weights.h5`` (Keras) and ``<stem>.npz`` (TF1 names) into ``directory``, each atomically.

    Raises:
        NonFiniteError: a generator weight is NaN or infinite (nothing is written).
        DiskFullError: no space left (the previous files, if any, are kept).
    """
    check_finite(generator.weights, f"in the {stem} weights")
    h5 = os.path.join(directory, f"{stem}.weights.h5")
    npz = os.path.join(directory, f"{stem}.npz")
    atomic_write(h5, lambda tmp: save_generator_weights(generator, tmp), suffix=".weights.h5")
    atomic_write(npz, lambda tmp: save_generator_weights(generator, tmp), suffix=".npz")
    return h5, npz


def clean_leftovers(directory):
    """Remove what interrupted writes left in a run folder (see the module docstring).

    Looks in ``directory``, ``checkpoints/`` and ``samples/`` only (never in set-aside runs).
    Call it only while holding the run folder's lock: a live run's temporary files look the same.

    Returns:
        The removed paths.
    """
    removed = []
    for folder in (directory, os.path.join(directory, CHECKPOINTS), os.path.join(directory, "samples")):
        if not os.path.isdir(folder):
            continue
        for pattern in _LEFTOVER_DIRS:
            for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                    removed.append(path)
        for pattern in _LEFTOVER_FILES:
            for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
                if os.path.isfile(path) or os.path.islink(path):
                    os.remove(path)
                    removed.append(path)
    return sorted(set(removed))


# --- finding checkpoints ----------------------------------------------------------------------------

def listed_checkpoints(ckpt_dir):
    """Prefixes the ``checkpoint`` index file lists, newest first ([] without a readable index)."""
    try:
        state = tf.train.get_checkpoint_state(ckpt_dir)
    except (tf.errors.OpError, ValueError):  # a damaged index file: treat every checkpoint as an orphan
        state = None
    if state is None:
        return []
    listed = list(reversed(state.all_model_checkpoint_paths))
    if state.model_checkpoint_path and state.model_checkpoint_path not in listed[:1]:
        listed.insert(0, state.model_checkpoint_path)
    listed = [p if os.path.isabs(p) else os.path.join(ckpt_dir, p) for p in listed]
    return list(dict.fromkeys(listed))


def checkpoint_candidates(ckpt_dir):
    """Checkpoint prefixes to try, newest first: those the ``checkpoint`` index lists, then orphans.

    Orphans (an ``.index`` the atomic index file does not list: an interrupted save, or a
    damaged index) come last, newest modification first.
    """
    if not os.path.isdir(ckpt_dir):
        return []
    listed = listed_checkpoints(ckpt_dir)
    on_disk = [p[: -len(".index")] for p in glob.glob(os.path.join(glob.escape(ckpt_dir), "*.index"))]
    orphans = sorted((p for p in on_disk if p not in listed), key=lambda p: -os.path.getmtime(p + ".index"))
    return list(dict.fromkeys(listed + orphans))


def parse_name(prefix):
    """``(phase name, step)`` from a prefix ``…/<phase>-<step>``, or None for another name."""
    match = _NAME.match(os.path.basename(prefix))
    return (match.group("phase"), int(match.group("step"))) if match else None


def resume_candidates(ckpt_dir, phase_names):
    """The newest phase of a run folder and its checkpoints to try, newest first.

    The newest phase is that of the newest checkpoint the ``checkpoint`` index lists (of any on
    disk when no index is readable). Orphans of a later phase (a save interrupted on entering it)
    are left out: the phase had not started.

    Args:
        ckpt_dir: the run folder's ``checkpoints/``.
        phase_names: the checkpoint name of every phase, in run order (``('pretrain', 'train')``).

    Returns:
        ``(phase index, [prefix, …])``, or None when the folder has no checkpoint.

    Raises:
        CheckpointError: checkpoints exist but none has a name of ``phase_names``.
    """
    candidates = checkpoint_candidates(ckpt_dir)
    if not candidates:
        return None
    phase_of = {}
    for prefix in candidates:
        parsed = parse_name(prefix)
        if parsed and parsed[0] in phase_names:
            phase_of[prefix] = phase_names.index(parsed[0])
    if not phase_of:
        raise CheckpointError(
            f"{ckpt_dir} holds checkpoints of another program "
            f"({', '.join(map(os.path.basename, candidates))}), "
            f"none named {' or '.join(n + '-<step>' for n in phase_names)}; use another --output-dir")
    listed = set(listed_checkpoints(ckpt_dir))
    newest = max([phase for prefix, phase in phase_of.items() if prefix in listed] or phase_of.values())
    return newest, [prefix for prefix, phase in phase_of.items() if phase == newest]


def read_phase(prefix):
    """The ``phase`` stored in checkpoint ``prefix`` (reads the index and one scalar)."""
    return int(tf.train.load_checkpoint(prefix).get_tensor(_PHASE_KEY))


def verify_readable(prefix, phase=None):
    """Read every tensor of checkpoint ``prefix``; raise if one cannot be read.

    Touches no model: a truncated, missing or corrupted file (CRC mismatch) fails here.

    Args:
        phase: if given, the ``phase`` value the checkpoint must hold.
    """
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)
    if phase is not None and int(reader.get_tensor(_PHASE_KEY)) != phase:
        raise CheckpointError(f"holds phase {int(reader.get_tensor(_PHASE_KEY))}, its name says {phase}")


def _reason(error):
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def restore_newest(ckpt_dir, phase_names, checkpoint_of):
    """Restore the newest readable checkpoint of the newest phase (see the module docstring).

    Args:
        ckpt_dir: the run folder's ``checkpoints/``.
        phase_names: the checkpoint name of every phase, in run order.
        checkpoint_of: ``phase index -> tf.train.Checkpoint`` over that phase's live objects
            (called once per candidate; the objects are built on demand).

    Returns:
        ``(phase index, prefix)`` restored, or None when the folder has no checkpoint.

    Raises:
        CheckpointError: no checkpoint of the newest phase can be restored (each one listed with
            the reason); nothing was written.
    """
    found = resume_candidates(ckpt_dir, phase_names)
    if found is None:
        return None
    phase, prefixes = found
    failures = []
    for prefix in prefixes:
        try:
            verify_readable(prefix, phase)
            ckpt = checkpoint_of(phase)
            ckpt.save_counter  # noqa: B018  create it, so that assert_consumed can match it
            ckpt.read(prefix).assert_consumed()
        except Exception as e:  # DataLoss / OutOfRange / NotFound / mismatched shapes: try an older one
            failures.append(f"{os.path.basename(prefix)}: {_reason(e)}")
            continue
        if failures:
            log.warning("restored %s after skipping unreadable checkpoint(s):\n  %s",
                        os.path.basename(prefix), "\n  ".join(failures))
        return phase, prefix
    name = phase_names[phase]
    lines = [f"cannot resume: no {name} checkpoint in {ckpt_dir} can be read (nothing in the run folder "
             f"was changed):"] + [f"  {failure}" for failure in failures]
    older = [os.path.basename(p) for p in checkpoint_candidates(ckpt_dir)
             if (parse_name(p) or ("",))[0] in phase_names[:phase]]
    if older:
        lines.append(f"The checkpoints of an earlier phase ({', '.join(older)}) are not used: resuming from "
                     f"them would restart {name} at step 0 and overwrite its weights.")
    lines.append("Restore the files (from a backup?), or start over with --no-resume (this run is then "
                 "moved into previous-<time>/).")
    raise CheckpointError("\n".join(lines))


class PhaseSaver:
    """Saves one phase's checkpoints into ``<directory>/checkpoints``, keeping the newest ``keep``.

    A thin `tf.train.CheckpointManager` (whose crash behaviour the module docstring describes);
    a full disk raises `DiskFullError`.
    """

    def __init__(self, checkpoint, directory, name, keep):
        self.directory = os.path.join(directory, CHECKPOINTS)
        self._manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=keep,
                                                   checkpoint_name=name)
        self.name = name

    def save(self, step):
        """Write ``<name>-<step>``; returns its prefix."""
        with disk_full_as_error(os.path.join(self.directory, f"{self.name}-{step}")):
            return self._manager.save(checkpoint_number=step)
