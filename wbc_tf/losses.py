"""The White-box Cartoonization losses as pure functions, exactly as the original computes them (docs/fidelity.md §7).

Naming follows TF-GAN (``<kind>_generator_loss`` / ``<kind>_discriminator_loss``). Every
function takes tensors and returns a scalar float tensor; none holds state. The two "double
normalisations" of the original (VGG L1 mean then /(h·w·c); TV mean then /(3·h·w), docs/fidelity.md §11.4) are
reproduced on purpose: the loss weights of `wbc_tf.config.TrainConfig` are calibrated to them.
Under mixed precision the 16-bit features and logits are promoted to float32 before any reduction.

Objectives (train.py L77–78), with ``output = GF(photo, G(photo), r=1, eps=1e-2)``::

    g_loss_total = 1e4·tv + 0.1·g_loss_blur + 1·g_loss_gray + 200·(photo_loss + superpixel_loss)
    d_loss_total = d_loss_blur + d_loss_gray
"""

import tensorflow as tf

_LOW_PRECISION = (tf.float16, tf.bfloat16)


def _tensor(x, dtype=None):
    """``x`` as a tensor, 16-bit floats promoted to float32: every reduction runs in >= 32 bits."""
    x = tf.convert_to_tensor(x, dtype=dtype)
    return tf.cast(x, tf.float32) if x.dtype in _LOW_PRECISION else x


def lsgan_generator_loss(fake_logits):
    """LSGAN generator loss ``mean((D(fake) − 1)²)`` over all patch logits (loss.py L164–173).

    Args:
        fake_logits: raw discriminator output on fakes, any shape, e.g. a (B, 32, 32, 1) patch map.
    """
    fake_logits = _tensor(fake_logits)
    return tf.reduce_mean(tf.square(fake_logits - 1.0))


def lsgan_discriminator_loss(real_logits, fake_logits):
    """LSGAN discriminator loss ``½·[mean((D(real) − 1)²) + mean(D(fake)²)]`` (the ½ is on D only).

    Args:
        real_logits: raw discriminator output on real (cartoon) representations.
        fake_logits: raw discriminator output on fake (generated) representations.
    """
    real_logits = _tensor(real_logits)
    fake_logits = _tensor(fake_logits)
    return 0.5 * (tf.reduce_mean(tf.square(real_logits - 1.0)) + tf.reduce_mean(tf.square(fake_logits)))


def vgg_l1_loss(features_a, features_b):
    """Feature L1 with the original's double normalisation: ``mean|a − b| / (h·w·c)``.

    ``a`` and ``b`` are (B, h, w, c) VGG19 conv4_4 maps (pre-ReLU); h·w·c = 524,288 at 256² input.
    ``tf.losses.absolute_difference`` already averages, the extra division is the original's.
    """
    features_a = _tensor(features_a)
    features_b = tf.cast(_tensor(features_b), features_a.dtype)
    shape = tf.shape(features_a)
    hwc = tf.cast(shape[1] * shape[2] * shape[3], features_a.dtype)
    return tf.reduce_mean(tf.abs(features_a - features_b)) / hwc


def content_loss(vgg_photo, vgg_output):
    """``photo_loss = mean|VGG(photo) − VGG(output)| / (h·w·c)`` (train.py L71)."""
    return vgg_l1_loss(vgg_photo, vgg_output)


def structure_loss(vgg_superpixel, vgg_output):
    """``superpixel_loss = mean|VGG(superpixel) − VGG(output)| / (h·w·c)`` (train.py L72)."""
    return vgg_l1_loss(vgg_superpixel, vgg_output)


def total_variation_loss(images):
    """``(mean(Δ_h²) + mean(Δ_w²)) / (3·h·w)`` with Δ the neighbour differences (loss.py L177–182).

    Args:
        images: (B, h, w, C) tensor; the constant 3 is the original's (it assumes 3 channels).
    """
    images = _tensor(images)
    shape = tf.shape(images)
    dh = images[:, 1:, :, :] - images[:, :-1, :, :]          # (B, h-1, w, C)
    dw = images[:, :, 1:, :] - images[:, :, :-1, :]          # (B, h, w-1, C)
    hw3 = tf.cast(3 * shape[1] * shape[2], images.dtype)
    return (tf.reduce_mean(tf.square(dh)) + tf.reduce_mean(tf.square(dw))) / hw3


def pixel_l1_loss(photo, generated):
    """Pre-training ``recon_loss = mean|photo − G(photo)|``, raw generator output (pretrain.py L44–46)."""
    photo = _tensor(photo)
    return tf.reduce_mean(tf.abs(photo - tf.cast(_tensor(generated), photo.dtype)))


def generator_total_loss(tv_loss, g_loss_blur, g_loss_gray, photo_loss, superpixel_loss,
                         tv_weight=1e4, surface_weight=0.1, texture_weight=1.0,
                         content_weight=200.0, structure_weight=200.0):
    """``tv_w·tv + surface_w·g_blur + texture_w·g_gray + content_w·photo + structure_w·superpixel``.

    Defaults are the original's (1e4, 0.1, 1, 200, 200), i.e. 200·recon_loss for the VGG terms.
    """
    return (tv_weight * tv_loss + surface_weight * g_loss_blur + texture_weight * g_loss_gray
            + content_weight * photo_loss + structure_weight * superpixel_loss)


def discriminator_total_loss(d_loss_blur, d_loss_gray):
    """``d_loss_total = d_loss_blur + d_loss_gray`` (surface + texture, unweighted)."""
    return d_loss_blur + d_loss_gray
