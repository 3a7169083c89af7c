"""Variational autoencoder: an encoder q(z|x), a Bernoulli decoder p(x|z), trained on the ELBO.

Reproduces A 9.3 and D 9.5 on binarised real MNIST digits (mnist5k, pixels > 0.5: 4,000 for
training, 1,000 held out; embedded, no network):

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || N(0, I))      (a lower bound of log p(x))
    KL = 1/2 sum_j (sigma_j^2 + mu_j^2 - log sigma_j^2 - 1)     (e.g. mu 1, sigma 1: 0.5; mu 0,
                                                                  sigma 2: 0.8068528 per dimension)

The encoder gives mu and log sigma^2 (two Dense heads, as many weights as the notes' one head of
2 N_z outputs; the notes take sigma = softplus(.) instead of a log-variance), z = mu + sigma eps is
drawn by `layers.Sampling` (the reparameterisation trick, its own seeded generator), the decoder
gives the 784 Bernoulli logits and log p(x|z) = -binary cross-entropy summed over the pixels. One
Adam step on the batch's mean -ELBO, compiled by the engine on every backend.

- `--model mlp` (default): the notes' MLP with N_h 500 (elu, tanh; dropout 0.1) and N_z 20:
  encoder 663,040 and decoder 653,784 parameters;
- `--model conv`: two 5x5 stride-2 convolutions (16, 32 filters: 28 -> 14 -> 7), FC 1568 <-> N_z
  and two transposed convolutions back: encoder 76,008, decoder 46,145 parameters at N_z 20.

Adam 1e-3 and batch 128 are the inventory's; 60 epochs (4,000 digits are few: 31 steps an epoch;
the held-out -ELBO stops falling after about 60 while the training -ELBO still does). A checkpoint
after every epoch; `--resume` continues exactly.

    python -m recipes.vae
    KERAS_BACKEND=jax python -m recipes.vae --model conv --latent 2 --epochs 50

Measured (JAX, seed 0, 2 CPU cores shared with other jobs): held-out -ELBO 218.3 nats per digit
after epoch 1, 108.6 after 21, 101.0 after 60 (reconstruction 73.0 + KL 28.1; 173 s of training);
a 150-epoch run went on to 102.7 while its training -ELBO fell from 93 to 85 (overfitting).
Outputs (under --out, default runs/vae or runs/vae_conv): metrics.csv (-ELBO, reconstruction and
KL per epoch, held-out -ELBO), curves.png, samples.png (decoded z ~ N(0, I)), reconstructions.png
(held-out digits over their reconstructions), walk.png (decoded grid over the first two latent
axes, the others 0: the whole latent space at --latent 2), encoder.keras, decoder.keras (z ->
pixel probabilities), checkpoints/, summary.json.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import binary_digits, cli, gan_training, plots

keras = cli.lazy_import("keras")

SECTION = "A 9.3, D 9.5"
PIXELS = 784
# Parameters at the default sizes (N_h 500, N_z 20): (encoder, decoder).
PARAMS = {"mlp": (663_040, 653_784), "conv": (76_008, 46_145)}


@dataclasses.dataclass
class Config(cli.RunConfig):
    model: str = cli.option("mlp", "mlp (the notes' N_h network) or conv", choices=("mlp", "conv"))
    epochs: int = cli.option(60, "number of training epochs")
    batch_size: int = cli.option(128, "digits per training step")
    dataset: str = cli.option("mnist5k", cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    latent: int = cli.option(20, "latent dimensions N_z")
    hidden: int = cli.option(500, "hidden units N_h of the MLP")
    dropout: float = cli.option(0.1, "dropout after each hidden layer of the MLP (1 - keep_prob)")
    learning_rate: float = cli.option(1e-3, "Adam learning rate")
    limit: int = cli.option(None, "use only the first N training digits")
    test_limit: int = cli.option(None, "evaluate on only the first N held-out digits")

    def __post_init__(self):
        if min(self.latent, self.hidden) < 1:
            raise cli.UsageError("--latent and --hidden must be at least 1")
        if not 0 <= self.dropout < 1 or not self.learning_rate > 0:
            raise cli.UsageError("--dropout must be in [0, 1) and --learning-rate positive")
        for name in ("limit", "test_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise cli.UsageError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )


# --quick: 2 epochs of 8 steps of 64 digits on a narrow MLP, 200 held out.
QUICK = dict(epochs=2, batch_size=64, limit=512, test_limit=200, hidden=64, latent=8)


# ---------------------------------------------------------------------------------------------
# The model


def kl_normal(mean, log_var):
    """KL(N(mean, sigma^2) || N(0, 1)) per dimension, log_var = log sigma^2, in keras.ops: the
    notes' 1/2 (sigma^2 + mean^2 - log sigma^2 - 1)."""
    return 0.5 * (keras.ops.exp(log_var) + keras.ops.square(mean) - log_var - 1)


def build_encoder(config):
    """x (N, 28, 28, 1) -> [mean, log_var, z] (N, N_z) each; z from `layers.Sampling`."""
    import layers as project_layers

    layers = keras.layers
    x = inputs = keras.Input((28, 28, 1), name="digits")
    if config.model == "mlp":
        x = layers.Flatten()(x)  # (N, 784)
        for i, activation in enumerate(("elu", "tanh")):
            x = layers.Dense(config.hidden, activation=activation, name=f"hidden{i + 1}")(x)
            x = layers.Dropout(config.dropout, seed=config.seed + i, name=f"dropout{i + 1}")(x)
    else:
        for i, filters in enumerate((16, 32)):  # (N, 14, 14, 16) -> (N, 7, 7, 32)
            x = layers.Conv2D(filters, 5, strides=2, padding="same", name=f"conv{i + 1}")(x)
            x = layers.LeakyReLU(0.2)(x)
        x = layers.Flatten()(x)  # (N, 1568)
    mean = layers.Dense(config.latent, name="mean")(x)  # (N, N_z)
    log_var = layers.Dense(config.latent, name="log_var")(x)  # (N, N_z): log sigma^2
    z = project_layers.Sampling(seed=config.seed, name="z")([mean, log_var])
    return keras.Model(inputs, [mean, log_var, z], name="encoder")


def build_decoder(config):
    """z (N, N_z) -> Bernoulli logits (N, 28, 28, 1)."""
    layers = keras.layers
    x = inputs = keras.Input((config.latent,), name="z")
    if config.model == "mlp":
        for i, activation in enumerate(("tanh", "elu")):
            x = layers.Dense(config.hidden, activation=activation, name=f"hidden{i + 1}")(x)
            x = layers.Dropout(config.dropout, seed=config.seed + 10 + i, name=f"dropout{i + 1}")(x)
        x = layers.Dense(PIXELS, name="logits")(x)
        x = layers.Reshape((28, 28, 1))(x)
    else:
        x = layers.Dense(7 * 7 * 32, name="fc")(x)  # (N, 1568)
        x = layers.Reshape((7, 7, 32))(x)
        x = layers.ReLU()(x)
        x = layers.Conv2DTranspose(16, 5, strides=2, padding="same", activation="relu")(x)
        x = layers.Conv2DTranspose(1, 5, strides=2, padding="same", name="logits")(x)  # (N, 28, 28, 1)
    return keras.Model(inputs, x, name="decoder")


class VAE:
    def __init__(self, config):
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer.build(self.variables)
        self.state = {"encoder": self.encoder, "decoder": self.decoder, "optimizer": self.optimizer}

    def terms(self, x, training=False):
        """(reconstruction, KL) per digit, in nats: -log p(x|z) with one z ~ q(z|x), and the KL."""
        mean, log_var, z = self.encoder(x, training=training)
        logits = self.decoder(z, training=training)
        bce = keras.ops.binary_crossentropy(x, logits, from_logits=True)
        reconstruction = keras.ops.sum(keras.ops.reshape(bce, (-1, PIXELS)), axis=1)
        return reconstruction, keras.ops.sum(kl_normal(mean, log_var), axis=1)

    def step(self, x):
        def loss_fn():
            reconstruction, kl = self.terms(x, training=True)
            reconstruction, kl = keras.ops.mean(reconstruction), keras.ops.mean(kl)
            return reconstruction + kl, (reconstruction, kl)

        (loss, (reconstruction, kl)), grads = engine.value_and_grad(
            loss_fn, self.variables, has_aux=True
        )
        self.optimizer.apply(grads, self.variables)
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl}

    def evaluate(self, x):
        """(reconstruction, KL, posterior mean) per digit, without dropout."""
        reconstruction, kl = self.terms(x)
        return reconstruction, kl, self.encoder(x)[0]

    def decode(self, z):
        """Pixel probabilities (N, 28, 28, 1) of latent codes z (NumPy), in one compiled call."""
        return 1 / (1 + np.exp(-self.decoder.predict(z, batch_size=len(z), verbose=0)))


def heldout_terms(evaluate, x, batch_size=500):
    """Mean reconstruction and KL over the held-out digits (one z each; no dropout), and the
    posterior means of the first ten digits, from the compiled `evaluate`."""
    parts = [evaluate(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    rec, kl, mean = (np.concatenate([keras.ops.convert_to_numpy(p[k]) for p in parts]) for k in range(3))
    return float(rec.mean()), float(kl.mean()), mean[:10]


def walk_codes(config, size=15):
    """A size x size grid of the first two latent axes (the others 0), at the normal quantiles
    0.05 .. 0.95 (a grid over the whole latent space when N_z = 2)."""
    from scipy.stats import norm

    axis = norm.ppf(np.linspace(0.05, 0.95, size))
    z = np.zeros((size * size, config.latent), "float32")
    z[:, 0] = np.tile(axis, size)
    if config.latent > 1:
        z[:, 1] = np.repeat(axis[::-1], size)
    return z


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.vae", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, ("dataset", "data_dir"), "vae", "trains on mnist5k only")
    engine.set_seed(config.seed)
    x, x_test, _ = binary_digits.load(config.limit, config.test_limit, config.batch_size)
    out = Path(config.out or ("runs/vae" if config.model == "mlp" else "runs/vae_conv"))
    vae = VAE(config)
    counts = (vae.encoder.count_params(), vae.decoder.count_params())
    step = engine.function(vae.step, list(vae.state.values()))
    evaluate = engine.function(vae.evaluate, list(vae.state.values()))
    loop = engine.Loop(out, vae.state, resume=config.resume, overwrite=config.overwrite,
                       config=dataclasses.asdict(config))  # fmt: skip
    print(
        f"VAE ({config.model}, N_z {config.latent}): encoder {counts[0]:,}, decoder {counts[1]:,} "
        f"parameters; {len(x)} training and {len(x_test)} held-out binarised digits"
    )
    steps = len(x) // config.batch_size

    def on_epoch_end(epoch, logs):
        reconstruction, kl, _ = heldout_terms(evaluate, x_test)
        return {"heldout_neg_elbo": reconstruction + kl, "heldout_reconstruction": reconstruction,
                "heldout_kl": kl}  # fmt: skip

    history = loop.fit(
        step,
        lambda epoch: gan_training.shuffled_batches((x,), config.batch_size, config.seed, epoch),
        epochs=config.epochs,
        steps_per_epoch=steps,
        on_epoch_end=on_epoch_end,
    )
    final = history[-1]
    # The pictures: prior samples, the walk and the first ten held-out digits' reconstructions
    # (from their posterior means), decoded together.
    prior = np.random.default_rng(config.seed).standard_normal((64, config.latent)).astype("float32")
    walk = walk_codes(config)
    means = heldout_terms(evaluate, x_test)[2]
    decoded = vae.decode(np.concatenate([prior, walk, means]))
    gan_training.save_grid(decoded[:64], out / "samples.png", cols=8)
    gan_training.save_grid(decoded[64 : 64 + len(walk)], out / "walk.png", cols=15)
    pairs = np.concatenate([x_test[: len(means)], decoded[64 + len(walk) :]])
    gan_training.save_grid(pairs, out / "reconstructions.png", cols=len(means))
    plots.loss_curves(
        out / "curves.png",
        {
            "-ELBO, training batches": [row["loss"] for row in history],
            "-ELBO, held out": [row["heldout_neg_elbo"] for row in history],
            "KL term, training": [row["kl"] for row in history],
        },
        "VAE on binarised mnist5k",
        ylabel="nats per digit",
    )
    engine.save_model(vae.encoder, out / "encoder.keras")
    logits = keras.Input((config.latent,), name="z")
    probabilities = keras.layers.Activation("sigmoid")(vae.decoder(logits))
    decoder = keras.Model(logits, probabilities, name="decoder_probabilities")
    engine.save_model(decoder, out / "decoder.keras")
    summary = {
        "backend": engine.backend(),
        "model": config.model,
        "latent": config.latent,
        "parameters": {"encoder": counts[0], "decoder": counts[1]},
        "epochs": config.epochs,
        "train_images": len(x),
        "held_out_images": len(x_test),
        "heldout_neg_elbo": final["heldout_neg_elbo"],
        "heldout_reconstruction": final["heldout_reconstruction"],
        "heldout_kl": final["heldout_kl"],
        "first_heldout_neg_elbo": history[0]["heldout_neg_elbo"],
        "seconds": sum(row["seconds"] for row in history),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"held-out -ELBO {final['heldout_neg_elbo']:.1f} nats per digit (reconstruction "
        f"{final['heldout_reconstruction']:.1f} + KL {final['heldout_kl']:.1f}) after "
        f"{config.epochs} epochs; log 2 x 784 = {PIXELS * math.log(2):.1f} for a coin. Outputs in {out}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
