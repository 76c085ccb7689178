"""What every command prints besides its own lines (`wbc_tf.cli.console`), for all five commands:
native log noise hidden, Ctrl-C and unexpected errors in one line, ``--help`` without TensorFlow,
an output folder that is an existing file refused as a usage error, and examples that parse."""

import importlib
import re
import shlex
import subprocess
import sys

import pytest

from wbc_tf.cli import console
from wbc_tf.config import ConsoleOptions

COMMANDS = {"wbc-cartoonize": "wbc_tf.cli.cartoonize", "wbc-train": "wbc_tf.cli.train",
            "wbc-export": "wbc_tf.cli.export", "wbc-convert": "wbc_tf.cli.convert",
            "wbc-prepare-data": "wbc_tf.cli.prepare_data", "wbc-serve": "wbc_tf.cli.serve"}


def test_native_output_is_hidden_and_python_stderr_is_not():
    """In a fresh process (descriptor 2 is a real pipe): what C code writes to descriptor 2 (here
    os.write, as libpng's fprintf or absl would) is dropped, sys.stderr lines come through, and
    descriptor 2 works again afterwards. The same run with ConsoleOptions(verbose=True) hides nothing."""
    script = (
        "import os, sys\n"
        "from wbc_tf.cli.console import run_command\n"
        "from wbc_tf.config import ConsoleOptions\n"
        "def body():\n"
        "    os.write(2, b'native noise\\n')\n"
        "    print('ours', file=sys.stderr)\n"
        "    return 3\n"
        "code = run_command('prog', body, ConsoleOptions(verbose=sys.argv[1] == 'v'))\n"
        "os.write(2, b'after\\n')\n"
        "sys.exit(code)\n")
    quiet = subprocess.run([sys.executable, "-c", script, "q"], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 3 and quiet.stderr == "ours\nafter\n", quiet.stderr
    verbose = subprocess.run([sys.executable, "-c", script, "v"], capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 3 and verbose.stderr == "native noise\nours\nafter\n", verbose.stderr


def test_interrupt_and_unexpected_errors_are_one_line(capsys):
    def interrupted():
        raise KeyboardInterrupt

    def broken():
        raise RuntimeError("something odd\nwith a second line")

    assert console.run_command("prog", interrupted, interrupted=lambda: "3 done") == 130
    assert capsys.readouterr().err == "prog: interrupted; 3 done\n"
    assert console.run_command("prog", broken) == 1
    assert capsys.readouterr().err == \
        "prog: error: RuntimeError: something odd (--debug shows the traceback)\n"
    assert console.run_command("prog", broken, ConsoleOptions(debug=True)) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "RuntimeError: something odd" in err


def test_help_of_every_command_imports_no_tensorflow():
    """--help must be instant: no TensorFlow (nor OpenCV) import, in a fresh process, all commands."""
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name).main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (name, e.code)\n"
        "print('heavy:', sorted(m for m in ('tensorflow', 'keras', 'cv2', 'av') if m in sys.modules),"
        " file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script, *COMMANDS.values()], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "heavy: []"
    for prog in COMMANDS:
        assert f"usage: {prog}" in proc.stdout
    assert proc.stdout.count("--verbose") >= len(COMMANDS) and proc.stdout.count("--debug") >= len(COMMANDS)


@pytest.mark.parametrize("prog, argv", [
    ("wbc-cartoonize", ["photo.jpg", "-o", "{file}"]),
    ("wbc-train", ["--data", "dataset", "--output-dir", "{file}"]),
    ("wbc-export", ["--output-dir", "{file}"]),
    ("wbc-prepare-data", ["--photo", "photos", "--output-dir", "{file}"]),
])
def test_output_folder_that_is_a_file_is_a_usage_error(tmp_path, capsys, prog, argv):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    with pytest.raises(SystemExit) as e:
        importlib.import_module(COMMANDS[prog]).main([a.format(file=existing) for a in argv])
    assert e.value.code == 2
    assert f"{existing} exists and is not a folder" in capsys.readouterr().err
    assert existing.read_text() == "keep me"


def _examples(epilog):
    """Command lines in an epilog: lines starting with 'wbc-', continuations joined, comments cut."""
    text = epilog.replace("\\\n", " ")
    for line in text.splitlines():
        line = re.split(r"\s{2,}\(|\s+->", line.strip())[0]
        if line.startswith("wbc-"):
            yield shlex.split(line)


@pytest.mark.parametrize("module", sorted(COMMANDS.values()))
def test_every_example_in_the_help_parses(module):
    """Each 'wbc-...' example of every command's --help is accepted by that command's parser (the
    wbc-train help used to show 'wbc-cartoonize --weights W photos/ out/', which is not)."""
    examples = list(_examples(importlib.import_module(module).EPILOG))
    assert examples
    for argv in examples:
        parser = importlib.import_module(COMMANDS[argv[0]]).build_parser()
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"example in {module}'s --help does not parse: {' '.join(argv)}")
