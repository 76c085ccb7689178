"""Deployment artefacts (issue #5): SavedModel, TFLite, ONNX, each checked (`wbc_tf.export.verify`)
against the Cartoonizer.

Unmarked (CI): the reference is the Cartoonizer; the SavedModel (every signature, reloaded in a
fresh process and through the session loader TF Serving uses, equal to the reference exactly, the
strength signatures included; serving_default's shorter-side rule; bad requests refused with an error
naming the image; a 24 MP JPEG through serving_default in a fresh process under 2 GB peak RSS), the
dynamic fp32 TFLite file (max |Δ| ≤ 1, ≥ 99.9 % equal after truncation, builtin ops only, its
strength input), the Flex-op guard and the CLI.
Slow (--run-slow): fp16 / dynamic-range / int8, fixed-size files, ONNX, the full default export.

Sizes are small real-photo crops (64x96 and 96x64) so the unmarked part stays well under 150 s on
two cores; every artefact is exported once per module (the SavedModel with the default request
limits, which the 24 MP test needs; the shorter-side rule is checked on a crop scaled up to 760 px).
"""

import io
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from wbc_tf.cli import export as cli
from wbc_tf.config import ExportConfig, InferenceConfig, TFLiteVariant, choices, parse_size
from tests.helpers import HIGH_WATER, zero_png
from wbc_tf.export import saved_model as sm
from wbc_tf.export import tflite as tfl
from wbc_tf.export import verify
from wbc_tf.export.exporter import load_generator
from wbc_tf.export.serving import ServingLimits
from wbc_tf.inference import Cartoonizer

TEST_LIMITS = ServingLimits()                    # the defaults: short side 720, 200 MP, 4 MP network
TEST_SHORT_SIDE = TEST_LIMITS.short_side


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generator():
    """The generator with the bundled release weights."""
    return load_generator()


@pytest.fixture(scope="module")
def reference(generator):
    return verify.Reference(verify.reference_cartoonizer(generator))


@pytest.fixture(scope="module")
def small_photos():
    """Real-photo crops, non-square both ways, H and W multiples of 8."""
    return {
        "coffee 64x96": verify.load_photo("coffee")[120:184, 200:296],
        "astronaut 96x64": verify.load_photo("astronaut")[40:136, 200:264],
    }


@pytest.fixture(scope="module")
def saved_model_dir(generator, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "saved_model"
    sm.export_saved_model(generator, path, limits=TEST_LIMITS)
    return str(path)


@pytest.fixture(scope="module")
def loaded(saved_model_dir):
    """The SavedModel loaded in this process (for format / shape tests; exactness uses a fresh one)."""
    return tf.saved_model.load(saved_model_dir)


@pytest.fixture(scope="module")
def fp32_model(generator):
    return tfl.convert(generator, "fp32")


def _encode(image_rgb, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(image_rgb).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _decode(png):
    return np.array(Image.open(io.BytesIO(png)).convert("RGB"))


# ---- reference ----------------------------------------------------------------------------------

def test_reference_is_the_cartoonizer(generator, reference, small_photos):
    """The checks' reference is Cartoonizer.cartoonize exactly (full resolution, pad mode, so a size
    that is not a multiple of 8 keeps its size), and its float output that before the truncation."""
    cartoonizer = Cartoonizer(generator, InferenceConfig(short_side=0, fit="pad"))
    images = dict(small_photos, odd=small_photos["coffee 64x96"][:61, :91])
    for name, image in images.items():
        out = reference.float_rgb(name, image)
        assert out.shape == image.shape and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 255 and not np.all(out == np.floor(out))
        expected = cartoonizer.cartoonize(image)
        np.testing.assert_array_equal(reference.uint8_rgb(name, image), expected, err_msg=name)
        np.testing.assert_array_equal(out.astype(np.uint8), expected, err_msg=name)
    # At a strength: Cartoonizer.cartoonize with that strength, exactly.
    at = Cartoonizer(generator, InferenceConfig(short_side=0, fit="pad", strength=verify.CHECK_STRENGTH))
    image = images["odd"]
    np.testing.assert_array_equal(reference.uint8_rgb("odd", image, verify.CHECK_STRENGTH),
                                  at.cartoonize(image))
    np.testing.assert_array_equal(reference.float_rgb("odd", image, 0.0), image.astype(np.float32))


# ---- SavedModel -------------------------------------------------------------------------------

def test_saved_model_signatures(loaded):
    assert set(loaded.signatures) == {sm.BYTES_SIGNATURE, sm.UINT8_SIGNATURE, sm.BYTES_STRENGTH_SIGNATURE,
                                      sm.UINT8_STRENGTH_SIGNATURE}
    batch = [None, None, None, 3]
    for name, inputs, dtype, shape, output, out_dtype in (
            (sm.BYTES_SIGNATURE, [sm.BYTES_INPUT], tf.string, [None], sm.BYTES_OUTPUT, tf.string),
            (sm.BYTES_STRENGTH_SIGNATURE, [sm.BYTES_INPUT, sm.STRENGTH_INPUT], tf.string, [None],
             sm.BYTES_OUTPUT, tf.string),
            (sm.UINT8_SIGNATURE, [sm.UINT8_INPUT], tf.uint8, batch, sm.UINT8_OUTPUT, tf.uint8),
            (sm.UINT8_STRENGTH_SIGNATURE, [sm.UINT8_INPUT, sm.STRENGTH_INPUT], tf.uint8, batch,
             sm.UINT8_OUTPUT, tf.uint8)):
        fn = loaded.signatures[name]
        specs = fn.structured_input_signature[1]
        assert sorted(specs) == sorted(inputs), name
        assert specs[inputs[0]].dtype == dtype and specs[inputs[0]].shape.as_list() == shape
        if sm.STRENGTH_INPUT in specs:
            assert specs[sm.STRENGTH_INPUT].dtype == tf.float32
            assert specs[sm.STRENGTH_INPUT].shape.as_list() == [None]   # one per image (REST rows), or one
        assert fn.structured_outputs[output].dtype == out_dtype


def test_saved_model_has_no_assert_or_pyfunc(saved_model_dir):
    ops = set(sm.saved_model_ops(saved_model_dir))
    assert not ops & sm.FORBIDDEN_OPS
    assert {"DecodeImage", "EncodePng", "MirrorPad"} <= ops  # bytes path and reflect padding in-graph
    assert "DecodeRaw" in ops                                 # EXIF orientation, header sizes in-graph
    assert {"StringToNumber", "IgnoreErrorsDataset"} <= ops   # request errors without Assert (serving.py)
    # Weights stored once (ExportArchive would store 11.7 MB); the four signatures' graphs: 1.3 MB.
    assert sm.directory_size(os.path.join(saved_model_dir, "variables")) < 6.5e6
    assert os.path.getsize(os.path.join(saved_model_dir, "saved_model.pb")) < 2.5e6


def test_saved_model_equals_keras_exactly_in_fresh_process(saved_model_dir, small_photos, reference):
    """Both signatures, reloaded in a new process (PNG in/out for serving_default), plus the TF1
    session loader of TF Serving (saved_model_cli run): identical uint8 output, including a
    size that is not a multiple of 8."""
    results = verify.check_saved_model(saved_model_dir, small_photos, reference, limits=TEST_LIMITS)
    assert [r.artefact.split()[-1] for r in results] == [
        sm.BYTES_SIGNATURE, sm.UINT8_SIGNATURE, sm.BYTES_STRENGTH_SIGNATURE, sm.UINT8_STRENGTH_SIGNATURE,
        sm.UINT8_SIGNATURE, sm.BYTES_SIGNATURE]                  # the last two: the session loader
    for result in results:
        assert result.passed, (result.artefact, result.check, result.measured)
        assert len(result.per_image) >= 1
        assert all(m["equal"] == 1.0 for m in result.per_image.values())
    odd = [name for name in results[0].per_image if name.endswith("]")]
    assert odd, "a non-multiple-of-8 size must be in the check"
    exif = [name for name in results[0].per_image if "EXIF orientation 6" in name]
    assert exif, "serving_default must be checked on an EXIF-rotated JPEG"
    rule = [name for name in results[0].per_image if f"short side rule: {TEST_SHORT_SIDE}" in name]
    assert rule, "the shorter-side rule must be checked"


@pytest.mark.parametrize("fmt, kwargs", [("JPEG", {"quality": 90}), ("BMP", {}), ("GIF", {}),
                                         ("PNG", {})])
def test_bytes_signature_decodes_like_cv2_imread(loaded, reference, small_photos, fmt, kwargs):
    """Every format TF Serving clients send: output PNG of the same size, equal to Keras on the
    image as cv2.imread decodes it."""
    image = small_photos["astronaut 96x64"]
    data = _encode(image, fmt, **kwargs)
    out = loaded.signatures[sm.BYTES_SIGNATURE](images_bytes=tf.constant([data]))[sm.BYTES_OUTPUT]
    cartoon = _decode(out.numpy()[0])
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:  # an OpenCV build without GIF support: Pillow maps the palette the same way
        decoded = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
    else:
        decoded = decoded[..., ::-1]
    assert cartoon.shape == image.shape
    expected = reference.uint8_rgb(f"{fmt} decoded", np.ascontiguousarray(decoded))
    assert verify.equal_fraction(cartoon, expected) >= 0.999


def test_bytes_signature_applies_exif_orientation_like_cv2_imread(loaded, reference, small_photos):
    """Phone photos: pixels stored sideways plus an EXIF Orientation tag (6 in a JPEG, 8 in a PNG
    eXIf chunk; Pillow writes both). cv2.imread turns them upright, so must serving_default: the
    output has H and W swapped and equals Keras on the image as cv2.imread decodes it."""
    stored = small_photos["coffee 64x96"]
    batch = []
    for fmt, k, kwargs in (("JPEG", 6, {"quality": 95}), ("PNG", 8, {})):
        tags = Image.Exif()
        tags[0x0112] = k
        batch.append(_encode(stored, fmt, exif=tags.tobytes(), **kwargs))
    out = loaded.signatures[sm.BYTES_SIGNATURE](images_bytes=tf.constant(batch))[sm.BYTES_OUTPUT]
    for data, png, k in zip(batch, out.numpy(), (6, 8)):
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        assert decoded.shape == (96, 64, 3)                   # cv2.imread rotated it
        cartoon = _decode(png)
        assert cartoon.shape == decoded.shape, k
        np.testing.assert_array_equal(
            cartoon, reference.uint8_rgb(f"EXIF {k}", np.ascontiguousarray(decoded)), err_msg=str(k))


def test_bytes_signature_batch_of_mixed_sizes_grey_and_alpha(loaded, small_photos, reference):
    a = small_photos["coffee 64x96"]
    b = small_photos["astronaut 96x64"][:50, :43]                        # odd size: padded inside
    grey = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([b, np.full(b.shape[:2], 7, np.uint8)])              # alpha dropped like cv2
    batch = [_encode(a, "PNG"), _encode(b, "PNG"), _encode(grey, "PNG"), _encode(rgba, "PNG")]
    out = loaded.signatures[sm.BYTES_SIGNATURE](images_bytes=tf.constant(batch))[sm.BYTES_OUTPUT]
    cartoons = [_decode(png) for png in out.numpy()]
    np.testing.assert_array_equal(cartoons[0], reference.uint8_rgb("a", a))
    np.testing.assert_array_equal(cartoons[1], reference.uint8_rgb("b", b))
    np.testing.assert_array_equal(cartoons[2], reference.uint8_rgb("grey", np.dstack([grey] * 3)))
    np.testing.assert_array_equal(cartoons[3], reference.uint8_rgb("b", b))


@pytest.mark.parametrize("hw", [(8, 8), (9, 15), (13, 21)])
def test_uint8_signature_any_size_from_8(loaded, reference, small_photos, hw):
    image = np.ascontiguousarray(small_photos["coffee 64x96"][: hw[0], : hw[1]])
    out = loaded.signatures[sm.UINT8_SIGNATURE](images=tf.constant(np.stack([image, image])))
    out = out[sm.UINT8_OUTPUT].numpy()
    assert out.shape == (2,) + image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], reference.uint8_rgb(f"{hw}", image))
    np.testing.assert_array_equal(out[1], out[0])


def test_uint8_signature_refuses_too_small_and_too_large_cleanly(loaded):
    """Under 8 px, or more network pixels at once than --serving-max-network-pixels: an
    InvalidArgument error that says why, before the network runs (no Assert op)."""
    fn = loaded.signatures[sm.UINT8_SIGNATURE]
    with pytest.raises(tf.errors.InvalidArgumentError, match="images: 1 x 20x4 px: each side must be at "):
        fn(images=tf.zeros([1, 4, 20, 3], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="serving-max-network-pixels"):
        fn(images=tf.zeros([1, 2048, 2048, 3], tf.uint8))                 # 4.2 MP > 4 MP
    with pytest.raises(tf.errors.InvalidArgumentError, match="images: 3 x 1600x1000 px"):
        fn(images=tf.zeros([3, 1000, 1600, 3], tf.uint8))                 # 1.6 MP each, 4.8 MP at once


def _gif_of_frames(width, height, frames):
    """A 1 kB GIF whose ``frames`` image descriptors each claim width x height pixels: giflib would
    allocate all of them before TensorFlow looked at the first (the data is not even valid)."""
    size = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    head = b"GIF89a" + size + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"   # 2-colour table
    frame = b"\x2c\x00\x00\x00\x00" + size + b"\x00" + b"\x02\x02\x4c\x01\x00"  # 1 data sub-block
    return head + frame * frames + b"\x3b"


def _png_bytes(image_rgb):
    return cv2.imencode(".png", np.ascontiguousarray(image_rgb[..., ::-1]))[1].tobytes()


def test_serving_default_refuses_bad_images_naming_them(loaded, small_photos, tmp_path):
    """One bad image in a batch: InvalidArgument naming its index and the reason; a decompression
    bomb (30000x30000 PNG, 2.6 MB) and a GIF of many frames are refused from the header."""
    good = _png_bytes(small_photos["coffee 64x96"])
    zero_png(tmp_path / "bomb.png", 30000, 30000)
    jpeg = _encode(small_photos["coffee 64x96"], "JPEG")
    frames = [Image.fromarray(small_photos["coffee 64x96"][:, ::k].copy()[:, :40]) for k in (1, 2)]
    animated = io.BytesIO()
    frames[0].save(animated, "WEBP", save_all=True, append_images=frames[1:])
    cases = {
        "bomb": ((tmp_path / "bomb.png").read_bytes(), r"PNG 30000x30000 px \(900000000 px to decode\)"),
        "gif frames": (_gif_of_frames(2000, 2000, 60), r"GIF 2000x2000 px \(240000000 px to decode\)"),
        "tiny": (_png_bytes(small_photos["coffee 64x96"][:7]), "96x7 px: each side must be at least 8 px"),
        "text": (b"not an image", "not a JPEG, PNG, GIF, BMP or WebP file"),
        "cut header": (good[:20], "the PNG header cannot be read"),
        "cut data": (jpeg[: len(jpeg) // 2], "the image data cannot be decoded"),
        "animated webp": (animated.getvalue(), "an animated WebP: not supported"),
    }
    fn = loaded.signatures[sm.BYTES_SIGNATURE]
    for name, (data, reason) in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"images_bytes\[1\]: " + reason):
            fn(images_bytes=tf.constant([good, data, good]))
    assert len(fn(images_bytes=tf.constant([good, good]))[sm.BYTES_OUTPUT].numpy()) == 2  # still serving


def test_strength_signatures(loaded, small_photos):
    """strength 0 returns the photo, 1 the serving_default output, one value per image or one for all;
    a strength outside 0..1 or a wrong count is refused, naming it."""
    a, b = small_photos["coffee 64x96"], small_photos["astronaut 96x64"][:50, :43]
    batch = tf.constant([_png_bytes(a), _png_bytes(b)])
    bytes_fn = loaded.signatures[sm.BYTES_STRENGTH_SIGNATURE]
    default = [_decode(p) for p in loaded.signatures[sm.BYTES_SIGNATURE](images_bytes=batch)[sm.BYTES_OUTPUT]
               .numpy()]
    out = [_decode(p) for p in bytes_fn(images_bytes=batch, strength=tf.constant([0.0, 1.0]))[sm.BYTES_OUTPUT]
           .numpy()]
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[1], default[1])
    both = [_decode(p) for p in bytes_fn(images_bytes=batch, strength=tf.constant([0.0]))[sm.BYTES_OUTPUT]
            .numpy()]
    np.testing.assert_array_equal(both[1], b)
    uint8_fn = loaded.signatures[sm.UINT8_STRENGTH_SIGNATURE]
    images = tf.constant(np.stack([a, a]))
    out = uint8_fn(images=images, strength=tf.constant([0.0, 1.0]))[sm.UINT8_OUTPUT].numpy()
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[1], loaded.signatures[sm.UINT8_SIGNATURE](images=images[:1])[
        sm.UINT8_OUTPUT].numpy()[0])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"strength\[1\] = 1.5: must be from 0"):
        bytes_fn(images_bytes=batch, strength=tf.constant([0.5, 1.5]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="strength: 3 values for 2 images"):
        uint8_fn(images=images, strength=tf.constant([0.5, 0.5, 0.5]))


def test_serving_default_24mp_jpeg_in_bounded_memory(generator, saved_model_dir, tmp_path, astronaut_rgb):
    """The issue's bound: a 6000x4000 JPEG through the reloaded default export (short side 720) in a
    fresh process answers at the command line's size and pixels with peak RSS < 2 GB; a 30000x30000
    PNG sent first is refused without being decoded (decoding it alone would take 2.7 GB)."""
    photo = cv2.resize(astronaut_rgb, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    jpeg = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    (tmp_path / "photo.jpg").write_bytes(jpeg.tobytes())
    zero_png(tmp_path / "bomb.png", 30000, 30000)
    script = textwrap.dedent("""
        import os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import tensorflow as tf
        model, folder = sys.argv[1:]
        fn = tf.saved_model.load(model).signatures["serving_default"]
        read = lambda name: open(os.path.join(folder, name), "rb").read()
        try:
            fn(images_bytes=tf.constant([read("photo.jpg"), read("bomb.png")]))
            sys.exit("the bomb was not refused")
        except tf.errors.InvalidArgumentError as e:
            assert "images_bytes[1]: PNG 30000x30000 px" in str(e), str(e)
        png = fn(images_bytes=tf.constant([read("photo.jpg")]))["cartoons_bytes"].numpy()[0]
        open(os.path.join(folder, "cartoon.png"), "wb").write(png)
        print(high_water() // 2**20)
    """)
    proc = subprocess.run([sys.executable, "-c", HIGH_WATER + script, saved_model_dir, str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak_mb = int(proc.stdout.split()[-1])
    assert peak_mb < 2048, f"peak RSS {peak_mb} MB"
    cartoon = _decode((tmp_path / "cartoon.png").read_bytes())
    assert cartoon.shape == (720, 1080, 3)
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    cli_rule = Cartoonizer(generator, InferenceConfig(fit="pad"))   # the default short side: 720
    np.testing.assert_array_equal(cartoon, cli_rule.cartoonize_bgr(decoded)[..., ::-1])


# ---- TFLite fp32 (CI) -------------------------------------------------------------------------

def test_fp32_tflite_signature_is_dynamic_rgb_float(fp32_model):
    runner = tfl.TFLiteRunner(fp32_model)
    inp = runner.interpreter.get_input_details()[0]
    out = runner.interpreter.get_output_details()[0]
    assert list(inp["shape_signature"]) == [1, -1, -1, 3] and inp["dtype"] == np.float32
    assert out["dtype"] == np.float32
    assert runner.interpreter.get_signature_list() == {
        "serving_default": {"inputs": [tfl.INPUT_NAME, tfl.STRENGTH_NAME], "outputs": [tfl.OUTPUT_NAME]}}
    strength = runner.interpreter.get_input_details()[1]
    assert list(strength["shape"]) == [1] and strength["dtype"] == np.float32 and runner.has_strength


def test_fp32_tflite_matches_keras(fp32_model, small_photos, reference, tmp_path):
    path = tmp_path / "wbc_fp32.tflite"
    path.write_bytes(fp32_model)
    result = verify.check_tflite(str(path), "fp32", small_photos, reference)
    assert result.passed, result.measured
    for m in result.per_image.values():
        assert m["max_abs"] <= 1.0
        assert m["equal"] >= 0.999           # after the truncating cast: the held-out criterion
    # Output is the clipped float before truncation, in 0..255.
    out = tfl.TFLiteRunner(fp32_model)(small_photos["coffee 64x96"])
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 255
    assert not np.all(out == np.floor(out))
    # The strength input: 0 returns the input values exactly, 1 the default output.
    image = small_photos["coffee 64x96"]
    np.testing.assert_array_equal(tfl.TFLiteRunner(fp32_model)(image, 0.0), image.astype(np.float32))
    np.testing.assert_array_equal(tfl.TFLiteRunner(fp32_model)(image, 1.0), out)
    assert any("at strength" in name for name in result.per_image)


def test_fp32_tflite_builtin_ops_only(fp32_model):
    ops = tfl.op_counts(fp32_model)
    assert tfl.non_builtin_ops(fp32_model) == []
    assert not any(name.startswith("CUSTOM") for name in ops)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "RESIZE_BILINEAR", "LEAKY_RELU"} <= set(ops)
    assert ops["CONV_2D"] == 18 and ops["RESIZE_BILINEAR"] == 2
    gpu, detail = tfl.gpu_compatibility(fp32_model)
    assert gpu in (True, None), detail


def test_builtin_only_conversion_fails_loudly_on_flex_ops():
    """An op outside the builtins (MatrixDeterminant) must fail conversion, not become Flex."""
    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4], tf.float32)])
    def det(x):
        return tf.linalg.det(x) + 1.0

    converter = tfl.builtin_converter(det.get_concrete_function(), tf.Module())
    with pytest.raises(tfl.NonBuiltinOpError):
        tfl.run_converter(converter)

    # And a model that does contain a Flex op (converted with SELECT_TF_OPS) is detected.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([det.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex_model = converter.convert()
    assert any(op.startswith("Flex") for op in tfl.non_builtin_ops(flex_model))
    with pytest.raises(tfl.NonBuiltinOpError, match="Flex"):
        tfl.assert_builtin_only(flex_model)


# ---- config and CLI ---------------------------------------------------------------------------

def test_parse_size_and_config_validation():
    assert parse_size("512") == (512, 512)
    assert parse_size("720x1280") == (720, 1280)
    assert parse_size("0") is None and parse_size("none") is None
    for bad in ("500", "8x12", "abc", "4"):
        with pytest.raises(ValueError):
            parse_size(bad)
    with pytest.raises(ValueError):
        ExportConfig(formats=("tflite", "coreml"))
    with pytest.raises(ValueError):
        ExportConfig(variants=("fp8",))
    assert tfl.tflite_filename("fp16", (512, 512)) == "wbc_fp16_512x512.tflite"
    assert tfl.tflite_filename("int8") == "wbc_int8.tflite"


def test_cli_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--output-dir", "x", "--fixed-size", "500"])
    assert info.value.code == 2


def test_cli_prints_table_and_exits_nonzero_on_failed_check(tmp_path, monkeypatch, capsys):
    """One CLI run (fp32 TFLite only, one check photo) with an impossible bound: the table is
    printed, the report written, and the exit status is 1."""
    monkeypatch.setattr(verify, "CHECK_PHOTOS", ("coffee",))
    monkeypatch.setitem(verify.TFLITE_CRITERIA, "fp32", ("max_abs", -1.0))
    status = cli.main(["--output-dir", str(tmp_path), "--formats", "tflite", "--variants", "fp32",
                       "--fixed-size", "0", "--quiet"])
    out = capsys.readouterr()
    assert status == 1
    assert "wbc_fp32.tflite" in out.out and "FAIL" in out.out and "CONV_2D" in out.out
    assert "FAILED" in out.err
    assert (tmp_path / "wbc_fp32.tflite").stat().st_size > 5e6
    assert (tmp_path / cli.REPORT_FILE).exists()


# ---- slow: other variants, fixed size, ONNX, full export -----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fp16", "dynamic_range", "int8"])
def test_quantized_variants_against_keras(generator, small_photos, reference, tmp_path, variant):
    calibration = verify.calibration_images() if variant == "int8" else None
    model = tfl.convert(generator, variant, calibration=calibration)
    path = tmp_path / tfl.tflite_filename(variant)
    path.write_bytes(model)
    result = verify.check_tflite(str(path), variant, small_photos, reference)
    assert result.passed, result.measured
    assert tfl.non_builtin_ops(model) == []
    assert len(model) < 3.1e6                                # fp16 ≈ 3.0 MB, int8 weights ≈ 1.5 MB
    if variant == "int8":                                     # int8 generator, float guided filter
        ops = tfl.op_counts(model)
        assert ops.get("QUANTIZE") == 1 and ops.get("DEQUANTIZE") == 1


@pytest.mark.slow
def test_fixed_size_fp32_has_static_shape_and_no_shape_ops(generator, reference, tmp_path):
    size = (64, 96)
    model = tfl.convert(generator, "fp32", size)
    runner = tfl.TFLiteRunner(model)
    assert list(runner.interpreter.get_input_details()[0]["shape_signature"]) == [1, 64, 96, 3]
    ops = tfl.op_counts(model)
    assert not {"SHAPE", "FILL", "PACK"} & set(ops)          # window counts folded to constants
    assert tfl.gpu_compatibility(model)[0] in (True, None)
    image = verify.fit_to_size(verify.load_photo("coffee"), size)
    path = tmp_path / tfl.tflite_filename("fp32", size)
    path.write_bytes(model)
    assert verify.check_tflite(str(path), "fp32", {"coffee": image}, reference).passed
    with pytest.raises(ValueError):
        runner(np.zeros((72, 96, 3), np.uint8))


@pytest.mark.slow
def test_onnx_against_keras(generator, small_photos, reference, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from wbc_tf.export.onnx_export import export_onnx
    path = tmp_path / "wbc.onnx"
    export_onnx(generator, path)
    dims = [d.dim_param for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[:3] == ["batch", "height", "width"]
    result = verify.check_onnx(str(path), small_photos, reference)
    assert result.passed, result.measured


@pytest.mark.slow
def test_cli_full_default_export(tmp_path, capsys):
    """The default command: every artefact written and every check passing (exit status 0)."""
    status = cli.main(["--output-dir", str(tmp_path), "--fixed-size", "64x96", "--quiet"])
    out = capsys.readouterr().out
    assert status == 0, out
    names = set(os.listdir(tmp_path))
    for variant in choices(TFLiteVariant):
        assert tfl.tflite_filename(variant) in names
        assert tfl.tflite_filename(variant, (64, 96)) in names
    assert "saved_model" in names
    assert "FAIL" not in out


@pytest.mark.parametrize("short_side", [48, 0])
def test_a_non_default_serving_short_side_is_what_the_graph_applies(generator, short_side):
    """``wbc-export --serving-short-side N`` (here in process, without saving): the bytes signature
    answers at the command line's size for that N (0: full size), with the command line's pixels."""
    photo = verify.load_photo("coffee")[100:196, 150:294]                       # 96x144 RGB
    serve = sm.serving_module(generator, limits=ServingLimits(short_side=short_side)).entry_points
    png = serve[sm.BYTES_SIGNATURE](images_bytes=tf.constant([_png_bytes(photo)]))[sm.BYTES_OUTPUT]
    got = _decode(png.numpy()[0])
    want = Cartoonizer(generator, InferenceConfig(short_side=short_side)).cartoonize(photo)
    assert got.shape == want.shape == ((48, 72, 3) if short_side else (96, 144, 3))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
