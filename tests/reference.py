"""The tests' one independent reference of the original TF1 code, in float64 NumPy.

Written from the behaviour of the original (docs/fidelity.md), not from the package: it imports
neither ``wbc_tf`` nor TensorFlow, so a slip in the package cannot be repeated here. Every function
takes NumPy arrays and returns float64 arrays (``cartoonize_bgr`` returns uint8).

Conventions (docs/fidelity.md §0): NHWC, colour order BGR, values in [-1, 1]. Weights come as
``{tf1_name: array}`` dicts with the original's variable names (``generator/Conv/weights``,
``disc_blur/conv0_1/u``, ...); VGG19 weights as ``{conv{b}_{i}: (kernel, bias)}`` like
``vgg19_no_fc.npy``.

Contents: TF1 'SAME' convolution and max-pool, the legacy ×2 bilinear resize, the U-Net generator,
the box and guided filters, the colour shift, spectral normalisation with its power iteration, the
``disc_sn`` patch discriminator, VGG19 conv4_4 (pre-ReLU, Caffe BGR mean), every loss term of
train.py, and the per-image inference script cartoonize.py. ``tests/test_reference.py`` checks the
single-op pieces against the TF1 ops they describe.
"""

import cv2
import numpy as np

F64 = np.float64
LRELU_SLOPE = 0.2                                # tf.nn.leaky_relu's default alpha
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
# Colour-shift weight ranges of utils.color_shift (mode 'uniform'), in BGR order: Rec.601 luma ± 0.1.
COLOR_SHIFT_LOW = np.array([0.014, 0.487, 0.199])
COLOR_SHIFT_SPAN = 0.2
# G = 1e4·tv + 0.1·surface + 1·texture + 200·(content + structure) (train.py L77).
TV_WEIGHT, SURFACE_WEIGHT, TEXTURE_WEIGHT, CONTENT_WEIGHT, STRUCTURE_WEIGHT = 1e4, 0.1, 1.0, 200.0, 200.0
TRAIN_GF = (1, 1e-2)                             # output = GF(photo, G(photo), r=1, eps=1e-2)
SURFACE_GF = (5, 0.2)                            # surface representation GF(x, x, r=5, eps=0.2)
INFERENCE_GF = (1, 5e-3)                         # cartoonize.py's filter
SHORT_SIDE = 720                                 # cartoonize.py: shorter side > 720 → 720
MULTIPLE = 8                                     # cartoonize.py: top-left crop to multiples of 8


# --- the variable tables of the original (docs/fidelity.md §2.1, §5.1, §9) ------------------------

def generator_shapes(channels=32, num_blocks=4):
    """``{tf1_name: shape}`` of ``unet_generator`` in creation order (slim's Conv, Conv_1, ...)."""
    c = channels
    convs = [("Conv", 7, 3, c), ("Conv_1", 3, c, c), ("Conv_2", 3, c, 2 * c), ("Conv_3", 3, 2 * c, 2 * c),
             ("Conv_4", 3, 2 * c, 4 * c)]
    for i in range(num_blocks):
        convs += [(f"block_{i}/conv1", 3, 4 * c, 4 * c), (f"block_{i}/conv2", 3, 4 * c, 4 * c)]
    convs += [("Conv_5", 3, 4 * c, 2 * c), ("Conv_6", 3, 2 * c, 2 * c), ("Conv_7", 3, 2 * c, c),
              ("Conv_8", 3, c, c), ("Conv_9", 7, c, 3)]
    shapes = {}
    for name, k, cin, cout in convs:
        shapes[f"generator/{name}/weights"] = (k, k, cin, cout)
        shapes[f"generator/{name}/biases"] = (cout,)
    return shapes


# disc_sn(patch=True): (scope, kernel, stride, output channels as a multiple of `channel`).
DISC_LAYERS = (("conv0_1", 3, 2, 1), ("conv0_2", 3, 1, 1), ("conv1_1", 3, 2, 2), ("conv1_2", 3, 1, 2),
               ("conv2_1", 3, 2, 4), ("conv2_2", 3, 1, 4), ("conv_out", 1, 1, None))


def discriminator_shapes(scope, in_channels, channels=32):
    """``{tf1_name: shape}`` of one ``disc_sn`` (kernel, bias, u per layer)."""
    shapes, cin = {}, in_channels
    for name, k, _, mult in DISC_LAYERS:
        cout = 1 if mult is None else mult * channels
        shapes[f"{scope}/{name}/kernel"] = (k, k, cin, cout)
        shapes[f"{scope}/{name}/bias"] = (cout,)
        shapes[f"{scope}/{name}/u"] = (1, cout)
        cin = cout
    return shapes


# VGG19 up to conv4_4; "pool" is the 2×2/2 SAME max-pool after conv1_2, conv2_2, conv3_4.
VGG_LAYERS = ("conv1_1", "conv1_2", "pool", "conv2_1", "conv2_2", "pool", "conv3_1", "conv3_2", "conv3_3",
              "conv3_4", "pool", "conv4_1", "conv4_2", "conv4_3", "conv4_4")


def vgg_shapes(with_conv5=True):
    """``{conv{b}_{i}: (kernel shape, bias shape)}`` of VGG19's 16 convs (12 without block 5)."""
    shapes, cin = {}, 3
    for block, n in ((1, 2), (2, 2), (3, 4), (4, 4)) + (((5, 4),) if with_conv5 else ()):
        cout = 64 * 2 ** min(block - 1, 3)
        for i in range(1, n + 1):
            shapes[f"conv{block}_{i}"] = ((3, 3, cin, cout), (cout,))
            cin = cout
    return shapes


# --- TF1 ops ------------------------------------------------------------------------------------------

def same_pads(n, k, s):
    """TF 'SAME' split along one axis (docs/fidelity.md §2.2): out = ceil(n/s), before = floor(total/2)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _bands(rows, floats_per_row, budget=1 << 22):
    """(first row, count) bands of output rows holding at most ~``budget`` float64 each (32 MB)."""
    step = max(1, budget // max(1, floats_per_row))
    return [(r, min(step, rows - r)) for r in range(0, rows, step)]


def conv2d_same(x, kernel, bias=None, stride=1):
    """``tf.nn.conv2d(x, kernel, stride, 'SAME') + bias``: explicit zero padding, then plain matmuls.

    x (B, H, W, C_in), kernel HWIO (k, k, C_in, C_out) → (B, ceil(H/s), ceil(W/s), C_out). Works in
    bands of output rows of at most ~32 MB of intermediate values.
    """
    x, kernel = np.asarray(x, F64), np.asarray(kernel, F64)
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    (top, bottom), (left, right) = same_pads(h, kh, stride), same_pads(w, kw, stride)
    oh, ow = -(-h // stride), -(-w // stride)
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    out = np.empty((b, oh, ow, cout))
    if cout < cin:
        # Few outputs (Conv_9): all taps of every padded pixel in one matmul, then add shifted slices.
        padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
        per_tap = kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
        for r0, n in _bands(oh, b * stride * padded.shape[2] * kh * kw * cout):
            rows = padded[:, r0 * stride:r0 * stride + stride * (n - 1) + kh]
            products = (rows.reshape(-1, cin) @ per_tap).reshape(rows.shape[:3] + (kh, kw, cout))
            out[:, r0:r0 + n] = sum(products[:, i:i + stride * (n - 1) + 1:stride,
                                             j:j + stride * (ow - 1) + 1:stride, i, j] for i, j in taps)
    else:
        # im2col from channel-first images, so that every copy has a long inner loop; the rows of
        # the reshaped kernel are ordered (i, j, c) like the stacked taps.
        matrix = kernel.reshape(kh * kw * cin, cout)
        for image in range(b):
            padded = np.pad(x[image].transpose(2, 0, 1), ((0, 0), (top, bottom), (left, right)))
            for r0, n in _bands(oh, ow * kh * kw * cin):
                y0 = r0 * stride
                columns = np.stack([padded[:, y0 + i:y0 + i + stride * (n - 1) + 1:stride,
                                           j:j + stride * (ow - 1) + 1:stride] for i, j in taps])
                out[image, r0:r0 + n] = (columns.reshape(-1, n * ow).T @ matrix).reshape(n, ow, cout)
    return out if bias is None else out + np.asarray(bias, F64)


def max_pool_2x2_same(x):
    """``tf.nn.max_pool(x, 2, 2, 'SAME')``: odd sizes get one -inf row/column at the end."""
    x = np.asarray(x, F64)
    b, h, w, c = x.shape
    pads = ((0, 0), same_pads(h, 2, 2), same_pads(w, 2, 2), (0, 0))
    x = np.pad(x, pads, constant_values=-np.inf)
    return x.reshape(b, x.shape[1] // 2, 2, x.shape[2] // 2, 2, c).max(axis=(2, 4))


def lrelu(x):
    return np.maximum(x, LRELU_SLOPE * x)


def upsample2x_legacy(x):
    """TF1 ``resize_bilinear`` to (2H, 2W), align_corners=False, half_pixel_centers=False.

    Along each axis (docs/fidelity.md §2.3): out[2i] = x[i], out[2i+1] = (x[i] + x[min(i+1, n-1)]) / 2.
    """
    x = np.asarray(x, F64)
    for axis in (1, 2):
        n = x.shape[axis]
        odd = 0.5 * (x + np.take(x, np.minimum(np.arange(n) + 1, n - 1), axis=axis))
        shape = list(x.shape)
        shape[axis] = 2 * n
        x = np.stack([x, odd], axis=axis + 1).reshape(shape)     # interleave even/odd
    return x


# --- generator (docs/fidelity.md §2) -----------------------------------------------------------------

def generator_forward(tensors, x, scope="generator"):
    """``unet_generator`` from TF1-named tensors; x (B, H, W, 3), H and W multiples of 4 → raw output."""
    def conv(h, name, stride=1):
        return conv2d_same(h, tensors[f"{scope}/{name}/weights"], tensors[f"{scope}/{name}/biases"], stride)

    x0 = lrelu(conv(x, "Conv"))
    x1 = lrelu(conv(lrelu(conv(x0, "Conv_1", 2)), "Conv_2"))
    h = lrelu(conv(lrelu(conv(x1, "Conv_3", 2)), "Conv_4"))
    i = 0
    while f"{scope}/block_{i}/conv1/weights" in tensors:
        h = conv(lrelu(conv(h, f"block_{i}/conv1")), f"block_{i}/conv2") + h    # no activation after the sum
        i += 1
    h = lrelu(conv(h, "Conv_5"))
    h = upsample2x_legacy(h) + x1                                                # skips are sums
    h = lrelu(conv(lrelu(conv(h, "Conv_6")), "Conv_7"))
    h = upsample2x_legacy(h) + x0
    return conv(lrelu(conv(h, "Conv_8")), "Conv_9")                              # linear output


# --- guided filter (docs/fidelity.md §3) -------------------------------------------------------------

def box_mean(x, r):
    """Mean over the in-image part of each (2r+1)² window, per channel: box(x) / box(1) of the original."""
    x = np.asarray(x, F64)
    _, h, w, _ = x.shape
    s = np.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0))).cumsum(1).cumsum(2)    # integral image, zero first
    i0, i1 = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    j0, j1 = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    total = s[:, i1][:, :, j1] - s[:, i0][:, :, j1] - s[:, i1][:, :, j0] + s[:, i0][:, :, j0]
    count = ((i1 - i0)[:, None] * (j1 - j0)[None, :])[None, :, :, None]
    return total / count


def guided_filter(x, y, r, eps):
    """Per-channel guided filter with guide x and input y (no colour covariance)."""
    x, y = np.asarray(x, F64), np.asarray(y, F64)
    mean_x, mean_y = box_mean(x, r), box_mean(y, r)
    a = (box_mean(x * y, r) - mean_x * mean_y) / (box_mean(x * x, r) - mean_x * mean_x + eps)
    b = mean_y - a * mean_x
    return box_mean(a, r) * x + box_mean(b, r)


# --- representations (docs/fidelity.md §6) -----------------------------------------------------------

def surface(images):
    return guided_filter(images, images, *SURFACE_GF)


def color_shift_weights(uniform):
    """(w_b, w_g, w_r) from three U(0, 1) numbers: U(0.014, 0.214), U(0.487, 0.687), U(0.199, 0.399)."""
    return COLOR_SHIFT_LOW + COLOR_SHIFT_SPAN * np.asarray(uniform, F64)


def color_shift(images, weights):
    """Grey (B, H, W, 1) = (w_b·B + w_g·G + w_r·R) / (w_b + w_g + w_r); channel 0 is blue."""
    images = np.asarray(images, F64)
    w_b, w_g, w_r = (float(w) for w in weights)
    return (w_b * images[..., 0:1] + w_g * images[..., 1:2] + w_r * images[..., 2:3]) / (w_b + w_g + w_r)


# --- spectral norm and disc_sn (docs/fidelity.md §5) -------------------------------------------------

def l2_normalize(z):
    """``tf.nn.l2_normalize`` over all elements: z / sqrt(max(Σz², 1e-12))."""
    return z / np.sqrt(max(np.sum(z * z), 1e-12))


def power_iteration(kernel, u, iterations=1):
    """The original's power iteration from u (1, C_out): returns (û, v̂, σ) with σ = v̂ W ûᵀ."""
    kernel = np.asarray(kernel, F64)
    w = kernel.reshape(-1, kernel.shape[-1])          # (k·k·C_in, C_out)
    u_hat = np.asarray(u, F64)
    for _ in range(iterations):
        v_hat = l2_normalize(u_hat @ w.T)             # (1, k·k·C_in)
        u_hat = l2_normalize(v_hat @ w)               # (1, C_out)
    return u_hat, v_hat, float((v_hat @ w @ u_hat.T)[0, 0])


def spectral_normalized(kernel, u):
    """K / σ with one power iteration from the stored u."""
    return np.asarray(kernel, F64) / power_iteration(kernel, u)[2]


def discriminator_forward(tensors, x, scope):
    """``disc_sn(patch=True)``: raw patch logits (B, H/8, W/8, 1); every layer's u read, never written."""
    h = np.asarray(x, F64)
    for name, _, stride, mult in DISC_LAYERS:
        prefix = f"{scope}/{name}"
        kernel = spectral_normalized(tensors[f"{prefix}/kernel"], tensors[f"{prefix}/u"])
        h = conv2d_same(h, kernel, tensors[f"{prefix}/bias"], stride)
        if mult is not None:                          # conv_out: no activation
            h = lrelu(h)
    return h


# --- VGG19 conv4_4 (docs/fidelity.md §7.2, §9) -------------------------------------------------------

def vgg_conv4_4(x, vgg):
    """[-1, 1] BGR → (x+1)·127.5 − Caffe BGR mean (no channel flip) → conv1_1 … conv4_4, before its ReLU."""
    h = (np.asarray(x, F64) + 1.0) * 127.5 - CAFFE_MEAN_BGR
    for name in VGG_LAYERS:
        if name == "pool":
            h = max_pool_2x2_same(h)
            continue
        kernel, bias = vgg[name]
        h = conv2d_same(h, kernel, bias)
        if name != "conv4_4":
            h = np.maximum(h, 0.0)
    return h


# --- losses (docs/fidelity.md §7) --------------------------------------------------------------------

def lsgan_generator_loss(fake):
    return float(np.mean((np.asarray(fake, F64) - 1.0) ** 2))


def lsgan_discriminator_loss(real, fake):
    """½·[mean((D(real) − 1)²) + mean(D(fake)²)]: the ½ is on D only."""
    real, fake = np.asarray(real, F64), np.asarray(fake, F64)
    return 0.5 * (float(np.mean((real - 1.0) ** 2)) + float(np.mean(fake ** 2)))


def vgg_l1_loss(a, b):
    """mean|a − b| / (h·w·c): the original's double normalisation."""
    a, b = np.asarray(a, F64), np.asarray(b, F64)
    return float(np.mean(np.abs(a - b))) / float(np.prod(a.shape[1:]))


def total_variation_loss(images):
    """(mean dy² + mean dx²) / (3·h·w), with 3 whatever the channel count."""
    images = np.asarray(images, F64)
    h, w = images.shape[1:3]
    dy = images[:, 1:] - images[:, :-1]
    dx = images[:, :, 1:] - images[:, :, :-1]
    return (float(np.mean(dy ** 2)) + float(np.mean(dx ** 2))) / (3 * h * w)


def generator_total_loss(tv, g_blur, g_gray, photo, superpixel):
    return (TV_WEIGHT * tv + SURFACE_WEIGHT * g_blur + TEXTURE_WEIGHT * g_gray
            + CONTENT_WEIGHT * photo + STRUCTURE_WEIGHT * superpixel)


def train_output(tensors, photo):
    """``output`` of train.py: GF(photo, G(photo), r=1, eps=1e-2)."""
    return guided_filter(photo, generator_forward(tensors, photo), *TRAIN_GF)


def loss_terms(photo, cartoon, superpixel, color_weights, tensors, vgg, features=vgg_conv4_4):
    """Every loss term of train.py L54–78 for explicit inputs (superpixel is the structure target).

    ``features(x, vgg)`` is the feature extractor (the tests swap it to inject porting slips).
    Returns floats: tv_loss, photo_loss, superpixel_loss, recon_loss, g_loss_blur, g_loss_gray,
    d_loss_blur, d_loss_gray, g_loss_total, d_loss_total.
    """
    photo, cartoon, superpixel = (np.asarray(a, F64) for a in (photo, cartoon, superpixel))
    output = train_output(tensors, photo)

    def discriminators(images):
        return (discriminator_forward(tensors, surface(images), "disc_blur"),
                discriminator_forward(tensors, color_shift(images, color_weights), "disc_gray"))

    fake_blur, fake_gray = discriminators(output)
    real_blur, real_gray = discriminators(cartoon)
    f_output = features(output, vgg)
    terms = {
        "tv_loss": total_variation_loss(output),
        "photo_loss": vgg_l1_loss(features(photo, vgg), f_output),
        "superpixel_loss": vgg_l1_loss(features(superpixel, vgg), f_output),
        "g_loss_blur": lsgan_generator_loss(fake_blur),
        "g_loss_gray": lsgan_generator_loss(fake_gray),
        "d_loss_blur": lsgan_discriminator_loss(real_blur, fake_blur),
        "d_loss_gray": lsgan_discriminator_loss(real_gray, fake_gray),
    }
    terms["recon_loss"] = terms["photo_loss"] + terms["superpixel_loss"]
    terms["g_loss_total"] = generator_total_loss(terms["tv_loss"], terms["g_loss_blur"], terms["g_loss_gray"],
                                                 terms["photo_loss"], terms["superpixel_loss"])
    terms["d_loss_total"] = terms["d_loss_blur"] + terms["d_loss_gray"]
    return terms


def pixel_l1_loss(photo, tensors):
    """Pre-training loss (pretrain.py): mean|photo − G(photo)| on the raw generator output."""
    photo = np.asarray(photo, F64)
    return float(np.mean(np.abs(photo - generator_forward(tensors, photo))))


# --- the inference script cartoonize.py (docs/fidelity.md §4) ----------------------------------------

def resized_size(h, w):
    """``resize_crop``'s size before the crop: the *shorter* side > 720 becomes 720, int() truncation."""
    if min(h, w) > SHORT_SIDE:
        if h > w:
            return int(SHORT_SIDE * h / w), SHORT_SIDE
        return SHORT_SIDE, int(SHORT_SIDE * w / h)
    return h, w


def output_size(h, w):
    h, w = resized_size(h, w)
    return h // MULTIPLE * MULTIPLE, w // MULTIPLE * MULTIPLE


def resize_crop(bgr):
    """cv2.resize(INTER_AREA), called even at equal size, then the top-left crop to multiples of 8."""
    h, w = resized_size(*bgr.shape[:2])
    image = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
    h, w = output_size(*bgr.shape[:2])
    return image[:h, :w, :]


def normalize(image):
    """uint8 → float32 x/127.5 − 1, as the script computes it (in float32)."""
    return image.astype(np.float32) / np.float32(127.5) - np.float32(1)


def postprocess(y):
    """(y + 1)·127.5, clip to [0, 255], ``astype(uint8)``: truncation toward zero, not rounding.

    The arithmetic keeps y's precision (the script ran it on the float32 network output).
    """
    y = np.asarray(y)
    return np.clip((y + 1) * 127.5, 0, 255).astype(np.uint8)


def network(tensors, x):
    """The graph of cartoonize.py: GF(x, G(x), r=1, eps=5e-3) on a (B, H, W, 3) batch."""
    return guided_filter(x, generator_forward(tensors, x), *INFERENCE_GF)


def cartoonize_float(tensors, bgr):
    """The float network output (H', W', 3) for one uint8 BGR image: resize_crop, normalise, network."""
    return network(tensors, normalize(resize_crop(bgr))[None])[0]


def cartoonize_bgr(tensors, bgr):
    """cartoonize.py on one uint8 BGR image (what ``cv2.imread`` returns) → uint8 BGR."""
    return postprocess(cartoonize_float(tensors, bgr))
