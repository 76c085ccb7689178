"""`wbc_tf.batch`: output planning, the pipelined loop (threads, order, batches, errors, interruption),
the reporter, and the real model through `run` / `cartoonize_bytes`.

The loop is tested with a stand-in cartoonizer whose network doubles its input and records every call,
so batches, threads and order are visible; the real release model checks the numbers."""

import threading
import time

import cv2
import numpy as np
import pytest

from tests.helpers import zero_png
from wbc_tf import batch
from wbc_tf.config import BatchOptions
from wbc_tf.image_io import ImageTooLarge


class FakeCartoonizer:
    """Network = 2x; records (thread name, input shape) of every call. ``bad`` items fail in the network."""

    def __init__(self, bad=(), interrupt_at=None):
        self.calls, self.bad, self.interrupt_at = [], set(bad), interrupt_at

    def run_network(self, x):
        self.calls.append((threading.current_thread().name, x.shape))
        ids = set(x[:, 0, 0, 0].astype(int).tolist())
        if self.interrupt_at in ids:
            raise KeyboardInterrupt
        if ids & self.bad:
            raise RuntimeError(f"network failed on {sorted(ids & self.bad)}")
        return 2 * x


class Recorder:
    """load/save callbacks for `batch.pipeline` over integer items; ``sizes[i]`` is item i's (h, w)."""

    def __init__(self, sizes, bad_load=(), bad_save=()):
        self.sizes, self.bad_load, self.bad_save = sizes, set(bad_load), set(bad_save)
        self.saved, self.threads = [], {"load": set(), "save": set()}

    def load(self, i):
        self.threads["load"].add(threading.current_thread().name)
        if i in self.bad_load:
            raise ValueError(f"cannot read {i}")
        h, w = self.sizes[i]
        return batch.Loaded(np.full((1, h, w, 3), i, np.float32), (h, w))

    def save(self, i, y, loaded):
        self.threads["save"].add(threading.current_thread().name)
        if i in self.bad_save:
            raise OSError(f"disk full at {i}")
        assert y.shape == loaded.geometry + (3,)
        assert np.all(y == 2 * i)                    # its own result, not a neighbour's
        self.saved.append(i)


A, B = (8, 16), (16, 8)


def test_order_threads_and_same_size_batches():
    rec, net = Recorder([A, A, A, B, A, A]), FakeCartoonizer()
    done = []
    saved = batch.pipeline(range(6), rec.load, rec.save, net, batch_size=2, on_done=done.append)
    assert saved == 6 and rec.saved == done == [0, 1, 2, 3, 4, 5]
    # Consecutive items of one size share a call (at most 2); a size change closes the batch.
    assert [shape[0] for _, shape in net.calls] == [2, 1, 1, 2]
    assert [shape[1:3] for _, shape in net.calls] == [A, A, B, A]
    assert {name for name, _ in net.calls} == {threading.current_thread().name}   # the calling thread
    assert rec.threads["load"] == {"wbc-read_0"} and rec.threads["save"] == {"wbc-write_0"}


def test_errors_are_per_item_and_a_failed_batch_is_retried_one_by_one():
    rec, net = Recorder([A] * 6, bad_load=[1], bad_save=[4]), FakeCartoonizer(bad=[3])
    errors = []
    saved = batch.pipeline(range(6), rec.load, rec.save, net, batch_size=2,
                           on_error=lambda item, e: errors.append((item, type(e).__name__)))
    assert saved == 3 and rec.saved == [0, 2, 5]
    assert errors == [(1, "ValueError"), (3, "RuntimeError"), (4, "OSError")]
    # [0, 2] together, then [3, 4] fails and is retried as [3] (fails) and [4] (works), then [5].
    assert [shape[0] for _, shape in net.calls] == [2, 2, 1, 1, 1]


def test_without_on_error_the_first_error_is_raised_after_earlier_results_are_saved():
    rec, net = Recorder([A] * 5), FakeCartoonizer(bad=[2])
    with pytest.raises(RuntimeError, match=r"\[2\]"):
        batch.pipeline(range(5), rec.load, rec.save, net, batch_size=1)
    assert rec.saved == [0, 1]


def test_results_wait_for_the_writer_in_a_bounded_queue():
    """A slow writer holds the network back: network call i starts only after item i - 3 was saved
    (at most MAX_QUEUED_WRITES results wait), so memory stays bounded whatever the folder size."""
    events, lock = [], threading.Lock()

    class Net(FakeCartoonizer):
        def run_network(self, x):
            with lock:
                events.append(("net", int(x[0, 0, 0, 0])))
            return 2 * x

    def save(i, y, loaded):
        time.sleep(0.05)
        with lock:
            events.append(("save", i))

    batch.pipeline(range(8), Recorder([A] * 8).load, save, Net(), batch_size=1)
    for i in range(3, 8):
        assert events.index(("save", i - 3)) < events.index(("net", i)), events


def test_iteration_errors_propagate_even_with_on_error():
    """A video stream that breaks after three frames: the three are saved, then the error is raised."""
    def frames():
        yield from range(3)
        raise EOFError("truncated stream")

    rec, errors = Recorder([A] * 3), []
    with pytest.raises(EOFError, match="truncated"):
        batch.pipeline(frames(), rec.load, rec.save, FakeCartoonizer(), batch_size=1,
                       on_error=lambda item, e: errors.append(item))
    assert rec.saved == [0, 1, 2] and errors == []


def test_keyboard_interrupt_stops_the_loop_and_keeps_finished_results():
    rec = Recorder([A] * 6)
    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        batch.pipeline(range(6), rec.load, rec.save, FakeCartoonizer(interrupt_at=3), batch_size=1,
                       on_error=lambda item, e: None)
    assert rec.saved == [0, 1, 2]
    for thread in threading.enumerate():  # the writer is shut down; the reader finishes its one read
        if thread.name.startswith("wbc-read"):
            thread.join(timeout=30)
    assert threading.active_count() <= before


def test_auto_batch_size(monkeypatch):
    shape = (1, 720, 1280, 3)                                         # 0.92 MP per frame
    monkeypatch.setattr(batch, "gpu_available", lambda: False)
    assert batch.batch_limit(0, shape) == 1                           # CPU: the original's path
    assert batch.batch_limit(3, shape) == 3                           # explicit
    monkeypatch.setattr(batch, "gpu_available", lambda: True)
    assert batch.batch_limit(0, shape) == batch.AUTO_BATCH_PIXELS // (720 * 1280) == 4
    assert batch.batch_limit(0, (1, 64, 64, 3)) == batch.AUTO_BATCH_MAX
    assert batch.batch_limit(0, (1, 4000, 6000, 3)) == 1

    class Budget:  # tiles anything above two frames: the batch must stay untiled
        def tile_plan(self, n, h, w):
            return None if n <= 2 else "tiled"
    assert batch.batch_limit(0, shape, Budget()) == 2


# ---- planning ----------------------------------------------------------------------------------------

def test_plan_reports_name_clash_and_self_overwrite(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    plan = batch.plan_outputs([str(tmp_path)], str(tmp_path), ".png", overwrite=True)
    reasons = sorted(r.split(" would ")[1] for _, r in plan.failures)
    assert reasons == ["overwrite another input file", "overwrite the input itself"] and not plan.jobs
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "b.bmp").write_bytes(b"x")
    plan = batch.plan_outputs([str(tmp_path / "b.jpg"), str(tmp_path / "b.bmp")], str(tmp_path / "out"))
    assert [j.source for j in plan.jobs] == [str(tmp_path / "b.jpg")]
    assert "already used by" in plan.failures[0][1]


def test_plan_targets_skips_and_videos(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("in/a.jpg", "in/sub/b.png", "in/clip.MOV", "in/.hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.jpg").write_bytes(b"old")
    plan = batch.plan_outputs([str(tmp_path / "in"), str(tmp_path / "in" / "a.jpg"), str(tmp_path / "nope")],
                              str(out), ".jpg", recursive=True)
    assert sorted((j.target, j.video) for j in plan.jobs) == [(str(out / "a.jpg"), False),
                                                              (str(out / "clip.mp4"), True)]
    assert plan.skips == [(str(tmp_path / "in" / "sub" / "b.png"),
                           f"{out / 'sub' / 'b.jpg'} exists (use --overwrite to replace it)")]
    assert plan.failures == [(str(tmp_path / "nope"), "no such file or folder")]


# ---- reporting ---------------------------------------------------------------------------------------

def test_reporter_lines_counts_and_quiet(capsys):
    reporter = batch.Reporter("prog")
    reporter.start(3)
    reporter.done("a.jpg", "out/a.png")
    reporter.failed("b.jpg", "too large")
    reporter.skipped("c.jpg", "exists")
    reporter.note("hello")
    reporter.close()
    assert capsys.readouterr().err.splitlines() == [
        "prog: error: b.jpg: too large", "prog: skipping c.jpg: exists", "prog: note: hello"]
    assert reporter.summary() == "1 written, 1 skipped, 1 failed" and reporter.any_failed
    quiet = batch.Reporter("prog", quiet=True)
    quiet.skipped("c.jpg", "exists")
    quiet.note("hello")
    quiet.failed("b.jpg", "too large")                                 # errors are always shown
    assert capsys.readouterr().err.splitlines() == ["prog: error: b.jpg: too large"]


def test_reporter_debug_traceback(capsys):
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        error = e
    batch.Reporter("prog").failed("x", "boom", error)
    assert "Traceback" not in capsys.readouterr().err
    batch.Reporter("prog", debug=True).failed("x", "boom", error)
    err = capsys.readouterr().err
    assert err.startswith("prog: error: x: boom\nTraceback") and "RuntimeError: boom" in err


def test_describe_error_is_one_short_line():
    class ResourceExhaustedError(Exception):
        pass
    long = RuntimeError("first line\n" + "x" * 1000)
    assert batch.describe_error(long) == "RuntimeError: first line"
    assert len(batch.describe_error(RuntimeError("y" * 1000))) == batch.MAX_REASON
    assert batch.describe_error(ResourceExhaustedError("OOM\nallocator dump")).startswith("out of memory")
    assert batch.describe_error(ImageTooLarge("too large: 1x1 px")) == "too large: 1x1 px"


# ---- the real model --------------------------------------------------------------------------------

def test_batched_network_equals_one_at_a_time(cartoonizer, astronaut_rgb, monkeypatch):
    """On the CPU a batch of two gives each image's own numbers, bit for bit (the loop may batch)."""
    bgr = np.ascontiguousarray(astronaut_rgb[..., ::-1])
    xs = [cartoonizer.preprocess(np.ascontiguousarray(bgr[r:r + 96, 100:228]))[0] for r in (0, 200, 350)]
    singles = [cartoonizer.run_network(x)[0] for x in xs]
    out = []
    loaded = [batch.Loaded(x, None) for x in xs]
    batch.pipeline(range(3), lambda i: loaded[i], lambda i, y, _: out.append((i, y.copy())), cartoonizer,
                   batch_size=3)
    assert [i for i, _ in out] == [0, 1, 2]
    for (_, y), single in zip(out, singles):
        np.testing.assert_array_equal(y, single)


def test_run_and_cartoonize_bytes_agree_with_the_api(cartoonizer, coffee_rgb, tmp_path, capsys):
    bgr = np.ascontiguousarray(coffee_rgb[100:203, 200:330, ::-1])       # 103 x 130 -> 96 x 128
    cv2.imwrite(str(tmp_path / "a.png"), bgr)
    zero_png(tmp_path / "bomb.png", 30000, 30000)
    (tmp_path / "notes.png").write_text("not a picture")
    plan = batch.plan_outputs([str(tmp_path)], str(tmp_path / "out"), ".png")
    reporter = batch.Reporter("t")
    batch.run(plan.jobs, cartoonizer, reporter, BatchOptions())
    assert reporter.counts == {"written": 1, "failed": 2}
    assert [p.rsplit("/", 1)[1] for p, _ in reporter.failures] == ["bomb.png", "notes.png"]
    expected = cartoonizer.cartoonize_bgr(bgr)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "a.png")), expected)
    encoded = batch.cartoonize_bytes((tmp_path / "a.png").read_bytes(), cartoonizer)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR), expected)
    with pytest.raises(ImageTooLarge):
        batch.cartoonize_bytes((tmp_path / "bomb.png").read_bytes(), cartoonizer)
