"""An Estimator-style facade on Keras 3: model_fn, input_fn, train / evaluate / predict, model_dir.

TensorFlow 1's `tf.estimator` (A 5.3) no longer exists, and Keras 3 has nothing like it. This module
keeps its workflow and runs on every Keras backend (`recipes.vgg_estimator` uses it):

    def model_fn(features, labels, mode, params):
        inputs = keras.Input((3,), name="x")
        logits = keras.layers.Dense(1, name="L2")(keras.layers.Dense(5, "relu", name="L1")(inputs))
        model = keras.Model({"x": inputs}, logits)
        if mode == ModeKeys.PREDICT:
            return EstimatorSpec(mode, model)
        return EstimatorSpec(
            mode, model, loss=keras.losses.MeanSquaredError(),
            optimizer=keras.optimizers.Adagrad(params["learning_rate"]),
            metrics=[keras.metrics.MeanAbsoluteError(name="xxxx")],
        )

    estimator = Estimator(model_fn, "runs/exam", params={"learning_rate": 0.1}, seed=1)
    estimator.train(numpy_input_fn({"x": A}, B, batch_size=2, num_epochs=None), steps=1000)
    estimator.evaluate(numpy_input_fn({"x": A}, B, batch_size=2, num_epochs=1, shuffle=False))
    for row in estimator.predict(numpy_input_fn({"x": A2}, shuffle=False)):
        print(row["predictions"])

`Estimator` says how model_fn, input_fn and the model_dir map to TF1's; `Hook` and `LoggingHook`
follow TF1's `SessionRunHook` protocol, trimmed.
"""

import dataclasses
import itertools
import math
import re
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli
from recipes.engine import CheckpointError, TrainingDiverged

keras = cli.lazy_import("keras")

INDEX_FILE = "checkpoint"
CHECKPOINT_PATTERN = re.compile(r"^ckpt-(\d+)\.npz$")


class ModeKeys:
    """The three modes `model_fn` is called with (TF1's strings)."""

    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"


@dataclasses.dataclass
class EstimatorSpec:
    """What `model_fn` returns for one mode.

    Args:
        mode: a `ModeKeys` value.
        model: the `keras.Model` from features to outputs (a tensor or a dict of tensors).
        predictions: `predictions(outputs) -> {name: tensor}` for `predict` (batch-major); default
            `outputs` itself when it is a dict, else {"predictions": outputs}.
        loss: `loss(labels, outputs) -> scalar`, e.g. `keras.losses.MeanSquaredError()`; needed in
            TRAIN and EVAL. The model's own losses (`model.losses`, regularisers) are added.
        optimizer: a `keras.optimizers.Optimizer` (TRAIN).
        metrics: `keras.metrics` objects updated with `(labels, outputs)` in EVAL; the keys of
            `evaluate`'s result are their names.
        training_hooks: hooks run by `train` besides those passed to it.
    """

    mode: str
    model: object
    predictions: object = None
    loss: object = None
    optimizer: object = None
    metrics: list = dataclasses.field(default_factory=list)
    training_hooks: list = dataclasses.field(default_factory=list)

    def prediction_dict(self, outputs):
        if self.predictions is not None:
            return self.predictions(outputs)
        return dict(outputs) if isinstance(outputs, dict) else {"predictions": outputs}


# ---------------------------------------------------------------------------------------------
# Input functions


def numpy_input_fn(x, y=None, batch_size=128, num_epochs=1, shuffle=True, seed=0):
    """TF1's `numpy_input_fn`: a function returning a generator of (features, labels) batches.

    Args:
        x: a dict of arrays (or one array) with a common first dimension.
        y: labels (first dimension as x) or None; without labels the batches are bare features.
        num_epochs: passes over the data; None repeats forever. Batches run across epoch
            boundaries, as TF1's queue did; the last batch is short when the total is not a
            multiple of `batch_size`.
        shuffle: a new permutation per epoch, drawn from `seed` (each call of the returned
            function starts the same sequence, so a run is reproducible).
    """
    arrays = {k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x)
    first = next(iter(arrays.values())) if isinstance(arrays, dict) else arrays
    count = len(first)
    labels = None if y is None else np.asarray(y)
    if labels is not None and len(labels) != count:
        raise ValueError(f"numpy_input_fn: x has {count} rows but y has {len(labels)}")
    if batch_size < 1 or count == 0:
        raise ValueError(f"numpy_input_fn: need batch_size >= 1 and data, got {batch_size}, {count}")

    def take(index):
        features = (
            {k: v[index] for k, v in arrays.items()} if isinstance(arrays, dict) else arrays[index]
        )
        return features if labels is None else (features, labels[index])

    def input_fn():
        rng = np.random.default_rng(seed)
        epoch, pending = 0, np.empty(0, np.int64)
        while num_epochs is None or epoch < num_epochs or len(pending):
            while len(pending) < batch_size and (num_epochs is None or epoch < num_epochs):
                order = rng.permutation(count) if shuffle else np.arange(count)
                pending = np.concatenate([pending, order])
                epoch += 1
            index, pending = pending[:batch_size], pending[batch_size:]
            yield take(index)

    return input_fn


def _split(batch):
    """(features, labels) from a batch that is either a pair or bare features."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    return batch, None


def _batches(input_fn, single_repeats=None):
    """The batches of `input_fn()`. A single batch (not an iterator) repeats `single_repeats`
    times, or forever when None (TF1's constant input tensors)."""
    data = input_fn()
    if isinstance(data, (tuple, list, dict, np.ndarray)):
        times = () if single_repeats is None else (single_repeats,)
        for _ in itertools.repeat(None, *times):
            yield data
        return
    yield from data


def _first_labelled_batch(batches, caller):
    """(batch, features, labels) of the first batch; ValueError when there is none or it has no
    labels."""
    first = next(batches, None)
    if first is None:
        raise ValueError(f"{caller}: input_fn gave no batches")
    features, labels = _split(first)
    if labels is None:
        raise ValueError(f"{caller}: input_fn must give (features, labels) batches")
    return first, features, labels


def _rows(features):
    first = next(iter(features.values())) if isinstance(features, dict) else features
    return len(first)


# ---------------------------------------------------------------------------------------------
# Hooks


class Hook:
    """TF1's `SessionRunHook`, trimmed: `begin` before the first step of a `train` call,
    `after_run(context)` after every step, `end` after the last."""

    def begin(self):
        pass

    def after_run(self, context):
        pass

    def end(self):
        pass


class StepContext:
    """What a hook sees after a step: the batch, the model outputs and loss of that step (from the
    weights before its update, as in a TF1 `session.run`), as NumPy on first access.

    Attributes: `iteration` (0-based within this `train` call), `global_step` (after the step),
    `features`, `labels`, `outputs`, `loss`; `request_stop()` ends training after this step.
    """

    def __init__(self, iteration, global_step, features, labels, result):
        self.iteration = iteration
        self.global_step = global_step
        self.features = features
        self.labels = labels
        self._result = result
        self.stop_requested = False

    def request_stop(self):
        self.stop_requested = True

    @property
    def loss(self):
        return float(keras.ops.convert_to_numpy(self._result["loss"]))

    @property
    def outputs(self):
        return keras.tree.map_structure(keras.ops.convert_to_numpy, self._result["outputs"])


def default_formatter(values):
    """'name = value, ...' (TF1's LoggingTensorHook format)."""
    return ", ".join(f"{name} = {np.asarray(value).tolist()}" for name, value in values.items())


class LoggingHook(Hook):
    """TF1's `LoggingTensorHook`: prints some values every `every_n_iter` steps of a `train` call.

    Args:
        tensors: names among "loss", "global_step", "outputs", "labels", or a function
            `tensors(context) -> {name: value}` (see `StepContext`) that returns, e.g.,
            `{"loss": context.loss, "error": np.mean(np.abs(context.outputs - context.labels))}`.
        every_n_iter: fires at iterations 0, N, 2N, ... of each `train` call.
        formatter: `formatter(values) -> str`; default `default_formatter`.
        printer: where lines go (default `print`).

    `fired` lists the (iteration, global_step) pairs at which it fired.
    """

    def __init__(self, tensors, every_n_iter, formatter=None, printer=print):
        if every_n_iter < 1:
            raise ValueError(f"LoggingHook: every_n_iter must be at least 1, got {every_n_iter}")
        self.tensors = tensors
        self.every_n_iter = every_n_iter
        self.formatter = formatter or default_formatter
        self.printer = printer
        self.fired = []

    def after_run(self, context):
        if context.iteration % self.every_n_iter:
            return
        if callable(self.tensors):
            values = self.tensors(context)
        else:
            values = {name: getattr(context, name) for name in self.tensors}
        self.fired.append((context.iteration, context.global_step))
        self.printer(self.formatter(values))


# ---------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_steps(model_dir):
    """The global steps of the checkpoints in `model_dir`, oldest first."""
    found = []
    for path in Path(model_dir).glob("ckpt-*.npz"):
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def latest_checkpoint(model_dir):
    """The newest checkpoint named by `model_dir/checkpoint` (else the highest ckpt-STEP.npz)."""
    model_dir = Path(model_dir)
    index = model_dir / INDEX_FILE
    if index.exists():
        match = re.search(r'^model_checkpoint_path: "(.+)"$', index.read_text(), re.MULTILINE)
        if match is None:
            raise CheckpointError(
                f"{index} names no checkpoint; delete it or use another model_dir to start over"
            )
        return model_dir / match.group(1)
    steps = checkpoint_steps(model_dir)
    return model_dir / f"ckpt-{steps[-1]}.npz" if steps else None


def _write_index(model_dir, steps):
    names = [f"ckpt-{step}.npz" for step in steps]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    tmp = Path(model_dir) / (INDEX_FILE + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(Path(model_dir) / INDEX_FILE)


# ---------------------------------------------------------------------------------------------
# The Estimator


class Estimator:
    """Train, evaluate and predict with a `model_fn`, keeping the state in `model_dir`.

    - `model_fn(features, labels, mode, params)` is called once per mode (TRAIN, EVAL, PREDICT)
      with the first batch as NumPy (so it can read shapes; `labels` is None in PREDICT) and
      returns an `EstimatorSpec` built from Keras pieces. The three models share nothing in memory:
      the weights travel through the checkpoints in `model_dir`, as TF1's graphs did.
    - `input_fn()` returns an iterable of batches, each `(features, labels)` or bare features
      (features: a dict of arrays or one array), or a single such batch, which then repeats (TF1's
      constant tensors: forever in `train`, `steps` times (default once) in `evaluate`, once in
      `predict`). `numpy_input_fn` is TF1's helper of the same name.
    - Every `train`, `evaluate` and `predict` starts by restoring the newest checkpoint, so a new
      Estimator on the same `model_dir` continues where the last one stopped. Without one,
      evaluate and predict use the freshly initialised weights (global_step 0) and say so; TF1
      refused instead.

    Args:
        model_fn: `model_fn(features, labels, mode, params) -> EstimatorSpec`.
        model_dir: folder for the checkpoints (created when needed).
        params: passed to `model_fn` unchanged. `params["dtype_policy"]` (default float32), the
            policy `model_fn` builds under, is written into every checkpoint: a restore under
            another policy is refused (the weights would load and the run silently change).
        seed: `engine.set_seed(seed)` (Keras, NumPy's and Python's global generators) before
            every `model_fn` call, so the initial weights (and dropout noise) are reproducible
            and the same in every mode.
        save_checkpoints_steps: a checkpoint every this many global steps (and at the end of
            every `train` call).
        keep_checkpoint_max: how many checkpoints to keep.
        verbose: print one line per checkpoint restore and per `train` call.
    """

    def __init__(
        self,
        model_fn,
        model_dir,
        params=None,
        *,
        seed=None,
        save_checkpoints_steps=100,
        keep_checkpoint_max=5,
        verbose=True,
    ):
        if save_checkpoints_steps < 1 or keep_checkpoint_max < 1:
            raise ValueError("save_checkpoints_steps and keep_checkpoint_max must be at least 1")
        self.model_fn = model_fn
        self.model_dir = Path(model_dir)
        self.params = dict(params or {})
        self.seed = seed
        self.save_checkpoints_steps = save_checkpoints_steps
        self.keep_checkpoint_max = keep_checkpoint_max
        self.verbose = verbose
        self._specs = {}  # mode -> [spec, groups, loaded step]
        self._train_step = None

    def _print(self, message):
        if self.verbose:
            print(message, flush=True)

    # --- building and restoring ---------------------------------------------------------------

    def _spec(self, mode, features, labels):
        """The spec for `mode` (built on first use) with the newest checkpoint's weights loaded."""
        if mode not in self._specs:
            if self.seed is not None:
                engine.set_seed(self.seed)
            spec = self.model_fn(features, labels, mode, self.params)
            if not isinstance(spec, EstimatorSpec) or spec.mode != mode:
                raise ValueError(f"model_fn must return an EstimatorSpec for mode {mode!r}")
            spec.model(features)  # Builds the variables from the first batch.
            groups = {"model": list(spec.model.weights)}
            if mode == ModeKeys.TRAIN:
                if spec.loss is None or spec.optimizer is None:
                    raise ValueError("model_fn must give a loss and an optimizer in TRAIN mode")
                spec.optimizer.build(spec.model.trainable_variables)
                groups["optimizer"] = list(spec.optimizer.variables)
                weights = {id(v) for v in spec.model.weights}
                groups["train_state"] = [v for v in spec.model.variables if id(v) not in weights]
            elif mode == ModeKeys.EVAL and spec.loss is None:
                raise ValueError("model_fn must give a loss in EVAL mode")
            self._specs[mode] = [spec, groups, None]
        entry = self._specs[mode]
        self._restore(entry)
        return entry[0]

    def _restore(self, entry):
        spec, groups, loaded = entry
        path = latest_checkpoint(self.model_dir)
        if path is None:
            entry[2] = 0 if loaded is None else loaded
            return
        step = _step_of(path)
        if step == loaded:
            return
        try:
            meta = engine.load_checkpoint(path, groups)
        except CheckpointError as error:
            message = str(error).replace("start over with --overwrite", "use another model_dir")
            raise CheckpointError(message) from None
        global_step = meta.get("global_step")
        if isinstance(global_step, bool) or not isinstance(global_step, int):  # hand-edited
            raise CheckpointError(
                f"checkpoint {path} is corrupt or unreadable (its metadata has no whole-number "
                f"global_step but {global_step!r}); delete it, or use another model_dir"
            )
        saved = meta.get("dtype_policy", "float32")
        if saved != self._dtype_policy():
            raise CheckpointError(
                f"checkpoint {path} was trained under --dtype-policy {saved} (now "
                f"{self._dtype_policy()}): give the same policy, or use another model_dir"
            )
        entry[2] = global_step
        self._print(f"Restored {path} (global_step {entry[2]})")

    def _dtype_policy(self):
        return self.params.get("dtype_policy", "float32")

    def model(self, mode=ModeKeys.PREDICT):
        """The `keras.Model` built for `mode` (None before its first use); after a `train`,
        `evaluate` or `predict` in that mode it holds the weights that call used."""
        return self._specs[mode][0].model if mode in self._specs else None

    @property
    def global_step(self):
        """The newest checkpoint's step (0 when there is none)."""
        path = latest_checkpoint(self.model_dir)
        return 0 if path is None else _step_of(path)

    def _save(self, spec, groups, step):
        self.model_dir.mkdir(parents=True, exist_ok=True)
        meta = {"global_step": step, "dtype_policy": self._dtype_policy()}
        engine.save_checkpoint(self.model_dir / f"ckpt-{step}.npz", groups, meta)
        steps = checkpoint_steps(self.model_dir)
        for old in steps[: -self.keep_checkpoint_max]:
            (self.model_dir / f"ckpt-{old}.npz").unlink()
        _write_index(self.model_dir, steps[-self.keep_checkpoint_max :])
        self._specs[ModeKeys.TRAIN][2] = step

    # --- train ---------------------------------------------------------------------------------

    def _compiled_train_step(self, spec):
        model, optimizer, loss_fn = spec.model, spec.optimizer, spec.loss

        def train_step(features, labels):
            def compute_loss():
                outputs = model(features, training=True)
                loss = loss_fn(labels, outputs)
                if model.losses:
                    loss = loss + keras.ops.sum(keras.ops.stack(model.losses))
                return loss, outputs

            # (A keras.optimizers.LossScaleOptimizer, mixed_float16: the loss is scaled before
            # differentiation and engine.apply unscales, or skips a step that overflowed.)
            (loss, outputs), grads = engine.value_and_grad(
                compute_loss, model.trainable_variables, has_aux=True, loss_scale=optimizer
            )
            engine.apply(optimizer, grads, model.trainable_variables)
            return {"loss": loss, "outputs": outputs}

        return engine.function(train_step, [model, optimizer])

    def train(self, input_fn, steps=None, hooks=(), max_steps=None):
        """Trains for `steps` more steps (None: until the input ends), or up to global `max_steps`.

        The step is compiled (`engine.function`: `jax.jit`, `tf.function`, eager torch);
        `global_step` counts on across calls. Every `save_checkpoints_steps` steps and at the end
        it writes `model_dir/ckpt-STEP.npz` (model weights, optimizer slots, seed states,
        global_step), keeps the last `keep_checkpoint_max` and names them in the text file
        `model_dir/checkpoint`.

        Returns self, as TF1 did. Raises `TrainingDiverged` when the loss is NaN at a checkpoint.
        """
        batches = _batches(input_fn)
        first, features, labels = _first_labelled_batch(batches, "train")
        spec = self._spec(ModeKeys.TRAIN, features, labels)
        groups = self._specs[ModeKeys.TRAIN][1]
        start = self._specs[ModeKeys.TRAIN][2]
        stop = math.inf if steps is None else start + steps
        if max_steps is not None:
            stop = min(stop, max_steps)
        if start >= stop:
            self._print(f"global_step {start} already reached max_steps {max_steps}: nothing to do")
            return self
        if self._train_step is None:
            self._train_step = self._compiled_train_step(spec)
        hooks = list(spec.training_hooks) + list(hooks)
        for hook in hooks:
            hook.begin()
        step, iteration, batch, saved = start, 0, first, start
        try:
            while batch is not None and step < stop:
                features, labels = _split(batch)
                result = self._train_step(features, labels)
                step += 1
                context = StepContext(iteration, step, features, labels, result)
                for hook in hooks:
                    hook.after_run(context)
                if step % self.save_checkpoints_steps == 0:
                    self._checked_save(spec, groups, step, result)
                    saved = step
                iteration += 1
                if context.stop_requested:
                    break
                batch = next(batches, None)
            if saved != step:
                self._checked_save(spec, groups, step, result)
        finally:
            for hook in hooks:
                hook.end()
        loss = float(keras.ops.convert_to_numpy(result["loss"]))
        self._print(f"Trained {step - start} steps: global_step {step}, loss {loss:.4g}")
        return self

    def _checked_save(self, spec, groups, step, result):
        loss = float(keras.ops.convert_to_numpy(result["loss"]))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} by global_step {step}; the last good checkpoint is "
                f"{latest_checkpoint(self.model_dir) or 'none'}"
            )
        self._save(spec, groups, step)

    # --- evaluate and predict -------------------------------------------------------------------

    def evaluate(self, input_fn, steps=None):
        """Evaluates on `steps` batches (None: until the input ends).

        Returns {"loss": mean of the batch losses, one entry per metric, "global_step"}.
        """
        batches = _batches(input_fn, single_repeats=steps or 1)
        first, features, labels = _first_labelled_batch(batches, "evaluate")
        spec = self._spec(ModeKeys.EVAL, features, labels)
        step = self._specs[ModeKeys.EVAL][2]
        if step == 0:
            self._print(f"No checkpoint in {self.model_dir}: evaluating the initial weights")
        for metric in spec.metrics:
            metric.reset_state()
        losses, count, batch = [], 0, first
        while batch is not None and (steps is None or count < steps):
            features, labels = _split(batch)
            outputs = spec.model.predict_on_batch(features)  # Keras' compiled predict
            losses.append(float(keras.ops.convert_to_numpy(spec.loss(labels, outputs))))
            for metric in spec.metrics:
                metric.update_state(labels, outputs)
            count += 1
            batch = next(batches, None) if steps is None or count < steps else None
        results = {"loss": float(np.mean(losses))}
        for metric in spec.metrics:
            results[metric.name] = float(keras.ops.convert_to_numpy(metric.result()))
        results["global_step"] = step
        return results

    def predict(self, input_fn):
        """Yields one dict of NumPy values per example, until the input ends."""
        data = input_fn()
        if isinstance(data, (tuple, list, dict, np.ndarray)):
            data = [data]  # One batch: predicted once, not forever.
        spec = None
        for batch in data:
            features, _ = _split(batch)
            if spec is None:
                spec = self._spec(ModeKeys.PREDICT, features, None)
            outputs = spec.model.predict_on_batch(features)
            predictions = spec.prediction_dict(outputs)
            predictions = {k: keras.ops.convert_to_numpy(v) for k, v in predictions.items()}
            for i in range(_rows(features)):
                yield {k: v[i] for k, v in predictions.items()}


def _step_of(path):
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    if match is None:
        raise CheckpointError(f"{path} is not a ckpt-STEP.npz checkpoint")
    return int(match.group(1))
