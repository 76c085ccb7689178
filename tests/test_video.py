"""`wbc_tf.video`: videos through PyAV, as a user runs them (``wbc-cartoonize clip.mp4 -o out/``).

Every clip is made here with PyAV's own encoders (no system ffmpeg): 64x48 frames that say which
frame they are (frame i: its number in 8x8 black/white blocks, grey 20 + 4i, a moving bar), with a
440 Hz sine track.
`Inverter` stands in for the `Cartoonizer` (same ``preprocess`` / ``run_network`` / ``postprocess``
interface; 255 - frame), so frame order, count, timestamps and audio are checkable exactly and fast;
one test runs the bundled model on a short clip.
"""

import fractions
import math
import os
import re

import av
import numpy as np
import pytest

from wbc_tf import batch, video
from wbc_tf.cli import cartoonize as cli
from wbc_tf.config import BatchOptions
from wbc_tf.image_io import ImageReadError
from wbc_tf.video import VideoStreamError, cartoonize_video, is_video, probe

W, H, FPS, SECONDS, RATE = 64, 48, 10, 5, 16000


# ---- clips made with PyAV ----------------------------------------------------------------------------

def frame_image(i, w=W, h=H):
    """Frame i: grey 20 + 4i with a bright bar at column 3i; the top 8 rows spell i in 8x8 blocks."""
    image = np.full((h, w, 3), 20 + 4 * i, np.uint8)
    image[:, (3 * i) % w:(3 * i) % w + 2] = 250
    for bit in range(8):
        image[:8, 8 * bit:8 * bit + 8] = 255 if i >> bit & 1 else 0
    return image


def make_clip(path, seconds=SECONDS, fps=FPS, size=(W, H), vcodec="libx264", acodec="aac",
              times=None, container_options=None):
    """Write a clip; ``times`` (seconds per frame) makes a variable frame rate. Returns the path."""
    w, h = size
    time_base = fractions.Fraction(1, 1000 if times else fps)   # a constant rate: one tick per frame
    times = [i / fps for i in range(seconds * fps)] if times is None else times
    with av.open(str(path), "w", container_options=container_options or {}) as out:
        v = a = None
        if vcodec:                                  # None: audio only
            v = out.add_stream(vcodec, rate=fps)
            v.width, v.height, v.pix_fmt = w, h, "yuv420p"
            v.codec_context.time_base = time_base
        if acodec:
            a = out.add_stream(acodec, rate=48000 if acodec == "libopus" else RATE)
            a.layout = "mono"
        for i, t in enumerate(times if v is not None else []):
            frame = av.VideoFrame.from_ndarray(frame_image(i, w, h), format="rgb24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            out.mux(v.encode(frame))
        if v is not None:
            out.mux(v.encode(None))
        if a is not None:
            rate, step = a.codec_context.sample_rate, a.codec_context.frame_size or 1024
            total = round((times[-1] + 1 / fps) * rate)
            for t in range(0, total, step):
                n = min(step, total - t)
                wave = (0.3 * np.sin(2 * np.pi * 440 * (t + np.arange(n)) / rate)).astype(np.float32)
                samples = (wave * 32767).astype(np.int16) if a.codec_context.format.name == "s16" else wave
                frame = av.AudioFrame.from_ndarray(samples[None], format=a.codec_context.format.name,
                                                   layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, t, fractions.Fraction(1, rate)
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def read_clip(path):
    """What a player sees: frames (RGB), their times (s), rate, codecs, audio duration and packets."""
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(v):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
        info = {"format": container.format.name, "codec": v.codec_context.name, "frames": frames,
                "times": times, "rate": v.average_rate, "pix_fmt": v.codec_context.pix_fmt,
                "audio": None, "audio_duration": 0.0, "audio_packets": []}
        if container.streams.audio:
            container.seek(0)
            a = container.streams.audio[0]
            packets = [bytes(p) for p in container.demux(a) if p.size]
            with av.open(str(path)) as again:
                samples = sum(f.samples for f in again.decode(audio=0))
            info.update(audio=a.codec_context.name, audio_packets=packets,
                        audio_duration=samples / a.codec_context.sample_rate)
        return info


def frame_index(rgb_out):
    """Which `frame_image` an inverted (255 - x) output frame came from (its top row of blocks)."""
    return sum(1 << bit for bit in range(8) if rgb_out[:8, 8 * bit:8 * bit + 8].mean() < 128)


class Inverter:
    """Stand-in for `Cartoonizer`: crop to multiples of 8 (``crop``) or not, network = -x.

    Args:
        fail_at: raise at this network call (1-based): a RuntimeError, or ``error`` if given.
        crop: crop like the original; False keeps the size (like ``--fit pad``: odd sizes stay odd).
    """

    def __init__(self, fail_at=None, error=None, crop=True):
        self.calls, self.batches, self.fail_at, self.error, self.crop = 0, [], fail_at, error, crop

    def preprocess(self, bgr):
        h, w = bgr.shape[:2]
        if self.crop:
            h, w = h // 8 * 8, w // 8 * 8
        return bgr[None, :h, :w].astype(np.float32) / np.float32(127.5) - 1, (h, w)

    def run_network(self, x):
        self.calls += 1
        self.batches.append(len(x))
        if self.calls == self.fail_at:
            raise self.error or RuntimeError("simulated failure")
        return -x

    def postprocess(self, y, geometry, x=None):
        return np.clip((y + 1) * np.float32(127.5) + 0.5, 0, 255).astype(np.uint8)


def run_cli(capsys, monkeypatch, *argv, cartoonizer=None):
    """``wbc-cartoonize ARGV`` with ``cartoonizer`` (default: an `Inverter`) as the loaded model."""
    stand_in = cartoonizer or Inverter()
    monkeypatch.setattr(cli, "load_cartoonizer", lambda weights, config: stand_in)
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


@pytest.fixture
def clip(tmp_path):
    """The issue's clip: 5 s at 10 fps, 64x48, H.264 + AAC sine, in .mp4 (index at the front)."""
    return make_clip(tmp_path / "clip.mp4", container_options={"movflags": "+faststart"})


# ---- what is a video -------------------------------------------------------------------------------

def test_videos_are_recognised_by_content(tmp_path, clip):
    import cv2
    make_clip(tmp_path / "a.webm", seconds=1, vcodec="libvpx-vp9", acodec="libopus")
    os.link(clip, tmp_path / "b.m4v")
    os.link(clip, tmp_path / "no_extension")
    cv2.imwrite(str(tmp_path / "photo.png"), np.zeros((20, 30, 3), np.uint8))
    os.replace(tmp_path / "photo.png", tmp_path / "png_named.mp4")   # FFmpeg opens it (png_pipe)
    (tmp_path / "notes.txt").write_text("hello\n" * 20)
    (tmp_path / "garbage.mkv").write_bytes(b"not a video at all")
    make_clip(tmp_path / "sound.m4a", seconds=1, vcodec=None)          # audio only
    for name in ("clip.mp4", "a.webm", "b.m4v", "no_extension", "garbage.mkv"):
        assert is_video(tmp_path / name), name
    for name in ("png_named.mp4", "notes.txt", "sound.m4a"):
        assert not is_video(tmp_path / name), name
    info = probe(clip)
    assert (info.width, info.height, info.rate, info.audio) == (W, H, FPS, "aac")
    assert abs(info.duration - SECONDS) < 0.1
    assert probe(tmp_path / "garbage.mkv") is None          # still a video job: reported as broken
    plan = batch.plan_outputs([str(tmp_path)], str(tmp_path / "out"), ".png")
    videos = sorted(os.path.basename(j.target) for j in plan.jobs if j.video)
    assert videos == ["a.mp4", "b.mp4", "clip.mp4", "garbage.mp4", "no_extension.mp4"]


# ---- the clip ------------------------------------------------------------------------------

def test_five_second_clip_keeps_frames_rate_timestamps_and_audio(tmp_path, capsys, monkeypatch, clip):
    inverter = Inverter()
    code, err = run_cli(capsys, monkeypatch, clip, "-o", tmp_path / "out", "--batch-size", "4",
                        cartoonizer=inverter)
    assert code == 0, err
    source, out = read_clip(clip), read_clip(tmp_path / "out" / "clip.mp4")
    assert out["codec"] == "h264" and out["pix_fmt"] == "yuv420p" and "mp4" in out["format"]
    assert len(out["frames"]) == len(source["frames"]) == SECONDS * FPS
    assert out["rate"] == FPS
    assert out["times"] == pytest.approx(source["times"], abs=1e-3)
    assert [frame_index(f) for f in out["frames"]] == list(range(SECONDS * FPS))   # every frame, in order
    for frame, given in zip(out["frames"], source["frames"]):
        assert np.abs(frame.astype(int) - (255 - given.astype(int))).mean() < 3         # inverted, lossy
    assert out["audio"] == "aac" and abs(out["audio_duration"] - SECONDS) < 0.1
    assert out["audio_packets"] == source["audio_packets"]   # AAC in, AAC out: copied, not re-encoded
    assert max(inverter.batches) == 4 and sum(inverter.batches) == SECONDS * FPS
    assert leftovers(tmp_path / "out") == []


def test_variable_frame_rate_survives(tmp_path, capsys, monkeypatch):
    times = [0, 0.1, 0.15, 0.4, 0.45, 0.5, 0.9, 1.0, 1.05, 1.5]
    src = make_clip(tmp_path / "vfr.mkv", times=times)
    code, err = run_cli(capsys, monkeypatch, src, "-o", tmp_path / "out")
    assert code == 0, err
    out = read_clip(tmp_path / "out" / "vfr.mp4")
    assert out["times"] == pytest.approx(times, abs=1e-3)
    assert [frame_index(f) for f in out["frames"]] == list(range(len(times)))


@pytest.mark.parametrize("name, vcodec, acodec, want_audio", [
    ("c.mov", "libx264", "pcm_s16le", "aac"),          # PCM does not go into .mp4: re-encoded
    ("c.webm", "libvpx-vp9", "libopus", "aac"),        # Opus: re-encoded (browsers: AAC in mp4)
    ("c.avi", "mpeg4", "pcm_s16le", "aac"),            # AVI's PCM has no channel order
    ("c.m4v", "libx264", None, None),                  # no audio track: none written
])
def test_containers_and_audio_codecs(tmp_path, capsys, monkeypatch, name, vcodec, acodec, want_audio):
    src = make_clip(tmp_path / name, seconds=2, vcodec=vcodec, acodec=acodec)
    code, err = run_cli(capsys, monkeypatch, src, "-o", tmp_path / "out")
    assert code == 0, err
    out = read_clip(tmp_path / "out" / (os.path.splitext(name)[0] + ".mp4"))
    assert out["codec"] == "h264" and len(out["frames"]) == 2 * FPS and out["rate"] == FPS
    assert [frame_index(f) for f in out["frames"]] == list(range(2 * FPS))
    assert out["audio"] == want_audio
    if want_audio:
        assert abs(out["audio_duration"] - 2) < 0.1


def test_start_and_duration_cut_video_and_audio(tmp_path, capsys, monkeypatch, clip):
    code, err = run_cli(capsys, monkeypatch, clip, "-o", tmp_path / "out", "--start", "1.5",
                        "--duration", "0:02")
    assert code == 0, err
    out = read_clip(tmp_path / "out" / "clip.mp4")
    assert [frame_index(f) for f in out["frames"]] == list(range(15, 35))
    assert out["times"] == pytest.approx([i / FPS for i in range(20)], abs=1e-3)   # the window starts at 0
    assert abs(out["audio_duration"] - 2) < 0.1
    code, err = run_cli(capsys, monkeypatch, clip, "-o", tmp_path / "out2", "--start", "4.2")
    assert code == 0, err
    assert [frame_index(f) for f in read_clip(tmp_path / "out2" / "clip.mp4")["frames"]] == list(range(42, 50))
    code, err = run_cli(capsys, monkeypatch, clip, "-o", tmp_path / "out3", "--start", "1:00")
    assert code == 1 and "no video frame after --start 01:00.00 (the video is 00:05.00 long)" in err
    assert not os.path.exists(tmp_path / "out3" / "clip.mp4")


def test_odd_sizes_are_padded_to_even(tmp_path):
    src = make_clip(tmp_path / "odd.mkv", seconds=1, size=(70, 50))
    target = tmp_path / "odd.mp4"
    # a cartoonizer that keeps 70x50 minus one row and column, like --fit pad on odd input
    inverter = Inverter(crop=False)
    inverter.preprocess = lambda bgr: Inverter.preprocess(inverter, bgr[:49, :69])
    assert cartoonize_video(src, target, inverter, batch_size=1) == FPS
    frames = read_clip(target)["frames"]
    assert frames[0].shape == (50, 70, 3)
    np.testing.assert_array_equal(frames[0][49], frames[0][48])        # the last row repeated
    np.testing.assert_array_equal(frames[0][:, 69], frames[0][:, 68])  # and the last column


def test_progress_callback(tmp_path, clip):
    progress = []
    assert cartoonize_video(clip, tmp_path / "a.mp4", Inverter(), lambda i, n: progress.append((i, n)),
                            batch_size=1) == 50
    assert progress == [(i, 50) for i in range(1, 51)]
    progress.clear()
    cartoonize_video(clip, tmp_path / "b.mp4", Inverter(), lambda i, n: progress.append((i, n)),
                     start=1, duration=2.5, batch_size=1)
    assert progress == [(i, 25) for i in range(1, 26)]


def test_progress_text_has_frames_per_second_and_eta(tmp_path, clip):
    reporter, texts = batch.Reporter("prog", quiet=True), []
    reporter.status = texts.append
    job = batch.Job(str(clip), str(tmp_path / "out.mp4"), True)
    batch._run_video(job, Inverter(), reporter, BatchOptions(batch_size=1, start=3))
    assert len(texts) == 20 and reporter.counts["written"] == 1
    assert re.fullmatch(r"clip\.mp4 frame 1/20, \d+\.\d frames/s, ETA \d\d:\d\d", texts[0]), texts[0]
    assert re.fullmatch(r"clip\.mp4 frame 20/20, \d+\.\d frames/s", texts[-1]), texts[-1]


# ---- broken input: report, keep what was decoded, exit 1 --------------------------------------------

@pytest.mark.parametrize("name", ["cut.mp4", "cut.mkv", "cut.avi"])
def test_truncated_clip_exits_1_and_keeps_its_frames(tmp_path, capsys, monkeypatch, name):
    whole = make_clip(tmp_path / ("whole" + os.path.splitext(name)[1]),
                      vcodec="mpeg4" if name.endswith(".avi") else "libx264",
                      acodec="pcm_s16le" if name.endswith(".avi") else "aac",
                      container_options={"movflags": "+faststart"} if name.endswith(".mp4") else None)
    data = whole.read_bytes()
    (tmp_path / name).write_bytes(data[:int(len(data) * 0.6)])
    readable = 0                                   # what PyAV itself decodes from the cut file
    try:
        with av.open(str(tmp_path / name)) as container:
            for _ in container.decode(video=0):
                readable += 1
    except av.error.FFmpegError:
        pass
    assert 10 < readable < 45
    code, err = run_cli(capsys, monkeypatch, tmp_path / name, whole, "-o", tmp_path / "out")
    assert code == 1
    lines = [line for line in err.splitlines() if name in line]
    partial = tmp_path / "out" / (os.path.splitext(name)[0] + ".partial.mp4")
    assert len(lines) == 1 and f"{partial}" in lines[0], err
    assert "wbc-cartoonize: 1 written, 0 skipped, 1 failed" in err
    assert not (tmp_path / "out" / (os.path.splitext(name)[0] + ".mp4")).exists()
    kept = read_clip(partial)                    # finalised: plays to its end without an error
    assert len(kept["frames"]) in (readable, readable - 1, readable + 1)
    assert [frame_index(f) for f in kept["frames"]] == list(range(len(kept["frames"])))
    assert f" stream at {video.format_time(len(kept['frames']) / FPS)}: " in lines[0]   # where the output stops
    assert f"; {len(kept['frames'])} frames before it kept in" in lines[0]
    assert kept["audio"] == "aac" and kept["audio_duration"] > 1
    assert len(read_clip(tmp_path / "out" / (whole.stem + ".mp4"))["frames"]) == 50   # the next file is done
    assert leftovers(tmp_path / "out") == []


def test_a_good_run_removes_an_earlier_partial(tmp_path, clip):
    target = tmp_path / "out.mp4"
    with open(video.partial_path(target), "wb") as f:
        f.write(b"from a broken copy")
    cartoonize_video(clip, target, Inverter(), batch_size=1)
    assert target.exists() and not os.path.exists(video.partial_path(target))


@pytest.mark.parametrize("error", [RuntimeError("simulated failure"), KeyboardInterrupt()])
def test_a_failure_of_ours_leaves_no_output(tmp_path, clip, error):
    """Out of memory, disk full, Ctrl-C: nothing under the target's name (an older output survives)."""
    target = tmp_path / "out.mp4"
    with pytest.raises(type(error)):
        cartoonize_video(clip, target, Inverter(fail_at=7, error=error), batch_size=1)
    assert not target.exists() and leftovers(tmp_path) == []
    assert not os.path.exists(video.partial_path(target))
    target.write_bytes(b"an older result")
    with pytest.raises(type(error)):
        cartoonize_video(clip, target, Inverter(fail_at=2, error=error), batch_size=1)
    assert target.read_bytes() == b"an older result" and leftovers(tmp_path) == []


def test_not_a_video_tiny_and_huge_frames_fail_cleanly(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ImageReadError, match="not a video PyAV can open"):
        cartoonize_video(tmp_path / "broken.mp4", tmp_path / "a.mp4", Inverter())
    make_clip(tmp_path / "tiny.mkv", seconds=1, size=(40, 6), acodec=None)
    inverter = Inverter()
    with pytest.raises(ImageReadError, match="frames too small: 40x6 px"):
        cartoonize_video(tmp_path / "tiny.mkv", tmp_path / "b.mp4", inverter)
    with pytest.raises(ImageReadError, match="too large"):
        cartoonize_video(tmp_path / "tiny.mkv", tmp_path / "b.mp4", inverter, max_pixels=200)
    assert inverter.calls == 0
    with pytest.raises(ImageReadError, match="no encoder for b.avi"):
        cartoonize_video(tmp_path / "tiny.mkv", tmp_path / "b.avi", inverter)
    assert sorted(os.listdir(tmp_path)) == ["broken.mp4", "tiny.mkv"]


def test_vp9_webm_when_there_is_no_h264_encoder(tmp_path, capsys, monkeypatch, clip):
    monkeypatch.setitem(video.OUTPUTS, ".mp4", video.dataclasses.replace(video.OUTPUTS[".mp4"],
                                                                       encoders=("no-such-encoder",)))
    assert video.output_ext() == ".webm"
    code, err = run_cli(capsys, monkeypatch, clip, "-o", tmp_path / "out")
    assert code == 0, err
    out = read_clip(tmp_path / "out" / "clip.webm")
    assert out["codec"] == "vp9" and "webm" in out["format"] and len(out["frames"]) == 50
    assert out["times"] == pytest.approx([i / FPS for i in range(50)], abs=1e-3)
    assert [frame_index(f) for f in out["frames"]] == list(range(50))
    assert out["audio"] == "opus" and abs(out["audio_duration"] - SECONDS) < 0.1


def test_format_time():
    assert [video.format_time(t) for t in (0, 3.2, 59.999, 3723.5)] == [
        "00:00.00", "00:03.20", "01:00.00", "1:02:03.50"]


# ---- the real model ------------------------------------------------------------------------------

def test_real_model_on_a_short_clip(tmp_path, capsys, monkeypatch, cartoonizer):
    src = make_clip(tmp_path / "real.webm", seconds=1, fps=4, size=(64, 48), vcodec="libvpx-vp9",
                    acodec="libopus")
    code, err = run_cli(capsys, monkeypatch, src, "-o", tmp_path / "out", cartoonizer=cartoonizer)
    assert code == 0, err
    out = read_clip(tmp_path / "out" / "real.mp4")
    source = read_clip(src)
    assert len(out["frames"]) == 4 and out["rate"] == 4 and out["audio"] == "aac"
    for frame, given in zip(out["frames"], source["frames"]):
        want = cartoonizer.cartoonize(given).astype(float)          # RGB in, RGB out
        psnr = 10 * math.log10(255 ** 2 / max(np.mean((frame - want) ** 2), 1e-12))
        assert psnr > 30, psnr                                        # lossy H.264, the same picture
