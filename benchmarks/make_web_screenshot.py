"""Make ``docs/web_page.jpg``: the ``wbc-serve`` page after uploading a photo, slider at 0.6.

Run:  python benchmarks/make_web_screenshot.py [--photo coffee] [--out docs/web_page.jpg]

Needs the web and test extras (starlette, uvicorn, playwright) and Debian's Chromium at
/usr/bin/chromium, like tests/test_browser.py. The page is served by `wbc_tf.serve.create_app` with
the bundled weights on a free 127.0.0.1 port, driven by Playwright as a user would.
"""

import argparse
import os
import socket
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from skimage import data  # noqa: E402

from wbc_tf.config import ServeOptions  # noqa: E402
from wbc_tf.inference import Cartoonizer  # noqa: E402
from wbc_tf.serve import create_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", default="coffee")
    parser.add_argument("--strength", default="0.6")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), os.pardir, "docs",
                                                      "web_page.jpg"))
    args = parser.parse_args(argv)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(Cartoonizer.from_pretrained(), ServeOptions()),
                                           log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        photo = os.path.join(tmp, f"{args.photo}.jpg")
        cv2.imwrite(photo, getattr(data, args.photo)()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        page.set_input_files("#file", photo)
        done = "s => document.getElementById('status').textContent.includes(s)"
        page.wait_for_function(done, arg="strength 1.00")
        page.fill("#strength", args.strength)
        page.wait_for_function(done, arg=f"strength {float(args.strength):.2f}")
        png = page.screenshot(full_page=True)
        browser.close()
    server.should_exit = True
    shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    cv2.imwrite(args.out, shot, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out} ({shot.shape[1]}x{shot.shape[0]})")


if __name__ == "__main__":
    sys.exit(main())
