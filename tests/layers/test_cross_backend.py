"""A layer saved as .keras on TensorFlow loads on every backend and gives the same outputs."""

import keras
import numpy as np
import pytest
from keras import ops

import layers  # noqa: F401  (registers the custom layers for deserialization)
from tests.fixtures import make_layer_fixtures as fixtures

CASES = sorted(fixtures.cases())


@pytest.mark.parametrize("name", CASES)
def test_saved_layer_loads_on_this_backend(name):
    path = fixtures.HERE / f"{name}.keras"
    assert path.exists(), f"run: KERAS_BACKEND=tensorflow python {fixtures.__file__} {name}"
    model = keras.saving.load_model(path)
    with np.load(fixtures.HERE / f"{name}.npz") as data:
        inputs = [data[k] for k in sorted(data.files) if k.startswith("input_")]
        expected = [data[k] for k in sorted(data.files) if k.startswith("output_")]
    outputs = model(inputs if len(inputs) > 1 else inputs[0])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-5)
