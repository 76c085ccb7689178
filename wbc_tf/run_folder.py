"""The run folder as a whole: one process at a time, resumes that fit it, setting a run aside.

* `RunLock`: ``<run folder>/.lock`` with an OS advisory lock (``fcntl.flock``) held for the whole
  run. A second process on the same folder is refused with a message naming the holder's pid. The
  kernel drops the lock when its process dies, however it dies, so a lock file left by a killed
  run never blocks. The file itself stays (deleting a lock file races with the next opener).
* `check_resume`: before anything is restored, the run folder's ``config.json`` is compared with
  the new configuration. `RESUMABLE` fields may change on resume: the length of the schedule, the
  bookkeeping, the learning rate (lower it after a divergence) and how fast, not what, a step
  computes. Any other `TrainConfig` change is refused with one error listing every differing key
  (old -> new): a network size would not fit the checkpoints, and a loss weight, the data
  sampling (patch and batch size, seed), the precision or a corrected mode would silently turn
  the run into another one. A different ``--data`` or ``--vgg-weights`` is a warning.
* `set_aside`: ``--no-resume`` moves everything a previous run wrote into
  ``previous-<time>/`` inside the run folder; nothing is ever deleted.

Example::

    with RunLock("runs/exp1") as lock:
        lock.acquire(create=False)            # refuse now if another process holds it
        check_resume("runs/exp1", record)     # record = Trainer.run_record()
        lock.acquire(); lock.record_owner()   # about to write
"""

import dataclasses
import json
import logging
import os
import shutil
import socket
import time

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

from wbc_tf.config import TrainConfig

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
# TrainConfig fields a resume may change (every other field must stay as config.json has it).
RESUMABLE = frozenset({"pretrain_steps", "train_steps", "learning_rate", "save_every", "sample_every",
                       "keep_checkpoints", "superpixel_workers", "jit_compile"})
# RunOptions fields whose change deserves a line (the others, e.g. --strategy, change nothing stored).
_WARN_OPTIONS = {"data": "--data", "vgg_weights": "--vgg-weights"}
# Everything a run writes at the top of its folder: what --no-resume moves aside.
RUN_FILES = (CONFIG_FILE, "checkpoints", "logs", "samples", "pretrain_generator.weights.h5",
             "pretrain_generator.npz", "generator.weights.h5", "generator.npz")
PREVIOUS = "previous-"


class RunFolderError(RuntimeError):
    """The run folder cannot be used by this run (in use, or from an incompatible configuration)."""


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder's lock."""


class ConfigMismatch(RunFolderError):
    """The configuration differs from config.json in fields that cannot change on resume."""


class RunLock:
    """The advisory lock on ``<folder>/.lock``; a context manager that releases it.

    Args:
        folder: the run folder (the lock file is created only by ``acquire(create=True)``).
    """

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def acquire(self, create=True):
        """Take the lock (no wait). Returns True if held afterwards.

        Args:
            create: create the lock file if missing; with False, a missing file is not locked
                (a read-only check that changes nothing in the folder) and False is returned.

        Raises:
            RunFolderBusy: another process holds it.
        """
        if self._fd is not None:
            return True
        if fcntl is None:
            return False
        try:
            fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if create:
                raise
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderBusy(
                f"run folder {self.folder} is in use by another wbc-train process ({holder}); wait for it "
                f"to finish or stop it, or use another --output-dir (a lock left by a killed process "
                f"does not block)") from None
        self._fd = fd
        return True

    def record_owner(self):
        """Write ``pid <n> on <host>`` into the held lock file (what a refused process reports)."""
        if self._fd is not None:
            text = f"pid {os.getpid()} on {socket.gethostname()}\n".encode()
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, text, 0)

    def release(self):
        if self._fd is not None:
            os.close(self._fd)               # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def read_record(run_dir):
    """The run folder's ``config.json`` as a dict, or None when it is missing or unreadable."""
    path = os.path.join(run_dir, CONFIG_FILE)
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("%s cannot be read (%s): the configuration cannot be compared with it", path, e)
        return None
    return record if isinstance(record, dict) else None


def config_differences(old, new):
    """``{field: (old, new)}`` of the `TrainConfig` fields that differ between two ``config`` dicts.

    A field missing from ``old`` (a run recorded before the field existed) counts as its default.
    Fields ``old`` has and ``new`` does not (removed since) are ignored.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    new = json.loads(json.dumps(new))              # tuples -> lists, like the stored JSON
    changed = {}
    for key, value in new.items():
        before = old.get(key, json.loads(json.dumps(defaults.get(key, value))))
        if before != value:
            changed[key] = (before, value)
    return changed


def _same_path(a, b):
    return a == b or (isinstance(a, str) and isinstance(b, str)
                      and os.path.realpath(a) == os.path.realpath(b))


def check_resume(run_dir, record):
    """Refuse a resume whose configuration does not fit the run folder's ``config.json``.

    Args:
        run_dir: the run folder (only read).
        record: the new run's record (`wbc_tf.trainer.Trainer.run_record`).

    Returns:
        ``{field: (old, new)}`` of the `RESUMABLE` fields that change (logged too).

    Raises:
        ConfigMismatch: listing every other differing field, old -> new.
    """
    old = read_record(run_dir)
    if old is None or not isinstance(old.get("config"), dict):
        log.warning("%s has checkpoints but no readable %s: the configuration cannot be checked; a "
                    "different network size shows as unreadable checkpoints", run_dir, CONFIG_FILE)
        return {}
    changed = config_differences(old["config"], record["config"])
    refused = {k: v for k, v in changed.items() if k not in RESUMABLE}
    if refused:
        raise ConfigMismatch(
            f"run folder {run_dir} was trained with another configuration; these values cannot change "
            f"when it resumes (config.json -> now):\n"
            + "\n".join(f"  {k}: {a!r} -> {b!r}" for k, (a, b) in sorted(refused.items()))
            + f"\nResume with the old values, or start a new run: another --output-dir, or --no-resume "
              f"(moves this run into {PREVIOUS}<time>/). May change on resume: "
              f"{', '.join(sorted(RESUMABLE))}.")
    allowed = {k: v for k, v in changed.items() if k in RESUMABLE}
    if allowed:
        log.info("resuming with changed %s",
                 ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in allowed.items()))
    old_run = old.get("run") if isinstance(old.get("run"), dict) else {}
    for key, flag in _WARN_OPTIONS.items():
        if key in old_run and not _same_path(old_run[key], record["run"].get(key)):
            log.warning("%s differs from the run's (%r, now %r); resuming with the new one",
                        flag, old_run[key], record["run"].get(key))
    return allowed


def set_aside(run_dir):
    """Move what a previous run wrote (`RUN_FILES`) into ``<run_dir>/previous-<time>/``.

    Returns:
        The new folder, or None when there was nothing to move.
    """
    present = [name for name in RUN_FILES if os.path.lexists(os.path.join(run_dir, name))]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = os.path.join(run_dir, PREVIOUS + stamp), 1
    while os.path.lexists(target):
        n += 1
        target = os.path.join(run_dir, f"{PREVIOUS}{stamp}-{n}")
    os.makedirs(target)
    for name in present:
        shutil.move(os.path.join(run_dir, name), os.path.join(target, name))
    return target
