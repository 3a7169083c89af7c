"""recipes.common.estimator on the current backend: A 5.3's checks, checkpoints, hooks, inputs."""

import contextlib
import io

import numpy as np
import pytest

from recipes.common import estimator as est
from recipes.engine import CheckpointError
from recipes.vgg_estimator.exam import EXAM_A, EXAM_A2, EXAM_B, exam_input_fns, exam_model_fn

PARAMS = {"learning_rate": 0.1, "log_every": 200}
SEED = 0  # Trains on all three backends; the notes warn that some seeds leave every ReLU dead.


def make(model_dir):
    return est.Estimator(exam_model_fn, model_dir, PARAMS, seed=SEED, verbose=False)


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    """A 5.3 run once: evaluate, train 1000 (hooks), evaluate, predict; then a new Estimator
    on the same model_dir predicts and trains 1000 more."""
    model_dir = tmp_path_factory.mktemp("exam")
    train_fn, eval_fn, predict_fn = exam_input_fns(SEED)
    first = make(model_dir)
    run = {"before": first.evaluate(eval_fn, steps=10)}
    hook = est.LoggingHook(["loss", "global_step"], every_n_iter=200, printer=lambda line: None)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        first.train(train_fn, steps=1000, hooks=[hook])
    run.update(stdout=stdout.getvalue(), hook=hook, after=first.evaluate(eval_fn, steps=10))
    run["predict_a2"] = list(first.predict(predict_fn))
    run["predict_a"] = list(
        first.predict(est.numpy_input_fn({"x": EXAM_A}, batch_size=5, shuffle=False))
    )
    run["files_1000"] = sorted(p.name for p in model_dir.iterdir())
    second = make(model_dir)
    run["restored_a2"] = list(second.predict(predict_fn))
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        second.train(train_fn, steps=1000)
    run.update(stdout_second=stdout.getvalue(), second=second, model_dir=model_dir)
    run["after_second"] = second.evaluate(eval_fn, steps=10)
    return run


def test_evaluate_keys_and_values(exam):
    after = exam["after"]
    assert set(after) == {"loss", "xxxx", "global_step"}
    assert after["global_step"] == 1000 and exam["before"]["global_step"] == 0
    assert after["loss"] < 20 and after["loss"] < exam["before"]["loss"]
    # The values match NumPy on the predictions: MAE over the 5 rows, loss = mean of the batch
    # MSEs of the notes' eval input (batches of 2, 2 and 1).
    logits = np.array([row["logits"][0] for row in exam["predict_a"]])
    errors = logits - EXAM_B[:, 0]
    assert after["xxxx"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-4)
    batch_mse = [np.mean(errors[:2] ** 2), np.mean(errors[2:4] ** 2), errors[4] ** 2]
    assert after["loss"] == pytest.approx(np.mean(batch_mse), rel=1e-4)


def test_predict_gives_one_dict_per_example(exam):
    rows = exam["predict_a2"]
    assert len(rows) == 2 and all(set(row) == {"logits"} for row in rows)
    assert all(row["logits"].shape == (1,) for row in rows)
    # A2 = rows 0 and 4 of A.
    np.testing.assert_allclose(rows[0]["logits"], exam["predict_a"][0]["logits"], rtol=1e-6)
    np.testing.assert_allclose(rows[1]["logits"], exam["predict_a"][4]["logits"], rtol=1e-6)
    assert np.array_equal(EXAM_A2, EXAM_A[[0, 4]])


def test_new_estimator_restores_and_continues(exam):
    for before, restored in zip(exam["predict_a2"], exam["restored_a2"]):
        np.testing.assert_array_equal(before["logits"], restored["logits"])
    assert exam["after_second"]["global_step"] == 2000
    assert exam["second"].global_step == 2000
    assert exam["after_second"]["loss"] < 20
    # Every 100 steps, the last five kept, named by the `checkpoint` index.
    assert exam["files_1000"] == ["checkpoint"] + [f"ckpt-{s}.npz" for s in (1000, 600, 700, 800, 900)]
    assert est.checkpoint_steps(exam["model_dir"]) == [1600, 1700, 1800, 1900, 2000]
    index = (exam["model_dir"] / "checkpoint").read_text().splitlines()
    assert index[0] == 'model_checkpoint_path: "ckpt-2000.npz"'
    assert index[1:] == [f'all_model_checkpoint_paths: "ckpt-{s}.npz"' for s in range(1600, 2001, 100)]
    # max_steps already reached: nothing to do.
    train_fn, _, _ = exam_input_fns(SEED)
    with contextlib.redirect_stdout(io.StringIO()):
        exam["second"].train(train_fn, max_steps=2000)
    assert exam["second"].global_step == 2000


def test_logging_hooks_fire_every_200_steps(exam):
    hook = exam["hook"]
    assert [i for i, _ in hook.fired] == [0, 200, 400, 600, 800]
    assert [g for _, g in hook.fired] == [1, 201, 401, 601, 801]
    # The model_fn's two hooks (tensors dict; 'k=v' formatter) fire 5 times per train call, too.
    for stdout in (exam["stdout"], exam["stdout_second"]):
        lines = stdout.splitlines()
        assert sum(line.startswith("loss = ") and "accuracy = " in line for line in lines) == 5
        assert sum(line.startswith("xxxx=[") for line in lines) == 5
        assert sum(line.startswith("yyy=[") for line in lines) == 5


def test_logging_hook_values_and_formatter():
    lines = []
    hook = est.LoggingHook(lambda c: {"twice": 2 * c.loss}, every_n_iter=3, printer=lines.append)
    for iteration in range(7):
        result = {"loss": np.float32(iteration), "outputs": np.zeros((2, 1), "float32")}
        hook.after_run(est.StepContext(iteration, iteration + 1, None, None, result))
    assert lines == ["twice = 0.0", "twice = 6.0", "twice = 12.0"]
    assert est.default_formatter({"a": np.array([1.5, 2.0]), "b": 3}) == "a = [1.5, 2.0], b = 3"


def test_numpy_input_fn():
    x, y = {"x": np.arange(10).reshape(5, 2)}, np.arange(5)
    batches = list(est.numpy_input_fn(x, y, batch_size=2, num_epochs=1, shuffle=False)())
    assert [len(labels) for _, labels in batches] == [2, 2, 1]
    assert np.array_equal(np.concatenate([f["x"] for f, _ in batches]), x["x"])
    # Shuffled epochs run on across batch boundaries; every epoch is a permutation; reproducible.
    fn = est.numpy_input_fn(x, y, batch_size=3, num_epochs=3, shuffle=True, seed=5)
    labels = np.concatenate([labels for _, labels in fn()])
    assert len(labels) == 15 and all(sorted(labels[i : i + 5]) == list(range(5)) for i in (0, 5, 10))
    assert np.array_equal(labels, np.concatenate([labels for _, labels in fn()]))
    # Without labels the batches are bare features; num_epochs=None never ends.
    features = next(est.numpy_input_fn(x["x"], batch_size=4, shuffle=False)())
    assert np.array_equal(features, x["x"][:4])
    forever = est.numpy_input_fn(x, y, batch_size=2, num_epochs=None)()
    assert len([next(forever) for _ in range(20)]) == 20
    with pytest.raises(ValueError, match="rows"):
        est.numpy_input_fn(x, np.arange(4))


def test_corrupt_checkpoint_is_one_line(tmp_path):
    (tmp_path / "ckpt-100.npz").write_bytes(b"not a checkpoint")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "ckpt-100.npz"\n')
    _, eval_fn, _ = exam_input_fns(SEED)
    with pytest.raises(CheckpointError) as error:
        make(tmp_path).evaluate(eval_fn)
    message = str(error.value)
    assert "ckpt-100.npz" in message and "corrupt" in message and "\n" not in message
    assert "another model_dir" in message

    # Hand-edited metadata (a global_step in quotes): the same one line.
    train_fn, _, _ = exam_input_fns(SEED)
    make(tmp_path / "edited").train(train_fn, steps=1)
    path = tmp_path / "edited" / "ckpt-1.npz"
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["__meta__"] = np.array(
        str(arrays["__meta__"]).replace('"global_step": 1', '"global_step": "1"')
    )
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError) as error:
        make(tmp_path / "edited").evaluate(eval_fn)
    assert str(error.value) == (
        f"checkpoint {path} is corrupt or unreadable (its metadata has no whole-number global_step "
        "but '1'); delete it, or use another model_dir"
    )


def test_a_single_batch_input(tmp_path):
    # input_fn may return one (features, labels) batch: evaluate uses it once (steps=None).
    estimator = make(tmp_path)
    single = estimator.evaluate(lambda: ({"x": EXAM_A}, EXAM_B))
    one_batch = est.numpy_input_fn({"x": EXAM_A}, EXAM_B, batch_size=5, shuffle=False)
    assert single == estimator.evaluate(one_batch)
    assert single["global_step"] == 0
