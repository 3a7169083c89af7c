"""gradient_descent.descend: the notes' loop, compiled, equals the eager loop and Keras' fit()."""

import keras
import numpy as np
import pytest

from recipes.common import gradient_descent

X = np.array([[1, 2, 3], [3, 5, 6], [8, 9, 10]], "float32")
Y = np.array([[2], [4], [6]], "float32")


def _model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros")])


def _descend(jit, scales=(1.0,)):
    """One model per target scale (y, 2y, ...), descending together; costs and weights."""
    models = [_model() for _ in scales]
    mse = keras.losses.MeanSquaredError()
    x = keras.ops.convert_to_tensor(X)
    targets = [keras.ops.convert_to_tensor(Y * scale) for scale in scales]
    costs = gradient_descent.descend(
        lambda: [mse(y, model(x)) for model, y in zip(models, targets)],
        [v for model in models for v in model.trainable_variables],
        keras.optimizers.SGD(0.005),
        4,
        state=models,
        jit=jit,
    )
    return costs, [model.get_weights() for model in models]


def test_compiled_equals_eager_equals_fit():
    compiled, [weights] = _descend(jit=True)
    eager, [eager_weights] = _descend(jit=False)
    assert compiled.shape == (5, 1) and compiled[0, 0] == pytest.approx(56 / 3, rel=1e-6)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)
    model = _model()
    model.compile(keras.optimizers.SGD(0.005), loss="mse")
    history = model.fit(X, Y, batch_size=3, epochs=4, shuffle=False, verbose=0)
    # fit reports each epoch's cost before its update: the first four costs.
    np.testing.assert_allclose(compiled[:4, 0], history.history["loss"], rtol=1e-5)
    for ours, theirs, eager_w in zip(weights, model.get_weights(), eager_weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
        np.testing.assert_allclose(ours, eager_w, rtol=1e-6)


def test_independent_models_descend_together_as_each_alone():
    together, weights = _descend(jit=True, scales=(1.0, 2.0))
    assert together.shape == (5, 2)
    # Linear in y from zero weights: the model fitting 2y has twice the weights, 4x the cost.
    np.testing.assert_allclose(together[:, 1], 4 * together[:, 0], rtol=1e-5)
    for ours, doubled in zip(*weights):
        np.testing.assert_allclose(doubled, 2 * ours, rtol=1e-5)
    alone, _ = _descend(jit=True)
    np.testing.assert_allclose(together[:, :1], alone, rtol=1e-6)
