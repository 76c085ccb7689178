"""``wbc-serve``: the local web page (`wbc_tf.serve`) on one model instance.

Every `wbc_tf.config.ServeOptions` field is a flag; TensorFlow is imported only after parsing.
"""

import argparse
import socket
import sys

from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args
from wbc_tf.cli.console import run_command
from wbc_tf.config import ConsoleOptions, ServeOptions, parse_pixels

PROG = "wbc-serve"

EPILOG = """\
examples:
  # the page on http://127.0.0.1:8000/ (this computer only), the bundled weights
  wbc-serve

  # another port, your own weights, photos up to 24 MP and uploads up to 20 MB
  wbc-serve --port 8080 --weights my_run/checkpoints --max-pixels 24M --max-upload-mb 20

Needs the web extra: pip install "wbc_tf[web]". One picture is cartoonized at a time; up to
--queue-size more wait, later ones are told the server is busy (HTTP 503).

exit status: 0 = stopped with Ctrl-C; 1 = could not start (weights, port in use); 2 = usage error.
"""

OVERRIDES = {"host": {"metavar": "ADDR"}, "port": {"metavar": "N"}, "weights": {"metavar": "PATH"},
             "max_upload_mb": {"metavar": "MB"}, "max_pixels": {"type": parse_pixels, "metavar": "N"},
             "queue_size": {"metavar": "N"}, "max_video_seconds": {"metavar": "S"}}


def build_parser():
    """The ``wbc-serve`` parser, its flags derived from `ServeOptions`."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="A local web page to try White-box Cartoonization: upload a photo or a "
        "short video, choose the style strength, download the result.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser, ServeOptions, overrides=OVERRIDES)
    add_dataclass_arguments(parser, ConsoleOptions, title="messages")
    return parser


def main(argv=None):
    """Parse ``argv`` and serve until Ctrl-C. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = dataclass_from_args(ServeOptions, args)
        console = dataclass_from_args(ConsoleOptions, args)
    except ValueError as e:
        parser.error(str(e))
    code = run_command(PROG, lambda: serve(options, console), console)
    return 0 if code == 130 else code  # Ctrl-C is how the server is meant to stop


def serve(options, console=ConsoleOptions()):
    """Load the model, then serve the page until interrupted. Returns the exit status."""
    try:
        import uvicorn

        from wbc_tf.serve import create_app
    except ImportError as error:
        print(f"{PROG}: error: {error.name} is missing; install the web extra: pip install \"wbc_tf[web]\"",
              file=sys.stderr)
        return 1
    from wbc_tf.inference import Cartoonizer

    cartoonizer = Cartoonizer.from_pretrained(options.weights)
    sock = socket.socket(socket.AF_INET6 if ":" in options.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((options.host, options.port))
    except OSError as error:
        print(f"{PROG}: error: cannot listen on {options.host}:{options.port}: {error.strerror}",
              file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(f"{PROG}: serving on http://{f'[{host}]' if ':' in host else host}:{port}/ (Ctrl-C to stop)",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(cartoonizer, options),
                                           log_level="info" if console.verbose else "warning"))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
