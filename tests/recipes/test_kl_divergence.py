"""kl_divergence (A 9.2): the notes' Gaussian KL values, Gibbs' inequality, Monte Carlo, Keras' loss."""

import json
import math

import numpy as np
import pytest

from recipes import kl_divergence as kl
from recipes.common import cli
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("kl")
    assert kl.main(["--out", str(out)]) == 0  # the default run: 1e6 draws, about a second
    assert (out / "kl.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_the_notes_gaussian_values_on_this_backend(summary):
    g = summary["gaussian"]
    assert g["kl_pq"] == kl.KL_PQ == 0.4431471805599453  # float64, exactly the notes' digits
    assert g["kl_qp"] == kl.KL_QP == 1.3068528194400546
    assert g["kl_pq_ops"] == pytest.approx(kl.KL_PQ, rel=1e-6)  # keras.ops, float32
    assert g["kl_qp_ops"] == pytest.approx(kl.KL_QP, rel=1e-6)
    # Monte Carlo with 1e6 draws: within 0.01 (the notes' check) and within 4 standard errors.
    for key, exact in (("pq", kl.KL_PQ), ("qp", kl.KL_QP)):
        error = abs(g[f"mc_{key}"] - exact)
        assert error < 0.01 and error < 4 * g[f"mc_{key}_se"], (key, g)


def test_discrete_kl_is_cross_entropy_minus_entropy_and_keras_loss(summary):
    d = summary["discrete"]
    p, q = (np.array(v) for v in kl.DISCRETE)
    assert d["kl"] == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-12)
    assert d["kl"] == pytest.approx(d["cross_entropy"] - d["entropy"], rel=1e-12)
    assert d["entropy"] == pytest.approx(-np.sum(p * np.log(p)), rel=1e-12)
    assert d["cross_entropy"] == pytest.approx(math.log(4), rel=1e-12)  # Q uniform over 4
    assert d["kl_ops"] == pytest.approx(d["kl"], rel=1e-5)
    assert d["keras_kl_divergence"] == pytest.approx(d["kl"], rel=1e-5)
    assert d["kl"] != pytest.approx(d["kl_reverse"], rel=0.05)  # not symmetric


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_gibbs_inequality_and_closed_form_limits():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        assert kl.kl_discrete(p, q) >= 0 and abs(kl.kl_discrete(p, p)) < 1e-12
    assert kl.kl_discrete([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl.kl_discrete([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))  # 0 log 0 = 0
    assert kl.kl_normal(0, 1, 0, 1) == 0
    # Equal variances: KL = (mu1 - mu2)^2 / (2 sigma^2), symmetric.
    assert kl.kl_normal(0, 2, 3, 2) == pytest.approx(9 / 8) == kl.kl_normal(3, 2, 0, 2)


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(kl.main, ["--samples", "1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --samples must be at least 2, got 1"
    assert cli.run(kl.main, ["--epochs", "3", "--out", str(tmp_path)]) == 2
    assert "kl_divergence trains nothing: --epochs is not used" in capsys.readouterr().err
