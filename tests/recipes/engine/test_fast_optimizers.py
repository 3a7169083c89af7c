"""The engine's Adam, AdamW and RMSprop updates (in place on torch, one XLA program on TensorFlow)
equal Keras' own updates."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from recipes import engine
from recipes.common import fitting
from tests.conftest import BACKEND, ROOT

pytestmark = pytest.mark.skipif(
    BACKEND == "jax", reason="JAX compiles Keras' own update with the step (no engine update)"
)
# The optimizer method each engine replaces.
HOOK = {"torch": "_parallel_update_step", "tensorflow": "_backend_update_step"}.get(BACKEND)

SHAPES = [(64, 33), (33,), (3, 3, 2, 5), (300, 300)]  # the last one above torch's _GROUPED
STEPS = 4


def schedule():
    return keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=2, decay_rate=0.5)


CASES = {
    "adam-schedule": lambda: keras.optimizers.Adam(schedule(), beta_1=0.5),
    "adam-amsgrad-clipnorm": lambda: keras.optimizers.Adam(0.01, amsgrad=True, global_clipnorm=1.0),
    "adamw-schedule": lambda: keras.optimizers.AdamW(schedule(), weight_decay=0.1),
    "rmsprop-schedule": lambda: keras.optimizers.RMSprop(schedule()),
    "rmsprop-centered-momentum": lambda: keras.optimizers.RMSprop(0.01, momentum=0.9, centered=True),
}
if BACKEND == "tensorflow":  # RMSprop keeps Keras' update there (_tensorflow_optimizers.py)
    CASES = {name: case for name, case in CASES.items() if not name.startswith("rmsprop")}


def numpy(values):
    return [ops.convert_to_numpy(v) for v in values]


def train(optimizer, fast, dtype="float32"):
    """STEPS updates of three variables with random gradients: (initial, final, optimizer state)."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype(dtype)) for s in SHAPES]
    initial = numpy(variables)
    optimizer.build(variables)
    for _ in range(STEPS):
        grads = [ops.convert_to_tensor(rng.normal(size=s).astype(dtype)) for s in SHAPES]
        if fast:
            engine.apply(optimizer, grads, variables)  # installs the engine's update
        else:
            optimizer.apply(grads, variables)
    return initial, numpy(variables), numpy(optimizer.variables)


def count_keras_updates(monkeypatch, optimizer):
    """Counts the calls of Keras' own update of `optimizer`'s class."""
    cls = type(optimizer)
    keras_update = getattr(cls, HOOK)
    calls = []

    def counted(self, *args):
        calls.append(1)
        return keras_update(self, *args)

    monkeypatch.setattr(cls, HOOK, counted)
    return calls


@pytest.mark.parametrize("name", CASES)
def test_in_place_update_equals_keras_update(name, monkeypatch):
    _, expected_weights, expected_slots = train(CASES[name](), fast=False)
    optimizer = CASES[name]()
    keras_calls = count_keras_updates(monkeypatch, optimizer)
    initial, weights, slots = train(optimizer, fast=True)
    assert not keras_calls, "the engine's update did not run"
    assert HOOK in vars(optimizer)
    assert int(ops.convert_to_numpy(optimizer.iterations)) == STEPS
    # Bit for bit on this machine (same kernels, same order; on TensorFlow with XLA unoptimised, as
    # conftest.py sets it: test_optimised_xla_update_...); 1e-6 leaves room for other CPUs.
    for got, want in zip(weights + slots, expected_weights + expected_slots):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    for before, after in zip(initial, weights):
        assert np.abs(after - before).min() > 0  # every weight moved


# Adam through the engine and through Keras, with XLA's optimisations (which conftest.py turns off).
OPTIMISED_CHECK = """
import keras, numpy as np
from recipes import engine
def train(fast):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in [(300, 300), (33,)]]
    optimizer = keras.optimizers.Adam(0.01, beta_1=0.5)
    optimizer.build(variables)
    for _ in range(5):
        grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
        grads = [keras.ops.convert_to_tensor(g) for g in grads]
        (engine.apply if fast else keras.optimizers.Optimizer.apply)(optimizer, grads, variables)
    assert ("_backend_update_step" in vars(optimizer)) == fast
    return [v.numpy() for v in variables + optimizer.variables]
print(max(float(np.abs(a - b).max()) for a, b in zip(train(True), train(False))))
"""


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the XLA update exists only on TensorFlow")
def test_optimised_xla_update_equals_keras_update_to_rounding():
    flags = os.environ.get("XLA_FLAGS", "").split()
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND=BACKEND)
    env["XLA_FLAGS"] = " ".join(f for f in flags if f != "--xla_backend_optimization_level=0")
    proc = subprocess.run(
        [sys.executable, "-c", OPTIMISED_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Fused multiply-adds round once where Keras' graph rounds twice: weights of order 1 and
    # slots differ by float32 rounding, not more.
    assert float(proc.stdout.split()[-1]) <= 1e-6


def test_uncovered_optimizers_and_dtypes_keep_keras_update(monkeypatch):
    sgd, subclass = keras.optimizers.SGD(0.1), type("MyAdam", (keras.optimizers.Adam,), {})()
    engine.fast_updates([sgd, subclass, "not an optimizer"])
    assert HOOK not in vars(sgd) and HOOK not in vars(subclass)
    # float16 variables: the engine's update hands the call to Keras' (its casts differ).
    expected = train(keras.optimizers.Adam(0.01), fast=False, dtype="float16")
    optimizer = keras.optimizers.Adam(0.01)
    keras_calls = count_keras_updates(monkeypatch, optimizer)
    got = train(optimizer, fast=True, dtype="float16")
    assert len(keras_calls) == STEPS
    for a, b in zip(got[1] + got[2], expected[1] + expected[2]):
        np.testing.assert_array_equal(a, b)
    # The switch for comparisons: nothing installed.
    monkeypatch.setenv("RECIPES_FAST_OPTIMIZERS", "0")
    off = keras.optimizers.Adam(0.01)
    engine.fast_updates([off])
    assert HOOK not in vars(off)


def test_loss_scale_optimizer_gets_it_for_its_inner_optimizer():
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.AdamW(0.01))
    names = [v.path for v in optimizer.variables]
    engine.fast_updates([optimizer])
    assert HOOK in vars(optimizer.inner_optimizer)
    assert [v.path for v in optimizer.variables] == names  # checkpoints hold the same variables


def make_model(seed):
    engine.set_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(schedule()), loss="mse")
    return model


def test_fit_through_a_loop_resumes_and_equals_keras_update(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.sin(x.sum(axis=1, keepdims=True))

    def run(out, model, epochs, resume=False):
        loop = engine.Loop(out, fitting.checkpoint_state(model), resume=resume, verbose=False)
        fitting.fit_epochs(model, loop, x, y, epochs=epochs, batch_size=16, seed=0)
        return model

    reference = make_model(0)  # Keras' update: fit without a Loop
    fitting.checkpoint_state(reference)
    for epoch in (1, 2):
        order = fitting.epoch_order(0, epoch, len(y))
        reference.fit(x[order], y[order], batch_size=16, epochs=1, shuffle=False, verbose=0)
    first = run(tmp_path, make_model(0), epochs=1)
    # TensorFlow's fit compiles Keras' update with its step (`engine.fast_updates(fit=True)`).
    assert (HOOK in vars(first.optimizer)) == (BACKEND == "torch")
    resumed = run(tmp_path, make_model(1), epochs=2, resume=True)  # other initial weights
    assert int(ops.convert_to_numpy(resumed.optimizer.iterations)) == 8
    got = numpy(resumed.variables + resumed.optimizer.variables)
    want = numpy(reference.variables + reference.optimizer.variables)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
