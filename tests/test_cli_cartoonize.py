"""``wbc-cartoonize`` end to end (in-process ``main``), image reading semantics, bad files, the
dataclass→argparse helper, ``wbc-convert`` round trips, and one ``python -m wbc_tf --help`` subprocess."""

import argparse
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.helpers import zero_png
from wbc_tf import batch
from wbc_tf.cli import cartoonize as cli
from wbc_tf.cli.args import add_dataclass_arguments, dataclass_from_args, field_comments
from wbc_tf.config import InferenceConfig, TrainConfig
from wbc_tf.image_io import ImageReadError, apply_orientation, read_image


def _imread(path, flags=cv2.IMREAD_COLOR):
    return cv2.imdecode(np.fromfile(str(path), np.uint8), flags)


def _save_exif_jpeg(path, rgb, orientation):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes(), quality=95)


@pytest.fixture(scope="module")
def cartoonizer():
    # The CLI caches its Cartoonizer per (weights, config): every main() below reuses this one.
    return cli.load_cartoonizer("bundled", InferenceConfig())


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_rgb, coffee_rgb):
    """A folder of good and bad files; returns (folder, {name: path})."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    bgr_a = np.ascontiguousarray(astronaut_rgb[::4, ::4, ::-1])       # 128 x 128
    bgr_c = np.ascontiguousarray(coffee_rgb[100:203, 200:330, ::-1])  # 103 x 130 -> 96 x 128
    cv2.imwrite(str(root / "astro.png"), bgr_a)
    cv2.imwrite(str(root / "sub" / "coffee.jpg"), bgr_c)
    cv2.imwrite(str(root / "grey.png"), cv2.cvtColor(bgr_c, cv2.COLOR_BGR2GRAY))
    jpg = (root / "sub" / "coffee.jpg").read_bytes()
    png = (root / "astro.png").read_bytes()
    (root / "empty.jpg").write_bytes(b"")
    (root / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    (root / "cut_png.png").write_bytes(png[: len(png) // 2])
    (root / "notes.jpg").write_text("this is not a picture")
    cv2.imwrite(str(root / "tiny.png"), bgr_a[:5, :40])
    (root / ".hidden.png").write_bytes(b"ignored")
    return root


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


# ---- reading: cv2.imread(IMREAD_COLOR) semantics ----------------------------------------------

def test_read_grey_rgba_16bit(tmp_path, rng):
    grey = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    bgr, alpha = read_image(tmp_path / "g.png", keep_alpha=True)
    assert bgr.shape == (20, 30, 3) and alpha is None
    np.testing.assert_array_equal(bgr, np.dstack([grey] * 3))

    bgra = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    bgr, alpha = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(bgr, bgra[..., :3])  # alpha dropped by default
    assert alpha is None
    _, alpha = read_image(tmp_path / "a.png", keep_alpha=True)
    np.testing.assert_array_equal(alpha, bgra[..., 3])

    deep = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    bgr, _ = read_image(tmp_path / "d.png")
    assert bgr.dtype == np.uint8
    np.testing.assert_array_equal(bgr, (deep >> 8).astype(np.uint8))
    np.testing.assert_array_equal(bgr, cv2.imread(str(tmp_path / "d.png")))


def test_exif_orientation_applied_like_imread(tmp_path, rng):
    rgb = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)
    _save_exif_jpeg(tmp_path / "r.jpg", rgb, 6)
    bgr, _ = read_image(tmp_path / "r.jpg")
    assert bgr.shape == (64, 40, 3)  # rotated 90°
    np.testing.assert_array_equal(bgr, cv2.imread(str(tmp_path / "r.jpg")))
    # apply_orientation (used to align alpha) reproduces OpenCV's rotation for all 8 values.
    rgba = rng.integers(0, 256, (12, 20, 4), dtype=np.uint8)
    for k in range(1, 9):
        im = Image.fromarray(rgba, "RGBA")
        exif = im.getexif()
        exif[0x0112] = k
        im.save(tmp_path / f"o{k}.png", exif=exif.tobytes())
        bgr, alpha = read_image(tmp_path / f"o{k}.png", keep_alpha=True)
        np.testing.assert_array_equal(bgr[..., ::-1], apply_orientation(rgba[..., :3], k),
                                      err_msg=f"orientation {k}")
        np.testing.assert_array_equal(alpha, apply_orientation(rgba[..., 3], k), err_msg=f"orientation {k}")


def test_alpha_follows_opencvs_orientation_when_the_colour_is_symmetric(tmp_path, rng):
    """A flat-colour logo with a shaped alpha: its colour cannot tell which way OpenCV turned it,
    yet the alpha comes back turned as cv2.imread turns the colour (PNG and WebP), and not twice
    for TIFF, whose decoder applies the orientation by itself even in IMREAD_UNCHANGED."""
    alpha = rng.integers(0, 256, (12, 20), dtype=np.uint8)
    rgba = np.dstack([np.full((12, 20, 3), 90, np.uint8), alpha])
    for fmt, kwargs in (("PNG", {}), ("WEBP", {"lossless": True}), ("TIFF", {})):
        for k in range(1, 9):
            im = Image.fromarray(rgba, "RGBA")
            exif = im.getexif()
            exif[0x0112] = k
            path = tmp_path / f"logo{k}.{fmt.lower()}"
            im.save(path, fmt, exif=exif.tobytes(), **kwargs)
            bgr, got = read_image(path, keep_alpha=True)
            assert bgr.shape == _imread(path).shape == apply_orientation(rgba[..., :3], k).shape, (fmt, k)
            np.testing.assert_array_equal(got, apply_orientation(alpha, k), err_msg=f"{fmt} {k}")


@pytest.mark.parametrize("name, reason", [
    ("empty.jpg", "empty file"), ("cut.jpg", "truncated"), ("cut_png.png", "truncated"),
    ("notes.jpg", "not an image"), ("tiny.png", "too small")])
def test_bad_files_raise_with_reason(photos, name, reason):
    with pytest.raises(ImageReadError, match=reason):
        read_image(photos / name)


# ---- CLI end to end ------------------------------------------------------------------------------

def test_folder_with_bad_files(photos, tmp_path, capsys, cartoonizer):
    out = tmp_path / "new" / "out"  # missing output folder: created
    code, err = _run(capsys, photos, "-r", "-o", out)
    assert code == 1
    for bad in ("empty.jpg", "cut.jpg", "cut_png.png", "notes.jpg", "tiny.png"):
        lines = [line for line in err.splitlines() if bad in line]
        assert len(lines) == 1 and "error" in lines[0], (bad, err)
    assert "hidden" not in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["astro.png", "grey.png", "sub/coffee.png"]
    # Numbers, not only names: the file equals the Python API on the same decoded input.
    expected = cartoonizer.cartoonize_bgr(_imread(photos / "astro.png"))
    np.testing.assert_array_equal(_imread(out / "astro.png"), expected)
    coffee = _imread(out / "sub" / "coffee.png")
    assert coffee.shape == (96, 128, 3)
    np.testing.assert_array_equal(coffee, cartoonizer.cartoonize_bgr(_imread(photos / "sub" / "coffee.jpg")))
    grey = _imread(out / "grey.png")
    assert grey.shape == (96, 128, 3) and grey.std() > 5


def test_files_and_non_recursive_folder(photos, tmp_path, capsys, cartoonizer):
    code, err = _run(capsys, photos / "astro.png", photos / "sub", "-o", tmp_path)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astro.png", "coffee.png"]
    code, err = _run(capsys, photos / "sub" / "coffee.jpg", tmp_path / "missing.png", "-o", tmp_path / "o2")
    assert code == 1 and "missing.png: no such file" in err
    assert (tmp_path / "o2" / "coffee.png").is_file()


def test_skip_existing_then_overwrite(photos, tmp_path, capsys, cartoonizer):
    target = tmp_path / "astro.png"
    target.write_bytes(b"old")
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path)
    assert code == 0 and "skipping" in err and "--overwrite" in err
    assert target.read_bytes() == b"old"
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path, "--overwrite")
    assert code == 0
    assert _imread(target).shape == (128, 128, 3)


def test_format_jpg_and_quality(photos, tmp_path, capsys, cartoonizer):
    code, _ = _run(capsys, photos / "astro.png", "-o", tmp_path, "--format", "jpg", "--jpg-quality", "97")
    assert code == 0
    data = (tmp_path / "astro.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff"  # JPEG SOI marker
    exact = cartoonizer.cartoonize_bgr(_imread(photos / "astro.png")).astype(float)
    mse = np.mean((_imread(tmp_path / "astro.jpg").astype(float) - exact) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30  # PSNR in dB of the JPEG vs the exact result
    code, _ = _run(capsys, photos / "astro.png", "-o", tmp_path / "q30", "--format", "jpg",
                   "--jpg-quality", "30")
    assert code == 0 and (tmp_path / "q30" / "astro.jpg").stat().st_size < 0.6 * len(data)


def test_keep_alpha_exif_and_non_ascii(tmp_path, capsys, cartoonizer, coffee_rgb):
    src = tmp_path / "in"
    src.mkdir()
    rgb = coffee_rgb[:100, :120]
    alpha = np.tile(np.linspace(0, 255, 120).astype(np.uint8), (100, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src / "logo.png")
    _save_exif_jpeg(src / "rotated.jpg", coffee_rgb[:64, :104], 6)
    Image.fromarray(coffee_rgb[:72, :80]).save(src / "фото 猫.png")

    code, err = _run(capsys, src, "-o", tmp_path / "out", "--keep-alpha", "--format", "jpg")
    assert code == 0, err
    assert "--keep-alpha writes PNG" in err
    logo = _imread(tmp_path / "out" / "logo.png", cv2.IMREAD_UNCHANGED)
    assert logo.shape == (96, 120, 4)
    np.testing.assert_array_equal(logo[..., 3], alpha[:96])
    expected = cartoonizer.cartoonize_bgr(np.ascontiguousarray(rgb[..., ::-1]))
    np.testing.assert_array_equal(logo[..., :3], expected)
    assert _imread(tmp_path / "out" / "rotated.png").shape == (104, 64, 3)  # EXIF 6: 64x104 -> 104x64
    assert _imread(tmp_path / "out" / "фото 猫.png").shape == (72, 80, 3)


def test_pipeline_flags_reach_the_model(photos, tmp_path, capsys, cartoonizer):
    code, _ = _run(capsys, photos / "sub" / "coffee.jpg", "-o", tmp_path,
                   "--fit", "pad", "--rounding", "round")
    assert code == 0
    assert _imread(tmp_path / "coffee.png").shape == (103, 130, 3)  # exact input size
    with pytest.raises(SystemExit) as e:
        cli.main([str(photos), "-o", str(tmp_path), "--fit", "stretch"])
    assert e.value.code == 2


def test_bad_weights_exit_2(photos, tmp_path, capsys):
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path, "--weights", tmp_path / "nope.npz")
    assert code == 2 and "cannot load weights" in err


def test_bomb_in_a_folder_quiet_stderr_and_peak_rss(tmp_path, astronaut_rgb):
    """The issue's case, as a user runs it (a fresh process): a valid 2.6 MB PNG of 30000x30000 px
    among good and broken files. It is refused in one line, the good file is done, exit status 1,
    peak RSS < 1 GB (decoding it would take 2.7 GB), and stderr holds exactly our lines: no TensorFlow
    start-up lines, no libpng / libtiff / Pillow messages."""
    folder = tmp_path / "in"
    folder.mkdir()
    zero_png(folder / "bomb.png", 30000, 30000)
    cv2.imwrite(str(folder / "good.jpg"), np.ascontiguousarray(astronaut_rgb[::4, ::4, ::-1]))
    for ext in (".png", ".tif"):
        data = cv2.imencode(ext, astronaut_rgb[::4, ::4])[1].tobytes()
        (folder / f"cut_{ext[1:]}{ext}").write_bytes(data[: len(data) // 2])
    # A parent that runs only the CLI, so RUSAGE_CHILDREN is the CLI's own peak.
    wrapper = ("import resource, subprocess, sys\n"
               "code = subprocess.call([sys.executable, '-m', 'wbc_tf'] + sys.argv[1:])\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
               "sys.exit(code)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}   # the user's default
    proc = subprocess.run([sys.executable, "-c", wrapper, str(folder), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 1, proc.stderr
    assert int(proc.stdout.split()[-1]) * 1024 < 1e9  # ru_maxrss is in KiB on Linux
    lines = proc.stderr.splitlines()
    assert all(line.startswith("wbc-cartoonize: ") for line in lines), proc.stderr
    for name in ("bomb.png", "cut_png.png", "cut_tif.tif"):
        assert len([line for line in lines if name in line]) == 1, (name, proc.stderr)
    assert "30000x30000 px (900 MP) is over the max_pixels limit" in proc.stderr
    assert lines[-1] == "wbc-cartoonize: 1 written, 0 skipped, 3 failed" and len(lines) == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_ctrl_c_is_one_line_and_exit_130(photos, tmp_path, capsys, cartoonizer, monkeypatch):
    def interrupted(jobs, cartoonizer, reporter, options):
        reporter.done(jobs[0].source, jobs[0].target)
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run", interrupted)
    code, err = _run(capsys, photos / "astro.png", photos / "grey.png", "-o", tmp_path)
    assert code == 130
    assert err == ("wbc-cartoonize: interrupted; 1 written, 0 skipped, 0 failed so far; run the same "
                   "command again to continue (finished outputs are skipped)\n")


def test_unexpected_error_is_one_line_unless_debug(photos, tmp_path, capsys, cartoonizer, monkeypatch):
    def broken(*args):
        raise RuntimeError("unexpected\nsecond line")

    monkeypatch.setattr(batch, "run", broken)
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path)
    assert code == 1
    assert err == "wbc-cartoonize: error: RuntimeError: unexpected (--debug shows the traceback)\n"
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path, "--debug")
    assert code == 1 and "Traceback" in err and "RuntimeError: unexpected" in err


def test_max_pixels_flag(photos, tmp_path, capsys, cartoonizer):
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path, "--max-pixels", "16K")   # 128 x 128
    assert code == 1 and "128x128 px (0.0164 MP) is over the max_pixels limit of 0.016 MP" in err
    code, err = _run(capsys, photos / "astro.png", "-o", tmp_path, "--max-pixels", "128x128")
    assert code == 0, err
    with pytest.raises(SystemExit) as e:
        cli.main([str(photos), "-o", str(tmp_path), "--max-pixels", "lots"])
    assert e.value.code == 2


def test_help_via_python_m():
    proc = subprocess.run([sys.executable, "-m", "wbc_tf", "--help"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr
    for flag in ("--output-dir", "--recursive", "--format", "--jpg-quality", "--weights", "--overwrite",
                 "--keep-alpha", "--short-side", "--max-size", "--fit", "--rounding", "--gf-eps",
                 "examples:"):
        assert flag in proc.stdout, flag


# ---- dataclass -> argparse helper, wbc-convert ----------------------------------------------------

def test_dataclass_arguments_round_trip():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, InferenceConfig)
    assert dataclass_from_args(InferenceConfig, parser.parse_args([])) == InferenceConfig()
    ns = parser.parse_args(["--short-side", "0", "--max-size", "1024", "--gf-eps", "0.01"])
    expected = InferenceConfig(short_side=0, max_size=1024, gf_eps=0.01)
    assert dataclass_from_args(InferenceConfig, ns) == expected
    assert "Shorter image side" in parser.format_help()

    train = argparse.ArgumentParser()
    add_dataclass_arguments(train, TrainConfig, prefix="t_")
    assert dataclass_from_args(TrainConfig, train.parse_args([]), prefix="t_") == TrainConfig()
    assert field_comments(TrainConfig)["patch_size"].startswith("crops are exactly 256")


def test_convert_round_trip(tmp_path, capsys):
    from wbc_tf.cli.convert import main as convert_main
    from wbc_tf.weights import read_npz
    assert convert_main(["bundled", str(tmp_path / "a.npz")]) == 0
    assert convert_main([str(tmp_path / "a.npz"), str(tmp_path / "b.weights.h5")]) == 0
    assert convert_main([str(tmp_path / "b.weights.h5"), str(tmp_path / "ckpt")]) == 0
    assert (tmp_path / "ckpt" / "checkpoint").is_file()
    assert convert_main([str(tmp_path / "ckpt"), str(tmp_path / "c.npz")]) == 0
    a, c = read_npz(tmp_path / "a.npz"), read_npz(tmp_path / "c.npz")
    assert len(a) == 36 and all(np.array_equal(a[k], c[k]) for k in a)
    assert convert_main([str(tmp_path / "nope"), str(tmp_path / "d.npz")]) == 1


def test_video_frame_by_frame(tmp_path, capsys, cartoonizer, coffee_rgb):
    src = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 12, (72, 52))
    for i in range(4):
        writer.write(np.ascontiguousarray(coffee_rgb[10 * i:10 * i + 52, 200:272, ::-1]))
    writer.release()
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    code, err = _run(capsys, src, tmp_path / "broken.mp4", "-o", tmp_path / "out")
    assert code == 1
    assert len([line for line in err.splitlines() if "broken.mp4" in line]) == 1
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == 12
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 4 and frames[0].shape == (48, 72, 3)  # 52 -> 48: crop to multiples of 8
    first = cv2.VideoCapture(str(src)).read()[1]
    mse = np.mean((frames[0].astype(float) - cartoonizer.cartoonize_bgr(first)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 25  # lossy mp4v, but the same picture
