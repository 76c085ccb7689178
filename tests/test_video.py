"""`wbc_tf.video`: frame-by-frame cartoonization of a video file, with a stand-in cartoonizer.

`cartoonize_video` only calls ``cartoonizer.cartoonize_bgr``; a simple stand-in (invert, then crop to
multiples of 8, so the frame size changes like the real pipeline's) makes the frame order, count,
size and rate checkable exactly and fast. The real `Cartoonizer` on a video is covered by the CLI
test (tests/test_cli_cartoonize.py).
"""

import os

import cv2
import numpy as np
import pytest

from wbc_tf.image_io import ImageReadError
from wbc_tf.video import cartoonize_video, is_video

FPS = 12


class Inverter:
    """Stand-in for `Cartoonizer`: 255 − frame, cropped to multiples of 8 like the original."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def cartoonize_bgr(self, bgr):
        self.calls.append(bgr.copy())
        if len(self.calls) == self.fail_at:
            raise RuntimeError("simulated failure")
        h, w = bgr.shape[0] // 8 * 8, bgr.shape[1] // 8 * 8
        return np.ascontiguousarray(255 - bgr[:h, :w])


def _write_video(path, frames, fps=FPS):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def _read_video(path):
    capture = cv2.VideoCapture(str(path))
    fps, frames = capture.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return fps, frames


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


@pytest.fixture
def clip(tmp_path, coffee_rgb):
    """Five 52x75 frames of a real photo, each brighter than the last (so the order is visible)."""
    frames = [np.ascontiguousarray(np.clip(coffee_rgb[100 + 6 * i:152 + 6 * i, 200:275, ::-1].astype(int)
                                           - 60 + 30 * i, 0, 255).astype(np.uint8)) for i in range(5)]
    path = tmp_path / "clip.avi"
    _write_video(path, frames)
    return path


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".")]


def test_is_video_by_extension():
    assert all(is_video(name) for name in ("a.mp4", "b.AVI", "c.mov", "dir/d.MKV"))
    assert not any(is_video(name) for name in ("a.png", "b.mp4.jpg", "mp4", ""))


def test_every_frame_in_order_at_the_input_rate(tmp_path, clip):
    progress = []
    inverter = Inverter()
    target = tmp_path / "out" / "clip.mp4"
    target.parent.mkdir()
    assert cartoonize_video(clip, target, inverter, on_frame=lambda i, n: progress.append((i, n))) == 5
    assert progress == [(i, 5) for i in range(1, 6)]
    _, decoded = _read_video(clip)                     # what cartoonize_bgr must have been given
    assert len(inverter.calls) == 5
    for given, frame in zip(inverter.calls, decoded):
        np.testing.assert_array_equal(given, frame)
    fps, written = _read_video(target)
    assert fps == FPS and len(written) == 5
    for frame, source in zip(written, decoded):
        assert frame.shape == (48, 72, 3)              # 52x75 -> 48x72, like a photo
        assert _psnr(frame, 255 - source[:48, :72]) > 30    # lossy mp4v, but this frame
    means = [frame.mean() for frame in written]
    assert means == sorted(means, reverse=True)        # brighter inputs, darker (inverted) outputs
    assert _leftovers(target.parent) == []


def test_not_a_video_and_tiny_frames_fail_cleanly(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ImageReadError, match="not a video"):
        cartoonize_video(tmp_path / "broken.mp4", tmp_path / "a.mp4", Inverter())
    _write_video(tmp_path / "tiny.avi", [np.full((6, 40, 3), 128, np.uint8)] * 2)
    inverter = Inverter()
    with pytest.raises(ImageReadError, match="frames too small: 40x6 px"):
        cartoonize_video(tmp_path / "tiny.avi", tmp_path / "b.mp4", inverter)
    assert inverter.calls == []
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()
    assert _leftovers(tmp_path) == []


def test_a_failure_midway_leaves_no_output(tmp_path, clip):
    """The file is written under a temporary name and renamed only when complete."""
    target = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="simulated"):
        cartoonize_video(clip, target, Inverter(fail_at=3))
    assert not target.exists() and _leftovers(tmp_path) == []
    target.write_bytes(b"an older result")              # an existing output survives a failed run
    with pytest.raises(RuntimeError):
        cartoonize_video(clip, target, Inverter(fail_at=2))
    assert target.read_bytes() == b"an older result"
