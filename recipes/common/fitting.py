"""`model.fit` one epoch at a time inside an `engine.Loop`: the checkpoint contract for recipes that
train with `fit` (translation, image_captioning, image_classification).

    model.compile(optimizer, loss=...)
    loop = engine.Loop(out, checkpoint_state(model), resume=..., overwrite=..., config=...,
                       epochs_in_schedule=True)
    rows, seconds = fit_epochs(model, loop, [x1, x2], y, epochs=10, batch_size=64, seed=0)

After every epoch the Loop writes a checkpoint (atomically) with the weights, the optimizer's slots
and iteration count (so the learning-rate schedule's position), the seed generators' state, the
epoch and the metrics rows. Every epoch sees the training data in an order that depends only on
(seed, epoch), so a run resumed from any checkpoint ends exactly where the uninterrupted run does.
"""

import time

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")


def checkpoint_state(model):
    """{"model", "optimizer"} of a compiled model, its optimizer built so that a checkpoint can
    restore the slots and the iteration count before the first step."""
    model.optimizer.build(model.trainable_variables)
    return {"model": model, "optimizer": model.optimizer}


def epoch_order(seed, epoch, count):
    """The order of the `count` training examples in `epoch` (1-based): a function of (seed, epoch)
    alone, so a resumed run sees the batches the uninterrupted run saw."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def fit_epochs(model, loop, x, y, *, epochs, batch_size, seed, validation_data=None, name="model"):
    """Trains `model` from `loop`'s epoch up to `epochs`, one `fit` epoch per Loop epoch.

    Args:
        x: an array or a list of arrays (several model inputs), permuted together with `y`.
        validation_data: as `fit` takes it; its losses are in every row (`val_loss`).

    Returns:
        (rows, seconds): the metrics of every epoch, resumed ones included ({"epoch", "loss", ...}),
        and the seconds this process spent in `fit`.

    Raises:
        TrainingDiverged: the loss became NaN; the newest checkpoint is the last good epoch.
    """
    inputs = list(x) if isinstance(x, (list, tuple)) else [x]

    def stop_after_one_epoch(epoch, logs):
        model.stop_training = True  # fit(epochs=epochs) still shows "Epoch 3/10"

    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.LambdaCallback(on_epoch_end=stop_after_one_epoch),
    ]
    seconds = []

    def train_epoch(epoch):
        order = epoch_order(seed, epoch, len(y))
        ordered = [a[order] for a in inputs]
        start = time.perf_counter()
        history = model.fit(
            ordered if isinstance(x, (list, tuple)) else ordered[0],
            y[order],
            batch_size=batch_size,
            epochs=epochs,
            initial_epoch=epoch - 1,
            validation_data=validation_data,
            shuffle=False,  # already in the (seed, epoch) order
            callbacks=callbacks,
            verbose=engine.fit_verbose(),
        )
        seconds.append(time.perf_counter() - start)
        logs = {key: float(values[-1]) for key, values in sorted(history.history.items())}
        if not np.isfinite(logs["loss"]):
            last = engine.latest_checkpoint(loop.checkpoint_dir)
            raise engine.TrainingDiverged(
                f"the loss of {name} became NaN at epoch {epoch}; last checkpoint {last or 'none'}"
            )
        return logs

    rows = loop.run(train_epoch, epochs=epochs)
    return rows, sum(seconds)
