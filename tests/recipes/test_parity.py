"""Cross-backend parity: training steps from weights saved on TensorFlow give TensorFlow's losses.

The cases are the `PARITY_CASES` of the test modules (see tests/fixtures/make_parity.py).
"""

import json

import pytest

from tests.fixtures import make_parity as fixtures

CASES = fixtures.cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_steps_match_the_reference_backend(name):
    path = fixtures.HERE / f"{name}.json"
    assert path.exists(), f"run: KERAS_BACKEND=tensorflow python {fixtures.__file__} {name}"
    reference = json.loads(path.read_text())
    assert reference["backend"] == "tensorflow"
    build, make_inputs = CASES[name]
    trainer = build()
    fixtures.load_weights(trainer, fixtures.HERE / f"{name}.npz")
    losses = fixtures.train(trainer, make_inputs())
    assert len(losses) == len(reference["losses"]) == fixtures.STEPS
    rel = getattr(trainer, "rtol", 1e-4)  # a case that sets a looser one says why where it does
    for step, (got, want) in enumerate(zip(losses, reference["losses"])):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=rel, abs=1e-6), f"step {step + 1} {key}"
