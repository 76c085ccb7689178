"""Cartoonize a video frame by frame (``cv2.VideoCapture`` → `Cartoonizer` → ``cv2.VideoWriter``).

Not part of the original code. Every frame goes through the same pipeline as a photo
(`Cartoonizer.cartoonize_bgr`: same resize/crop rules), so the output frame size is the output
size of the first frame. Output: MPEG-4 Part 2 (``mp4v``) in an ``.mp4`` container, at the
input frame rate; no audio. Decoding of the next frame and encoding of the previous one run in
two single-thread pools while the network runs on the current frame.
"""

import concurrent.futures
import os

import cv2

from wbc_tf.image_io import MIN_SIDE, ImageReadError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
FOURCC = "mp4v"


def is_video(path):
    """True for file names with a video extension (case-insensitive)."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


def cartoonize_video(source, target, cartoonizer, on_frame=None):
    """Cartoonize every frame of ``source`` into ``target`` (``.mp4``); returns the frame count.

    Args:
        source: input video path.
        target: output path; written to a temporary name first and renamed when complete.
        cartoonizer: a `wbc_tf.inference.Cartoonizer`.
        on_frame: optional callable ``on_frame(index, total_or_0)`` after each frame.

    Raises:
        ImageReadError: the file cannot be opened as a video, has no decodable frame, or its
            frames are smaller than 8 px.
    """
    capture = cv2.VideoCapture(os.fspath(source))
    if not capture.isOpened():
        raise ImageReadError("not a video, or a format OpenCV cannot open")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    folder, name = os.path.split(os.fspath(target))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.part.mp4")
    writer, count = None, 0
    try:
        pool = concurrent.futures.ThreadPoolExecutor
        with pool(1) as reader, pool(1) as out:  # decode ahead / encode behind, in order
            frame = reader.submit(capture.read)
            pending_write = None
            while True:
                ok, bgr = frame.result()
                if not ok:
                    break
                frame = reader.submit(capture.read)  # decode the next frame meanwhile
                if min(bgr.shape[:2]) < MIN_SIDE:
                    raise ImageReadError(f"frames too small: {bgr.shape[1]}x{bgr.shape[0]} px")
                cartoon = cartoonizer.cartoonize_bgr(bgr)
                if writer is None:
                    h, w = cartoon.shape[:2]
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC), fps, (w, h))
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {FOURCC} video to {tmp}")
                if pending_write is not None:
                    pending_write.result()  # keeps at most one frame queued, in order
                pending_write = out.submit(writer.write, cartoon)
                count += 1
                if on_frame is not None:
                    on_frame(count, total)
            if pending_write is not None:
                pending_write.result()
        if count == 0:
            raise ImageReadError("no decodable video frame")
        writer.release()
        writer = None
        os.replace(tmp, target)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if os.path.exists(tmp):
            os.remove(tmp)
    return count
