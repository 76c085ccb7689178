"""``wbc-prepare-data`` / `wbc_tf.prepare_data`: real photos and a real video in, the training layout out.

The sources are scikit-image photos written as JPEG/PNG, an exact copy, a near copy (re-encoded at
another quality and brightened), a too-small image, two broken files and short videos written with
PyAV's own encoder. Everything is built in a temporary folder; nothing is downloaded.
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
from skimage import data as skdata

from wbc_tf.cli.prepare_data import main
from wbc_tf.config import PrepareConfig, TrainConfig
from wbc_tf.image_io import read_image
from wbc_tf.prepare_data import (COLUMNS, DuplicateFilter, difference_hash, format_report,
                                 prepare_dataset, video_frames)

FPS, SECONDS = 10, 3
FRAME_H, FRAME_W = 272, 320


def write_video(path, frames, fps=FPS, rotation=None):
    """Encode (H, W, 3) uint8 BGR ``frames`` with PyAV (MPEG-4 Part 2, yuv420p)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for bgr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def moving_frames(bgr, count=FPS * SECONDS):
    """``count`` frames panning across ``bgr``: every frame shows a different part of the photo."""
    h, w = bgr.shape[:2]
    steps = np.linspace(0, 1, count)
    return [np.ascontiguousarray(bgr[int(s * (h - FRAME_H)):int(s * (h - FRAME_H)) + FRAME_H,
                                     int(s * (w - FRAME_W)):int(s * (w - FRAME_W)) + FRAME_W]) for s in steps]


def bgr(rgb):
    return np.ascontiguousarray(rgb[..., ::-1])


@pytest.fixture(scope="module")
def sources(tmp_path_factory, astronaut_rgb, coffee_rgb, chelsea_rgb):
    """Source folders: faces/ and scenery/ photos, cartoons/ videos, plus the special cases.

    faces/    astronaut.png, astronaut_copy.png (same pixels), chelsea.jpg, small.png (120x100),
              broken.jpg (the first half of a JPEG), notes.jpg (text)
    scenery/  coffee.jpg, coffee_q70_bright.jpg (near copy), rocket.png, sub/camera.png, readme.txt
    clip.mp4  3 s at 10 fps, panning over the retina photo; still.mp4: 3 s of one picture
    """
    root = tmp_path_factory.mktemp("sources")
    faces, scenery = root / "faces", root / "scenery"
    (scenery / "sub").mkdir(parents=True)
    faces.mkdir()
    cv2.imwrite(str(faces / "astronaut.png"), bgr(astronaut_rgb))
    shutil.copy(faces / "astronaut.png", faces / "astronaut_copy.png")
    cv2.imwrite(str(faces / "chelsea.jpg"), bgr(chelsea_rgb), [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(faces / "small.png"), bgr(astronaut_rgb)[:100, :120])
    jpeg = (faces / "chelsea.jpg").read_bytes()
    (faces / "broken.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    (faces / "notes.jpg").write_text("not an image")
    cv2.imwrite(str(scenery / "coffee.jpg"), bgr(coffee_rgb), [cv2.IMWRITE_JPEG_QUALITY, 95])
    brighter = np.clip(bgr(coffee_rgb).astype(int) + 8, 0, 255).astype(np.uint8)
    cv2.imwrite(str(scenery / "coffee_q70_bright.jpg"), brighter, [cv2.IMWRITE_JPEG_QUALITY, 70])
    cv2.imwrite(str(scenery / "rocket.png"), bgr(skdata.rocket()))
    cv2.imwrite(str(scenery / "sub" / "camera.png"), np.dstack([skdata.camera()] * 3))
    (scenery / "readme.txt").write_text("ignored: not an image or video extension")
    retina = cv2.resize(bgr(skdata.retina()), (700, 700), interpolation=cv2.INTER_AREA)
    write_video(root / "clip.mp4", moving_frames(retina))
    write_video(root / "still.mp4", [bgr(coffee_rgb)[:FRAME_H, :FRAME_W]] * (FPS * SECONDS))
    return root


def run(argv, *, capsys=None):
    """``main(argv + --no-progress)``: (exit status, stderr text or None)."""
    status = main([*map(str, argv), "--no-progress"])
    return status, capsys.readouterr().err if capsys else None


def outputs(folder):
    return sorted(os.listdir(folder))


def four_folder_argv(sources, out, *extra):
    return ["--output-dir", out, "--photo-face", sources / "faces", "--photo-scenery", sources / "scenery",
            "--cartoon-face", sources / "faces" / "chelsea.jpg", sources / "faces" / "astronaut.png",
            "--cartoon-scenery", sources / "clip.mp4", *extra]


@pytest.fixture(scope="module")
def four_folder_run(sources, tmp_path_factory):
    """One run over the four-folder layout with near-duplicate removal: (out, status, stderr)."""
    out = tmp_path_factory.mktemp("run") / "dataset"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = run(four_folder_argv(sources, out, "--near-duplicate-bits", "5"))[0]
    return out, status, err.getvalue()


def test_layout_is_accepted_by_wbc_train(four_folder_run):
    from wbc_tf.data import scan_training_data   # imports TensorFlow: only this test needs it
    out, _, _ = four_folder_run
    data = scan_training_data(out, TrainConfig(batch_size=2))
    assert data.two_domains
    for photo, cartoon in data.domains.values():
        for folder in (photo, cartoon):
            assert folder.files and not folder.unreadable
            assert set(folder.sizes) == {(256, 256)}


def test_counts_per_folder_and_bad_files(four_folder_run):
    out, status, err = four_folder_run
    assert status == 1
    # faces/: astronaut, its copy (duplicate), chelsea, small (too small); broken.jpg, notes.jpg fail.
    assert outputs(out / "photo_face") == ["astronaut_0000.png", "chelsea_0000.png"]
    # scenery/: coffee, its brighter re-encoding (near duplicate), rocket, sub/camera; readme.txt ignored.
    assert outputs(out / "photo_scenery") == ["camera_0000.png", "coffee_0000.png", "rocket_0000.png"]
    assert outputs(out / "cartoon_face") == ["astronaut_0000.png", "chelsea_0000.png"]
    assert outputs(out / "cartoon_scenery") == [f"clip_{k:04d}.png" for k in range(SECONDS)]
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 2
    assert any("broken.jpg" in line and "truncated" in line for line in lines)
    assert any("notes.jpg" in line for line in lines)
    assert "readme.txt" not in err


def test_report_counts(sources, tmp_path):
    config = PrepareConfig(photo_face=(str(sources / "faces"),), photo_scenery=(str(sources / "scenery"),),
                           output_dir=str(tmp_path), near_duplicate_bits=5, progress=False)
    failures = []
    counts = prepare_dataset(config, on_failure=lambda path, reason: failures.append(os.path.basename(path)))
    zero = dict.fromkeys(COLUMNS, 0)
    assert counts == {
        "photo_face": {**zero, "images": 4, "written": 2, "duplicates": 1, "too_small": 1, "failed": 2},
        "photo_scenery": {**zero, "images": 4, "written": 3, "near_duplicates": 1},
    }
    assert sorted(failures) == ["broken.jpg", "notes.jpg"]
    table = format_report(counts).splitlines()
    assert table[0].split() == ["folder", "images", "written", "exists", "duplicates", "near", "duplicates",
                                "too", "small", "failed"]
    assert table[1].split() == ["photo_face", "4", "2", "0", "1", "0", "1", "2"]
    assert table[-1].split() == ["total", "8", "5", "0", "1", "1", "1", "2"]


def test_near_duplicates_kept_when_off(sources, tmp_path):
    status, _ = run(["--output-dir", tmp_path, "--photo", sources / "scenery"])
    assert status == 0
    assert len(outputs(tmp_path / "photo")) == 4      # coffee and its near copy both written


@pytest.mark.parametrize("every, max_frames, expected", [(1.0, 0, 3), (0.5, 0, 6), (0.7, 0, 5), (0.5, 4, 4)])
def test_video_frame_count(sources, every, max_frames, expected):
    frames = list(video_frames(sources / "clip.mp4", every, max_frames))
    assert [k for k, _ in frames] == list(range(expected))
    assert expected == min(max_frames or np.inf, int(np.ceil(SECONDS / every)))
    assert frames[0][1].shape == (FRAME_H, FRAME_W, 3)


def test_video_frames_are_the_frames_at_those_times(sources):
    """Frame k of ``--every-seconds 1`` is the decoded frame at k s (frame 10 k at 10 fps)."""
    with av.open(str(sources / "clip.mp4")) as container:
        every_frame = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    taken = list(video_frames(sources / "clip.mp4", 1.0, 0))
    for k, frame in taken:
        np.testing.assert_array_equal(frame, every_frame[FPS * k])


def test_video_display_rotation_is_applied(tmp_path, coffee_rgb):
    frames = [bgr(coffee_rgb)[:FRAME_H, :FRAME_W]] * 3
    plain = dict(video_frames(write_video(tmp_path / "plain.mp4", frames), 1.0, 0))[0]
    turned = dict(video_frames(write_video(tmp_path / "turned.mp4", frames, rotation=90), 1.0, 0))[0]
    assert turned.shape == (FRAME_W, FRAME_H, 3)
    np.testing.assert_array_equal(turned, np.rot90(plain))      # counter-clockwise, as a player shows it


def test_still_video_frames_are_near_duplicates(sources, tmp_path):
    status, _ = run(["--output-dir", tmp_path, "--cartoon", sources / "still.mp4", "--every-seconds", "0.5",
                     "--near-duplicate-bits", "5"])
    assert status == 0
    assert outputs(tmp_path / "cartoon") == ["still_0000.png"]


def test_broken_video_is_reported(tmp_path, capsys):
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 1000)
    status, err = run(["--output-dir", tmp_path / "out", "--cartoon", tmp_path / "bad.mp4",
                       tmp_path / "missing.png"], capsys=capsys)
    assert status == 1
    assert "bad.mp4: not a video" in err
    assert "missing.png: no such file or folder" in err


def test_crops_are_exactly_size(sources, tmp_path):
    status, _ = run(["--output-dir", tmp_path, "--photo", sources / "scenery", sources / "clip.mp4",
                     "--size", "96", "--crops-per-image", "3"])
    assert status == 0
    files = outputs(tmp_path / "photo")
    assert len(files) == 3 * (4 + SECONDS)
    assert {read_image(tmp_path / "photo" / f)[0].shape for f in files} == {(96, 96, 3)}
    assert "clip_0008.png" in files      # frame 2, crop 2: index = frame * crops_per_image + crop


def find(crop, image):
    """(top, left) where ``crop`` occurs exactly in ``image``, or None."""
    score = cv2.matchTemplate(image.astype(np.float32), crop.astype(np.float32), cv2.TM_SQDIFF)
    top, left = (int(i) for i in np.unravel_index(np.argmin(score), score.shape))
    size = crop.shape[0]
    return (top, left) if np.array_equal(image[top:top + size, left:left + size], crop) else None


def test_random_crops_are_seeded_and_come_from_the_image(sources, tmp_path):
    def crops(seed, out):
        assert run(["--output-dir", out, "--photo", sources / "faces" / "astronaut.png",
                    "--crops-per-image", "4", "--seed", seed])[0] == 0
        return [(tmp_path / out / "photo" / f).read_bytes() for f in outputs(tmp_path / out / "photo")]

    first, again, other = crops(0, tmp_path / "a"), crops(0, tmp_path / "b"), crops(1, tmp_path / "c")
    assert first == again
    assert first != other
    source = read_image(sources / "faces" / "astronaut.png")[0]
    positions = {find(read_image(tmp_path / "a" / "photo" / f)[0], source)
                 for f in outputs(tmp_path / "a" / "photo")}
    assert None not in positions and len(positions) == 4       # four different places of the photo


def test_same_result_with_any_number_of_workers(sources, tmp_path):
    def tree(workers):
        out = tmp_path / str(workers)
        assert run(["--output-dir", out, "--photo", sources / "scenery", sources / "faces" / "astronaut.png",
                    "--near-duplicate-bits", "5", "--workers", workers])[0] == 0
        return {f: (out / "photo" / f).read_bytes() for f in outputs(out / "photo")}

    one = tree(1)
    assert "coffee_0000.png" in one and len(one) == 4
    assert tree(4) == one


def test_centre_and_resize_modes(sources, tmp_path):
    source = read_image(sources / "scenery" / "rocket.png")[0]            # 427 x 640
    assert run(["--output-dir", tmp_path / "c", "--photo", sources / "scenery" / "rocket.png",
                "--mode", "centre"])[0] == 0
    centre = read_image(tmp_path / "c" / "photo" / "rocket_0000.png")[0]
    np.testing.assert_array_equal(centre, source[85:341, 192:448])
    coffee = sources / "scenery" / "coffee.jpg"                           # 400 x 600 -> 256 x 384
    assert run(["--output-dir", tmp_path / "r", "--photo", coffee, "--mode", "resize"])[0] == 0
    resized = read_image(tmp_path / "r" / "photo" / "coffee_0000.png")[0]
    expected = cv2.resize(read_image(coffee)[0], (384, 256), interpolation=cv2.INTER_AREA)[:, 64:320]
    np.testing.assert_array_equal(resized, expected)


def test_small_images_skipped_or_upscaled(sources, tmp_path):
    small = sources / "faces" / "small.png"
    config = PrepareConfig(photo=(str(small),), output_dir=str(tmp_path / "skip"), progress=False)
    assert prepare_dataset(config)["photo"]["too_small"] == 1
    assert outputs(tmp_path / "skip" / "photo") == []
    assert run(["--output-dir", tmp_path / "up", "--photo", small, "--upscale-small"])[0] == 0
    assert read_image(tmp_path / "up" / "photo" / "small_0000.png")[0].shape == (256, 256, 3)


def test_existing_files_are_kept_unless_overwrite(sources, tmp_path):
    argv = ["--output-dir", tmp_path, "--photo", sources / "faces" / "chelsea.jpg", "--seed", "0"]
    assert run(argv)[0] == 0
    target = tmp_path / "photo" / "chelsea_0000.png"
    target.write_bytes(b"placeholder")
    config = PrepareConfig(photo=(str(sources / "faces" / "chelsea.jpg"),), output_dir=str(tmp_path),
                           progress=False)
    assert prepare_dataset(config)["photo"]["exists"] == 1
    assert target.read_bytes() == b"placeholder"
    assert run(argv + ["--overwrite"])[0] == 0
    assert read_image(target)[0].shape == (256, 256, 3)


def test_same_stem_from_two_sources_gets_distinct_names(sources, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "chelsea.png"), np.ascontiguousarray(np.rot90(cv2.imread(
        str(sources / "faces" / "chelsea.jpg")))))
    chelsea = sources / "faces" / "chelsea.jpg"
    assert run(["--output-dir", tmp_path / "out", "--photo", chelsea, other])[0] == 0
    assert outputs(tmp_path / "out" / "photo") == ["chelsea-2_0000.png", "chelsea_0000.png"]


def test_jpeg_output(sources, tmp_path):
    assert run(["--output-dir", tmp_path, "--photo", sources / "faces" / "chelsea.jpg", "--format", "jpg",
                "--jpg-quality", "80"])[0] == 0
    assert (tmp_path / "photo" / "chelsea_0000.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_difference_hash_and_filter(astronaut_rgb, coffee_rgb):
    image = bgr(coffee_rgb)
    ok, encoded = cv2.imencode(".jpg", np.clip(image.astype(int) + 8, 0, 255).astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, 70])
    near = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    h, n, other = difference_hash(image), difference_hash(near), difference_hash(bgr(astronaut_rgb))
    assert bin(h ^ n).count("1") <= 2
    assert bin(h ^ other).count("1") >= 16
    f = DuplicateFilter(near_bits=5)
    assert f.check(b"a", h) is None
    assert f.check(b"a", other) == "duplicates"
    assert f.check(b"b", n) == "near_duplicates"
    assert f.check(b"c", other) is None
    assert DuplicateFilter(near_bits=0).check(b"b", n) is None


def test_usage_errors(sources, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "no sources" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--photo", str(sources), "--photo-face", str(sources)])
    assert exit_info.value.code == 2 and "not both" in capsys.readouterr().err
    with pytest.raises(ValueError, match="every_seconds"):
        PrepareConfig(every_seconds=0)


def test_help_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "wbc_tf.cli.prepare_data", "--help"],
                            capture_output=True, text=True, check=True)
    assert "--every-seconds" in result.stdout
    assert "tensorflow" not in result.stderr
