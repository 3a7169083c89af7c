"""A recipe's trained model saved as .keras on TensorFlow loads on every backend and gives the same
outputs (the cases: `MODEL_CASES` of the recipe test modules; tests/fixtures/make_model_fixtures.py)."""

import keras
import numpy as np
import pytest

import layers  # noqa: F401  (registers the custom layers for deserialization)
from tests.fixtures import make_model_fixtures as fixtures

CASES = sorted(fixtures.cases())  # importing the test modules imports (registers) their recipes


@pytest.mark.parametrize("name", CASES)
def test_saved_model_loads_on_this_backend(name):
    path = fixtures.HERE / f"{name}.keras"
    assert path.exists(), f"run: KERAS_BACKEND=tensorflow python {fixtures.__file__} {name}"
    model = keras.saving.load_model(path)
    with np.load(fixtures.HERE / f"{name}.npz") as data:
        inputs = [data[k] for k in sorted(data.files) if k.startswith("input_")]
        expected = [data[k] for k in sorted(data.files) if k.startswith("output_")]
    outputs = fixtures.as_list(model(inputs if len(inputs) > 1 else inputs[0]))
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-5)
