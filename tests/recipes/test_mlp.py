"""mlp (A 3, B 1.1, D 2.1-2.2): parameter counts, the linear collapse, XOR."""

import json
import math

import pytest

from recipes import mlp


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    assert mlp.main(["--quick", "--out", str(out)]) == 0
    assert (out / "xor.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_parameter_counts_are_the_inventorys(summary):
    # B 1.1 (DERIVED): 10*50 + 50 + 50*1 + 1 = 601 and 10*20 + 20 + 20*1 + 1 = 241.
    assert summary["parameters"] == mlp.PARAMETERS == {"module_10_50_1": 601, "sequential_10_20_1": 241}


def test_two_linear_layers_are_one_matrix(summary):
    assert summary["collapse_output_difference"] < 1e-5
    assert summary["collapse_kernel_difference"] < 1e-6


def test_xor_needs_the_hidden_non_linearity(summary):
    accuracy, loss = summary["xor_accuracy"], summary["xor_final_loss"]
    assert accuracy["mlp"] == 1.0
    assert loss["mlp"] < 0.2
    for linear in ("logistic", "linear_stack"):
        # No line separates XOR: at most 3 of 4 points; the best cross-entropy of a linear model
        # is ln 2, reached at p = 1/2 everywhere.
        assert accuracy[linear] <= 0.75
        assert loss[linear] >= math.log(2) - 1e-3
