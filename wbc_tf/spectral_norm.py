"""Spectral normalisation with the original's semantics (docs/fidelity.md §5.2, ``train_code/layers.py``).

For a kernel K of shape (k, k, C_in, C_out), with W = reshape(K, (k·k·C_in, C_out)) and
norm(z) = z / sqrt(max(Σz², 1e-12)) over all elements (``tf.math.l2_normalize`` defaults)::

    v̂ = norm(u · Wᵀ)                 # (1, k·k·C_in)
    û = norm(v̂ · W)                  # (1, C_out)
    σ = stop_gradient(v̂) · W · stop_gradient(û)ᵀ   # scalar, still a function of W
    K_SN = reshape(W / σ, K.shape)

The raw K stays in the variable; only the forward pass uses K/σ, so gradients reach K through both
W and σ (Miyato et al.). ``u`` is a non-trainable (1, C_out) variable initialised from N(0, 1) and,
in the original, overwritten with û every time the discriminator graph is evaluated.

Why not `keras.layers.SpectralNormalization`: it (1) *overwrites the kernel variable* with K/σ, so
there is no gradient through σ and the stored kernel is renormalised again and again, (2) draws u
from TruncatedNormal(0.02) instead of N(0, 1), and (3) updates only when ``training=True`` but then
always writes the kernel. Its gradients differ from the original's by up to 140 % (docs/fidelity.md §5.2).
"""

import keras
import tensorflow as tf

L2_EPSILON = 1e-12  # tf.nn.l2_normalize default: x / sqrt(max(sum(x**2), 1e-12))


def spectral_normalize(kernel, u, power_iterations=1):
    """Return ``(kernel / σ, û, σ)`` for ``kernel`` (..., C_out) and ``u`` (1, C_out); pure function.

    ``power_iterations`` power-iteration steps start from ``u``; û and v̂ are wrapped in
    `tf.stop_gradient`, so the gradient of the result w.r.t. ``kernel`` includes the σ path.
    """
    c_out = kernel.shape[-1]
    w = tf.reshape(kernel, (-1, c_out))                       # (k·k·C_in, C_out)
    u_hat = u
    v_hat = None
    for _ in range(power_iterations):
        v_hat = tf.math.l2_normalize(tf.matmul(u_hat, w, transpose_b=True), epsilon=L2_EPSILON)  # (1, kkC_in)
        u_hat = tf.math.l2_normalize(tf.matmul(v_hat, w), epsilon=L2_EPSILON)                    # (1, C_out)
    u_hat = tf.stop_gradient(u_hat)
    v_hat = tf.stop_gradient(v_hat)
    sigma = tf.matmul(tf.matmul(v_hat, w), u_hat, transpose_b=True)  # (1, 1)
    kernel_sn = tf.reshape(w / sigma, tf.shape(kernel))
    return kernel_sn, u_hat, tf.reshape(sigma, ())


class SpectralNormConv2D(keras.layers.Layer):
    """2-D convolution with a spectral-normalised kernel, as ``conv_spectral_norm`` of the original.

    ``tf.nn.conv2d(x, K/σ, strides, 'SAME') + bias`` with K glorot-uniform (TF1's default for
    ``tf.get_variable`` without an initializer), a zero bias and a non-trainable ``u`` of shape
    (1, filters) drawn from N(0, 1). Variable names are the TF1 ones: ``kernel``, ``bias``, ``u``.

    Under a mixed-precision ``dtype`` policy the convolution runs in the compute dtype while the
    power iteration, σ and ``u`` stay in the float32 of the variables.

    One power iteration per call, starting from the stored ``u``. Whether û is written back to
    ``u`` is decided by ``training``:

    * ``training=True``: write û back (the original writes on *every* evaluation of the
      discriminator: once per G step through the fake branch, twice per D step);
    * ``training=False``/``None``: compute σ from the stored ``u`` and write nothing, so repeated
      calls give identical results whatever their order (used by ``WhiteBoxGAN.loss_terms``).

    Under `tf.distribute`, ``u`` has ``aggregation="only_first_replica"``: û depends only on the
    (synchronised) kernel and ``u``, never on the data, so every replica computes the same value.

    Args:
        filters: output channels C_out.
        kernel_size: int, square kernel size.
        strides: int, stride in both spatial dimensions.
        power_iterations: power-iteration steps per call (1 in the original).
        **kwargs: forwarded to `keras.layers.Layer` (the name is the TF1 scope, e.g. ``conv0_1``).

    Example:
        >>> layer = SpectralNormConv2D(32, 3, strides=2, name="conv0_1")
        >>> y = layer(x, training=True)   # also advances layer.u by one power iteration

    Reference: Miyato et al., "Spectral Normalization for GANs" (ICLR 2018); docs/fidelity.md §5.2.
    """

    def __init__(self, filters, kernel_size=3, strides=1, power_iterations=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.power_iterations = power_iterations

    def build(self, input_shape):
        c_in = input_shape[-1]
        k = self.kernel_size
        # autocast=False: under a mixed policy the power iteration still reads the float32 values
        # (a bfloat16 sigma is off by ~1e-2); `call` casts K/sigma and the bias to the compute dtype.
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, c_in, self.filters), initializer="glorot_uniform", autocast=False)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros", autocast=False)
        self.u = self.add_weight(
            name="u", shape=(1, self.filters),
            initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
            trainable=False, aggregation="only_first_replica", autocast=False)

    def normalized_kernel(self, training=False):
        """K/σ from one power iteration on the stored ``u``; writes û to ``u`` when ``training``."""
        kernel_sn, u_hat, _ = spectral_normalize(
            tf.convert_to_tensor(self.kernel), tf.convert_to_tensor(self.u), self.power_iterations)
        if training:
            self.u.assign(u_hat)
        return kernel_sn

    def call(self, x, training=None):
        kernel = tf.cast(self.normalized_kernel(bool(training)), x.dtype)
        s = self.strides
        y = tf.nn.conv2d(x, kernel, strides=[1, s, s, 1], padding="SAME")
        return y + tf.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else -(-n // self.strides)  # ceil: TF 'SAME'
        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "power_iterations": self.power_iterations,
        })
        return config
