"""Autoencoders: the notes' MLP autoencoder (latent 128, 2 or 1) and their convolutional one.

Reproduces A 9.1 on real MNIST digits (mnist5k: 4,000 for training, 1,000 held out; embedded):

- `--model mlp` (default): 784 -> Dense(256) -> Dense(latent) -> Dense(256) -> Dense(784), all
  sigmoid, Glorot ("xavier") initialisation, mean squared error, RMSprop 0.01, batch 256 (the
  notes'): 468,368 parameters at latent 128. `--latent 2` and `--latent 1` squeeze the digits
  through two or one numbers: the notes' figures show latent 128 reconstructing every digit, latent
  2 some, latent 1 mostly 0, 1, 8 and 9 (`--init-std 1`: the notes' noisy initialisation);
- `--model conv`: the notes' convolutional autoencoder, encoder 5x5 conv 32 (24x24), 2x2 pool
  (12x12), 5x5 conv 64 (8x8), pool (4x4), Dense 1024, Dense 128 (leaky ReLU 0.01; 1,232,896
  parameters); decoder Dense 1024 + BN, Dense 7x7x128 + BN, 4x4 stride-2 transposed convolutions to
  14x14x64 (+ BN) and 28x28x1, tanh (6,722,497 parameters, 6,707,777 trainable). Its tanh output
  learns the digits scaled to [-1, 1]; its MSE is reported in [0, 1] units like the MLP's.

The notes train 200 epochs on 55,000 digits (42,968 steps); here 400 epochs of the 4,000 (6,000
steps: sigmoid layers under MSE learn slowly; after 1,500 steps latent 128 still gave blurred mean
digits, MSE 0.055), `model.fit` with a checkpoint per epoch (`--resume` continues).

    python -m recipes.autoencoder                 # latent 128
    python -m recipes.autoencoder --latent 2      # and the 2-D latent scatter
    KERAS_BACKEND=jax python -m recipes.autoencoder --model conv --epochs 20

Measured (default runs, JAX, 2 CPU cores shared with other jobs): held-out MSE latent 128 0.0279,
latent 2 0.0562, latent 1 0.0611 (untrained 0.234), 3-5 minutes each.
Outputs (under --out, default runs/autoencoder_mlp_128 etc.): reconstructions.png (held-out
digits over their reconstructions), latent.png (held-out digits at their 2-D codes, coloured by
digit; latent 2), metrics.csv, checkpoints/, model.keras, encoder.keras, summary.json.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, fitting, gan_training, image_classification, plots

keras = cli.lazy_import("keras")

SECTION = "A 9.1"
PARAMS = {"mlp": 468_368, "conv_encoder": 1_232_896, "conv_decoder": 6_722_497}
CONV_DECODER_TRAINABLE = 6_707_777  # the batch norms' 14,720 moving statistics are not trained
# The conv encoder's feature maps by layer name (the notes' table).
CONV_SHAPES = {"conv1": (24, 24, 32), "pool1": (12, 12, 32), "conv2": (8, 8, 64), "pool2": (4, 4, 64)}


@dataclasses.dataclass
class Config(cli.RunConfig):
    model: str = cli.option("mlp", "mlp or conv (the notes' two)", choices=("mlp", "conv"))
    epochs: int = cli.option(400, "number of training epochs")
    batch_size: int = cli.option(256, "digits per training step")
    dataset: str = cli.option("mnist5k", cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    latent: int = cli.option(128, "code size (the notes: 128, 2, 1)")
    learning_rate: float = cli.option(0.01, "RMSprop learning rate")
    init_std: float = cli.option(None, "initial weights from N(0, std^2) instead of Glorot (MLP)")
    limit: int = cli.option(None, "use only the first N training digits")
    test_limit: int = cli.option(None, "evaluate on only the first N held-out digits")

    def __post_init__(self):
        if self.latent < 1 or not self.learning_rate > 0:
            raise cli.UsageError("--latent must be at least 1 and --learning-rate positive")
        if self.init_std is not None and (self.model != "mlp" or not self.init_std > 0):
            raise cli.UsageError("--init-std must be positive and applies to --model mlp only")
        for name in ("limit", "test_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise cli.UsageError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )


# --quick: 2 epochs of 8 steps of 64 digits, 200 held out.
QUICK = dict(epochs=2, batch_size=64, limit=512, test_limit=200)


def build_mlp(config):
    """The notes' autoencoder: (N, 28, 28, 1) -> (N, 28, 28, 1), and its encoder."""
    layers = keras.layers
    seed = config.seed

    def init(k):
        if config.init_std is not None:
            return keras.initializers.RandomNormal(stddev=config.init_std, seed=seed + k)
        return keras.initializers.GlorotUniform(seed=seed + k)

    inputs = keras.Input((28, 28, 1), name="digits")
    x = layers.Flatten()(inputs)  # (N, 784)
    x = layers.Dense(256, "sigmoid", kernel_initializer=init(0), name="encoder1")(x)  # (N, 256)
    code = layers.Dense(config.latent, "sigmoid", kernel_initializer=init(1), name="code")(x)
    x = layers.Dense(256, "sigmoid", kernel_initializer=init(2), name="decoder1")(code)  # (N, 256)
    x = layers.Dense(784, "sigmoid", kernel_initializer=init(3), name="decoder2")(x)  # (N, 784)
    outputs = layers.Reshape((28, 28, 1))(x)
    return keras.Model(inputs, outputs, name="autoencoder"), keras.Model(inputs, code, name="encoder")


def build_conv_parts(latent=128):
    """The notes' convolutional encoder and decoder, as two models."""
    layers = keras.layers
    leaky = 0.01
    inputs = keras.Input((28, 28, 1), name="digits")
    x = layers.Conv2D(32, 5, name="conv1")(inputs)  # (N, 24, 24, 32)
    x = layers.LeakyReLU(leaky)(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool1")(x)  # (N, 12, 12, 32)
    x = layers.Conv2D(64, 5, name="conv2")(x)  # (N, 8, 8, 64)
    x = layers.LeakyReLU(leaky)(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool2")(x)  # (N, 4, 4, 64)
    x = layers.Flatten()(x)  # (N, 1024)
    x = layers.LeakyReLU(leaky)(layers.Dense(1024, name="fc3")(x))
    code = layers.Dense(latent, name="fc4")(x)  # (N, latent)
    encoder = keras.Model(inputs, code, name="encoder")

    z = keras.Input((latent,), name="code")
    x = layers.BatchNormalization(name="bn2")(layers.Dense(1024, "relu", name="fc1")(z))
    x = layers.BatchNormalization(name="bn4")(layers.Dense(7 * 7 * 128, "relu", name="fc3")(x))
    x = layers.Reshape((7, 7, 128))(x)
    x = layers.Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu", name="deconv5")(x)
    x = layers.BatchNormalization(name="bn6")(x)  # (N, 14, 14, 64)
    outputs = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh", name="deconv7")(
        x
    )  # (N, 28, 28, 1) in [-1, 1]
    return encoder, keras.Model(z, outputs, name="decoder")


def build(config):
    """(autoencoder, encoder); the conv autoencoder maps [-1, 1] digits to [-1, 1]."""
    if config.model == "mlp":
        return build_mlp(config)
    encoder, decoder = build_conv_parts(config.latent)
    inputs = keras.Input((28, 28, 1), name="digits")
    return keras.Model(inputs, decoder(encoder(inputs)), name="conv_autoencoder"), encoder


def compiled(config):
    model, encoder = build(config)
    model.compile(optimizer=keras.optimizers.RMSprop(config.learning_rate), loss="mse")
    return model, encoder


def load_data(config):
    """mnist5k in [0, 1] (N, 28, 28, 1), limited as the flags ask, and the held-out labels."""
    x, _, x_test, labels = image_classification.load_mnist5k(config)
    return x, x_test, labels


def plot_latent(path, codes, labels):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=6)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="code 1", ylabel="code 2", title="held-out digits in the 2-D code")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.autoencoder", description=__doc__.splitlines()[0],
        quick=QUICK,
    )  # fmt: skip
    cli.reject_unused(config, ("dataset", "data_dir"), "autoencoder", "trains on mnist5k only")
    engine.set_seed(config.seed)
    x, x_test, labels = load_data(config)
    scale = (lambda a: 2 * a - 1) if config.model == "conv" else (lambda a: a)
    out = Path(config.out or f"runs/autoencoder_{config.model}_{config.latent}")
    model, encoder = compiled(config)
    loop = engine.Loop(out, fitting.checkpoint_state(model), resume=config.resume,
                       overwrite=config.overwrite, config=vars(config))  # fmt: skip
    print(f"{model.name}: {model.count_params():,} parameters, latent {config.latent}")
    untrained = float(np.mean((model.predict(scale(x_test), verbose=0) - scale(x_test)) ** 2))
    start = time.perf_counter()
    history, _ = fitting.fit_epochs(
        model, loop, scale(x), scale(x), epochs=config.epochs, batch_size=config.batch_size,
        seed=config.seed, validation_data=(scale(x_test), scale(x_test)), name=model.name,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    reconstructions = model.predict(scale(x_test), verbose=0)
    if config.model == "conv":
        reconstructions = (reconstructions + 1) / 2  # back to [0, 1]
    mse = float(np.mean((reconstructions - x_test) ** 2))
    gan_training.save_grid(np.concatenate([x_test[:10], reconstructions[:10]]),
                           out / "reconstructions.png", cols=10)  # fmt: skip
    if config.latent == 2:
        plot_latent(out / "latent.png", encoder.predict(scale(x_test), verbose=0), labels)
    engine.save_model(model, out / "model.keras")
    engine.save_model(encoder, out / "encoder.keras")
    summary = {
        "backend": engine.backend(),
        "model": config.model,
        "latent": config.latent,
        "parameters": model.count_params(),
        "epochs": config.epochs,
        "train_images": len(x),
        "held_out_images": len(x_test),
        "heldout_mse": mse,
        "untrained_heldout_mse": untrained / (4 if config.model == "conv" else 1),
        "fit_seconds": seconds,
        "history": history,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"held-out reconstruction MSE {mse:.5f} (untrained {summary['untrained_heldout_mse']:.5f}) "
          f"after {config.epochs} epochs, {seconds:.0f} s. Outputs in {out}/")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
