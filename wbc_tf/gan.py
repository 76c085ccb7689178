"""Adversarial training (``train_code/train.py``) and generator pre-training (``pretrain.py``) in Keras.

Everything is BGR [-1, 1] NHWC float32, like the original (docs/fidelity.md §0). Typical use::

    from wbc_tf.config import TrainConfig
    from wbc_tf.gan import build_white_box_gan, GeneratorPretrainer

    gan = build_white_box_gan(TrainConfig(), vgg_weights="imagenet")  # or a .h5 / vgg19_no_fc.npy path
    load_gan_tf1_dict(gan, tensors)       # optional (wbc_tf.weights): {generator/..., disc_blur/...}
    gan.compile()                         # Adam(2e-4, 0.5, 0.99, 1e-8) for G and for both Ds
    gan.fit(dataset_of_photo_cartoon_pairs, steps_per_epoch=500, epochs=200)

    terms = gan.loss_terms(photo, cartoon, superpixel, (w_b, w_g, w_r))   # testing seam

``loss_terms`` is the original graph for explicit inputs: one forward with the stored SN ``u``
(no write-back), every loss term of train.py L54–78 on the same ``output``.

Structure target (``TrainConfig.superpixel``): ``'skimage'`` (default, the original's SLIC) runs on
the host through a ``tf.numpy_function``, which XLA cannot compile (``PyFunc`` has no XLA kernel);
``'tf'`` (`wbc_tf.slic_tf`) is TF ops only, so with it the whole step compiles
(``TrainConfig.jit_compile``, used by `WhiteBoxGAN.compile` and the trainer).

Precision (``TrainConfig.precision``, `wbc_tf.precision`): the builders here pass the config's
dtype policy to every model; the steps scale the loss with ``optimizer.scale_loss`` (dynamic loss
scaling for ``'mixed_float16'``, the identity otherwise).
"""

import keras
import tensorflow as tf

from wbc_tf import losses, precision
from wbc_tf.config import TrainConfig
from wbc_tf.discriminator import build_surface_discriminator, build_texture_discriminator
from wbc_tf.generator import build_generator
from wbc_tf.guided_filter import guided_filter
from wbc_tf.representations import (color_shift, sample_color_shift_weights, structure_representation,
                                    surface_representation)
from wbc_tf.vgg import build_vgg, load_vgg_weights

# The ten scalars the original writes to its summary every iteration (train.py), in its order.
METRIC_NAMES = ("tv_loss", "photo_loss", "superpixel_loss", "recon_loss", "d_loss_gray", "g_loss_gray",
                "d_loss_blur", "g_loss_blur", "d_loss_total", "g_loss_total")


def _adam(config, name):
    return keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1,
                                 beta_2=config.beta_2, epsilon=config.adam_epsilon, name=name)


def _jit_compile(config, requested):
    """``jit_compile`` for `keras.Model.compile`: the config's unless given; refused with skimage SLIC."""
    jit = config.jit_compile if requested in (None, "auto") else bool(requested)
    if jit and config.superpixel == "skimage":
        raise ValueError("WhiteBoxGAN cannot be XLA-compiled with superpixel='skimage': the superpixel "
                         "step is a tf.numpy_function (use superpixel='tf')")
    return jit


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


_OUTPUT_ACTIVATIONS = {"none": lambda raw: raw,            # the original: linear head (§11.9)
                       "clip": lambda raw: tf.clip_by_value(raw, -1.0, 1.0),
                       "tanh": tf.tanh}


def _split_pair(data):
    """``(photo, cartoon)`` from a dataset element: a 2-tuple/list, or ``((photo, cartoon),)``."""
    if isinstance(data, (tuple, list)) and len(data) == 1:
        data = data[0]
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("WhiteBoxGAN.train_step expects (photo, cartoon) batches")
    return data[0], data[1]


class WhiteBoxGAN(keras.Model):
    """The adversarial stage of White-box Cartoonization, in the keras-io custom ``train_step`` pattern.

    Holds the generator, the surface (``disc_blur``) and texture (``disc_gray``) discriminators,
    the frozen VGG19 extractor and the `TrainConfig`. ``train_step`` reproduces one iteration of
    train.py: a G step (structure target from the current output, held constant), then a D step
    on a *fresh* G forward with the updated weights and a *new* colour-shift draw.

    The logged values: tv/photo/superpixel/recon/g_* come from the G step (before its update,
    like the original's printed values); d_* from the D step. The original's summary
    re-evaluated the G terms in the D-step run, which costs three extra VGG passes; we skip it.

    Distribution: each differentiated loss is divided by ``num_replicas_in_sync`` because Keras
    all-reduces gradients with SUM; the trackers get the unscaled values. SN ``u`` variables use
    ``only_first_replica`` aggregation, the colour-shift weights come from one stored
    `keras.random.SeedGenerator` (the same draw on every replica, shared by the whole global
    batch as in the original), and the superpixel ``numpy_function`` runs per replica.

    Args:
        generator: `wbc_tf.generator.build_generator` model.
        surface_discriminator: 3-channel `wbc_tf.discriminator.build_discriminator` (``disc_blur``).
        texture_discriminator: 1-channel discriminator (``disc_gray``).
        vgg: `wbc_tf.vgg.build_vgg` model (frozen here).
        config: `TrainConfig`; loss weights, filters, SLIC settings, Adam settings, corrected modes,
            precision (the four models must be built for it: `build_white_box_gan` does that).
        **kwargs: forwarded to `keras.Model`.
    """

    def __init__(self, generator, surface_discriminator, texture_discriminator, vgg, config=None, **kwargs):
        kwargs.setdefault("name", "white_box_gan")
        super().__init__(**kwargs)
        self.config = config if config is not None else TrainConfig()
        for model, what in ((generator, "generator"), (surface_discriminator, "surface discriminator"),
                            (texture_discriminator, "texture discriminator"), (vgg, "VGG")):
            precision.check_model(model, self.config.precision, what)
        self.generator = generator
        self.surface_discriminator = surface_discriminator
        self.texture_discriminator = texture_discriminator
        self.vgg = vgg
        self.vgg.trainable = False
        self.color_shift_seed = keras.random.SeedGenerator(self.config.seed, name="color_shift_seed")
        self.loss_trackers = [keras.metrics.Mean(name=name) for name in METRIC_NAMES]
        self.g_optimizer = None
        self.d_optimizer = None
        self.built = True  # the sub-models are built functional models; lets save_weights work

    # --- keras.Model plumbing ----------------------------------------------------------------

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Set (default: build from the config) and *build* both Adam optimisers.

        Building them here, inside the model's distribution strategy, is what lets ``fit`` run
        under `tf.distribute.MirroredStrategy` and lets checkpoints restore their slots. Under
        ``precision='mixed_float16'`` both are wrapped in a `keras.optimizers.LossScaleOptimizer`.
        ``jit_compile`` defaults to ``config.jit_compile``; True with ``superpixel='skimage'``
        raises ValueError (the ``tf.numpy_function`` has no XLA kernel).
        """
        jit = _jit_compile(self.config, kwargs.pop("jit_compile", None))
        super().compile(jit_compile=jit, **kwargs)
        p = self.config.precision
        g_optimizer = g_optimizer if g_optimizer is not None else _adam(self.config, "g_adam")
        d_optimizer = d_optimizer if d_optimizer is not None else _adam(self.config, "d_adam")
        self.g_optimizer = precision.loss_scaled(g_optimizer, p)
        self.d_optimizer = precision.loss_scaled(d_optimizer, p)
        with self.distribute_strategy.scope():
            if not self.g_optimizer.built:
                self.g_optimizer.build(self.generator.trainable_weights)
            if not self.d_optimizer.built:
                self.d_optimizer.build(self.discriminator_weights)

    @property
    def metrics(self):
        return list(self.loss_trackers)

    @property
    def discriminator_weights(self):
        """Trainable kernels and biases of both discriminators (``u`` is non-trainable)."""
        return self.surface_discriminator.trainable_weights + self.texture_discriminator.trainable_weights

    def call(self, photo, training=False):
        return self.generate(photo, training=training)

    # --- the original graph --------------------------------------------------------------------

    def generate(self, photo, training=False):
        """``output`` of train.py: GF(photo, G(photo), r=1, eps=1e-2), or raw G(photo) (§11.8 mode)."""
        raw = tf.cast(self.generator(photo, training=training), tf.float32)   # float32 head: a no-op
        raw = _OUTPUT_ACTIVATIONS[self.config.output_activation](raw)
        if self.config.raw_output_for_losses:
            return raw
        return guided_filter(tf.cast(photo, tf.float32), raw, self.config.gf_radius, self.config.gf_eps)

    def structure_target(self, output):
        """SLIC + colouring of ``stop_gradient(output)``: a constant (B, H, W, 3) target.

        ``config.superpixel`` picks scikit-image on the host (`structure_representation`) or
        TF ops (`wbc_tf.slic_tf.superpixel_batch_compiled`: XLA-compiled even in an uncompiled
        step; mean colouring).
        """
        c = self.config
        if c.superpixel == "tf":
            from wbc_tf.slic_tf import superpixel_batch_compiled   # on use: the default path never needs it
            return superpixel_batch_compiled(output, n_segments=c.superpixel_segments,
                                       compactness=c.superpixel_compactness, sigma=c.superpixel_sigma)
        return structure_representation(
            output, n_segments=c.superpixel_segments, compactness=c.superpixel_compactness,
            sigma=c.superpixel_sigma, colouring=c.superpixel_colouring,
            workers=c.superpixel_workers or None)

    def discriminate(self, images, color_weights, update_u=False):
        """Raw patch logits ``(D_s(GF(x, x, 5, 0.2)), D_t(color_shift(x)))``.

        ``update_u=True`` writes each SN layer's power-iteration result back to its ``u``.
        """
        blur = surface_representation(images, self.config.surface_radius, self.config.surface_eps)
        gray = color_shift(images, color_weights)
        return (self.surface_discriminator(blur, training=update_u),
                self.texture_discriminator(gray, training=update_u))

    def generator_terms(self, photo, output, superpixel, fake_blur_logits, fake_gray_logits):
        """The G-side terms of train.py L64–77 as a dict (tv, photo, superpixel, recon, g_*)."""
        c = self.config
        vgg_output = self.vgg(output, training=False)
        # photo and superpixel are constants: no gradient flows into these two VGG passes
        vgg_photo = self.vgg(photo, training=False)
        vgg_superpixel = self.vgg(superpixel, training=False)
        terms = {
            "tv_loss": losses.total_variation_loss(output),
            "photo_loss": losses.content_loss(vgg_photo, vgg_output),
            "superpixel_loss": losses.structure_loss(vgg_superpixel, vgg_output),
            "g_loss_blur": losses.lsgan_generator_loss(fake_blur_logits),
            "g_loss_gray": losses.lsgan_generator_loss(fake_gray_logits),
        }
        terms["recon_loss"] = terms["photo_loss"] + terms["superpixel_loss"]
        terms["g_loss_total"] = losses.generator_total_loss(
            terms["tv_loss"], terms["g_loss_blur"], terms["g_loss_gray"], terms["photo_loss"],
            terms["superpixel_loss"], tv_weight=c.tv_weight, surface_weight=c.surface_weight,
            texture_weight=c.texture_weight, content_weight=c.content_weight,
            structure_weight=c.structure_weight)
        return terms

    @staticmethod
    def discriminator_terms(real_logits, fake_logits):
        """``d_loss_blur``, ``d_loss_gray``, ``d_loss_total`` from (blur, gray) real/fake logits."""
        d_blur = losses.lsgan_discriminator_loss(real_logits[0], fake_logits[0])
        d_gray = losses.lsgan_discriminator_loss(real_logits[1], fake_logits[1])
        return {"d_loss_blur": d_blur, "d_loss_gray": d_gray,
                "d_loss_total": losses.discriminator_total_loss(d_blur, d_gray)}

    def loss_terms(self, photo, cartoon, superpixel, color_weights):
        """Every loss term of the original for explicit inputs, with no state change.

        Args:
            photo: (B, H, W, 3) BGR [-1, 1], the generator input.
            cartoon: (B, H, W, 3) BGR [-1, 1], the real cartoons.
            superpixel: (B, H, W, 3) structure target (explicit, instead of SLIC of the output).
            color_weights: (w_b, w_g, w_r) colour-shift weights, shared by real and fake.

        Returns:
            dict of scalar tensors ``tv_loss, photo_loss, superpixel_loss, g_loss_blur,
            g_loss_gray, d_loss_blur, d_loss_gray, g_loss_total, d_loss_total`` (plus
            ``recon_loss``). Every discriminator call does one power iteration from the stored
            ``u`` and writes nothing back, so the values do not depend on call order; the D terms
            use the same ``output`` as the G terms.
        """
        photo = tf.convert_to_tensor(photo, tf.float32)
        cartoon = tf.convert_to_tensor(cartoon, tf.float32)
        superpixel = tf.convert_to_tensor(superpixel, tf.float32)
        color_weights = tf.convert_to_tensor(color_weights, tf.float32)
        output = self.generate(photo)
        fake_logits = self.discriminate(output, color_weights, update_u=False)
        real_logits = self.discriminate(cartoon, color_weights, update_u=False)
        terms = self.generator_terms(photo, output, superpixel, *fake_logits)
        terms.update(self.discriminator_terms(real_logits, fake_logits))
        return terms

    # --- one training iteration -----------------------------------------------------------------

    def train_step(self, data):
        # Plan (train.py, one iteration):
        # 1. G step (`generator_step`): draw colour-shift weights; output = GF(photo, G(photo));
        #    structure target = SLIC-mean(stop_gradient(output)), a constant (it replaces the
        #    original's redundant inter_out pass, docs/fidelity.md §11.22); fake branches of both Ds (1 SN update
        #    each when faithful); G update on g_loss_total;
        # 2. D step (`discriminator_step`): draw *new* colour-shift weights; fresh G forward with
        #    the *updated* G, no gradient; real and fake branches (faithful: 2 SN updates per D);
        #    D update on d_loss_total;
        # 3. update the ten trackers with the unscaled values.
        photo, cartoon = _split_pair(data)
        values = self.generator_step(photo, cartoon)                                      # 1
        values.update(self.discriminator_step(photo, cartoon))                            # 2
        for tracker in self.loss_trackers:                                                # 3
            tracker.update_state(values[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.loss_trackers}

    def generator_step(self, photo, cartoon):
        """One G update (``g_optim`` run of train.py); returns the G-side terms, unscaled.

        ``cartoon`` is unused (the G loss sees only fakes); it is accepted for symmetry.
        """
        del cartoon
        every_call = self.config.sn_update == "every_call"
        weights = sample_color_shift_weights(self.color_shift_seed)
        with tf.GradientTape() as tape:
            output = self.generate(photo, training=True)
            superpixel = self.structure_target(output)
            fake_logits = self.discriminate(output, weights, update_u=every_call)
            terms = self.generator_terms(photo, output, superpixel, *fake_logits)
            loss = terms["g_loss_total"] / float(_num_replicas())  # Keras all-reduces gradients with SUM
            loss = self.g_optimizer.scale_loss(loss)              # loss scaling (float16), else identity
        g_vars = self.generator.trainable_weights
        self.g_optimizer.apply(tape.gradient(loss, g_vars), g_vars)   # unscales under float16
        return terms

    def discriminator_step(self, photo, cartoon):
        """One D update (``d_optim`` run of train.py) on a fresh G forward; returns the D terms, unscaled."""
        every_call = self.config.sn_update == "every_call"
        weights = sample_color_shift_weights(self.color_shift_seed)
        output = tf.stop_gradient(self.generate(photo, training=True))
        with tf.GradientTape() as tape:
            # the real branch always writes u; with 'once_per_d_step' it is the only write (§11.7)
            real_logits = self.discriminate(cartoon, weights, update_u=True)
            fake_logits = self.discriminate(output, weights, update_u=every_call)
            terms = self.discriminator_terms(real_logits, fake_logits)
            loss = self.d_optimizer.scale_loss(terms["d_loss_total"] / float(_num_replicas()))
        d_vars = self.discriminator_weights
        self.d_optimizer.apply(tape.gradient(loss, d_vars), d_vars)
        return terms

    def load_vgg_weights(self, weights):
        """Load VGG weights ("imagenet", .h5 / ``vgg19_no_fc.npy`` path, or dict); see `wbc_tf.vgg`."""
        load_vgg_weights(self.vgg, weights)
        return self


class GeneratorPretrainer(keras.Model):
    """Generator pre-training (``pretrain.py``): pixel L1 ``mean|photo − G(photo)|`` on the raw G output.

    No guided filter, no VGG (docs/fidelity.md §7.5, §11.21). ``train_step`` accepts ``photo`` or
    ``(photo, anything)`` batches and returns ``{"recon_loss": …}``.

    Args:
        generator: `wbc_tf.generator.build_generator` model (updated in place).
        config: `TrainConfig` (Adam settings, ``output_activation``, ``precision``: the generator must
            be built for it, ``jit_compile``).
        **kwargs: forwarded to `keras.Model`.
    """

    def __init__(self, generator, config=None, **kwargs):
        kwargs.setdefault("name", "generator_pretrainer")
        super().__init__(**kwargs)
        self.config = config if config is not None else TrainConfig()
        precision.check_model(generator, self.config.precision, "generator")
        self.generator = generator
        self.recon_tracker = keras.metrics.Mean(name="recon_loss")
        self.built = True

    def compile(self, optimizer=None, **kwargs):
        """Adam(lr, β1, β2, ε) from the config unless ``optimizer`` is given; built immediately.

        Loss-scaled under ``mixed_float16``; ``jit_compile`` defaults to ``config.jit_compile``.
        """
        optimizer = optimizer if optimizer is not None else _adam(self.config, "pretrain_adam")
        optimizer = precision.loss_scaled(optimizer, self.config.precision)
        kwargs.setdefault("jit_compile", self.config.jit_compile)
        super().compile(optimizer=optimizer, **kwargs)
        with self.distribute_strategy.scope():
            if not self.optimizer.built:
                self.optimizer.build(self.generator.trainable_weights)

    @property
    def g_optimizer(self):
        return self.optimizer

    @property
    def metrics(self):
        return [self.recon_tracker]

    def call(self, photo, training=False):
        raw = tf.cast(self.generator(photo, training=training), tf.float32)   # float32 head: a no-op
        return _OUTPUT_ACTIVATIONS[self.config.output_activation](raw)

    def train_step(self, data):
        photo = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            recon = losses.pixel_l1_loss(photo, self(photo, training=True))
            scaled = self.optimizer.scale_loss(recon / float(_num_replicas()))
        g_vars = self.generator.trainable_weights
        self.optimizer.apply(tape.gradient(scaled, g_vars), g_vars)
        self.recon_tracker.update_state(recon)
        return {"recon_loss": self.recon_tracker.result()}


def build_white_box_gan(config=None, vgg_weights="imagenet", generator=None):
    """Build G, ``disc_blur``, ``disc_gray`` and the VGG, and wrap them in a `WhiteBoxGAN`.

    Call it inside ``strategy.scope()`` for multi-GPU training.

    Args:
        config: `TrainConfig` (``channels``, ``num_blocks``, ``disc_channels`` size the networks;
            ``precision`` gives their dtype policy).
        vgg_weights: "imagenet", a Keras ``.h5`` path, a ``vgg19_no_fc.npy`` path, a
            ``{conv{b}_{i}: [kernel, bias]}`` dict, or None (random; tests only). See `wbc_tf.vgg`.
        generator: an existing generator (e.g. pre-trained; built with `build_training_generator`
            or the same ``dtype``); default builds a fresh one.
    """
    config = config if config is not None else TrainConfig()
    policy = precision.dtype_policy(config.precision)
    if generator is None:
        generator = build_training_generator(config)
    return WhiteBoxGAN(
        generator,
        build_surface_discriminator(config.disc_channels, dtype=policy),
        build_texture_discriminator(config.disc_channels, dtype=policy),
        build_vgg(vgg_weights, dtype=policy),
        config=config,
    )


def build_training_generator(config):
    """A fresh generator sized by ``config`` (``channels``, ``num_blocks``) at its ``precision``."""
    return build_generator(config.channels, config.num_blocks, dtype=precision.dtype_policy(config.precision))
