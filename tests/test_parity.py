"""Cross-backend parity: five DCGAN steps from weights saved on TensorFlow give TensorFlow's losses."""

import json
import sys
from pathlib import Path

import keras
import pytest

from recipes import dcgan

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import make_dcgan_parity as fixture  # noqa: E402


def test_five_dcgan_steps_match_the_reference_backend():
    reference = json.loads((fixture.HERE / "reference.json").read_text())
    assert reference["backend"] == "tensorflow"
    gan = dcgan.DCGAN(dcgan.Config(seed=0, **fixture.CONFIG))  # Other seed: weights are loaded.
    for name, model in [("generator", gan.generator), ("discriminator", gan.discriminator)]:
        saved = keras.saving.load_model(fixture.HERE / f"{name}.keras")
        model.set_weights(saved.get_weights())
    losses = fixture.train(gan, fixture.make_inputs())
    for step, (got, want) in enumerate(zip(losses, reference["losses"])):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-4), f"step {step + 1} {key}"
