"""The backend engine: the only code in the project that imports tensorflow, torch or jax.

Keras 3 trains one model with one optimizer through `fit()`. Everything else (two optimizers in a GAN,
critic loops, optimising pixels, from-scratch backprop) needs gradients, and every backend takes them
differently. This package hides exactly that:

- `value_and_grad(fn, wrt)`: the value of `fn` and its gradients with respect to Keras variables and/or
  tensors; nestable (a gradient of a gradient norm); `loss_scale=optimizer` scales the loss for a
  `keras.optimizers.LossScaleOptimizer` (mixed_float16), and `apply(optimizer, grads, variables)`
  applies the gradients on every backend.
- `function(fn, state)`: a compiled step that may update several models, optimizers and seed generators;
  `jax.jit` with all state threaded in and out, `tf.function` on TensorFlow, eager on torch.
- `save_model(model, path)`: `model.save(path)` without importing TensorFlow on the other backends.
- `Loop`: epochs with a Keras `Progbar` (one line per epoch when stdout is not a terminal:
  `fit_verbose()`), `metrics.csv`, TensorBoard events, a checkpoint per epoch,
  `resume`, and a clean stop when a loss becomes NaN.

Nothing is imported until it is used, so `python -m recipes.NAME --help` stays fast.
"""

import contextlib
import importlib

# Keras' private list of variables whose initialisation a StatelessScope deferred.
_UNINITIALIZED = "uninitialized_variables"


class EngineError(RuntimeError):
    """Misuse of the engine, e.g. a compiled step that updates a variable it does not own."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not match the model (one-line message)."""


class OutputError(RuntimeError):
    """An output folder that cannot be written, or that holds a previous run (one-line message)."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the last good checkpoint."""


def backend():
    """The name of the Keras backend in use: "tensorflow", "torch" or "jax"."""
    import keras

    return keras.backend.backend()


def set_seed(seed):
    """`keras.utils.set_random_seed` without importing TensorFlow under the other backends.

    Keras seeds TensorFlow whenever it is installed, which costs a torch or JAX run seven seconds
    of import time; this seeds Python, NumPy, Keras' global seed generator and torch, and TensorFlow
    only when it is the backend or already imported.
    """
    import random
    import sys

    import keras
    import numpy as np

    if backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if backend() == "torch":
        import torch

        torch.manual_seed(seed)


def fit_verbose():
    """Keras' `verbose` for `fit` and `Progbar`: 1 (a live progress bar) on a terminal, else 2.

    With stdout redirected to a file or a pipe, a progress bar writes `\\r` and ANSI colour codes
    that make the log unreadable; 2 writes one plain summary line per epoch instead. (Keras'
    `verbose="auto"` cannot tell: it treats every POSIX process as a terminal.)
    """
    import sys

    isatty = getattr(sys.stdout, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


@contextlib.contextmanager
def without_weights():
    """Models built inside get variables with shapes but no values: counting the parameters of a
    62M-parameter AlexNet takes milliseconds instead of seconds of random initialisation. Such
    models cannot be run.

    Keras defers the initialisation of variables created in a `StatelessScope(initialize_variables=
    False)`; the deferred ones are dropped again on exit, which reaches into Keras' private global
    state (`keras.src`, confined to this package; tests/recipes/engine checks it still holds).
    Should that state be gone, the models are simply built with weights.
    """
    import keras

    try:
        from keras.src.backend.common import global_state

        before = list(global_state.get_global_attribute(_UNINITIALIZED) or [])
    except (ImportError, AttributeError):
        yield
        return
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute(_UNINITIALIZED, before)


def save_model(model, path):
    """`model.save(path)` (a `.keras` file), without importing TensorFlow on the other backends.

    Keras' serializer asks whether TensorFlow is installed, to recognise `tf.TensorShape`s and
    `tf.DType`s in configs, and asking imports it: 3.6 s the first time a torch or JAX process
    saves a model. While TensorFlow is not imported, nothing in a config can be one of its objects,
    so the engine answers "not available" for the duration of the save (Keras' private
    `module_utils.tensorflow`, confined to this package). The file is the one `model.save` writes.
    """
    import sys

    lazy = None
    if backend() != "tensorflow" and "tensorflow" not in sys.modules:
        try:
            from keras.src.utils import module_utils

            lazy = module_utils.tensorflow if module_utils.tensorflow._available is None else None
        except (ImportError, AttributeError):
            pass
    if lazy is None:  # TensorFlow's backend, already imported or already asked about: Keras' save
        model.save(path)
        return
    lazy._available = False
    try:
        model.save(path)
    finally:
        lazy._available = None


def configure(directory=None):
    """Backend settings for command-line runs; call before the backend is imported.

    - Keeps JAX's compiled programs on disk, so the next run of a recipe skips most compiling. Eager
      JAX compiles every operation for every new shape (a `--quick` DCGAN run spends two thirds of
      its 30 seconds there); with the cache a second run takes 11. Uses `directory`, else
      `$JAX_COMPILATION_CACHE_DIR`, else `~/.cache/keras-recipes/jax`.
    - Silences TensorFlow's C++ start-up log lines (`TF_CPP_MIN_LOG_LEVEL=2`; errors still show).

    Explicit environment variables win. Harmless under the other backends.
    """
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    directory = directory or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if not directory:
        cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        directory = os.path.join(cache_home, "keras-recipes", "jax")
    settings = {
        "jax_compilation_cache_dir": directory,
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": -1,
    }
    for name, value in settings.items():
        os.environ.setdefault(name.upper(), str(value))
    if "jax" in sys.modules:  # Already imported: the environment is read only at import.
        import jax

        for name in settings:
            jax.config.update(name, type(settings[name])(os.environ[name.upper()]))


def _impl():
    return importlib.import_module(f"recipes.engine._{backend()}")


def value_and_grad(fn, wrt, *, has_aux=False, loss_scale=None):
    """Evaluates `fn` and differentiates its scalar result with respect to `wrt`.

    Args:
        fn: a callable returning a scalar tensor (or `(scalar, aux)` with `has_aux=True`). It is called
            with one positional argument per *tensor* in `wrt`, in order; Keras variables in `wrt` are
            read by `fn` through the layers that own them.
        wrt: a list of `keras.Variable`s and/or tensors.
        has_aux: whether `fn` returns `(value, aux)`.
        loss_scale: the optimizer that will apply the gradients. When it is a
            `keras.optimizers.LossScaleOptimizer` (mixed_float16), the value is multiplied by its
            loss scale before differentiation, so that small float16 gradients do not underflow to
            zero; the value returned is the unscaled one, the gradients stay scaled until
            `apply(optimizer, grads, variables)` divides them by the scale.

    Returns:
        `(value, grads)`, or `((value, aux), grads)` with `has_aux=True`; `grads` is a list aligned with
        `wrt` (zeros for entries `fn` does not depend on). Variable updates made inside `fn` (BatchNorm
        statistics, seed generators) take effect as in eager code. Calls may be nested: the gradients
        returned by an inner call can themselves be differentiated by an outer one.

    Example:
        loss, grads = value_and_grad(lambda: loss_fn(model(x), y), model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
    """
    import keras

    if not isinstance(loss_scale, keras.optimizers.LossScaleOptimizer):
        return _impl().value_and_grad(fn, list(wrt), has_aux=has_aux)

    def scaled(*args):
        out = fn(*args)
        value, aux = out if has_aux else (out, None)
        # The unscaled value leaves as data (torch: detached): nothing differentiates it further.
        return loss_scale.scale_loss(value), (keras.ops.stop_gradient(value), aux)

    (_, (value, aux)), grads = _impl().value_and_grad(scaled, list(wrt), has_aux=True)
    return ((value, aux) if has_aux else value), grads


def apply(optimizer, grads, variables):
    """`optimizer.apply(grads, variables)`, also for a `keras.optimizers.LossScaleOptimizer`.

    Keras' loss-scale optimizer divides the gradients by its scale and applies them when they are
    all finite; otherwise it skips the update and halves the scale (and doubles it after
    `dynamic_growth_steps` good steps). It chooses with a stateful `keras.ops.cond`, which JAX
    cannot trace (the updates leak out of `jax.lax.cond`), so on JAX it runs through its
    `stateless_apply`, which gives the same updates. Works inside `function` and eagerly.
    """
    import keras

    variables = list(variables)
    fast_updates([optimizer])
    if backend() != "jax" or not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer.apply(grads, variables)
        return
    new_variables, new_state = optimizer.stateless_apply(
        [v.value for v in optimizer.variables], grads, [v.value for v in variables]
    )
    for variable, value in zip(variables, new_variables):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, new_state):
        variable.assign(value)


def fast_updates(items, *, fit=False):
    """On torch and TensorFlow, gives the Adam and AdamW optimizers among `items` (a
    LossScaleOptimizer's inner one; on torch also RMSprop) the engine's update, with Keras' numbers.

    Keras' torch optimizers allocate a model-sized temporary for every intermediate of the update;
    the torch engine's update does the same arithmetic in place, bit for bit (about 4 times faster
    on CPU: recipes/engine/_torch_optimizers.py). In TensorFlow's graph mode every intermediate is
    a kernel of its own; the TensorFlow engine's update is one XLA program (2.8 times faster, equal
    up to fused multiply-adds: recipes/engine/_tensorflow_optimizers.py). `apply` and `function`
    call this for the optimizers they are given, and `Loop` with `fit=True`, so that `fit()` with
    a Loop's optimizer gets it too. Other items, other optimizers and JAX are left alone
    (`RECIPES_FAST_OPTIMIZERS=0` in the environment turns it off).

    fit: the optimizers are `fit()`'s. TensorFlow's `fit` compiles its whole step with XLA
    (`jit_compile="auto"`), or stays in graph mode for a --quick run's few steps, where compiling
    the update would cost more than it saves: there Keras' update stays.
    """
    import os

    name = backend()
    if name == "jax" or (fit and name == "tensorflow"):
        return
    if os.environ.get("RECIPES_FAST_OPTIMIZERS", "1") == "0":
        return
    import keras

    from recipes.engine import _keras_optimizers

    module = importlib.import_module(f"recipes.engine._{name}_optimizers")
    for item in items:
        if isinstance(item, keras.optimizers.LossScaleOptimizer):
            item = item.inner_optimizer
        if isinstance(item, keras.optimizers.Optimizer):
            _keras_optimizers.install(item, module.HOOK, module.updates())


def fast_calls(items):
    """On torch, gives the functional and Sequential Keras models among `items` the engine's graph
    call: the same layers in the same order, each as the engine's torch kernel or its own `call`,
    without `Layer.__call__`'s per-layer Python where it would change nothing
    (recipes/engine/_torch_graph.py; the same outputs). `function` and `Loop` call this for the
    models they are given. Other items and other backends are left alone
    (`RECIPES_FAST_CALLS=0` in the environment turns it off).
    """
    if backend() != "torch":
        return
    import keras

    from recipes.engine import _torch_graph

    for item in items:
        if isinstance(item, keras.Model):
            _torch_graph.install(item)


def state_variables(state):
    """Flattens models, layers, optimizers, seed generators and variables into unique variables."""
    import keras

    variables, seen = [], set()
    for item in state:
        if isinstance(item, keras.Variable):
            found = [item]
        elif isinstance(item, keras.random.SeedGenerator):
            found = [item.state]
        elif isinstance(item, keras.optimizers.Optimizer):
            if not item.built:
                raise EngineError(
                    f"optimizer {item.name} is not built: call optimizer.build(variables) before "
                    "compiling a step that uses it"
                )
            found = item.variables
        elif isinstance(item, keras.layers.Layer):
            if not item.built:
                raise EngineError(f"{item.name} is not built: build it before compiling a step")
            found = item.variables
        else:
            raise EngineError(f"cannot take the state of {type(item).__name__}")
        for variable in found:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def function(fn, state, *, jit=True):
    """Compiles a training step that updates the variables of `state` in place.

    Args:
        fn: the step, written as ordinary stateful Keras code (`value_and_grad`, `optimizer.apply`,
            `keras.random.*` with a `SeedGenerator`); it takes and returns tensors (a dict of losses).
        state: the models, optimizers (built) and seed generators the step reads or updates. On JAX
            they are threaded through `jax.jit`; a variable updated by `fn` but missing from `state`
            raises `EngineError` instead of being silently frozen.
        jit: `False` returns `fn` unchanged (eager), for debugging and for comparing with the compiled
            version.

    Returns:
        A callable with the signature of `fn`. Compiled and eager steps give the same numbers.
    """
    state = list(state)
    fast_updates(state)
    fast_calls(state)
    if not jit:
        return fn
    return _impl().function(fn, state_variables(state))


def dense_gradients(optimizer):
    """`optimizer`, made to apply an embedding's gradient as the dense sum that torch and JAX give.

    On TensorFlow the gradient of an embedding lookup (`keras.layers.Embedding`, `ops.take`) is a
    `tf.IndexedSlices` with one row per occurrence of a token, and Keras' optimizers square those
    rows one by one: the second moments of Adam, RMSprop and Adagrad then hold a sum of squares
    instead of the square of the sum (a token seen twice in a batch gets an Adam step sqrt(2) too
    large). Summing the rows first gives the update of the other backends. The optimizer object
    is the same (its variables, config and checkpoints unchanged); on torch and JAX it is returned
    as it is.

    Example:
        model.compile(engine.dense_gradients(keras.optimizers.Adam(1e-3)), loss=...)
    """
    if backend() == "tensorflow":
        _impl().dense_gradients(optimizer)
    return optimizer


DISTRIBUTIONS = ("none", "data-parallel")


def distribute(mode, batch_size):
    """Sets (or with "none" clears) Keras' global distribution before any model is built.

    "data-parallel": `keras.distribution.DataParallel` over all local devices: variables are
    replicated, each batch is split along its first axis, and gradients are summed across devices
    by XLA. `fit` distributes its batches itself; the engine's compiled steps shard their array
    arguments (`function`). JAX only so far; the other backends raise `EngineError`, as does a
    batch size the devices do not divide. Returns the number of devices (1 for "none").
    """
    import keras

    if mode not in DISTRIBUTIONS:
        raise EngineError(f"unknown distribution {mode!r}: choose from {', '.join(DISTRIBUTIONS)}")
    if mode == "none":
        if backend() == "jax" and keras.distribution.distribution() is not None:
            keras.distribution.set_distribution(None)
        return 1
    if backend() != "jax":
        raise EngineError(f"--distribute {mode} runs on the JAX backend only so far, not {backend()}")
    devices = keras.distribution.list_devices()
    if batch_size % len(devices):
        raise EngineError(
            f"--distribute {mode}: the batch size {batch_size} must be a multiple of the "
            f"{len(devices)} devices"
        )
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def data_parallel_devices():
    """How many devices the active distribution splits each batch across (1 when none is set)."""
    import keras

    distribution = keras.distribution.distribution() if backend() == "jax" else None
    return 1 if distribution is None else len(distribution.device_mesh.devices.flatten())


def __getattr__(name):
    if name in (
        "Loop",
        "save_checkpoint",
        "load_checkpoint",
        "latest_checkpoint",
        "restore_checkpoint",
        "prepare_output",
        "read_metrics",
    ):
        from recipes.engine import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'recipes.engine' has no attribute {name!r}")
