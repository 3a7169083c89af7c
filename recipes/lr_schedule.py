"""Learning-rate schedules: PyTorch's StepLR(5, 0.9) in Keras, warm-up and cosine decay.

Reproduces B 2.2 ("learning rate and schedulers"): the notes decay the rate of SGD (0.005,
momentum 0.9, as their VGG lab) by 0.9 every 5 epochs with `StepLR(step_size=5, gamma=0.9)`:

1. the rate of each epoch, read from the optimizer at the start of the epoch while `model.fit`
   trains a tiny model: Keras' `ExponentialDecay(0.005, 5 * steps_per_epoch, 0.9, staircase=True)`
   gives 0.005 for epochs 1-5, 0.0045 for 6-10, 0.00405 for 11-15 (torch's order: step() after
   each epoch). The notes call `lr_sche.step()` at the start of each epoch, before training: their
   rate drops one epoch early (0.005 for epochs 1-4 only), here a `LearningRateScheduler`
   callback with 0.005 * 0.9 ** ((epoch + 1) // 5) (0-based epoch);
2. the other decays the notes name (0.95^epoch, k/sqrt(epoch), discrete steps) and a linear
   warm-up into a cosine decay (`keras.optimizers.schedules.CosineDecay` with `warmup_target`),
   each checked against its formula in NumPy, plotted per step.

    python -m recipes.lr_schedule
    KERAS_BACKEND=torch python -m recipes.lr_schedule

Measured: the tables above on all three backends, in about 7 s a run (JAX, 2 CPU cores).
Outputs (under --out, default runs/lr_schedule): schedules.png, summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "B 2.2"

BASE_RATE = 0.005  # the notes' VGG lab: SGD(lr=0.005, momentum=0.9)
STEP_SIZE, GAMMA = 5, 0.9  # StepLR(step_size=5, gamma=0.9)
EPOCHS = 15
STEPS_PER_EPOCH = 3  # the tiny fit: 12 examples in batches of 4
WARMUP_STEPS, COSINE_STEPS = 6, 39  # warm-up for 2 epochs, then a cosine over the other 13


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(4, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (a few seconds)")


# ---- schedules -------------------------------------------------------------------------------


def step_lr(steps_per_epoch=STEPS_PER_EPOCH):
    """StepLR(5, 0.9) as a Keras schedule of the optimizer's step count: constant within an epoch,
    times 0.9 after every 5 epochs (torch's order)."""
    return keras.optimizers.schedules.ExponentialDecay(
        BASE_RATE, STEP_SIZE * steps_per_epoch, GAMMA, staircase=True
    )


def notes_order(epoch, lr=None):
    """The notes' order as a LearningRateScheduler function (`epoch` 0-based): step() runs before
    the epoch trains, so the first decay comes after 4 epochs, not 5."""
    return BASE_RATE * GAMMA ** ((epoch + 1) // STEP_SIZE)


def step_lr_table(epochs=EPOCHS, notes=False):
    """The rate of epochs 1..epochs by the formula: lr0 0.9^floor((e-1)/5) (torch), or
    lr0 0.9^floor(e/5) (the notes' step() before training)."""
    e = np.arange(1, epochs + 1)
    return BASE_RATE * GAMMA ** ((e if notes else e - 1) // STEP_SIZE)


def other_schedules(spe=STEPS_PER_EPOCH):
    """{name: (keras schedule, NumPy formula of the step)} of the decays the notes list."""
    s = keras.optimizers.schedules
    boundaries, values = [4 * spe, 10 * spe], [BASE_RATE, BASE_RATE / 10, BASE_RATE / 100]

    def warmup_cosine(t):
        t = np.minimum(t, WARMUP_STEPS + COSINE_STEPS)
        cosine = 0.5 * (1 + np.cos(np.pi * (t - WARMUP_STEPS) / COSINE_STEPS))
        return np.where(t < WARMUP_STEPS, BASE_RATE * t / WARMUP_STEPS, BASE_RATE * cosine)

    return {
        # 0.95^epoch, continuous in the step.
        "exponential 0.95^epoch": (
            s.ExponentialDecay(BASE_RATE, spe, 0.95),
            lambda t: BASE_RATE * 0.95 ** (t / spe),
        ),
        # k / sqrt(epoch), epochs counted from 1.
        "k/sqrt(epoch)": (InverseSqrtDecay(BASE_RATE, spe), lambda t: BASE_RATE / np.sqrt(1 + t / spe)),
        # Discrete, "manual" drops (AlexNet's divide by 10) at epochs 5 and 11.
        "piecewise /10": (
            s.PiecewiseConstantDecay(boundaries, values),
            lambda t: np.select([t <= boundaries[0], t <= boundaries[1]], values[:2], values[2]),
        ),
        "warm-up + cosine": (
            s.CosineDecay(0.0, COSINE_STEPS, warmup_target=BASE_RATE, warmup_steps=WARMUP_STEPS),
            warmup_cosine,
        ),
    }


def InverseSqrtDecay(initial_learning_rate, decay_steps):  # noqa: N802 (builds a schedule class)
    """lr0 / sqrt(1 + step / decay_steps): the notes' k / sqrt(epoch) at the start of (1-based)
    epoch 1 + step / decay_steps. Keras has no such schedule (InverseTimeDecay is lr0 / (1 + r t))."""

    class InverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            return initial_learning_rate / keras.ops.sqrt(1.0 + step / decay_steps)

        def get_config(self):
            return {"initial_learning_rate": initial_learning_rate, "decay_steps": decay_steps}

    return InverseSqrt()


# ---- the fits --------------------------------------------------------------------------------


def rates_seen_by_fit(learning_rate, callbacks=(), epochs=EPOCHS, seed=0):
    """The optimizer's rate at the start of every epoch of a tiny `model.fit` (SGD, momentum 0.9)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(STEPS_PER_EPOCH * 4, 3)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate, momentum=0.9), loss="mse")
    seen = []

    def record(epoch, logs=None):
        seen.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))

    # LearningRateScheduler sets the rate in its own on_epoch_begin, so the record comes after it.
    recorder = keras.callbacks.LambdaCallback(on_epoch_begin=record)
    history = model.fit(
        x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0, callbacks=[*callbacks, recorder]
    )
    return np.array(seen), history.history["loss"]


def plot_schedules(path, tables, curves):
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    epochs = np.arange(1, EPOCHS + 1)
    for label, values in tables.items():
        axes[0].step(epochs, values, where="post", label=label, lw=1.2)
    axes[0].set(xlabel="epoch", ylabel="learning rate", title="StepLR(5, 0.9) from 0.005")
    axes[0].legend(fontsize=8)
    for label, values in curves.items():
        axes[1].plot(np.arange(len(values)) / STEPS_PER_EPOCH, values, label=label, lw=1.2)
    axes[1].set(xlabel="epoch (steps / steps per epoch)", ylabel="learning rate", title="other decays")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.lr_schedule", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, ("epochs", "batch_size", "dataset", "data_dir", "resume"), "lr_schedule")
    out = Path(config.out or "runs/lr_schedule")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    # 1. StepLR as a schedule (torch's order) and the notes' order as a callback.
    torch_order, losses = rates_seen_by_fit(step_lr(), seed=config.seed)
    callback = keras.callbacks.LearningRateScheduler(notes_order)
    notes_rates, _ = rates_seen_by_fit(BASE_RATE, [callback], seed=config.seed)
    print("1. StepLR(5, 0.9) from 0.005, the rate at the start of each epoch of model.fit:")
    print(f"   ExponentialDecay(staircase) (torch's order): {np.round(torch_order, 7).tolist()}")
    print(f"   the notes' step() before the epoch:          {np.round(notes_rates, 7).tolist()}")
    print(f"   (the fit's loss {losses[0]:.4f} -> {losses[-1]:.4f})")

    # 2. The other decays, by Keras and by formula, per step.
    steps = np.arange(EPOCHS * STEPS_PER_EPOCH + 1)
    curves, differences = {}, {}
    for name, (schedule, formula) in other_schedules().items():
        by_keras = np.array([float(keras.ops.convert_to_numpy(schedule(int(t)))) for t in steps])
        differences[name] = float(np.max(np.abs(by_keras - formula(steps.astype("float64")))))
        curves[name] = by_keras
        print(
            f"2. {name}: {by_keras[0]:.6f} -> {by_keras[-1]:.6f}; "
            f"|Keras - formula| {differences[name]:.1e}"
        )
    plot_schedules(
        out / "schedules.png",
        {"torch order (Keras schedule)": torch_order, "the notes' order (one epoch early)": notes_rates},
        curves,
    )
    cosine = curves["warm-up + cosine"]
    summary = {
        "backend": engine.backend(),
        "step_lr_torch_order": torch_order.tolist(),
        "step_lr_notes_order": notes_rates.tolist(),
        "fit_losses": [float(v) for v in losses],
        "max_difference_from_formula": differences,
        "warmup_cosine": cosine.tolist(),
        "curves_at_epoch_starts": {k: v[::STEPS_PER_EPOCH].tolist() for k, v in curves.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
