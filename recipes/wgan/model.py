"""WGAN's networks, the critic's losses (Wasserstein estimate, gradient penalty), Algorithm 1's step."""

import numpy as np

from recipes import engine
from recipes.common import cli, gan_training, precision

keras = cli.lazy_import("keras")

IMAGE_SHAPE = (28, 28, 1)
VALUE_RANGE = (-1.0, 1.0)  # tanh output of G; real images are scaled to the same range


# ---------------------------------------------------------------------------------------------
# Models: the notes leave the architecture open ("reuse 9.4 MLP or 9.7 DCGAN"); --arch offers both.


def build_generator(config, plain=False):
    """G: z (latent_dim,) -> image (28, 28, 1) in [-1, 1].

    `conv` is a DCGAN-like generator, narrower than A 9.7's; `mlp` has A 9.4's widths.
    `plain=True` builds the same network with `keras.layers.Conv2DTranspose` instead of
    `layers.SubPixelConv2DTranspose` (identical weights and outputs), which is what
    `generator.keras` holds.
    """
    from layers import SubPixelConv2DTranspose

    L = keras.layers
    w, init = gan_training.scaled_width(config), gan_training.weight_init
    transposed = L.Conv2DTranspose if plain else SubPixelConv2DTranspose

    def bn_relu(x):
        return L.ReLU()(L.BatchNormalization(momentum=0.9)(x))

    z = keras.Input((config.latent_dim,), name="z")
    if config.arch == "conv":
        x = bn_relu(L.Dense(7 * 7 * w(64), kernel_initializer=init())(z))
        x = L.Reshape((7, 7, w(64)))(x)  # (N, 7, 7, 64)
        x = bn_relu(transposed(w(32), 5, strides=2, padding="same", kernel_initializer=init())(x))
        # (N, 14, 14, 32)
        x = transposed(1, 5, strides=2, padding="same", kernel_initializer=init())(x)
    else:
        x = L.Dense(w(256), activation="relu", kernel_initializer=init())(z)  # (N, 256)
        x = L.Reshape(IMAGE_SHAPE)(L.Dense(int(np.prod(IMAGE_SHAPE)), kernel_initializer=init())(x))
    image = L.Activation("tanh", dtype="float32")(x)  # (N, 28, 28, 1), float32 under any policy
    return keras.Model(z, image, name="generator")


def build_critic(config, clip=True, plain=False):
    """The critic f: image -> score (N, 1), linear output (no sigmoid).

    With `--penalty clip` (and `clip=True`) every kernel, bias and BatchNorm gamma/beta carries
    `ClipConstraint(c)`; `clip=False` builds the same network without constraints, which is what
    `critic.keras` holds, with plain `Conv2D` layers (`plain=True`) instead of the identical
    `SpaceToDepthConv2D`. With `config.use_batchnorm` (the default with clipping, as in the WGAN
    paper's DCGAN critic) BatchNorm follows the second convolution (mlp: the hidden layer).
    Without it the clipped critic learns far more slowly (FID 720 after 1,600 generator updates at
    half width, against 200 with it).
    """
    from layers import ClipConstraint, SpaceToDepthConv2D

    L = keras.layers
    w = gan_training.scaled_width(config)
    constraint = ClipConstraint(config.clip_value) if clip and config.penalty == "clip" else None
    weights = dict(
        kernel_initializer=gan_training.weight_init(),
        kernel_constraint=constraint,
        bias_constraint=constraint,
    )

    def lrelu(x):
        return L.LeakyReLU(negative_slope=config.leaky_slope)(x)

    def norm(x):
        if not config.use_batchnorm:
            return x
        return L.BatchNormalization(
            momentum=0.9, gamma_constraint=constraint, beta_constraint=constraint
        )(x)

    image = keras.Input(IMAGE_SHAPE, name="image")
    if config.arch == "conv":
        # The penalty's second-order gradients are where the space-to-depth form pays off (JAX).
        conv = L.Conv2D if plain or config.penalty != "gp" else SpaceToDepthConv2D
        x = lrelu(conv(w(32), 5, strides=2, padding="same", **weights)(image))  # (N, 14, 14, 32)
        x = lrelu(norm(conv(w(64), 5, strides=2, padding="same", **weights)(x)))  # (N, 7, 7, 64)
        x = L.Flatten()(x)
    else:
        # A 9.4's MLP, much weaker here: the clipped MLP critic leaves G at the mean digit (FID
        # about 640 after 3,000 updates); the penalised one reached FID about 250 in 3,000.
        x = lrelu(norm(L.Dense(w(256), **weights)(L.Flatten()(image))))  # (N, 256)
    score = L.Dense(1, dtype="float32", **weights)(x)  # (N, 1), float32 under any policy
    return keras.Model(image, score, name="critic")


# ---------------------------------------------------------------------------------------------
# Losses and the training step


def wasserstein_estimate(real_scores, fake_scores):
    """E[f(x)] - E[f(G(z))]: what the critic maximises, its estimate of W(P_r, P_g) (up to K).

    By the Kantorovich-Rubinstein duality W(P_r, P_g) = sup_{||f||_L <= 1} E[f(x)] - E[f(G(z))].
    """
    return keras.ops.mean(real_scores) - keras.ops.mean(fake_scores)


def gradient_penalty(critic, real, fake, epsilon):
    """E[(||grad_x f(x_hat)||_2 - 1)^2] on x_hat = epsilon * real + (1 - epsilon) * fake.

    The improvement the notes name but do not implement (Gulrajani et al. 2017, arXiv 1704.00028).

    Args:
        critic: a model mapping a batch of examples to scores (N, 1); no cross-example layers.
        real, fake: (N, ...) batches; epsilon: (N,) interpolation weights in [0, 1].

    Returns:
        (penalty, norms): the scalar penalty and the per-example gradient norms (N,).
    The input gradient comes from an inner `engine.value_and_grad`; the penalty stays
    differentiable with respect to the critic's weights by an outer one.
    """
    ops = keras.ops
    epsilon = ops.reshape(epsilon, (-1,) + (1,) * (len(real.shape) - 1))
    x_hat = epsilon * real + (1.0 - epsilon) * fake

    def summed_scores(x):
        # Examples are independent, so the gradient of the sum is every example's own gradient.
        return ops.sum(critic(x, training=True))

    _, (grad_x,) = engine.value_and_grad(summed_scores, [x_hat])
    squares = ops.sum(ops.reshape(grad_x, (ops.shape(grad_x)[0], -1)) ** 2, axis=1)
    norms = ops.sqrt(squares + 1e-12)  # The offset keeps d sqrt finite at a zero gradient.
    return ops.mean((norms - 1.0) ** 2), norms


def build_optimizers(config):
    """(G's, the critic's): RMSprop (Algorithm 1) for clipping, Adam (the GP paper) for gp."""
    if config.penalty == "clip":  # Keras' RMSprop: rho 0.9, where the notes are silent.
        return [keras.optimizers.RMSprop(config.learning_rate) for _ in "gc"]
    adam = dict(beta_1=config.beta_1, beta_2=config.beta_2)
    return [keras.optimizers.Adam(config.learning_rate, **adam) for _ in "gc"]


# GANState's names -> the notes' (the checkpoints and the parity fixtures store them so).
CRITIC_NAMES = {"discriminator": "critic", "d_optimizer": "c_optimizer"}


class WGAN(gan_training.GANState):
    """G, the critic (GANState's discriminator), their optimizers and the noise, with one step."""

    def __init__(self, config):
        engine.set_seed(config.seed)
        with precision.dtype_policy(config):
            generator, critic = build_generator(config), build_critic(config)
        super().__init__(config, generator, critic, *build_optimizers(config))

    @property
    def critic(self):
        return self.discriminator

    @property
    def c_optimizer(self):
        return self.d_optimizer

    @property
    def state(self):
        return {CRITIC_NAMES.get(name, name): value for name, value in super().state.items()}

    def critic_update(self, real, z, epsilon=None):
        """One critic update on a real batch and G(z); returns (loss, estimate, penalty or 0)."""
        G, f, ops = self.generator, self.critic, keras.ops
        gp = self.config.penalty == "gp"

        def loss_fn():
            fake = ops.stop_gradient(G(z, training=True))
            if self.config.use_batchnorm:  # Batch statistics of the real and the fake batch.
                estimate = wasserstein_estimate(f(real, training=True), f(fake, training=True))
            else:  # No cross-example layers: one call on both batches gives the same scores.
                scores = f(ops.concatenate([real, fake]), training=True)
                batch = ops.shape(real)[0]
                estimate = wasserstein_estimate(scores[:batch], scores[batch:])
            if not gp:
                return -estimate, (estimate, ops.zeros(()))
            # The penalty is a gradient of a gradient: value_and_grad nested in value_and_grad.
            penalty, _ = gradient_penalty(f, real, fake, epsilon)
            return -estimate + self.config.gp_weight * penalty, (estimate, penalty)

        # loss_scale: scaled under mixed_float16 (engine.apply unscales, skips an overflow).
        (loss, (estimate, penalty)), grads = engine.value_and_grad(
            loss_fn, f.trainable_variables, has_aux=True, loss_scale=self.c_optimizer
        )
        # With --penalty clip, Optimizer.apply clips every critic weight to [-c, c] after the
        # update (`layers.ClipConstraint`, also under JAX's stateless_apply).
        engine.apply(self.c_optimizer, grads, f.trainable_variables)
        return loss, estimate, penalty

    def train_step(self, real, z_critic, z_generator, epsilon=None):
        """Algorithm 1: n_critic critic updates, each on its own real batch and noise, then one
        generator update.

        The notes' loop "for t = 0, ..., n_critic" runs n_critic + 1 times (off by one, as in the
        paper); this runs exactly n_critic. The paper's code also gives the critic 100 updates per
        generator update during the first 25; the notes do not, and neither does this.

        Args:
            real: (n_critic, batch, 28, 28, 1) real images in [-1, 1], one batch per critic update.
            z_critic: (n_critic, batch, latent_dim) noise of the critic updates.
            z_generator: (batch, latent_dim) noise of the generator update.
            epsilon: (n_critic, batch) interpolation weights in [0, 1] (`--penalty gp` only).
        Returns:
            {"c_loss", "wasserstein", "g_loss"} (+ "penalty" with gp), critic values averaged over
            the n_critic updates.
        """
        ops = keras.ops
        n = self.config.critic_steps
        if real.shape[0] != n or z_critic.shape[0] != n:
            raise cli.UsageError(
                f"train_step needs {n} real batches and noise batches, got {real.shape[0]}"
            )
        # ---- the critic: n_critic updates (a compiled step unrolls this loop)
        totals = [0.0, 0.0, 0.0]
        for i in range(n):
            values = self.critic_update(real[i], z_critic[i], None if epsilon is None else epsilon[i])
            totals = [t + v for t, v in zip(totals, values)]
        c_loss, estimate, penalty = (t / n for t in totals)

        # ---- the generator: minimise -E[f(G(z))]
        G, f = self.generator, self.critic

        def g_loss_fn():
            return -ops.mean(f(G(z_generator, training=True), training=True))

        g_loss, grads = engine.value_and_grad(
            g_loss_fn, G.trainable_variables, loss_scale=self.g_optimizer
        )
        engine.apply(self.g_optimizer, grads, G.trainable_variables)
        logs = {"c_loss": c_loss, "wasserstein": estimate, "g_loss": g_loss}
        if self.config.penalty == "gp":
            logs["penalty"] = penalty
        return logs

    def step(self, real):
        """`train_step` with noise (and interpolation weights) drawn from the seed generator."""
        n, batch = self.config.critic_steps, keras.ops.shape(real)[1]
        latent = self.config.latent_dim
        z_critic = keras.random.normal((n, batch, latent), seed=self.noise)
        z_generator = keras.random.normal((batch, latent), seed=self.noise)
        epsilon = None
        if self.config.penalty == "gp":
            epsilon = keras.random.uniform((n, batch), seed=self.noise)
        return self.train_step(real, z_critic, z_generator, epsilon)

    def generate(self, z, batch_size=256):
        """Images in [0, 1] from noise `z` (NumPy), BatchNorm in inference mode."""
        images = self.generator.predict(z, batch_size=batch_size, verbose=0)
        low, high = VALUE_RANGE
        return (images - low) / (high - low)
