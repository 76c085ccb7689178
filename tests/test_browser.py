"""The wbc-serve page in a real headless browser: Playwright driving Debian's Chromium (.ci/run installs it).

Upload a photo, move the strength slider, download the result; a text file and an image over the pixel
limit are refused with the server's message shown on the page.
"""

import io
import os

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
pytest.importorskip("uvicorn", reason="the web extra (starlette, uvicorn) is not installed")

from tests.test_serve import running_server  # noqa: E402
from wbc_tf.config import ServeOptions  # noqa: E402
from wbc_tf.serve import create_app  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def page(cartoonizer):
    app = create_app(cartoonizer, ServeOptions(max_pixels=200_000))
    with running_server(app) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = browser.new_context(accept_downloads=True)
            tab = context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            tab.goto(url + "/")
            yield tab
        finally:
            browser.close()


def wait_done(page, strength):
    page.wait_for_function("s => document.getElementById('status').textContent.includes(s)",
                           arg=f"strength {strength}")


def test_upload_slide_download(page, tmp_path, chelsea_rgb, cartoonizer):
    photo = tmp_path / "chelsea.jpg"
    Image.fromarray(chelsea_rgb).save(photo, "JPEG", quality=95)
    page.set_input_files("#file", str(photo))
    wait_done(page, "1.00")
    first = page.get_attribute("#after", "src")
    assert first.startswith("blob:") and page.get_attribute("#before", "src").startswith("blob:")

    page.fill("#strength", "0.3")  # a range input: sets the value and fires input + change like a drag
    assert page.text_content("#strength-value") == "0.30"
    wait_done(page, "0.30")
    assert page.get_attribute("#after", "src") != first
    assert page.text_content("#error") == ""

    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "download.png"
    info.value.save_as(saved)
    out = np.asarray(Image.open(saved))
    assert out.shape == cartoonizer.output_size(*chelsea_rgb.shape[:2]) + (3,)
    # the download is the strength-0.3 result: between the photo and the cartoon
    photo_px = np.asarray(Image.open(photo))[:out.shape[0], :out.shape[1]].astype(float)
    cartoon = cartoonizer.cartoonize(chelsea_rgb).astype(float)
    assert np.abs(out - (0.7 * photo_px + 0.3 * cartoon)).mean() < 2


@pytest.mark.parametrize("name, make, text", [
    ("notes.txt", lambda path: path.write_text("not a picture\n"), "not"),
    ("big.jpg", lambda path: Image.new("RGB", (800, 600)).save(path, "JPEG"), "too large: 800x600 px"),
])
def test_refused_upload_shows_the_message(page, tmp_path, name, make, text):
    path = tmp_path / name
    make(path)
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => document.getElementById('error').textContent.length > 0")
    assert text in page.text_content("#error")
    assert page.is_hidden("#download")
