"""Render ``docs/cli.md``, the command-line reference, from the argparse parsers of every command.

Regenerate the page after changing a parser (or a config field comment, which becomes help text)::

    python -m wbc_tf.cli.docs > docs/cli.md

`tests/test_docs.py` fails when the file differs from `render`. The help is formatted at a fixed
width (`WIDTH`), so the page does not depend on the terminal that generated it.
"""

import importlib
import sys

WIDTH = 100  # columns of the rendered --help text

# (command, module with build_parser(), other ways to run it, guide page)
COMMANDS = (
    ("wbc-cartoonize", "wbc_tf.cli.cartoonize", "python -m wbc_tf", "inference.md"),
    ("wbc-train", "wbc_tf.cli.train", "python train.py", "training.md"),
    ("wbc-export", "wbc_tf.cli.export", "python export_tflite.py", "deployment.md"),
    ("wbc-prepare-data", "wbc_tf.cli.prepare_data", None, "training.md#preparing-a-dataset"),
    ("wbc-convert", "wbc_tf.cli.convert", None, "inference.md#weights-and-wbc-convert"),
    ("wbc-serve", "wbc_tf.cli.serve", None, "inference.md#the-web-page-wbc-serve"),
)

HEADER = """\
# Command-line reference

This page is generated from the commands' argument parsers by `python -m wbc_tf.cli.docs > docs/cli.md`;
do not edit it by hand. Each command prints the same text with `--help`. Option defaults are the
original TF1 code's values; the differences from the original are explained in
[fidelity.md](fidelity.md).
"""


def command_help(module_name, width=WIDTH):
    """The ``--help`` text of ``module_name.build_parser()``, wrapped at ``width`` columns."""
    parser = importlib.import_module(module_name).build_parser()
    formatter_class = parser.formatter_class
    parser.formatter_class = lambda prog: formatter_class(prog, width=width)
    return parser.format_help()


def render():
    """The Markdown text of ``docs/cli.md``."""
    parts = [HEADER]
    parts.append("".join(f"* [{name}](#{name})\n" for name, *_ in COMMANDS))
    for name, module, alias, guide in COMMANDS:
        also = f"Also run as `{alias}`. " if alias else ""
        parts.append(f"## {name}\n\n{also}Guide: [{guide.split('#')[0]}]({guide}).\n\n"
                     f"```text\n{command_help(module).rstrip()}\n```\n")
    return "\n".join(parts)


def main():
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
