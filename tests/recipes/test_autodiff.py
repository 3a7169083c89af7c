"""autodiff (C, A 2.1, A 5.1): the notes' graph, tf.gradients' sum, the chain rule, the engine."""

import json

import numpy as np
import pytest

from recipes import autodiff
from tests.conftest import BACKEND

numpy_only = pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
NOTES_GRADS = {"a": -11.0, "w1": -6.0, "w2": -8.0, "w3": -2.0, "w4": -4.0}


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("autodiff")
    assert autodiff.main(["--out", str(out)]) == 0
    assert (out / "sigmoid_backward.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


@numpy_only
def test_the_slides_backward_function_on_the_notes_graph():
    loss, grads = autodiff.graph_by_scalars()
    # b = 2, c = 4, d = 3 * 2 + 4 * 4 = 22, L = 10 - 22.
    assert loss == -12.0 and grads == NOTES_GRADS
    # The closed forms: -w3 a, -w4 a, -b, -c, -(w1 w3 + w2 w4).
    a, w1, w2, w3, w4 = 2.0, 1.0, 2.0, 3.0, 4.0
    assert [grads[k] for k in ("w1", "w2", "w3", "w4", "a")] == [
        -w3 * a, -w4 * a, -w1 * a, -w2 * a, -(w1 * w3 + w2 * w4)
    ]  # fmt: skip


@numpy_only
def test_the_sigmoid_graph_backpropagates_to_y2_exp_minus_x():
    for x in (-3.0, 0.0, 0.5, 4.0):
        y, grad = autodiff.sigmoid_by_graph(x)
        assert y == pytest.approx(1 / (1 + np.exp(-x)), rel=1e-12)
        assert grad == pytest.approx(y**2 * np.exp(-x), rel=1e-12)
        assert grad == pytest.approx(y * (1 - y), rel=1e-12)


@numpy_only
def test_figure4_hand_backward_equals_finite_differences():
    f = autodiff.FIGURE4
    error, d_w, d_u, d_weights = autodiff.figure4_numpy(**f)
    finite_w = autodiff.finite_differences(
        lambda w: autodiff.figure4_numpy(f["x"], w, f["u"], f["t"])[0], f["w"]
    )
    finite_u = autodiff.finite_differences(
        lambda u: autodiff.figure4_numpy(f["x"], f["w"], u, f["t"])[0], f["u"]
    )
    np.testing.assert_allclose(d_w, finite_w, rtol=1e-7)
    np.testing.assert_allclose(d_u, finite_u, rtol=1e-7)
    # X^T dE/dz has entries where W has structural zeros; the parameters take the other four.
    assert d_weights.shape == (3, 2) and d_weights[0, 1] != 0 and d_weights[2, 0] != 0


def test_every_backend_gives_the_notes_gradients(summary):
    graph = summary["graph"]
    assert graph["loss"] == -12.0 and graph["grads"] == NOTES_GRADS
    assert graph["engine_loss"] == -12.0 and graph["engine_grads"] == NOTES_GRADS
    np.testing.assert_allclose(list(graph["finite_differences"].values()), list(NOTES_GRADS.values()))


def test_tf_gradients_sums_over_its_outputs(summary):
    # d/dx (3x + 10y) + d/dx (2x + 100y) = 5; d/dy = 10 + 100 = 110 (A 5.1: "g: 5, 110").
    assert summary["tf_gradients"] == [5.0, 110.0]


def test_the_chain_rule_of_a21_against_the_engine(summary):
    sigmoid = summary["sigmoid"]
    for key in ("y2_exp_minus_x", "graph"):
        np.testing.assert_allclose(sigmoid[key], sigmoid["formula"], rtol=1e-12)
    np.testing.assert_allclose(sigmoid["engine"], sigmoid["formula"], rtol=1e-5, atol=1e-7)
    assert max(summary["matrix"].values()) < 1e-5
    figure = summary["figure4"]
    assert figure["engine_error"] == pytest.approx(figure["error"], rel=1e-6)
    np.testing.assert_allclose(figure["dE_dw_engine"], figure["dE_dw_hand"], rtol=1e-5)
    np.testing.assert_allclose(figure["dE_du_engine"], figure["dE_du_hand"], rtol=1e-5)


def test_the_engine_against_finite_differences(summary):
    errors = summary["engine_vs_finite_differences"]
    assert set(errors) == {"graph", "figure4_w", "figure4_u"}
    assert max(errors.values()) < 1e-5  # float32 gradients, float64 differences
