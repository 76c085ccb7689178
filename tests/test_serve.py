"""wbc-serve (`wbc_tf.serve`): the HTTP API on a real uvicorn server, limits, the bounded queue.

The page itself is driven in a real browser in tests/test_browser.py.
"""

import contextlib
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web extra (starlette, uvicorn) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra (starlette, uvicorn) is not installed")

from wbc_tf.config import ServeOptions  # noqa: E402
from wbc_tf.serve import Busy, ModelWorker, create_app, is_video_data, with_strength  # noqa: E402


@contextlib.contextmanager
def running_server(app):
    """Serve ``app`` with uvicorn in a thread on a free 127.0.0.1 port; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def post(url, data, strength=None):
    """POST ``data`` to /api/cartoonize → (status, media type, body)."""
    query = "" if strength is None else f"?strength={strength}"
    request = urllib.request.Request(url + "/api/cartoonize" + query, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.headers.get_content_type(), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def jpeg_bytes(rgb, quality=95):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def message(body):
    return json.loads(body)["error"]


@pytest.fixture(scope="module")
def photo(chelsea_rgb):
    return jpeg_bytes(chelsea_rgb)


@pytest.fixture(scope="module")
def server(cartoonizer):
    options = ServeOptions(max_upload_mb=0.2, max_pixels=200_000)
    with running_server(create_app(cartoonizer, options)) as url:
        yield url


def test_worker_runs_one_job_at_a_time_and_refuses_beyond_the_queue():
    worker = ModelWorker(queue_size=2)
    release, running, active, peak = threading.Event(), threading.Event(), [0], [0]

    def job(value):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        running.set()
        release.wait(10)
        active[0] -= 1
        return value * 2

    first = worker.submit(job, 1)
    assert running.wait(10)                       # taken by the thread: the queue is empty again
    waiting = [worker.submit(job, 2), worker.submit(job, 3)]
    with pytest.raises(Busy, match="busy"):
        worker.submit(job, 4)
    release.set()
    assert [f.result(10) for f in [first] + waiting] == [2, 4, 6]
    assert peak[0] == 1
    failing = worker.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(10)
    assert worker.submit(job, 5).result(10) == 10  # the thread survives a failed job


def test_with_strength_shares_the_model(cartoonizer):
    half = with_strength(cartoonizer, 0.5)
    assert half.config.strength == 0.5 and cartoonizer.config.strength == 1
    assert half.generator is cartoonizer.generator and half.forward is cartoonizer.forward
    assert with_strength(cartoonizer, 1.0) is cartoonizer


def test_video_magic():
    assert is_video_data(b"\0\0\0\x18ftypisom....") and is_video_data(b"\x1a\x45\xdf\xa3....")
    assert not is_video_data(b"\xff\xd8\xff\xe0") and not is_video_data(b"\x89PNG\r\n\x1a\n")


def test_page_is_self_contained(server):
    with urllib.request.urlopen(server + "/", timeout=10) as answer:
        page = answer.read().decode()
    assert answer.headers.get_content_type() == "text/html"
    assert 'type="range"' in page and 'id="download"' in page and 'id="error"' in page
    assert "http://" not in page and "https://" not in page and "src=\"//" not in page  # no CDN


def test_photo_in_png_out_at_the_strength_asked(server, photo, cartoonizer, chelsea_rgb):
    from wbc_tf.batch import cartoonize_bytes
    from wbc_tf.config import BatchOptions

    status, media, body = post(server, photo)
    assert (status, media) == (200, "image/png")
    assert body == cartoonize_bytes(photo, cartoonizer, BatchOptions(), ext=".png")  # strength 1: the CLI's
    out = np.asarray(Image.open(io.BytesIO(body)))
    assert out.shape[:2] == cartoonizer.output_size(*chelsea_rgb.shape[:2])
    status, _, body0 = post(server, photo, strength=0)
    assert status == 200
    photo0 = np.asarray(Image.open(io.BytesIO(body0))).astype(int)
    decoded = np.asarray(Image.open(io.BytesIO(photo)))[:out.shape[0], :out.shape[1]].astype(int)
    assert np.abs(photo0 - decoded).max() <= 1     # strength 0: the (cropped) photo itself
    assert np.abs(photo0 - out.astype(int)).mean() > 3


@pytest.mark.parametrize("data, status, text", [
    (b"hello, this is not a picture\n", 415, "not"),
    (b"", 400, "empty upload"),
    (b"\0" * 300_000, 413, "file too large: the limit is 0.2 MB"),
], ids=["text", "empty", "over-upload-limit"])
def test_bad_uploads_get_one_clear_message(server, data, status, text):
    got, media, body = post(server, data)
    assert (got, media) == (status, "application/json")
    assert text in message(body)


def test_too_many_pixels_is_refused_from_the_header(server):
    big = jpeg_bytes(np.zeros((600, 800, 3), np.uint8), quality=20)  # 480 000 px > 200 000, a few kB
    assert len(big) < 200_000
    status, _, body = post(server, big)
    assert status == 413
    assert "too large: 800x600 px" in message(body) and "--max-pixels" in message(body)


@pytest.mark.parametrize("strength", ["2", "-0.1", "abc"])
def test_bad_strength(server, photo, strength):
    status, _, body = post(server, photo, strength=strength)
    assert status == 400 and "strength must be a number from 0" in message(body)


class _Blocking:
    """A stand-in cartoonizer whose first step waits for ``release`` (a request held in the model)."""

    def __init__(self, inner, release, entered):
        self.inner, self.config, self.release, self.entered = inner, inner.config, release, entered

    def preprocess(self, bgr):
        self.entered.set()
        self.release.wait(30)
        return self.inner.preprocess(bgr)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_full_queue_answers_503(cartoonizer, photo):
    release, entered = threading.Event(), threading.Event()
    app = create_app(_Blocking(cartoonizer, release, entered), ServeOptions(queue_size=1))
    with running_server(app) as url:
        results = []
        threads = [threading.Thread(target=lambda: results.append(post(url, photo)))]
        threads[0].start()
        assert entered.wait(30)                                   # one in the model
        threads.append(threading.Thread(target=lambda: results.append(post(url, photo))))
        threads[1].start()                                        # one waiting in the queue
        for _ in range(1000):
            if app.state.worker.waiting == 1:
                break
            time.sleep(0.02)
        status, _, body = post(url, photo)                        # the queue is full
        assert status == 503 and "busy" in message(body)
        release.set()
        for thread in threads:
            thread.join(60)
        assert sorted(r[0] for r in results) == [200, 200]


def test_cli_defaults_to_localhost():
    from wbc_tf.cli.serve import build_parser

    args = build_parser().parse_args([])
    assert args.host == "127.0.0.1" == ServeOptions().host
    assert build_parser().parse_args(["--max-pixels", "24M"]).max_pixels == 24_000_000
    with pytest.raises(ValueError, match="queue_size"):
        ServeOptions(queue_size=0)


def test_short_video_in_mp4_out(server, tmp_path):
    av = pytest.importorskip("av")
    from tests.test_video import make_clip

    clip = tmp_path / "clip.mp4"
    make_clip(clip, seconds=1, fps=5, size=(64, 48))
    status, media, body = post(server, clip.read_bytes(), strength=0.5)
    assert (status, media) == (200, "video/mp4")
    out = tmp_path / "out.mp4"
    out.write_bytes(body)
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 5 and (frames[0].width, frames[0].height) == (64, 48)
