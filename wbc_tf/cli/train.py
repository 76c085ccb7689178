"""``wbc-train`` / ``python train.py``: pre-train, then adversarially train White-box Cartoonization.

Every `wbc_tf.config.TrainConfig` field is a flag (``--batch-size``, ``--train-steps``, …) with the
dataclass default, and every `wbc_tf.config.RunOptions` field too (``--data``, ``--output-dir``,
…); ``--dry-run`` is the only extra. Run it as::

    python train.py --data dataset                           # phase 1 + 2, run folder runs/
    python train.py --data dataset --output-dir runs/exp1    # same command again resumes
    python train.py --data dataset --init-weights            # fine-tune the released model
    python train.py --data dataset --dry-run                 # print config + data summary only
    tensorboard --logdir runs/exp1/logs
"""

import argparse
import logging
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.cli.console import output_dir_problem, run_command
from wbc_tf.config import BUNDLED, ConsoleOptions, RunOptions, TrainConfig

PROG = "wbc-train"
EXIT_REFUSED = 2    # bad flags, data, weights, checkpoints or run folder: nothing was written
EXIT_STOPPED = 1    # the run stopped early (NaN, full disk, unreadable data); 130/143: SIGINT/SIGTERM

EPILOG = """\
examples:
  # the original schedule: 50k pre-training steps, then 100k adversarial steps
  wbc-train --data dataset --output-dir runs/exp1

  # killed or interrupted? the same command resumes from the latest checkpoint
  wbc-train --data dataset --output-dir runs/exp1

  # offline machine: give the VGG19 weights explicitly
  wbc-train --data dataset --vgg-weights ~/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5

  # fine-tune the released generator (skips pre-training)
  wbc-train --data dataset --output-dir runs/finetune --init-weights --train-steps 10000

  # all GPUs of this machine; --batch-size is the global batch
  wbc-train --data dataset --strategy mirrored --batch-size 32

  # check the data and the resolved config without writing anything
  wbc-train --data dataset --dry-run

  # watch it, then cartoonize with the result
  tensorboard --logdir runs/exp1/logs
  wbc-cartoonize photos/ -o out/ --weights runs/exp1/generator.weights.h5

dataset layout: DIR/photo_face, DIR/photo_scenery, DIR/cartoon_face, DIR/cartoon_scenery (faces on
every --face-every'th step), or DIR/photo + DIR/cartoon; images 256x256 (larger: random crop).

exit status: 0 done; 2 refused before anything was written (bad flags, data or weights, unreadable
checkpoints, a changed network size, the run folder in use); 1 stopped early (NaN loss, full disk,
training images gone: the last checkpoint is kept); 143 / 130 SIGTERM / Ctrl-C (a checkpoint of the
current step is saved first; a second signal stops at once).
"""


def build_parser():
    """The ``wbc-train`` parser, its flags derived from `TrainConfig` and `RunOptions`."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser, RunOptions, title="run", overrides={
        "data": {"required": True, "metavar": "DIR"},
        "output_dir": {"metavar": "DIR"},
        "vgg_weights": {"metavar": "imagenet|PATH|random"},
        "init_weights": {"nargs": "?", "const": BUNDLED, "metavar": "PATH"},
    })
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved config, the data summary and the plan; write nothing")
    add_dataclass_arguments(parser, TrainConfig,
                            title="training configuration (TrainConfig; defaults are the original code's)")
    add_dataclass_arguments(parser, ConsoleOptions, title="messages")
    return parser


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is *now* (not the stream at set-up time), so a handler
    installed by one in-process ``main()`` call never writes to a closed or stale stream later."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _configure_logging():
    # No propagation: absl (imported by TensorFlow) puts a handler on the root logger, which
    # would print every record a second time in its own format.
    logger = logging.getLogger("wbc_tf")
    if not any(isinstance(h, _CurrentStderrHandler) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main(argv=None):
    """Parse ``argv``, then train (or, with ``--dry-run``, report). Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = dataclass_from_args(TrainConfig, args)
        options = dataclass_from_args(RunOptions, args)
        console = dataclass_from_args(ConsoleOptions, args)
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    problem = output_dir_problem(options.output_dir)
    if problem:
        parser.error(f"--output-dir: {problem}")
    return run_command(PROG, lambda: _train(args, config, options), console,
                       "run the same command again to resume from the last checkpoint")


def _train(args, config, options):
    from wbc_tf.data import DataError
    from wbc_tf.run_folder import RunFolderError
    from wbc_tf.trainer import CheckpointError, Interrupted, RunStopped, Trainer
    from wbc_tf.weights import WeightConversionError

    _configure_logging()
    trainer = Trainer(config, options)
    try:
        if args.dry_run:
            print(trainer.describe())
            return 0
        trainer.prepare()
        phase, step = trainer.run()
    except (DataError, CheckpointError, RunFolderError, WeightConversionError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)        # refused: the run folder is unchanged
        return EXIT_REFUSED
    except Interrupted as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 128 + e.signum
    except RunStopped as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)        # NaN, full disk, data gone: last checkpoint kept
        return EXIT_STOPPED
    finished = ("pre-training", "adversarial training")[phase]
    print(f"done: {finished} at step {step}; run folder {options.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
