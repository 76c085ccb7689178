"""What every command prints besides its own lines: no native log noise, Ctrl-C and errors in one line.

* TensorFlow, absl, OpenCV (and the FFmpeg inside it and PyAV) and libpng write to the process's
  stderr, file descriptor 2, from C/C++; ``TF_CPP_MIN_LOG_LEVEL`` does not stop absl's start-up
  lines and libpng prints with ``fprintf``. `quiet_native_output` points descriptor 2 at
  ``/dev/null`` while the command runs and gives Python's ``sys.stderr`` a duplicate of the real
  one, so our own lines (and the progress bar) still appear; Python warnings and the
  ``tensorflow``/``absl`` loggers are quietened too. ``--verbose`` leaves everything as it is and
  TensorFlow's log level at its own default.
* `run_command`: Ctrl-C → one line and exit status 130; an unexpected exception → one line and
  exit status 1 (``--debug``: the traceback instead).

This module imports nothing heavy: it is loaded for ``--help`` too.
"""

import contextlib
import io
import logging
import os
import sys
import traceback
import warnings

from wbc_tf.config import ConsoleOptions

INTERRUPTED = 130  # exit status after Ctrl-C (128 + SIGINT), as shells report it
QUIET_LOGGERS = ("tensorflow", "absl", "h5py", "PIL")


def _fileno(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


@contextlib.contextmanager
def quiet_native_output():
    """Within the block, what C/C++ code writes to descriptor 2 is dropped; ``sys.stderr`` still shows.

    When ``sys.stderr`` is not descriptor 2 (it is captured, e.g. by pytest), only descriptor 2 is
    redirected. Python warnings are hidden and the `QUIET_LOGGERS` show errors only, for the block.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all (e.g. a detached process): nothing to hide
        saved = None
    original_stderr, levels = sys.stderr, {}
    try:
        if saved is not None:
            if _fileno(sys.stderr) == 2:
                sys.stderr = io.TextIOWrapper(
                    io.FileIO(os.dup(saved), "w"), encoding=getattr(original_stderr, "encoding", None),
                    errors="backslashreplace", line_buffering=True, write_through=True)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            levels[name] = logger.level
            logger.setLevel(max(logger.level, logging.ERROR))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if sys.stderr is not original_stderr:
            with contextlib.suppress(Exception):
                sys.stderr.close()
            sys.stderr = original_stderr
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def verbose_native_output():
    """``--verbose``: TensorFlow's own log level (INFO), unless the user set ``TF_CPP_MIN_LOG_LEVEL``.

    Takes effect only if TensorFlow is not imported yet (it reads the variable once).
    """
    from wbc_tf.cli import TF_LOG_LEVEL_SET_BY_USER
    if not TF_LOG_LEVEL_SET_BY_USER and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def print_error(prog, text):
    """``PROG: error: TEXT`` on stderr."""
    print(f"{prog}: error: {text}", file=sys.stderr, flush=True)


def run_command(prog, body, console=ConsoleOptions(), interrupted=None):
    """Run ``body()`` (returns the exit status) with the conventions of every command.

    Args:
        prog: the command name, first word of every line.
        body: the command's work, a callable without arguments returning the exit status.
        console: `ConsoleOptions` (``--verbose``, ``--debug``).
        interrupted: what to add after ``PROG: interrupted`` (a string, or a callable returning
            one, evaluated after the interruption: e.g. how many files were done).

    Returns:
        ``body()``'s exit status; `INTERRUPTED` (130) after Ctrl-C; 1 after an unexpected exception.
    """
    if console.verbose:
        verbose_native_output()
    try:
        with contextlib.nullcontext() if console.verbose else quiet_native_output():
            return body()
    except KeyboardInterrupt:
        extra = interrupted() if callable(interrupted) else interrupted
        print(f"{prog}: interrupted" + (f"; {extra}" if extra else ""), file=sys.stderr, flush=True)
        return INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the one place where anything unexpected is reported
        if console.debug:
            traceback.print_exc()
        else:
            from wbc_tf.batch import describe_error
            print_error(prog, f"{describe_error(e)} (--debug shows the traceback)")
        return 1


def output_dir_problem(path):
    """Why ``path`` cannot be an output folder (an existing file, not a folder), or None."""
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path} exists and is not a folder"
    return None
