"""Independent cross-checks of the public seams against references written from the spec alone.

Nothing here imports the package's layers, filters or losses for the reference side; every
reference is re-derived from docs/original_spec.md (shared copy) with plain TF ops / NumPy:

1. `WhiteBoxGAN.loss_terms` (all nine terms) vs a float64 re-implementation of train.py
   (generator §2 with explicit TF1 'SAME' padding and the legacy ×2 resize by its closed form,
   guided filter §3 as a valid-window mean via integral images, colour shift §6.2, ``disc_sn`` §5
   with one power iteration from the stored ``u``, VGG19 pre-ReLU conv4_4 §7.2/§9, losses §7).
2. `Cartoonizer.from_pretrained().cartoonize` vs an emulation of ``test_code/cartoonize.py`` (§4)
   built from the bundled checkpoint tensors with ``tf.nn`` ops in a ``tf.function``.
3. The ``wbc-cartoonize`` CLI on a PNG folder, default settings: same bytes as (2).
4. The fp32 TFLite export of a fixed size vs the same emulation.
"""

import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

F64 = tf.float64
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


# =============================================================================================
# float64 references, from the spec
# =============================================================================================

def _tf1_same_pad(x, k, s):
    """Pad like TF1 'SAME' (§2.2): out = ceil(n/s), total = max((out−1)s + k − n, 0), split
    floor before / rest after (so 3×3 stride 2 on an even size pads 0 top-left, 1 bottom-right)."""
    pads = [[0, 0]]
    for n in x.shape[1:3]:
        out = -(-n // s)
        total = max((out - 1) * s + k - n, 0)
        pads.append([total // 2, total - total // 2])
    pads.append([0, 0])
    return tf.pad(x, pads)


def _conv(x, kernel, bias, stride=1):
    kernel = tf.constant(kernel, F64)
    x = _tf1_same_pad(x, kernel.shape[0], stride)
    return tf.nn.conv2d(x, kernel, stride, "VALID") + tf.constant(bias, F64)


def _lrelu(x):
    return tf.where(x > 0, x, 0.2 * x)


def _legacy_up2_axis(x, axis):
    """Legacy (align_corners=False, half_pixel_centers=False) ×2 along one axis (§2.3):
    out[2i] = x[i], out[2i+1] = (x[i] + x[min(i+1, n−1)]) / 2."""
    n = x.shape[axis]
    nxt = tf.gather(x, np.minimum(np.arange(n) + 1, n - 1), axis=axis)
    both = tf.stack([x, 0.5 * (x + nxt)], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return tf.reshape(both, shape)


def _legacy_up2(x):
    return _legacy_up2_axis(_legacy_up2_axis(x, 1), 2)


def ref_generator(x, t, scope="generator"):
    """``unet_generator`` (§2.1) on TF1-named tensors ``t``; x (B, H, W, 3) float64."""
    def c(name, x, s=1):
        return _conv(x, t[f"{scope}/{name}/weights"], t[f"{scope}/{name}/biases"], s)

    x0 = _lrelu(c("Conv", x))
    x1 = _lrelu(c("Conv_2", _lrelu(c("Conv_1", x0, 2))))
    h = _lrelu(c("Conv_4", _lrelu(c("Conv_3", x1, 2))))
    i = 0
    while f"{scope}/block_{i}/conv1/weights" in t:
        h = c(f"block_{i}/conv2", _lrelu(c(f"block_{i}/conv1", h))) + h   # no activation after the sum
        i += 1
    h = _lrelu(c("Conv_5", h))
    h = _legacy_up2(h) + x1
    h = _lrelu(c("Conv_7", _lrelu(c("Conv_6", h))))
    h = _legacy_up2(h) + x0
    return c("Conv_9", _lrelu(c("Conv_8", h)))                              # linear output


def _window_sum_axis(x, r, axis):
    """Sum over the in-image part of a (2r+1) window along ``axis`` (integral image)."""
    n = x.shape[axis]
    pads = [[0, 0]] * 4
    pads[axis] = [r + 1, r]
    cs = tf.cumsum(tf.pad(x, pads), axis=axis)
    return (tf.gather(cs, np.arange(n) + 2 * r + 1, axis=axis)
            - tf.gather(cs, np.arange(n), axis=axis))


def _window_mean(x, r):
    s = _window_sum_axis(_window_sum_axis(x, r, 1), r, 2)
    ones = tf.ones([1, x.shape[1], x.shape[2], 1], x.dtype)
    n = _window_sum_axis(_window_sum_axis(ones, r, 1), r, 2)
    return s / n


def ref_guided_filter(x, y, r, eps):
    """Per-channel guided filter (§3.2), zero-padded box sums divided by the window count."""
    m = lambda z: _window_mean(z, r)  # noqa: E731
    mx, my = m(x), m(y)
    a = (m(x * y) - mx * my) / (m(x * x) - mx * mx + eps)
    b = my - a * mx
    return m(a) * x + m(b)


def _l2n(z):
    return z / np.sqrt(max(np.sum(z * z), 1e-12))


def ref_sn_kernel(kernel, u):
    """K / σ with one power iteration from the stored u (§5.2)."""
    kernel = np.asarray(kernel, np.float64)
    w = kernel.reshape(-1, kernel.shape[-1])
    v = _l2n(np.asarray(u, np.float64) @ w.T)
    u_hat = _l2n(v @ w)
    sigma = float((v @ w @ u_hat.T)[0, 0])
    return kernel / sigma


_DISC_BODY = (("conv0_1", 2), ("conv0_2", 1), ("conv1_1", 2), ("conv1_2", 1), ("conv2_1", 2), ("conv2_2", 1))


def ref_disc_sn(x, t, scope):
    """``disc_sn`` patch discriminator (§5.1): raw logits (B, H/8, W/8, 1)."""
    for name, stride in _DISC_BODY:
        k = ref_sn_kernel(t[f"{scope}/{name}/kernel"], t[f"{scope}/{name}/u"])
        x = _lrelu(_conv(x, k, t[f"{scope}/{name}/bias"], stride))
    k = ref_sn_kernel(t[f"{scope}/conv_out/kernel"], t[f"{scope}/conv_out/u"])
    return _conv(x, k, t[f"{scope}/conv_out/bias"], 1)


def ref_color_shift(x, weights):
    """BGR split, gray = (w_b B + w_g G + w_r R) / (w_b + w_g + w_r) (§6.2)."""
    wb, wg, wr = weights
    return (wb * x[..., 0:1] + wg * x[..., 1:2] + wr * x[..., 2:3]) / (wb + wg + wr)


_VGG_LAYERS = ("conv1_1", "conv1_2", "P", "conv2_1", "conv2_2", "P", "conv3_1", "conv3_2", "conv3_3",
               "conv3_4", "P", "conv4_1", "conv4_2", "conv4_3", "conv4_4")


def _max_pool_2x2_same(x):
    b, h, w, c = x.shape
    assert h % 2 == 0 and w % 2 == 0  # then SAME == the plain 2×2 blocks
    return tf.reduce_max(tf.reshape(x, [b, h // 2, 2, w // 2, 2, c]), axis=[2, 4])


def ref_vgg_conv4_4(x, vgg):
    """[-1, 1] BGR → (x+1)·127.5 − Caffe BGR mean → conv1_1 … conv4_4, pre-ReLU (§7.2)."""
    x = (x + 1.0) * 127.5 - tf.constant(CAFFE_MEAN_BGR, F64)
    for name in _VGG_LAYERS:
        if name == "P":
            x = _max_pool_2x2_same(x)
            continue
        x = _conv(x, vgg[name][0], vgg[name][1])
        if name != "conv4_4":
            x = tf.nn.relu(x)
    return x


def ref_loss_terms(photo, cartoon, superpixel, color_weights, t, vgg):
    """All nine terms of train.py L54–78 (§7), float64."""
    photo, cartoon, superpixel = (tf.constant(a, F64) for a in (photo, cartoon, superpixel))
    output = ref_guided_filter(photo, ref_generator(photo, t), 1, 1e-2)

    def disc(images):
        blur = ref_guided_filter(images, images, 5, 0.2)
        return (ref_disc_sn(blur, t, "disc_blur"),
                ref_disc_sn(ref_color_shift(images, color_weights), t, "disc_gray"))

    fake_blur, fake_gray = disc(output)
    real_blur, real_gray = disc(cartoon)
    mean = lambda z: float(tf.reduce_mean(z))  # noqa: E731

    def d_loss(real, fake):
        return 0.5 * (mean((real - 1.0) ** 2) + mean(fake ** 2))

    f_out, f_photo, f_sp = (ref_vgg_conv4_4(z, vgg) for z in (output, photo, superpixel))
    _, fh, fw, fc = f_out.shape
    photo_loss = mean(tf.abs(f_photo - f_out)) / (fh * fw * fc)
    superpixel_loss = mean(tf.abs(f_sp - f_out)) / (fh * fw * fc)
    _, h, w, _ = output.shape
    tv = (mean((output[:, 1:] - output[:, :-1]) ** 2)
          + mean((output[:, :, 1:] - output[:, :, :-1]) ** 2)) / (3 * h * w)
    terms = {
        "tv_loss": tv,
        "photo_loss": photo_loss,
        "superpixel_loss": superpixel_loss,
        "g_loss_blur": mean((fake_blur - 1.0) ** 2),
        "g_loss_gray": mean((fake_gray - 1.0) ** 2),
        "d_loss_blur": d_loss(real_blur, fake_blur),
        "d_loss_gray": d_loss(real_gray, fake_gray),
    }
    terms["g_loss_total"] = (1e4 * tv + 0.1 * terms["g_loss_blur"] + terms["g_loss_gray"]
                             + 200.0 * (photo_loss + superpixel_loss))
    terms["d_loss_total"] = terms["d_loss_blur"] + terms["d_loss_gray"]
    return terms


# --- random TF1-named weights --------------------------------------------------------------------

def _generator_shapes(c=32, blocks=4):
    convs = [("Conv", 7, 3, c), ("Conv_1", 3, c, c), ("Conv_2", 3, c, 2 * c), ("Conv_3", 3, 2 * c, 2 * c),
             ("Conv_4", 3, 2 * c, 4 * c)]
    for i in range(blocks):
        convs += [(f"block_{i}/conv1", 3, 4 * c, 4 * c), (f"block_{i}/conv2", 3, 4 * c, 4 * c)]
    convs += [("Conv_5", 3, 4 * c, 2 * c), ("Conv_6", 3, 2 * c, 2 * c), ("Conv_7", 3, 2 * c, c),
              ("Conv_8", 3, c, c), ("Conv_9", 7, c, 3)]
    return convs


def _random_tf1_dict(rng, c=32, blocks=4, dc=32):
    t = {}
    for name, k, cin, cout in _generator_shapes(c, blocks):
        t[f"generator/{name}/weights"] = rng.normal(0, 1 / np.sqrt(k * k * cin), (k, k, cin, cout))
        t[f"generator/{name}/biases"] = rng.normal(0, 0.05, (cout,))
    for scope, cin in (("disc_blur", 3), ("disc_gray", 1)):
        layers = [("conv0_1", 3, cin, dc), ("conv0_2", 3, dc, dc), ("conv1_1", 3, dc, 2 * dc),
                  ("conv1_2", 3, 2 * dc, 2 * dc), ("conv2_1", 3, 2 * dc, 4 * dc),
                  ("conv2_2", 3, 4 * dc, 4 * dc), ("conv_out", 1, 4 * dc, 1)]
        for name, k, ci, co in layers:
            t[f"{scope}/{name}/kernel"] = rng.normal(0, 1 / np.sqrt(k * k * ci), (k, k, ci, co))
            # small biases: with SN the logits are otherwise bias-dominated and barely see the input
            t[f"{scope}/{name}/bias"] = rng.normal(0, 0.01, (co,))
            t[f"{scope}/{name}/u"] = rng.normal(0, 1, (1, co))
    return {k: v.astype(np.float32) for k, v in t.items()}


def _random_vgg_dict(rng):
    vgg, cin = {}, 3
    for name in _VGG_LAYERS:
        if name == "P":
            continue
        block = int(name[4])
        cout = 64 * 2 ** min(block - 1, 3)
        # He-scaled so activations stay O(input) through 16 layers; the inputs are ~±128.
        vgg[name] = [rng.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32),
                     rng.normal(0, 0.05, (cout,)).astype(np.float32)]
        cin = cout
    vgg["conv5_1"] = [np.zeros((3, 3, 512, 512), np.float32), np.zeros(512, np.float32)]  # ignored extra
    return vgg


# =============================================================================================
# 1. loss_terms
# =============================================================================================

def test_loss_terms_match_independent_float64_reference():
    from wbc_tf.config import TrainConfig
    from wbc_tf.gan import build_white_box_gan
    from wbc_tf.weights import gan_to_tf1_dict, load_gan_tf1_dict

    rng = np.random.default_rng(1234)
    tensors = _random_tf1_dict(rng)
    vgg = _random_vgg_dict(rng)
    gan = build_white_box_gan(TrainConfig(), vgg_weights=vgg)
    load_gan_tf1_dict(gan, tensors)
    stored = gan_to_tf1_dict(gan)
    assert set(stored) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(stored[name], value, err_msg=name)

    shape = (2, 64, 96, 3)  # non-square: catches H/W mix-ups
    # random in [-1, 1] with different per-channel statistics, so that a B/R swap shows
    scale, offset = np.array([0.3, 0.6, 0.9]), np.array([-0.6, 0.2, 0.05])
    photo, cartoon, superpixel = (
        (rng.uniform(-1, 1, shape) * scale + offset).astype(np.float32) for _ in range(3))
    color_weights = (0.1, 0.6, 0.3)  # (w_b, w_g, w_r)

    def terms(*inputs):
        return {k: float(np.asarray(v)) for k, v in gan.loss_terms(*inputs, color_weights).items()}

    def stored_u():
        return {k: v for k, v in gan_to_tf1_dict(gan).items() if k.endswith("/u")}

    first = terms(photo, cartoon, superpixel)
    u_after_first = stored_u()
    terms(cartoon, superpixel, photo)          # another call in between must not change anything
    second = terms(photo, cartoon, superpixel)
    u_after_second = stored_u()

    expected = ref_loss_terms(photo, cartoon, superpixel, color_weights, tensors, vgg)
    report = []
    for name, ref in expected.items():
        got = first[name]
        rel = abs(got - ref) / abs(ref)
        report.append(f"{name}: got {got:.9g} ref {ref:.9g} rel {rel:.2e}")
        assert np.isfinite(ref) and ref != 0.0, name
    print("\n".join(report))
    bad = [line for line, (name, ref) in zip(report, expected.items())
           if abs(first[name] - ref) > 1e-4 * abs(ref)]
    assert not bad, "loss terms off the float64 reference:\n" + "\n".join(bad)

    # call-order independence: identical values, u never written
    assert first == second
    assert len(u_after_first) == 14  # 7 SN layers × (disc_blur, disc_gray)
    for name in u_after_first:
        np.testing.assert_array_equal(u_after_first[name], tensors[name], err_msg=name)
        np.testing.assert_array_equal(u_after_second[name], tensors[name], err_msg=name)


# =============================================================================================
# 2. inference vs an emulation of test_code/cartoonize.py
# =============================================================================================

@pytest.fixture(scope="module")
def checkpoint_tensors():
    from wbc_tf.weights import pretrained_checkpoint_dir
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(pretrained_checkpoint_dir()))
    names = reader.get_variable_to_shape_map()
    assert len(names) == 36 and all(n.startswith("generator/") for n in names)
    return {n: reader.get_tensor(n) for n in names}


def _tf1_box_filter(x, r):
    k = 2 * r + 1
    ch = x.shape[-1]
    kernel = tf.ones([k, k, ch, 1], x.dtype) / (k * k)
    return tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")


def _tf1_guided_filter(x, y, r, eps):
    shape = tf.shape(x)
    n = _tf1_box_filter(tf.ones([1, shape[1], shape[2], 1], x.dtype), r)
    mx, my = _tf1_box_filter(x, r) / n, _tf1_box_filter(y, r) / n
    cov = _tf1_box_filter(x * y, r) / n - mx * my
    var = _tf1_box_filter(x * x, r) / n - mx * mx
    a = cov / (var + eps)
    b = my - a * mx
    return (_tf1_box_filter(a, r) / n) * x + _tf1_box_filter(b, r) / n


@pytest.fixture(scope="module")
def original_network(checkpoint_tensors):
    """The TF1 graph of cartoonize.py L26–28: unet_generator + guided_filter(r=1, eps=5e-3), tf.nn ops."""
    t = {k: tf.constant(v) for k, v in checkpoint_tensors.items()}

    def conv(x, name, stride=1):
        y = tf.nn.conv2d(x, t[f"generator/{name}/weights"], stride, "SAME")
        return tf.nn.bias_add(y, t[f"generator/{name}/biases"])

    def up(x):
        s = tf.shape(x)
        return tf.compat.v1.image.resize_bilinear(x, (2 * s[1], 2 * s[2]), align_corners=False,
                                                  half_pixel_centers=False)

    lrelu = tf.nn.leaky_relu  # alpha 0.2

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def network(x):
        x0 = lrelu(conv(x, "Conv"))
        x1 = lrelu(conv(lrelu(conv(x0, "Conv_1", 2)), "Conv_2"))
        h = lrelu(conv(lrelu(conv(x1, "Conv_3", 2)), "Conv_4"))
        for i in range(4):
            h = conv(lrelu(conv(h, f"block_{i}/conv1")), f"block_{i}/conv2") + h
        h = lrelu(conv(h, "Conv_5"))
        h = lrelu(conv(lrelu(conv(up(h) + x1, "Conv_6")), "Conv_7"))
        out = conv(lrelu(conv(up(h) + x0, "Conv_8")), "Conv_9")
        return _tf1_guided_filter(x, out, 1, 5e-3)

    return network


def _original_resize_crop(image):
    h, w = image.shape[:2]
    if min(h, w) > 720:
        if h > w:
            h, w = int(720 * h / w), 720
        else:
            h, w = 720, int(720 * w / h)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    h, w = (h // 8) * 8, (w // 8) * 8
    return image[:h, :w, :]


def original_cartoonize_bgr(network, bgr):
    """cartoonize.py per image: resize_crop, x/127.5−1, network, (y+1)·127.5, clip, astype(uint8)."""
    image = _original_resize_crop(bgr)
    batch = np.expand_dims(image.astype(np.float32) / 127.5 - 1, axis=0)
    out = network(tf.constant(batch)).numpy()
    out = (np.squeeze(out) + 1) * 127.5
    return np.clip(out, 0, 255).astype(np.uint8)


def _agreement(got, ref):
    assert got.shape == ref.shape, (got.shape, ref.shape)
    diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    return float(np.mean(diff == 0)), int(diff.max())


@pytest.fixture(scope="module")
def chelsea_rgb():
    from skimage import data
    return data.chelsea()  # 300×451 RGB


@pytest.fixture(scope="module")
def cartoonizer():
    from wbc_tf.inference import Cartoonizer
    return Cartoonizer.from_pretrained()


@pytest.fixture(scope="module")
def chelsea_result(cartoonizer, chelsea_rgb):
    return cartoonizer.cartoonize(chelsea_rgb)


def test_reference_generators_agree(checkpoint_tensors, original_network):
    """Sanity of the references themselves: tf.nn/legacy-op graph vs the float64 closed-form one."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 40, 56, 3)).astype(np.float32)
    a = original_network(tf.constant(x)).numpy()
    y = ref_generator(tf.constant(x, F64), checkpoint_tensors)
    b = ref_guided_filter(tf.constant(x, F64), y, 1, 5e-3).numpy()
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_cartoonize_matches_original_pipeline(original_network, chelsea_rgb, chelsea_result):
    ref_bgr = original_cartoonize_bgr(original_network, np.ascontiguousarray(chelsea_rgb[..., ::-1]))
    assert ref_bgr.shape == (296, 448, 3)
    assert chelsea_result.shape == (296, 448, 3) and chelsea_result.dtype == np.uint8
    equal, worst = _agreement(chelsea_result[..., ::-1], ref_bgr)
    print(f"chelsea 296x448: equal {equal:.6%}, max |d| {worst}")
    assert equal >= 0.9999 and worst <= 1


@pytest.mark.parametrize("portrait", [False, True], ids=["landscape", "portrait"])
def test_cartoonize_large_image_matches_original_pipeline(cartoonizer, original_network, chelsea_rgb,
                                                          portrait):
    big_rgb = cv2.resize(chelsea_rgb, (1203, 800), interpolation=cv2.INTER_CUBIC)  # 800×1203
    h, w = 720, int(720 * 1203 / 800)                                             # shorter side → 720
    if portrait:
        big_rgb = np.ascontiguousarray(big_rgb.transpose(1, 0, 2))                # 1203×800
        h, w = w, h
    got = cartoonizer.cartoonize(big_rgb)
    assert got.shape == (h // 8 * 8, w // 8 * 8, 3)
    assert sorted(got.shape[:2]) == [720, 1080]
    ref_bgr = original_cartoonize_bgr(original_network, np.ascontiguousarray(big_rgb[..., ::-1]))
    equal, worst = _agreement(got[..., ::-1], ref_bgr)
    print(f"chelsea {big_rgb.shape[:2]} -> {got.shape[:2]}: equal {equal:.6%}, max |d| {worst}")
    assert equal >= 0.9999 and worst <= 1


@pytest.mark.parametrize("hw", [(8, 8), (15, 23), (300, 451), (720, 5000), (721, 721), (721, 1500),
                                (1500, 721), (1080, 1920), (4000, 3000), (799, 1201)])
def test_output_size_follows_the_original_rule(cartoonizer, hw):
    """Shorter side > 720 → 720 (int truncation of the other side), then top-left crop to ×8."""
    image = np.zeros(hw + (3,), np.uint8)
    h, w = hw
    if min(h, w) > 720:
        h, w = (int(720 * h / w), 720) if h > w else (720, int(720 * w / h))
    assert cartoonizer.output_size(*hw) == (h // 8 * 8, w // 8 * 8)
    assert _original_resize_crop(image).shape[:2] == (h // 8 * 8, w // 8 * 8)


# =============================================================================================
# 3. CLI
# =============================================================================================

def test_cli_default_output_equals_cartoonize(tmp_path, chelsea_rgb, chelsea_result):
    from wbc_tf.cli.cartoonize import main

    src = tmp_path / "photos"
    src.mkdir()
    assert cv2.imwrite(str(src / "chelsea.png"), np.ascontiguousarray(chelsea_rgb[..., ::-1]))
    out = tmp_path / "cartoons"
    assert main([str(src), "-o", str(out), "-q"]) == 0
    assert sorted(os.listdir(out)) == ["chelsea.png"]
    written = cv2.imread(str(out / "chelsea.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (296, 448, 3) and written.dtype == np.uint8
    np.testing.assert_array_equal(written, np.ascontiguousarray(chelsea_result[..., ::-1]))


# =============================================================================================
# 4. TFLite fp32 export
# =============================================================================================

def test_tflite_fp32_fixed_size_matches_original_pipeline(cartoonizer, original_network, chelsea_rgb):
    pytest.importorskip("ai_edge_litert")
    from wbc_tf.export.tflite import TFLiteRunner, convert

    size = (64, 96)
    model = convert(cartoonizer.generator, "fp32", size=size)
    crop_rgb = np.ascontiguousarray(chelsea_rgb[100:164, 200:296])
    out = TFLiteRunner(model, num_threads=2)(crop_rgb.astype(np.float32))  # RGB 0..255, clipped
    assert out.shape == (64, 96, 3) and out.min() >= 0 and out.max() <= 255
    got_bgr = out[..., ::-1].astype(np.uint8)  # truncation, like astype(uint8)
    ref_bgr = original_cartoonize_bgr(original_network, np.ascontiguousarray(crop_rgb[..., ::-1]))
    equal, worst = _agreement(got_bgr, ref_bgr)
    print(f"tflite fp32 64x96: equal {equal:.6%}, max |d| {worst}")
    assert equal >= 0.999 and worst <= 2
