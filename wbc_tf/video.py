"""Cartoonize a video through PyAV: decode → `wbc_tf.batch.pipeline` (batched network) → H.264 + audio.

Not part of the original code. No system ``ffmpeg`` is needed: PyAV's wheels carry FFmpeg.

* **What is a video** (`probe`, `is_video`): the file is opened with PyAV and has a video stream in a
  container format (mp4, mov, m4v, mkv, webm, avi, mpeg-ts, ...); FFmpeg's image readers (``png_pipe``,
  ``image2``, ...) and cover art do not count. The extension is not looked at, except that a file
  named like a video (`VIDEO_EXTENSIONS`) that cannot be opened is still reported as a video.
* **Frames**: every frame goes through `wbc_tf.batch.pipeline` like a photo (same resize/crop rules
  of `wbc_tf.inference.Cartoonizer`; consecutive frames share a network call on a GPU). The display
  rotation of phone videos is applied, as a player would. Frames are padded to even sizes (edge
  pixels repeated) because 4:2:0 video needs them; by default they are multiples of 8 already.
* **Output** (`OUTPUTS`): H.264 (yuv420p, CRF 18) in ``.mp4`` with the index at the front, or, from
  a PyAV without an H.264 encoder, VP9 in ``.webm`` (`output_ext`); both play in browsers. Every
  frame keeps its timestamp (in the input's time base), so the frame rate, variable or not, and the
  A/V sync are the input's. Audio (the first audio stream) is copied packet by packet when the output
  container and browsers take its codec (mp4: AAC, MP3; webm: Opus, Vorbis), else re-encoded (AAC,
  Opus). Output time 0 is the window start.
* **Window** (``start``, ``duration``; ``--start`` / ``--duration``): seek to the key frame before
  ``start``, decode up to it, keep ``[start, start + duration)``; audio is cut to the same window at
  its packets (about 20 ms).
* **Broken input**: a decode or demux error, or a stream that ends well before its stated length
  (a cut file), is a `VideoStreamError` with the time where it broke, e.g. ``corrupt stream at
  00:03.20: Invalid data found when processing input``. The frames decoded before it are
  cartoonized and kept, playable, in ``<stem>.partial.mp4`` next to the target (not under the
  target's name, so that running the same command again does not skip the file as done); the file
  counts as failed. Any other failure (out of memory, disk full, Ctrl-C) leaves no output: the file
  is written under a hidden temporary name and renamed when complete, so an older output survives.
"""

import collections
import dataclasses
import fractions
import functools
import math
import os
import threading

import numpy as np

from wbc_tf.config import BatchOptions, MAX_PIXELS
from wbc_tf.image_io import MIN_SIDE, ImageReadError, check_pixels

# Names that make a file PyAV cannot open a (broken) video rather than "not an image".
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
                    ".m2ts", ".wmv", ".flv", ".3gp", ".ogv")
# FFmpeg demuxers that read still images (or text), not videos.
IMAGE_DEMUXERS = frozenset({"image2", "image2pipe", "gif", "apng", "ico", "tty", "webp"})
PARTIAL = ".partial"        # <stem>.partial.mp4: the frames before a broken part of the input


@dataclasses.dataclass(frozen=True)
class Output:
    """One output encoding: video encoders to try (first available wins), container, audio rules."""

    encoders: tuple        # PyAV encoder names, in order of preference
    options: dict          # encoder options
    container: str         # FFmpeg muxer name
    copy_audio: frozenset  # audio codecs copied as they are
    audio_encoder: str     # any other audio codec is re-encoded with this
    audio_rate: int = 0    # sample rate for the re-encoded audio; 0 = the input's
    container_options: dict = dataclasses.field(default_factory=dict)


OUTPUTS = {
    # veryfast: 1.6x the frames/s of medium at 720p, and no larger on flat cartoon frames (measured)
    ".mp4": Output(("libx264", "libopenh264"), {"crf": "18", "preset": "veryfast"}, "mp4",
                   frozenset({"aac", "mp3"}), "aac", 0, {"movflags": "+faststart"}),
    ".webm": Output(("libvpx-vp9",), {"crf": "31", "b": "0", "row-mt": "1", "cpu-used": "4"}, "webm",
                    frozenset({"opus", "vorbis"}), "libopus", 48000),
}


class VideoStreamError(ImageReadError):
    """The input stream broke (corrupt or cut) at ``time`` s; ``frames`` before it are in ``partial``."""

    def __init__(self, message, time=None, frames=0, partial=None):
        super().__init__(message)
        self.time, self.frames, self.partial = time, frames, partial


def _av():
    try:
        import av
    except ImportError as e:  # install_requires has it; a broken environment gets one line
        raise ImageReadError("reading videos needs PyAV (pip install av)") from e
    return av


def format_time(seconds):
    """``3.2`` → ``'00:03.20'``, ``3723.5`` → ``'1:02:03.50'``."""
    centis = max(0, round(seconds * 100))
    hours, rest = divmod(centis, 360000)
    minutes, rest = divmod(rest, 6000)
    text = f"{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"
    return f"{hours}:{text}" if hours else text


# --------------------------------------------------------------------------------------------
# What is a video
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What `probe` found: ``format`` (FFmpeg's demuxer names), stream size, rate, audio codec."""

    format: str
    width: int
    height: int
    rate: fractions.Fraction       # average frame rate (or FFmpeg's guess)
    duration: float                # stated length in seconds; 0 if unknown
    audio: str = ""                # codec of the first audio stream, '' if none


def _video_stream(container):
    """The first video stream that is not a still (cover art), or None."""
    for stream in container.streams.video:
        if not stream.disposition & 0x400:  # AV_DISPOSITION_ATTACHED_PIC (cover art in .m4a/.mp3)
            return stream
    return None


def probe(path):
    """A `VideoInfo` if PyAV opens ``path`` as a video container with a video stream, else None.

    Reads the container header and a few packets, never whole frames (a huge PNG is not decoded).
    """
    return _probe(path)[0]


def _probe(path):
    """``(VideoInfo or None, whether PyAV could open the file at all)``."""
    av = _av()
    try:
        container = av.open(os.fspath(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None, False
    with container:
        names = set(container.format.name.split(","))
        stream = _video_stream(container)
        if stream is None or names & IMAGE_DEMUXERS or any(n.endswith("_pipe") for n in names):
            return None, True
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else ""
        return VideoInfo(container.format.name, stream.width, stream.height,
                         stream.average_rate or stream.guessed_rate or fractions.Fraction(25),
                         (container.duration or 0) / 1e6, audio), True


def is_video(path):
    """True when `probe` finds a video, or when ``path`` cannot be opened but is named like a video."""
    info, opened = _probe(path)
    named_like_one = os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS
    return info is not None or (not opened and named_like_one)


def _encoder(output):
    """The first of ``output.encoders`` this PyAV can encode with, or None."""
    available = _av().codecs_available
    return next((name for name in output.encoders if name in available
                 and _can_encode(name) and _can_encode(output.audio_encoder)), None)


@functools.lru_cache(maxsize=None)
def _can_encode(name):
    av = _av()
    try:
        av.codec.Codec(name, "w")
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def output_ext():
    """Extension of video outputs: ``.mp4`` (H.264) when this PyAV can write it, else ``.webm`` (VP9)."""
    for ext, output in OUTPUTS.items():
        if _encoder(output):
            return ext
    return ".mp4"  # nothing to write with: `cartoonize_video` reports it per file


# --------------------------------------------------------------------------------------------
# Reading: frames in a window, audio alongside, why it stopped
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Frame:
    """One decoded video frame: ``bgr`` (H, W, 3) uint8 (dropped once loaded), ``pts`` and ``duration``
    in the input video time base with the window start at 0, ``time`` in seconds from the window start."""

    bgr: np.ndarray
    pts: int
    time: float
    duration: int = 0      # how long it shows, in the time base (a screen recording's last frame: long)


class _Reader:
    """Decodes the first video stream of an open container within a time window.

    `frames` is consumed in the pipeline's reader thread; audio packets (copied) or frames (to be
    re-encoded) met on the way are queued in ``audio`` as ``(time, packet_or_frame)`` for the writer.
    Every step runs under a lock, so `close` from another thread never frees what is being decoded.
    """

    def __init__(self, container, start=0.0, duration=0.0, copy_audio=True):
        av = _av()
        self.container = container
        self.video = _video_stream(container)
        self.audio_stream = container.streams.audio[0] if container.streams.audio else None
        self.copy_audio = copy_audio
        self.start = start
        self.video.thread_type = "AUTO"  # frame/slice threads in the decoder
        self.rate = self.video.average_rate or self.video.guessed_rate or fractions.Fraction(25)
        origin = container.start_time / 1e6 if container.start_time is not None else 0.0
        self.window_start = origin + start
        self.window_end = self.window_start + duration if duration else math.inf
        self.origin_seconds = origin
        self.offset_v = round(self.window_start / self.video.time_base)      # input pts of output 0
        self.offset_a = (round(self.window_start / self.audio_stream.time_base)
                         if self.audio_stream is not None else 0)
        self.audio = collections.deque()
        self.problem = None        # (time from window start, reason) once the stream broke
        self.last_pts = None       # output pts of the last frame yielded
        self.reached = 0.0         # end time (s, input clock) of the last data read, any stream
        self.video_end = self.window_start  # ... of the last video frame in the window
        self._lock = threading.Lock()
        self._closed = False
        self._errors = (av.error.FFmpegError, OSError)
        self.stated = self._stated_end()  # read now: nothing of the container is read once closed
        if start > 0:
            try:
                container.seek(self.offset_v, stream=self.video, backward=True)
            except self._errors:
                pass  # not seekable: decoding from the start and dropping frames gives the same

    # ---- the frames --------------------------------------------------------------------------

    def frames(self):
        """Yield `Frame` s in presentation order; ends early (with `problem` set) at broken data."""
        inner = self._decode()
        while True:
            with self._lock:
                frame = None if self._closed else next(inner, None)
            if frame is None:
                return
            yield frame

    def _decode(self):
        streams = [self.video] + ([self.audio_stream] if self.audio_stream is not None else [])
        video_done = False
        audio_done = self.audio_stream is None
        packet = None
        try:
            for packet in self.container.demux(*streams):
                if packet.is_corrupt:  # e.g. the last, short packet of a cut file
                    raise _DamagedPacket("damaged packet (the file may be cut short)")
                if packet.stream is self.video:
                    if video_done:
                        continue
                    for frame in packet.decode():
                        out = self._frame(frame)
                        if out is False:
                            video_done = True
                            break
                        if out is not None:
                            yield out
                elif not audio_done:
                    audio_done = self._audio_packet(packet)
                if video_done and audio_done:
                    return
        except (*self._errors, _DamagedPacket) as e:
            reason = f"corrupt stream at {{time}}: {_reason(e)}"
            self.problem = (self._last_end(), reason)
            yield from self._drain()  # frames the decoder holds from before the broken packet
            # the time of the break: the broken packet's, or later if frames before it end later
            at = packet.pts * packet.time_base if packet is not None and packet.pts is not None else 0
            self.problem = (max(float(at) - self.window_start, self._last_end()), reason)
            return
        if not video_done:
            self._check_length()

    def _frame(self, frame):
        """A decoded frame → `Frame`, None (before the window), or False (past its end)."""
        pts, last_pts = frame.pts, self.last_pts
        if pts is None:  # some AVI/raw streams: count from the previous frame
            pts = (last_pts + self.offset_v + round(1 / (self.rate * self.video.time_base))
                   if last_pts is not None else self.offset_v)
        seconds = float(pts * self.video.time_base)
        eps = 0.25 / float(self.rate)
        if self.start and seconds < self.window_start - eps:  # decoded from the key frame before it
            return None
        if seconds >= self.window_end - eps:
            return False
        length = getattr(frame, "duration", 0) or round(1 / (self.rate * self.video.time_base))  # time base
        self.video_end = seconds + float(length * self.video.time_base)  # a long last frame counts in full
        self.reached = max(self.reached, self.video_end)
        out_pts = pts - self.offset_v
        if last_pts is not None and out_pts <= last_pts:
            out_pts = last_pts + 1  # the muxer needs strictly increasing timestamps
        bgr = frame.to_ndarray(format="bgr24")                      # (H, W, 3) uint8
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4  # counter-clockwise (PyAV >= 14)
        if turns:
            bgr = np.ascontiguousarray(np.rot90(bgr, turns))
        self.last_pts = out_pts
        return Frame(bgr, out_pts, seconds - self.window_start, length)

    def _drain(self):
        try:
            for frame in self.video.codec_context.decode(None):
                out = self._frame(frame)
                if out:
                    yield out
        except self._errors:
            pass

    def _audio_packet(self, packet):
        """Queue one audio packet (or its decoded frames) inside the window; True once past it.

        Without ``start`` everything before the window end is kept, the encoder's priming packet at a
        negative time included; with it, the packets that end after the window start.
        """
        if packet.pts is None:
            return False  # the demuxer's end-of-stream packet
        seconds = float(packet.pts * packet.time_base)
        end = seconds + float((packet.duration or 0) * packet.time_base)
        self.reached = max(self.reached, end)
        if seconds >= self.window_end:
            return True
        if self.copy_audio:
            if self.start and end <= self.window_start:
                return False
            packet.pts -= self.offset_a
            if packet.dts is not None:
                packet.dts -= self.offset_a
            self.audio.append((seconds - self.window_start, packet))
            return False
        for frame in packet.decode():  # decoded from the seek point on: the decoder needs what precedes
            if frame.pts is None:
                continue
            at = float(frame.pts * frame.time_base)
            if self.start and at < self.window_start:
                continue
            frame.pts -= self.offset_a
            self.audio.append((at - self.window_start, frame))
        return False

    # ---- how it ended ------------------------------------------------------------------------

    def _last_end(self):
        """Where the output stops: the end of the last frame, in seconds from the window start."""
        return max(0.0, self.video_end - self.window_start)

    def _stated_end(self):
        """The input's own idea of where the video ends (s, input clock), or None if unknown."""
        v, c = self.video, self.container
        candidates = []
        if v.duration:
            candidates.append(float((v.start_time or 0) * v.time_base + v.duration * v.time_base))
        if "avi" in c.format.name.split(",") and v.frames:  # the header's count; the index is at the end
            candidates.append(float((v.start_time or 0) * v.time_base) + v.frames / float(self.rate))
        if not candidates and c.duration:
            candidates.append(self.origin_seconds + c.duration / 1e6)
        return max(candidates) if candidates else None

    def _check_length(self):
        """A clean end of data well before the stated length: the file was cut."""
        stated = self.stated
        if stated is None:
            return
        wanted = min(stated, self.window_end)
        slack = max(0.5, 2 / float(self.rate))
        if self.reached < wanted - slack:
            self.problem = (self._last_end(), f"truncated stream at {{time}}: the data ends "
                            f"{wanted - self.reached:.1f} s before the stated length of "
                            f"{format_time(stated - self.origin_seconds)}")

    def expected_frames(self):
        """Frames the window should hold, from the stated length and rate (0 if unknown)."""
        stated = self.stated
        end = min(stated, self.window_end) if stated is not None else self.window_end
        if not math.isfinite(end):
            return 0
        return max(0, round((end - self.window_start) * float(self.rate)))

    def close(self):
        """Close the input (idempotent; waits for a decode step in progress in another thread)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.container.close()


class _DamagedPacket(Exception):
    """A packet the demuxer marked corrupt (``AV_PKT_FLAG_CORRUPT``)."""


def _reason(error):
    """FFmpeg's message without the errno and file name: 'Invalid data found when processing input'."""
    text = getattr(error, "strerror", None) or str(error)
    return text.strip() or type(error).__name__


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

class _Writer:
    """The output container: video stream made at the first frame, audio copied or re-encoded.

    Used from one thread at a time (the pipeline's writer thread, then the caller's).
    """

    def __init__(self, path, output, reader):
        av = _av()
        self.av, self.output, self.reader = av, output, reader
        self.container = av.open(path, "w", format=output.container,
                                 container_options=output.container_options)
        self.video = None
        self.audio = None
        self.frames = 0

    def _open(self, height, width):
        """Add the streams (video first) once the frame size is known; nothing is muxed before."""
        reader = self.reader
        stream = self.container.add_stream(_encoder(self.output), rate=reader.rate,
                                           options=dict(self.output.options))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = reader.video.time_base
        stream.codec_context.time_base = reader.video.time_base
        self.video = stream
        in_audio = reader.audio_stream
        if in_audio is None:
            return
        if reader.copy_audio:
            self.audio = self.container.add_stream_from_template(in_audio)
        else:
            ctx = in_audio.codec_context
            self.audio = self.container.add_stream(self.output.audio_encoder,
                                                   rate=self.output.audio_rate or ctx.sample_rate)
            # by channel count: AVI's '1 channels' (no order) is refused by the AAC encoder
            self.audio.layout = "mono" if ctx.layout.nb_channels == 1 else "stereo"

    def write(self, bgr, frame):
        """One cartoonized uint8 BGR frame at ``frame.pts``, then the audio up to its time."""
        h, w = bgr.shape[:2]
        if h % 2 or w % 2:  # 4:2:0 needs even sizes: repeat the last row/column
            bgr = np.pad(bgr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self.video is None:
            self._open(*bgr.shape[:2])
        picture = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        picture.pts, picture.time_base = frame.pts, self.reader.video.time_base
        picture.duration = frame.duration
        self.container.mux(self.video.encode(picture))
        self.frames += 1
        self.write_audio(until=frame.time)

    def write_audio(self, until=math.inf):
        """Mux the queued audio up to ``until`` s (from the window start)."""
        queue = self.reader.audio
        while queue and queue[0][0] <= until and self.video is not None:
            _, item = queue.popleft()
            if self.reader.copy_audio:
                item.stream = self.audio
                self.container.mux(item)
            else:
                self.container.mux(self.audio.encode(item))

    def finish(self):
        """Flush the encoders and write the index: the file is complete and playable."""
        try:
            if self.video is not None:
                self.write_audio()
                self.container.mux(self.video.encode(None))
                if self.audio is not None and not self.reader.copy_audio:
                    self.container.mux(self.audio.encode(None))
        finally:
            self.container.close()

    def abandon(self):
        try:
            self.container.close()
        except Exception:  # already failing: the first error is the one reported
            pass


# --------------------------------------------------------------------------------------------
# The whole file
# --------------------------------------------------------------------------------------------

def partial_path(target):
    """Where the frames before a broken part go: ``out/clip.mp4`` → ``out/clip.partial.mp4``."""
    stem, ext = os.path.splitext(os.fspath(target))
    return stem + PARTIAL + ext


def _open_input(source, max_pixels):
    av = _av()
    try:
        container = av.open(os.fspath(source))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise ImageReadError(f"not a video PyAV can open ({_reason(e)})") from e
    try:
        stream = _video_stream(container)
        if stream is None:
            raise ImageReadError("no video stream")
        if stream.width and stream.height:
            check_pixels(stream.width, stream.height, max_pixels)
            if min(stream.width, stream.height) < MIN_SIDE:
                raise ImageReadError(f"frames too small: {stream.width}x{stream.height} px")
    except BaseException:
        container.close()
        raise
    return container


def cartoonize_video(source, target, cartoonizer, on_frame=None, start=0.0, duration=0.0,
                     batch_size=BatchOptions.batch_size, max_pixels=MAX_PIXELS):
    """Cartoonize the frames of ``source`` in ``[start, start + duration)`` into ``target``.

    Args:
        source: input video path (any container PyAV opens; see `probe`).
        target: output path; ``.mp4`` (H.264) or ``.webm`` (VP9), see `OUTPUTS` and `output_ext`.
        cartoonizer: a `wbc_tf.inference.Cartoonizer` (``preprocess``, ``run_network``, ``postprocess``).
        on_frame: optional ``on_frame(index, total_or_0)``, called after each frame is written (in the
            writer thread); ``total`` is estimated from the stated length and frame rate.
        start: seconds from the beginning of the video; 0 = from the first frame.
        duration: seconds from ``start``; 0 = to the end.
        batch_size: frames per network call (`BatchOptions.batch_size`; 0 = auto).
        max_pixels: refuse frames larger than this (0 = no limit).

    Returns:
        The number of frames written.

    Raises:
        ImageReadError: not a video, no video stream, frames too small or too large, no frame in the
            window, no encoder for ``target``'s extension.
        VideoStreamError: the input broke at some time; the frames before it are kept in
            `partial_path` ``(target)`` when there are any (a subclass of ImageReadError).
    """
    from wbc_tf import batch  # batch imports this module lazily; no cycle at import time

    output = OUTPUTS.get(os.path.splitext(os.fspath(target))[1].lower())
    if output is None or _encoder(output) is None:
        raise ImageReadError(f"no encoder for {os.path.basename(os.fspath(target))} in this PyAV "
                             f"(writes {', '.join(ext for ext, o in OUTPUTS.items() if _encoder(o))})")
    container = _open_input(source, max_pixels)
    in_audio = container.streams.audio[0].codec_context.name if container.streams.audio else ""
    reader = _Reader(container, start, duration, copy_audio=in_audio in output.copy_audio)
    total = reader.expected_frames()
    folder, name = os.path.split(os.fspath(target))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.part{os.path.splitext(name)[1]}")
    writer = None
    try:
        writer = _Writer(tmp, output, reader)

        def load(frame):
            loaded = batch.prepare(cartoonizer, frame.bgr)
            frame.bgr = None  # the network input holds the picture now
            return loaded

        def save(frame, y, loaded):
            writer.write(batch.finish(cartoonizer, y, loaded)[0], frame)
            if on_frame is not None:
                on_frame(writer.frames, max(total, writer.frames))

        batch.pipeline(reader.frames(), load, save, cartoonizer, batch_size)
        reader.close()
        count = writer.frames
        if count == 0:
            writer.abandon()
            writer = None
            raise _no_frames(reader, start)
        done, writer = writer, None
        done.finish()
        if reader.problem is None:
            os.replace(tmp, target)
            if os.path.exists(partial_path(target)):
                os.remove(partial_path(target))  # from an earlier run on a broken copy of this file
            return count
        partial = partial_path(target)
        os.replace(tmp, partial)
        at, reason = reader.problem
        kept = f"{count} frame{'s' if count != 1 else ''} before it kept in {partial}"
        raise VideoStreamError(f"{reason.format(time=format_time(at))}; {kept}", at, count, partial)
    finally:
        reader.close()
        if writer is not None:
            writer.abandon()
        if os.path.exists(tmp):
            os.remove(tmp)


def _no_frames(reader, start):
    if reader.problem is not None:
        at, reason = reader.problem
        return VideoStreamError(f"{reason.format(time=format_time(at))}; no frame before it", at)
    if start > 0:
        stated = reader.stated
        length = f" (the video is {format_time(stated - reader.origin_seconds)} long)" if stated else ""
        return ImageReadError(f"no video frame after --start {format_time(start)}{length}")
    return ImageReadError("no decodable video frame")
