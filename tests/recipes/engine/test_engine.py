"""The engine on the current backend: gradients, compiled steps, checkpoints, the training loop."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from recipes import engine
from recipes.engine import loop as engine_loop
from tests.conftest import BACKEND, ROOT, failing_replace

X = np.array([0.5, -1.0, 2.0], dtype="float32")
W = np.array([1.5, 0.25, -0.75], dtype="float32")


def numpy(values):
    return [ops.convert_to_numpy(v) for v in values]


def test_value_and_grad_matches_analytic_gradients():
    w = keras.Variable(W)
    unused = keras.Variable(np.ones(2, "float32"))

    def f(x):  # sum(w^2 x) + sum(x^3)
        return ops.sum(w * w * x) + ops.sum(x**3)

    value, (dw, dx, du) = engine.value_and_grad(f, [w, X, unused])
    assert float(value) == pytest.approx(np.sum(W**2 * X) + np.sum(X**3), rel=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(dw), 2 * W * X, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(dx), W**2 + 3 * X**2, rtol=1e-6)
    np.testing.assert_array_equal(ops.convert_to_numpy(du), [0.0, 0.0])


def test_value_and_grad_with_aux_through_a_layer():
    layer = keras.layers.Dense(2, use_bias=True)
    layer.build((None, 3))
    kernel = np.arange(6, dtype="float32").reshape(3, 2) / 10
    layer.set_weights([kernel, np.array([0.1, -0.2], "float32")])
    x = X[None]

    def f():
        y = layer(x)
        return ops.sum(y**2), y

    (value, y), (dk, db) = engine.value_and_grad(f, layer.trainable_variables, has_aux=True)
    expected_y = x @ kernel + [0.1, -0.2]
    np.testing.assert_allclose(ops.convert_to_numpy(y), expected_y, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(dk), x.T @ (2 * expected_y), rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(db), 2 * expected_y[0], rtol=1e-5)


def test_nested_value_and_grad_analytic():
    # Inner: g(x) = sum(w x^2), dg/dx = 2 w x. Outer: P(w) = sum((2 w x)^2), dP/dw = 8 w x^2.
    w = keras.Variable(W)

    def penalty():
        _, (grad_x,) = engine.value_and_grad(lambda x: ops.sum(w * x * x), [X])
        return ops.sum(grad_x**2)

    value, (dw,) = engine.value_and_grad(penalty, [w])
    assert float(value) == pytest.approx(np.sum((2 * W * X) ** 2), rel=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(dw), 8 * W * X**2, rtol=1e-5)


def critic_penalty_numpy(kernel, v, x):
    """||d/dx v . tanh(x K)||^2 averaged over rows of x, in float64 NumPy."""
    h = np.tanh(x @ kernel)
    grad_x = ((1 - h**2) * v) @ kernel.T
    return np.mean(np.sum(grad_x**2, axis=1))


def test_nested_gradient_penalty_matches_finite_differences():
    """The WGAN-GP pattern: differentiate a critic's input-gradient norm w.r.t. its weights."""
    rng = np.random.default_rng(0)
    kernel0 = rng.standard_normal((3, 4)).astype("float32") * 0.7
    v0 = rng.standard_normal(4).astype("float32")
    x = rng.standard_normal((5, 3)).astype("float32")
    critic = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="tanh", use_bias=False),
            keras.layers.Dense(1, use_bias=False),
        ]
    )
    critic.set_weights([kernel0, v0[:, None]])

    def penalty():
        _, (grad_x,) = engine.value_and_grad(lambda inputs: ops.sum(critic(inputs)), [x])
        return ops.mean(ops.sum(grad_x**2, axis=1))

    value, (dk, dv) = engine.value_and_grad(penalty, critic.trainable_variables)
    k64, v64, x64 = (a.astype("float64") for a in (kernel0, v0, x))
    assert float(value) == pytest.approx(critic_penalty_numpy(k64, v64, x64), rel=1e-5)

    eps = 1e-6
    for analytic, param, name in [(dk, k64, "kernel"), (dv, v64, "v")]:
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            step = np.zeros_like(param)
            step[index] = eps
            args = {"kernel": k64, "v": v64}
            plus = critic_penalty_numpy(**{**args, name: param + step}, x=x64)
            minus = critic_penalty_numpy(**{**args, name: param - step}, x=x64)
            numeric[index] = (plus - minus) / (2 * eps)
        analytic = ops.convert_to_numpy(analytic).reshape(param.shape)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-5)


class TinyTrainer:
    """Dense -> BatchNorm -> Dense regression with noise from a SeedGenerator, trained by SGD."""

    def __init__(self, seed=0):
        engine.set_seed(seed)
        self.model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8),
                keras.layers.BatchNormalization(momentum=0.5),
                keras.layers.ReLU(),
                keras.layers.Dense(1),
            ]
        )
        self.optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
        self.optimizer.build(self.model.trainable_variables)
        self.noise = keras.random.SeedGenerator(seed)
        self.state = [self.model, self.optimizer, self.noise]

    def step(self, x, y, noise=None):
        if noise is None:
            noise = keras.random.normal(ops.shape(x), stddev=0.1, seed=self.noise)

        def loss_fn():
            return ops.mean(ops.square(ops.subtract(self.model(ops.add(x, noise), training=True), y)))

        loss, grads = engine.value_and_grad(loss_fn, self.model.trainable_variables)
        self.optimizer.apply(grads, self.model.trainable_variables)
        return {"loss": loss}


def regression_data(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 4)).astype("float32")
    return x, (x @ [[1.0], [-2.0], [0.5], [0.0]]).astype("float32")


def run_steps(jit, explicit_noise, steps=4):
    trainer = TinyTrainer()
    step = engine.function(trainer.step, trainer.state, jit=jit)
    x, y = regression_data()
    rng = np.random.default_rng(2)
    losses = []
    for _ in range(steps):
        noise = rng.normal(scale=0.1, size=x.shape).astype("float32") if explicit_noise else None
        losses.append(float(ops.convert_to_numpy(step(x, y, noise)["loss"])))
    return losses, numpy(trainer.model.variables), numpy(trainer.optimizer.variables)


@pytest.mark.parametrize("noise_source", ["numpy-noise", "seed-noise"])
def test_compiled_step_equals_eager_step(noise_source):
    explicit_noise = noise_source == "numpy-noise"
    eager = run_steps(jit=False, explicit_noise=explicit_noise)
    compiled = run_steps(jit=True, explicit_noise=explicit_noise)
    np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-5)
    for c, e in zip(compiled[1] + compiled[2], eager[1] + eager[2]):
        np.testing.assert_allclose(c, e, rtol=1e-4, atol=1e-6)


def test_compiled_step_with_seed_noise_is_reproducible():
    first, second = run_steps(jit=True, explicit_noise=False), run_steps(jit=True, explicit_noise=False)
    np.testing.assert_array_equal(first[0], second[0])
    assert len(set(first[0])) == len(first[0])  # The noise differs from step to step.
    without_noise = run_steps(jit=True, explicit_noise=True)
    assert first[0][1:] != without_noise[0][1:]


def test_compiled_step_advances_batchnorm_statistics_and_seed_state():
    trainer = TinyTrainer()
    step = engine.function(trainer.step, trainer.state)
    bn = trainer.model.layers[1]
    before_mean = ops.convert_to_numpy(bn.moving_mean)
    before_seed = ops.convert_to_numpy(trainer.noise.state)
    before_iterations = int(ops.convert_to_numpy(trainer.optimizer.iterations))
    x, y = regression_data()
    step(x, y)
    after_seed = ops.convert_to_numpy(trainer.noise.state)
    assert not np.array_equal(after_seed, before_seed)
    assert int(ops.convert_to_numpy(trainer.optimizer.iterations)) == before_iterations + 1
    # moving_mean = 0.5 * old (zeros) + 0.5 * batch mean of the Dense outputs.
    assert not np.allclose(ops.convert_to_numpy(bn.moving_mean), before_mean)
    step(x, y)
    assert not np.array_equal(ops.convert_to_numpy(trainer.noise.state), after_seed)
    # Two steps draw two different noise samples, so the seed state moved twice.


def test_compiled_batchnorm_statistics_equal_numpy():
    trainer = TinyTrainer()
    step = engine.function(trainer.step, trainer.state)
    x, y = regression_data()
    noise = np.zeros_like(x)
    dense, bn = trainer.model.layers[:2]
    kernel, bias = numpy(dense.trainable_variables)
    step(x, y, noise)
    expected = 0.5 * (x @ kernel + bias).mean(axis=0)  # momentum 0.5 from zeros
    np.testing.assert_allclose(ops.convert_to_numpy(bn.moving_mean), expected, rtol=1e-5, atol=1e-6)


def test_compiled_step_rejects_state_it_was_not_given():
    trainer = TinyTrainer()
    step = engine.function(trainer.step, [trainer.model, trainer.optimizer])  # noise missing
    x, y = regression_data()
    if BACKEND == "jax":
        # jax.jit would bake the seed in as a constant: every step the same "random" noise.
        with pytest.raises(engine.EngineError, match="seed_generator"):
            step(x, y)
    else:
        before = ops.convert_to_numpy(trainer.noise.state)
        step(x, y)  # Variables are updated in place on TensorFlow and torch.
        assert not np.array_equal(ops.convert_to_numpy(trainer.noise.state), before)


def test_checkpoint_round_trip_and_errors(tmp_path):
    trainer = TinyTrainer()
    groups = {"model": trainer.model.variables, "noise": [trainer.noise.state]}
    path = tmp_path / "epoch-0001.npz"
    engine.save_checkpoint(path, groups, {"epoch": 1})
    saved = numpy(trainer.model.variables)
    other = TinyTrainer(seed=5)
    other_groups = {"model": other.model.variables, "noise": [other.noise.state]}
    assert engine.load_checkpoint(path, other_groups)["epoch"] == 1
    for a, b in zip(numpy(other.model.variables), saved):
        np.testing.assert_array_equal(a, b)

    path.write_bytes(b"not a checkpoint")
    with pytest.raises(engine.CheckpointError, match="corrupt or unreadable"):
        engine.load_checkpoint(path, other_groups)
    engine.save_checkpoint(path, {"model": trainer.model.variables[:2]}, {"epoch": 1})
    with pytest.raises(engine.CheckpointError, match="does not match this model"):
        engine.load_checkpoint(path, {"model": trainer.model.variables})


def test_loop_stops_on_nan_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = TinyTrainer()
    x, y = regression_data()
    train = engine.function(trainer.step, trainer.state)

    def step(x, y, epoch):
        losses = train(x, y)
        return {"loss": losses["loss"] * (np.nan if epoch >= 3 else 1.0)}

    loop = engine.Loop(tmp_path, {"model": trainer.model}, verbose=False)
    with pytest.raises(engine.TrainingDiverged) as error:
        loop.fit(step, lambda epoch: [(x, y, epoch)] * 2, epochs=5, steps_per_epoch=2)
    message = str(error.value)
    assert "loss became nan at epoch 3, step 1" in message
    assert "epoch-0002.npz" in message
    assert engine.latest_checkpoint(tmp_path / "checkpoints").name == "epoch-0002.npz"
    assert [row["epoch"] for row in loop._read_metrics()] == [1, 2]
    assert loop.epoch == 2


def test_loop_writes_metrics_and_tensorboard_events(tmp_path):
    trainer = TinyTrainer()
    x, y = regression_data()
    loop = engine.Loop(tmp_path, {"model": trainer.model, "noise": trainer.noise}, verbose=False)
    history = loop.fit(
        engine.function(trainer.step, trainer.state),
        lambda epoch: [(x, y)] * 3,
        epochs=2,
        steps_per_epoch=3,
        on_epoch_end=lambda epoch, logs: {"double": 2 * logs["loss"]},
    )
    rows = loop._read_metrics()
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[1]["double"] == pytest.approx(2 * rows[1]["loss"])
    assert rows[1]["loss"] == pytest.approx(history[1]["loss"])
    assert rows[1]["loss"] < rows[0]["loss"]
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 100
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
    assert engine_loop.latest_checkpoint(tmp_path / "checkpoints").name == "epoch-0002.npz"


# ---- the private Keras APIs the engine relies on (keras.src; nowhere else: tests/test_architecture)
# Each test fails when a Keras release changes the private behaviour the engine uses.


def test_set_seed_makes_unseeded_keras_random_reproducible():
    # Off TensorFlow, set_seed resets Keras' global seed generator and seed in keras.src state.
    from keras.src.backend.common import global_state
    from keras.src.utils import rng_utils

    def unseeded():
        return ops.convert_to_numpy(keras.random.normal((6,)))

    engine.set_seed(7)
    assert global_state.get_global_attribute(rng_utils.GLOBAL_RANDOM_SEED) == 7
    first = unseeded()
    engine.set_seed(7)
    np.testing.assert_array_equal(unseeded(), first)
    engine.set_seed(8)
    assert not np.array_equal(unseeded(), first)


def test_without_weights_defers_and_then_forgets_the_variables():
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"  # engine._UNINITIALIZED
    assert engine._UNINITIALIZED == key
    before = list(global_state.get_global_attribute(key) or [])
    with engine.without_weights():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        deferred = global_state.get_global_attribute(key) or []
        # Keras records the deferred variables under this key; the engine drops them on exit.
        assert {id(v) for v in model.weights} <= {id(v) for v in deferred}
    assert (global_state.get_global_attribute(key) or []) == before
    assert model.count_params() == 4 * 3 + 3


def test_a_stateless_scope_reads_and_records_through_the_hooks_the_jax_engine_overrides():
    # _jax._Scope subclasses keras.StatelessScope: Keras must read variables through
    # get_current_value, report assignments through add_update and key its state_mapping by id.
    from keras.src.backend.common.stateless_scope import StatelessScope, get_stateless_scope

    variable = keras.Variable(np.float32(1.0))
    with keras.StatelessScope(state_mapping=[(variable, np.float32(5.0))]) as outer:
        assert float(ops.convert_to_numpy(outer.state_mapping[id(variable)])) == 5.0

    calls = []

    class Recording(StatelessScope):
        def get_current_value(self, v):
            calls.append(("read", v.path))
            return super().get_current_value(v)

        def add_update(self, update):
            calls.append(("update", update[0].path))
            super().add_update(update)

    with Recording(state_mapping=[(variable, np.float32(5.0))]) as scope:
        assert get_stateless_scope() is scope
        assert float(ops.convert_to_numpy(variable.value)) == 5.0
        variable.assign(np.float32(3.0))
        assert float(ops.convert_to_numpy(scope.state_mapping[id(variable)])) == 3.0
    assert ("read", variable.path) in calls and ("update", variable.path) in calls
    assert float(ops.convert_to_numpy(variable.value)) == 1.0  # Outside: untouched.


SAVE_CHECK = """
import sys, zipfile
import keras
import numpy as np
from recipes import engine
from keras.src.utils import module_utils

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
engine.save_model(model, "engine.keras")
assert "tensorflow" not in sys.modules, "save_model imported TensorFlow"
assert module_utils.tensorflow._available is None  # asked again by whoever comes next
model.save("keras.keras")  # Keras' own save (imports TensorFlow where it is installed)
files = [zipfile.ZipFile(name) for name in ("engine.keras", "keras.keras")]
assert files[0].read("config.json") == files[1].read("config.json")
reloaded = keras.saving.load_model("engine.keras")
for got, want in zip(reloaded.get_weights(), model.get_weights(), strict=True):
    np.testing.assert_array_equal(got, want)
"""


@pytest.mark.skipif(BACKEND == "tensorflow", reason="there TensorFlow is the backend")
def test_save_model_writes_keras_file_without_importing_tensorflow(tmp_path):
    # Keras' serializer imports TensorFlow to ask whether it is available (3.6 s on JAX).
    proc = subprocess.run(
        [sys.executable, "-c", SAVE_CHECK],
        cwd=tmp_path,
        env=dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "engine.keras").stat().st_size > 0


# --- The checkpoint contract: atomic writes, resume from the last complete checkpoint, and a
# new run that never deletes a previous one unasked. (Tests run as root: an unwritable folder is
# a file where the folder should be, or a patched write.)


def train_loop(out, epochs, **kwargs):
    """A TinyTrainer Loop run to `epochs` in `out`: (loop, history, final variables)."""
    trainer = TinyTrainer()
    x, y = regression_data()
    loop = engine.Loop(
        out,
        {"model": trainer.model, "opt": trainer.optimizer, "noise": trainer.noise},
        verbose=False,
        **kwargs,
    )
    history = loop.fit(
        engine.function(trainer.step, trainer.state),
        lambda epoch: [(np.roll(x, epoch, axis=0), np.roll(y, epoch, axis=0))] * 2,
        epochs=epochs,
        steps_per_epoch=2,
    )
    return loop, history, numpy(trainer.model.variables + trainer.optimizer.variables)


def without_timing(history):
    return [
        {k: v for k, v in row.items() if k not in ("seconds", "steps_per_second")} for row in history
    ]


def test_a_failed_write_keeps_the_previous_checkpoint_and_resume_equals_the_uninterrupted_run(
    tmp_path, monkeypatch
):
    _, straight, straight_variables = train_loop(tmp_path / "straight", 3)
    out = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        patch.setattr(engine_loop.os, "replace", failing_replace("epoch-0003.npz"))
        with pytest.raises(engine.CheckpointError) as error:
            train_loop(out, 3)
    assert str(error.value) == (
        f"could not write checkpoint {out / 'checkpoints' / 'epoch-0003.npz'} (No space left on "
        "device); the previous checkpoint is kept"
    )
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
    (out / "metrics.csv").unlink()  # The rows come from the checkpoint, not from metrics.csv.
    loop, resumed, resumed_variables = train_loop(out, 3, resume=True)
    assert loop.restored[0].name == "epoch-0002.npz"
    assert without_timing(resumed) == without_timing(straight)
    assert [row["epoch"] for row in loop._read_metrics()] == [1, 2, 3]
    for a, b in zip(resumed_variables, straight_variables):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_write_that_fails_midway_leaves_no_temporary_file(tmp_path, monkeypatch):
    trainer = TinyTrainer()
    groups = {"model": trainer.model.variables}
    path = tmp_path / "epoch-0001.npz"
    engine.save_checkpoint(path, groups, {"epoch": 1})
    saved = path.read_bytes()

    def savez_until_the_disk_is_full(f, **arrays):
        f.write(b"\0" * 1000)
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(engine_loop.np, "savez", savez_until_the_disk_is_full)
        with pytest.raises(engine.CheckpointError, match=r"\(No space left on device\); the previous"):
            engine.save_checkpoint(path, groups, {"epoch": 2})

    def interrupted(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(engine_loop.os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):  # not turned into an error message
            engine.save_checkpoint(path, groups, {"epoch": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0001.npz"] and path.read_bytes() == saved


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    train_loop(tmp_path, 3)
    checkpoints = tmp_path / "checkpoints"
    newest = checkpoints / "epoch-0003.npz"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    trainer = TinyTrainer(seed=7)
    loop = engine.Loop(tmp_path, {"model": trainer.model}, resume=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"Skipped: checkpoint {newest} is corrupt or unreadable (")
    assert lines[0].endswith(f"resuming from {checkpoints / 'epoch-0002.npz'}") and len(lines) == 2
    assert loop.epoch == 2 and [row["epoch"] for row in loop.history] == [1, 2]
    assert (checkpoints / "epoch-0003.npz.corrupt").exists()  # Kept for a look, out of the way.

    # None usable: one line, nothing deleted.
    (checkpoints / "epoch-0001.npz").write_bytes(b"\0" * 100)
    (checkpoints / "epoch-0002.npz").write_bytes(b"")
    with pytest.raises(engine.CheckpointError) as error:
        engine.Loop(tmp_path, {"model": trainer.model}, resume=True, verbose=False)
    message = str(error.value)
    assert message.startswith(f"checkpoint {checkpoints / 'epoch-0002.npz'} is corrupt or unreadable")
    assert message.endswith("no older checkpoint is usable; start over with --overwrite")
    assert "\n" not in message and len(list(checkpoints.iterdir())) == 3  # nothing deleted


@pytest.mark.parametrize(
    "meta,reason",
    [
        ({}, "no whole-number epoch but None"),
        ({"epoch": "3"}, "no whole-number epoch but '3'"),
        ({"epoch": 2, "history": "rows"}, "no list of metrics rows"),
    ],
)
def test_hand_edited_metadata_is_a_one_line_checkpoint_error(tmp_path, meta, reason):
    trainer = TinyTrainer()
    (tmp_path / "checkpoints").mkdir()
    path = tmp_path / "checkpoints" / "epoch-0002.npz"
    engine.save_checkpoint(path, {"model": trainer.model.variables}, meta)
    with pytest.raises(engine.CheckpointError) as error:
        engine.Loop(tmp_path, {"model": trainer.model}, resume=True, verbose=False)
    assert str(error.value) == (
        f"checkpoint {path} is corrupt or unreadable (its metadata has {reason}); delete it, or "
        "start over with --overwrite"
    )


def test_resume_refuses_other_flags_and_other_epochs_of_a_schedule(tmp_path):
    config = {"arch": "mnist", "learning_rate": 0.001, "epochs": 2, "out": str(tmp_path)}
    train_loop(tmp_path, 2, config=config, epochs_in_schedule=True)
    path = tmp_path / "checkpoints" / "epoch-0002.npz"
    with pytest.raises(engine.CheckpointError) as error:
        train_loop(tmp_path, 2, resume=True, config={**config, "learning_rate": 0.01})
    assert str(error.value) == (
        f"checkpoint {path} was written with --learning-rate 0.001 (now 0.01): resume with the same "
        "flags, or start over with --overwrite"
    )
    with pytest.raises(engine.CheckpointError, match=r"belongs to a run of --epochs 2, and its"):
        train_loop(tmp_path, 3, resume=True, config=config, epochs_in_schedule=True)
    # --epochs and --out may change; without a schedule, more epochs continue the run.
    loop, history, _ = train_loop(tmp_path, 3, resume=True, config={**config, "out": "x", "epochs": 3})
    assert loop.restored[0] == path and [row["epoch"] for row in history] == [1, 2, 3]


def test_a_new_run_never_deletes_a_previous_one_unasked(tmp_path, monkeypatch):
    train_loop(tmp_path, 1)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    trainer = TinyTrainer()
    with pytest.raises(engine.OutputError) as error:
        engine.Loop(tmp_path, {"model": trainer.model}, verbose=False)
    assert str(error.value) == (
        f"{tmp_path} holds a previous run (checkpoints/epoch-0001.npz, metrics.csv): continue it with "
        "--resume, or start over with --overwrite (deletes its checkpoints and metrics)"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    with pytest.raises(engine.OutputError, match="give one"):
        engine.Loop(tmp_path, {"model": trainer.model}, resume=True, overwrite=True)
    loop = engine.Loop(tmp_path, {"model": trainer.model}, overwrite=True, verbose=False)
    assert loop.epoch == 0 and not (tmp_path / "metrics.csv").exists()
    assert not any((tmp_path / "checkpoints").iterdir()) and not (tmp_path / "tensorboard").exists()

    # An --out that is a file, or a folder that cannot be written: one line, before any training.
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    with pytest.raises(engine.OutputError, match=f"^the output folder {a_file} is a file"):
        engine.Loop(a_file, {"model": trainer.model})
    with pytest.raises(engine.OutputError, match=f"^cannot write to the output folder {a_file / 'run'}"):
        engine.Loop(a_file / "run", {"model": trainer.model})
    assert a_file.read_text() == "keep me"

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.TemporaryFile", read_only)
    with pytest.raises(engine.OutputError) as error:
        engine.Loop(tmp_path / "new", {"model": trainer.model})
    assert (
        str(error.value) == f"cannot write to the output folder {tmp_path / 'new'} (Permission denied)"
    )


def test_dense_gradients_give_an_embedding_the_adam_step_of_every_backend():
    # Token 1 occurs twice, token 2 once: Adam's first step is -lr * g / (|g| + epsilon), about -lr
    # for both rows. On TensorFlow Keras would square the two rows of token 1's sparse gradient one
    # by one (second moment 1 + 1 instead of 2 ** 2): a step of -lr * sqrt(2) for that row.
    model = keras.Sequential(
        [keras.Input((3,), dtype="int32"), keras.layers.Embedding(5, 1, embeddings_initializer="zeros")]
    )
    model.compile(engine.dense_gradients(keras.optimizers.Adam(0.1)), loss=lambda y, p: ops.sum(p))
    model.train_on_batch(np.array([[1, 1, 2]]), np.zeros((1, 3, 1), "float32"))
    rows = ops.convert_to_numpy(model.layers[0].embeddings)[:, 0]
    np.testing.assert_allclose(rows, [0.0, -0.1, -0.1, 0.0, 0.0], rtol=1e-5)
