"""Maxout, Sampling (layers.core), ClipConstraint and ConcatLabel (layers.gan) against NumPy."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.core import Maxout, Sampling
from layers.gan import ClipConstraint, ConcatLabel
from recipes import engine
from tests.layers import layer_checks


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


# ---------------------------------------------------------------------------------------------------
# Maxout


def maxout_factory():
    return Maxout(
        3,
        pieces=2,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=2),
    )


MAXOUT_INPUTS = random((4, 5), seed=3)


def maxout_reference(x, kernel, bias, units, pieces):
    z = x @ kernel + bias
    return z.reshape(*x.shape[:-1], units, pieces).max(axis=-1)


@pytest.mark.parametrize("shape,units,pieces", [((4, 5), 3, 2), ((2, 3, 6), 4, 3), ((3, 2), 2, 1)])
def test_maxout_matches_numpy(shape, units, pieces):
    layer = Maxout(units, pieces=pieces)
    layer.build(shape)
    assert layer.kernel.shape == (shape[-1], units * pieces)
    assert layer.bias.shape == (units * pieces,)
    kernel, bias = random(layer.kernel.shape, 1), random(layer.bias.shape, 2)
    layer.set_weights([kernel, bias])
    x = random(shape, seed=4)
    got = numpy(layer(x))
    assert got.shape == (*shape[:-1], units) == tuple(layer.compute_output_shape(shape))
    np.testing.assert_allclose(
        got, maxout_reference(x, kernel, bias, units, pieces), rtol=1e-5, atol=1e-5
    )


def test_maxout_is_max_of_two_dense_layers_and_relu_when_one_piece_is_zero():
    # Section 2.2: max(w1^T x + b1, w2^T x + b2); with (w2, b2) = 0 it is ReLU(w1^T x + b1).
    x = random((6, 4), seed=5)
    w1, w2, b1, b2 = random((4, 2), 6), random((4, 2), 7), random((2,), 8), random((2,), 9)
    layer = Maxout(2, pieces=2)
    layer.build(x.shape)
    # Column u * pieces + k holds piece k of unit u.
    layer.set_weights([np.stack([w1, w2], -1).reshape(4, 4), np.stack([b1, b2], -1).reshape(4)])
    dense = [keras.layers.Dense(2) for _ in range(2)]
    for d, w, b in zip(dense, (w1, w2), (b1, b2)):
        d.build(x.shape)
        d.set_weights([w, b])
    expected = np.maximum(numpy(dense[0](x)), numpy(dense[1](x)))
    np.testing.assert_allclose(numpy(layer(x)), expected, rtol=1e-5, atol=1e-5)

    layer.set_weights([np.stack([w1, 0 * w2], -1).reshape(4, 4), np.stack([b1, 0 * b2], -1).reshape(4)])
    np.testing.assert_allclose(numpy(layer(x)), np.maximum(x @ w1 + b1, 0), rtol=1e-5, atol=1e-5)


def test_maxout_bad_input_and_arguments():
    with pytest.raises(ValueError, match=r"Maxout expects input of shape \(batch, \.\.\., features\)"):
        Maxout(2)(np.zeros((3,), "float32"))
    with pytest.raises(ValueError, match="Maxout: units and pieces"):
        Maxout(2, pieces=0)
    layer = Maxout(2)
    layer(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError):  # Built for 3 features.
        layer(np.zeros((1, 4), "float32"))


def test_maxout_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(maxout_factory, MAXOUT_INPUTS)
    layer_checks.assert_saved_round_trip(maxout_factory, MAXOUT_INPUTS, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(maxout_factory, MAXOUT_INPUTS)
    layer_checks.assert_trains_in_mixed_bfloat16(maxout_factory, MAXOUT_INPUTS)


# ---------------------------------------------------------------------------------------------------
# Sampling

MEAN, LOG_VAR = random((3, 4), seed=10), random((3, 4), seed=11)


def test_sampling_same_seed_same_output_and_new_draw_per_call():
    a, b, c = Sampling(seed=7), Sampling(seed=7), Sampling(seed=8)
    first = numpy(a([MEAN, LOG_VAR]))
    np.testing.assert_array_equal(numpy(b(MEAN, LOG_VAR)), first)
    assert np.abs(numpy(c([MEAN, LOG_VAR])) - first).max() > 1e-3
    assert np.abs(numpy(a([MEAN, LOG_VAR])) - first).max() > 1e-3  # The generator advanced.


def test_sampling_formula_with_regenerated_noise():
    layer = Sampling(seed=5)
    generator = keras.random.SeedGenerator(5)
    for _ in range(2):  # The first and the second draw.
        z = numpy(layer([MEAN, LOG_VAR]))
        eps = numpy(keras.random.normal(MEAN.shape, dtype="float32", seed=generator))
        np.testing.assert_allclose(z, MEAN + np.exp(0.5 * LOG_VAR) * eps, rtol=1e-5, atol=1e-6)


def test_sampling_compiled_step_matches_eager():
    # The generator's state is threaded through the compiled step: no seed frozen into the graph.
    eager, compiled = Sampling(seed=6), Sampling(seed=6)
    compiled.build([MEAN.shape, LOG_VAR.shape])
    step = engine.function(lambda mean, log_var: {"z": compiled([mean, log_var])}, [compiled])
    mean, log_var = ops.convert_to_tensor(MEAN), ops.convert_to_tensor(LOG_VAR)
    draws = []
    for _ in range(2):
        z = numpy(step(mean, log_var)["z"])
        np.testing.assert_allclose(z, numpy(eager([MEAN, LOG_VAR])), rtol=1e-5, atol=1e-6)
        draws.append(z)
    assert np.abs(draws[0] - draws[1]).max() > 1e-3


def test_sampling_statistics():
    n = 20000
    mean = np.tile(np.array([[1.0, -2.0]], "float32"), (n, 1))
    log_var = np.tile(np.log(np.array([[1.0, 4.0]], "float32")), (n, 1))
    z = numpy(Sampling(seed=3)([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 2.0], rtol=0.03)


def test_sampling_gradients_reach_mean_and_log_var():
    layer = Sampling(seed=2)
    generator = keras.random.SeedGenerator(2)
    eps = numpy(keras.random.normal(MEAN.shape, dtype="float32", seed=generator))

    def loss(mean, log_var):
        return ops.sum(layer([mean, log_var]))

    _, (d_mean, d_log_var) = engine.value_and_grad(
        loss, [ops.convert_to_tensor(MEAN), ops.convert_to_tensor(LOG_VAR)]
    )
    np.testing.assert_allclose(numpy(d_mean), np.ones_like(MEAN), rtol=1e-6)
    np.testing.assert_allclose(numpy(d_log_var), 0.5 * np.exp(0.5 * LOG_VAR) * eps, rtol=1e-5, atol=1e-6)


def test_sampling_shapes_and_bad_input():
    mean, log_var = keras.Input((4,)), keras.Input((4,))
    assert Sampling()([mean, log_var]).shape == (None, 4)
    assert Sampling().compute_output_shape([(None, 4), (None, 4)]) == (None, 4)
    with pytest.raises(ValueError, match=r"Sampling expects \[mean, log_var\]"):
        Sampling()(MEAN)
    with pytest.raises(ValueError, match=r"Sampling expects mean and log_var of the same shape"):
        Sampling()(MEAN, random((3, 5)))


def sampling_factory():
    return Sampling(seed=4)


def test_sampling_config_and_saved_round_trip(tmp_path):
    layer = sampling_factory()
    clone = Sampling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(numpy(clone([MEAN, LOG_VAR])), numpy(layer([MEAN, LOG_VAR])))
    # A loaded model starts from the same generator state, so its first draw is the same.
    layer_checks.assert_saved_round_trip(sampling_factory, [MEAN, LOG_VAR], tmp_path / "m.keras")


# ---------------------------------------------------------------------------------------------------
# ClipConstraint


def test_clip_constraint_values_and_config():
    w = random((5, 3), seed=12)
    constraint = ClipConstraint(0.5)
    np.testing.assert_array_equal(numpy(constraint(ops.convert_to_tensor(w))), np.clip(w, -0.5, 0.5))
    clone = ClipConstraint.from_config(constraint.get_config())
    assert clone.get_config() == {"clip_value": 0.5}
    restored = keras.constraints.deserialize(keras.constraints.serialize(constraint))
    assert isinstance(restored, ClipConstraint) and restored.clip_value == 0.5
    with pytest.raises(ValueError, match="ClipConstraint: clip_value must be > 0"):
        ClipConstraint(0)


def clipped_critic():
    """A tiny critic whose initial weights lie far outside [-0.01, 0.01]."""
    kwargs = dict(
        kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=1),
        bias_initializer=keras.initializers.Constant(0.5),
        kernel_constraint=ClipConstraint(0.01),
        bias_constraint=ClipConstraint(0.01),
    )
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, **kwargs), keras.layers.Dense(1, **kwargs)]
    )


def assert_clipped(model, c=0.01):
    for weight in model.trainable_weights:
        values = numpy(weight)
        assert np.abs(values).max() <= c + 1e-7, f"{weight.path} not clipped"
        assert np.abs(values).max() > c / 2  # Not merely zeroed.


@pytest.mark.parametrize("jit", [False, True])
def test_clip_constraint_applied_by_optimizer_apply(jit):
    model = clipped_critic()
    assert max(np.abs(numpy(w)).max() for w in model.trainable_weights) > 0.1
    optimizer = keras.optimizers.RMSprop(5e-5)
    optimizer.build(model.trainable_variables)
    x = random((8, 3), seed=13)

    def step(x):
        loss, grads = engine.value_and_grad(lambda: ops.mean(model(x)), model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return {"loss": loss}

    step = engine.function(step, [model, optimizer], jit=jit)
    step(ops.convert_to_tensor(x))
    assert_clipped(model)


def test_clip_constraint_applied_in_fit_and_saved(tmp_path):
    model = clipped_critic()  # fit() updates through stateless_apply on JAX.
    model.compile(optimizer=keras.optimizers.RMSprop(5e-5), loss="mse")
    model.fit(random((8, 3), seed=14), random((8, 1), seed=15), epochs=1, batch_size=8, verbose=0)
    assert_clipped(model)
    model.save(tmp_path / "critic.keras")
    loaded = keras.saving.load_model(tmp_path / "critic.keras")
    constraint = loaded.layers[0].kernel_constraint
    assert isinstance(constraint, ClipConstraint) and constraint.clip_value == 0.01


# ---------------------------------------------------------------------------------------------------
# ConcatLabel


def concat_label_reference(x, labels, num_classes):
    y = np.eye(num_classes, dtype=x.dtype)[labels]
    if x.ndim == 4:
        y = np.broadcast_to(y[:, None, None, :], (*x.shape[:3], num_classes))
    return np.concatenate([x, y], axis=-1)


@pytest.mark.parametrize("shape", [(3, 5), (3, 4, 2, 2)])
def test_concat_label_matches_numpy(shape):
    x, labels = random(shape, seed=16), np.array([2, 0, 3], "int32")
    expected = concat_label_reference(x, labels, 4)
    layer = ConcatLabel(4)
    for given in (labels, labels.reshape(3, 1), np.eye(4, dtype="float32")[labels]):
        got = numpy(layer(x, given))
        np.testing.assert_array_equal(got, expected)
    assert tuple(layer.compute_output_shape(shape, (3,))) == expected.shape
    assert ConcatLabel(4)(keras.Input(shape[1:]), keras.Input((), dtype="int32")).shape == (
        None,
        *expected.shape[1:],
    )


def test_concat_label_bad_input():
    layer = ConcatLabel(4)
    with pytest.raises(ValueError, match=r"ConcatLabel expects inputs of shape \(batch, features\)"):
        layer(random((3, 2, 5)), np.array([0, 1, 2]))
    with pytest.raises(
        ValueError, match=r"ConcatLabel expects labels of shape \(batch,\) or \(batch, 4\)"
    ):
        layer(random((3, 5)), np.zeros((3, 5), "float32"))
    with pytest.raises(ValueError, match="ConcatLabel expects inputs and labels with the same batch"):
        layer(random((3, 5)), np.array([0, 1]))


def concat_label_factory():
    return ConcatLabel(3)


CONCAT_INPUTS = [random((2, 3, 3, 2), seed=17), np.array([2, 0], "int32")]


def test_concat_label_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(concat_label_factory, CONCAT_INPUTS)
    layer_checks.assert_saved_round_trip(concat_label_factory, CONCAT_INPUTS, tmp_path / "m.keras")
    layer_checks.assert_trains_in_mixed_bfloat16(concat_label_factory, CONCAT_INPUTS, wrap=True)


# Sampling is left out: the same seed gives different draws on different backends.
CROSS_BACKEND_CASES = {
    "maxout": (maxout_factory, MAXOUT_INPUTS),
    "concat_label": (concat_label_factory, CONCAT_INPUTS),
}


def test_sampling_trains_in_mixed_bfloat16():
    # log_var -30 makes the noise negligible, so the halving target is deterministic.
    inputs = [random((8, 3), seed=21), np.full((8, 3), -30.0, "float32")]
    layer_checks.assert_trains_in_mixed_bfloat16(lambda: Sampling(seed=1), inputs, wrap=True)
