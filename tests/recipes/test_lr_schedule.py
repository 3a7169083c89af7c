"""lr_schedule (B 2.2): StepLR(5, 0.9) in Keras, the notes' off-by-one, warm-up and cosine."""

import json

import numpy as np
import pytest

from recipes import lr_schedule
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("lr_schedule")
    assert lr_schedule.main(["--out", str(out)]) == 0
    assert (out / "schedules.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_step_lr_read_from_the_optimizer_each_epoch(summary):
    # torch's order (scheduler.step() after each epoch): 0.005 x5, 0.0045 x5, 0.00405 x5.
    np.testing.assert_allclose(
        summary["step_lr_torch_order"], [0.005] * 5 + [0.0045] * 5 + [0.00405] * 5, rtol=1e-6
    )
    # The notes call step() at the start of every epoch, before training: every drop comes one
    # epoch early (0.005 for 4 epochs only), and epoch 15 is already at 0.005 * 0.9^3 = 0.003645.
    np.testing.assert_allclose(
        summary["step_lr_notes_order"],
        [0.005] * 4 + [0.0045] * 5 + [0.00405] * 5 + [0.003645],
        rtol=1e-6,
    )
    assert summary["fit_losses"][-1] < 0.2 * summary["fit_losses"][0]  # the tiny fit trains


def test_schedules_equal_their_formulas(summary):
    for name, difference in summary["max_difference_from_formula"].items():
        assert difference < 1e-8, name  # float32 schedules at rates <= 0.005
    at_epochs = summary["curves_at_epoch_starts"]
    assert at_epochs["k/sqrt(epoch)"][3] == pytest.approx(0.005 / 2, rel=1e-6)  # epoch 4
    assert at_epochs["exponential 0.95^epoch"][2] == pytest.approx(0.005 * 0.95**2, rel=1e-6)
    assert at_epochs["piecewise /10"][5] == pytest.approx(0.0005, rel=1e-6)


def test_warmup_rises_linearly_then_cosine_falls_to_zero(summary):
    cosine = np.array(summary["warmup_cosine"])
    w = lr_schedule.WARMUP_STEPS
    np.testing.assert_allclose(cosine[: w + 1], 0.005 * np.arange(w + 1) / w, rtol=1e-6, atol=1e-12)
    assert cosine.argmax() == w and np.all(np.diff(cosine[w:]) <= 0)
    half = w + lr_schedule.COSINE_STEPS // 2  # 19.5 of 39 steps: the cosine's midpoint is at 0.0025
    assert 0.0025 < cosine[half] < 0.0025 + 0.005 * np.pi / 78
    assert cosine[-1] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_table_formulas():
    np.testing.assert_allclose(lr_schedule.step_lr_table(12), [0.005] * 5 + [0.0045] * 5 + [0.00405] * 2)
    np.testing.assert_allclose(
        lr_schedule.step_lr_table(12, notes=True), [0.005] * 4 + [0.0045] * 5 + [0.00405] * 3
    )
