"""The ``wbc-serve`` web page: upload a photo or a short video, pick a style strength, get the cartoon.

One `Cartoonizer` runs in one worker thread behind a bounded queue (`ModelWorker`): at most
``ServeOptions.queue_size`` requests wait, and later ones are answered HTTP 503 at once, so concurrent
users cannot exhaust memory. Uploads are refused before any decoding when they are over
``max_upload_mb`` (HTTP 413, counted while the body streams in) or over ``max_pixels`` (from the image
header: `wbc_tf.image_io`). Errors are JSON ``{"error": "<one line>"}``, which the page shows as is.

Routes:
    ``GET /``: the page (``web/index.html``, no external resources).
    ``POST /api/cartoonize?strength=S``: the raw file as the body; answers the PNG (or MP4 for a video).
"""

import asyncio
import concurrent.futures
import copy
import dataclasses
import os
import queue
import tempfile
import threading

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from wbc_tf.config import BatchOptions, ServeOptions

PAGE = os.path.join(os.path.dirname(__file__), "web", "index.html")
# The first bytes of the video containers PyAV reads that a browser uploads (checked before the image path).
_VIDEO_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"OggS"))


class Busy(Exception):
    """The queue in front of the model is full."""


class ModelWorker:
    """One thread runs every job on one model, taking them from a ``queue.Queue(maxsize=queue_size)``.

    Args:
        queue_size: jobs that may wait; `submit` raises `Busy` beyond that.
    """

    def __init__(self, queue_size=ServeOptions.queue_size):
        self._jobs = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._loop, name="wbc-serve-model", daemon=True)
        self._thread.start()

    def submit(self, fn, *args):
        """Queue ``fn(*args)``; returns a `concurrent.futures.Future`. Raises `Busy` when the queue is full."""
        future = concurrent.futures.Future()
        try:
            self._jobs.put_nowait((future, fn, args))
        except queue.Full:
            raise Busy("the server is busy with other pictures; try again in a moment") from None
        return future

    @property
    def waiting(self):
        """Jobs in the queue (not counting the one running)."""
        return self._jobs.qsize()

    def _loop(self):
        while True:
            future, fn, args = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as error:  # noqa: BLE001 - handed to the waiting request
                    future.set_exception(error)


def with_strength(cartoonizer, strength):
    """``cartoonizer`` with ``config.strength = strength``, sharing its generator and traced network.

    The strength only changes the post-processing (`Cartoonizer.postprocess`), so the copy reuses the
    one model and its trace instead of building and tracing another.
    """
    if strength == cartoonizer.config.strength:
        return cartoonizer
    view = copy.copy(cartoonizer)
    view.config = dataclasses.replace(cartoonizer.config, strength=strength)
    return view


def is_video_data(data):
    """Whether ``data`` starts like an MP4/MOV/M4V, WebM/MKV, AVI or Ogg file."""
    return any(data[at:at + len(magic)] == magic for at, magic in _VIDEO_MAGIC)


def cartoonize_upload(data, cartoonizer, options, strength):
    """An uploaded file → ``(bytes, media type)``; runs in the model thread.

    Raises:
        wbc_tf.image_io.ImageReadError: not an image or video, or over a limit.
    """
    from wbc_tf.batch import cartoonize_bytes

    cartoonizer = with_strength(cartoonizer, strength)
    if is_video_data(data):
        return _cartoonize_video(data, cartoonizer, options), "video/mp4"
    batch_options = BatchOptions(max_pixels=options.max_pixels)
    return cartoonize_bytes(data, cartoonizer, batch_options, ext=".png"), "image/png"


def _cartoonize_video(data, cartoonizer, options):
    from wbc_tf.video import cartoonize_video

    with tempfile.TemporaryDirectory(prefix="wbc-serve-") as folder:
        source, target = os.path.join(folder, "upload"), os.path.join(folder, "cartoon.mp4")
        with open(source, "wb") as f:
            f.write(data)
        cartoonize_video(source, target, cartoonizer, duration=options.max_video_seconds,
                         max_pixels=options.max_pixels)
        with open(target, "rb") as f:
            return f.read()


def _error(status, message):
    return JSONResponse({"error": message}, status_code=status)


def _megabytes(n):
    return f"{n / 1e6:.3g} MB"


async def _read_body(request, limit):
    """The request body, or None as soon as it is over ``limit`` bytes (nothing more is read)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_strength(text):
    try:
        strength = float(text)
    except (TypeError, ValueError):
        strength = None
    if strength is None or not 0 <= strength <= 1:
        raise ValueError(f"strength must be a number from 0 (the photo) to 1 (the cartoon), got {text!r}")
    return strength


def create_app(cartoonizer, options=ServeOptions()):
    """The Starlette application serving the page with ``cartoonizer`` (one instance, one thread).

    Args:
        cartoonizer: a `wbc_tf.inference.Cartoonizer` (or anything with its interface: tests use a
            stand-in).
        options: `ServeOptions` (limits and queue size; host and port are the caller's business).
    """
    from wbc_tf.image_io import ImageReadError, ImageTooLarge

    worker = ModelWorker(options.queue_size)

    async def page(request):
        return FileResponse(PAGE, media_type="text/html; charset=utf-8")

    async def cartoonize(request):
        try:
            strength = _parse_strength(request.query_params.get("strength", "1"))
        except ValueError as error:
            return _error(400, str(error))
        data = await _read_body(request, options.max_upload_bytes)
        if data is None:
            return _error(413, f"file too large: the limit is {_megabytes(options.max_upload_bytes)} "
                               f"(wbc-serve --max-upload-mb)")
        if not data:
            return _error(400, "empty upload: choose a photo or a video")
        try:
            future = worker.submit(cartoonize_upload, data, cartoonizer, options, strength)
        except Busy as error:
            return _error(503, str(error))
        try:
            body, media_type = await asyncio.wrap_future(future)
        except ImageTooLarge as error:
            return _error(413, f"{error} (wbc-serve --max-pixels)")
        except ImageReadError as error:
            return _error(415, str(error))
        except Exception as error:  # noqa: BLE001 - one line for the page, e.g. out of memory
            from wbc_tf.batch import describe_error
            return _error(500, describe_error(error))
        return Response(body, media_type=media_type)

    app = Starlette(routes=[Route("/", page), Route("/api/cartoonize", cartoonize, methods=["POST"])])
    app.state.worker = worker
    return app
