"""A 5.3's exam-score Estimator (`hccho_model`): three exam scores -> the final score."""

import time

import numpy as np

from recipes.common import cli, precision
from recipes.common.estimator import (
    Estimator,
    EstimatorSpec,
    LoggingHook,
    ModeKeys,
    numpy_input_fn,
)

keras = cli.lazy_import("keras")

# The notes' data: features {"x": A}, targets B; predictions for A2 (rows 0 and 4 of A).
EXAM_A = np.array([[73, 80, 75], [93, 88, 93], [89, 91, 90], [96, 98, 100], [73, 66, 70]], "float32")
EXAM_B = np.array([[152], [185], [180], [196], [142]], "float32")
EXAM_A2 = np.array([[73, 80, 75], [73, 66, 70]], "float32")


def logged_loss_and_error(context):
    """The notes' first logging hook: the loss and the mean absolute error (named "accuracy")."""
    return {"loss": context.loss, "accuracy": float(np.mean(np.abs(context.outputs - context.labels)))}


def logged_scores(context):
    """The notes' second logging hook: xxxx = the negated predictions, yyy = the targets."""
    return {"xxxx": -context.outputs[:, 0], "yyy": context.labels[:, 0]}


def my_format(values):
    """The notes' formatter: one 'k=v' line per value."""
    return "\n".join(f"{key}={np.round(np.asarray(value), 3).tolist()}" for key, value in values.items())


def exam_model_fn(features, labels, mode, params):
    """`hccho_model`: x (3) -> L1 Dense(5, relu) -> L2 Dense(1) = logits."""
    policy = params.get("dtype_policy", "float32")
    with precision.dtype_policy(policy):  # --dtype-policy; the logits stay float32
        inputs = keras.Input((3,), name="x")  # (N, 3)
        hidden = keras.layers.Dense(5, activation="relu", name="L1")(inputs)  # (N, 5)
        logits = keras.layers.Dense(1, name="L2", dtype="float32")(hidden)  # (N, 1)
        model = keras.Model({"x": inputs}, logits, name="hccho_model")

    def predictions(outputs):
        return {"logits": outputs}

    if mode == ModeKeys.PREDICT:  # No labels here: the loss must not be needed.
        return EstimatorSpec(mode, model, predictions=predictions)
    # The notes' hooks: tensors every 200 steps, the last one with a 'k=v' formatter.
    every = params.get("log_every", 200)
    hooks = [
        LoggingHook(logged_loss_and_error, every),
        LoggingHook(logged_scores, every, formatter=my_format),
    ]
    return EstimatorSpec(
        mode,
        model,
        predictions=predictions,
        loss=keras.losses.MeanSquaredError(),
        # Keras' Adagrad starts its accumulator at 0.1, as TF1's did.
        optimizer=precision.loss_scaled(policy, keras.optimizers.Adagrad(params["learning_rate"])),
        # The mean absolute error, under the notes' name for it.
        metrics=[keras.metrics.MeanAbsoluteError(name="xxxx")],
        training_hooks=hooks,
    )


def exam_input_fns(seed):
    """The notes' train (shuffled, 10000 epochs, batch 2), eval (1 pass) and predict (A2) inputs."""
    train = numpy_input_fn(
        {"x": EXAM_A}, EXAM_B, batch_size=2, num_epochs=10000, shuffle=True, seed=seed
    )
    evaluate = numpy_input_fn({"x": EXAM_A}, EXAM_B, batch_size=2, num_epochs=1, shuffle=False)
    predict = numpy_input_fn({"x": EXAM_A2}, batch_size=len(EXAM_A2), num_epochs=1, shuffle=False)
    return train, evaluate, predict


def run_exam(config, model_dir):
    """Evaluate, train `config.exam_steps` steps, evaluate and predict, as the notes do."""
    # The notes' NumPy replica shows that some seeds leave every ReLU dead (MSE near 2.8e4): the
    # seed fixes the initial weights.
    estimator = Estimator(
        exam_model_fn,
        model_dir,
        params={
            "learning_rate": 0.1,
            "log_every": config.log_every,
            "dtype_policy": config.dtype_policy,
        },
        seed=config.seed,
        save_checkpoints_steps=config.save_checkpoints_steps,
    )
    train_fn, eval_fn, predict_fn = exam_input_fns(config.seed)
    before = estimator.evaluate(eval_fn, steps=10)  # one pass over A: batches of 2, 2 and 1
    start = time.perf_counter()
    estimator.train(train_fn, steps=config.exam_steps)
    seconds = time.perf_counter() - start
    result = estimator.evaluate(eval_fn, steps=10)
    print("\nTest set loss: {loss:.3f}, xxxx: {xxxx:.3f}\n".format(**result))
    predictions = list(estimator.predict(predict_fn))
    print(predictions)
    return {
        "loss_before": before["loss"],
        **result,
        "predictions": [float(p["logits"][0]) for p in predictions],
        "train_seconds": seconds,
        "steps_per_second": config.exam_steps / seconds if seconds else 0.0,
    }
