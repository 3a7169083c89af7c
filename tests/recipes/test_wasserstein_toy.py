"""python -m recipes.wasserstein_toy: the A 9.6 distances, in closed form and from samples."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from recipes import wasserstein_toy as toy
from recipes.__main__ import catalog
from recipes.common import cli
from tests.conftest import ROOT

LOG_2 = 0.6931471805599453  # The notes' value of JS for disjoint supports.


@pytest.mark.parametrize("theta", [-1.0, -0.3, 1e-9, 0.5, 2.0])
def test_closed_forms_of_the_notes(theta):
    assert toy.closed_form(theta) == {"tv": 1.0, "kl": math.inf, "js": LOG_2, "w": abs(theta)}


def test_closed_forms_at_zero():
    assert toy.closed_form(0.0) == {"tv": 0.0, "kl": 0.0, "js": 0.0, "w": 0.0}


def test_divergences_of_small_discrete_distributions():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.9, 0.1, 0.0])
    assert toy.total_variation(p, q) == pytest.approx(0.4)
    kl = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert toy.kl_divergence(p, q) == pytest.approx(kl, rel=1e-12)
    m = (p + q) / 2
    js = 0.5 * sum(a * math.log(a / b) for a, b in zip(p, m) if a) + 0.5 * sum(
        a * math.log(a / b) for a, b in zip(q, m) if a
    )
    assert toy.js_divergence(p, q) == pytest.approx(js, rel=1e-12)
    disjoint = np.array([0.0, 0.0, 1.0])
    assert toy.total_variation(p, disjoint) == 1.0
    assert toy.kl_divergence(p, disjoint) == math.inf
    assert toy.js_divergence(p, disjoint) == pytest.approx(LOG_2, rel=1e-15)


def test_earth_mover_of_point_sets():
    # Two points moved by one unit each, whichever way they are paired: W = 1.
    p = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert toy.earth_mover(p, p + [1.0, 0.0]) == pytest.approx(1.0)
    # On a line it agrees with SciPy's 1-D Earth-Mover distance.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.uniform(size=40)
    on_line = toy.earth_mover(np.column_stack([a, 0 * a]), np.column_stack([b, 0 * b]))
    assert on_line == pytest.approx(wasserstein_distance(a, b), rel=1e-9)


@pytest.mark.parametrize("theta", [-1.0, -0.5, 0.1, 0.5])
def test_estimates_from_samples(theta):
    rng = np.random.default_rng(1)
    z_0, z_theta = rng.uniform(size=(2, 500))
    u_1d, z_shift = rng.uniform(size=(2, 100_000))
    got = toy.estimate(theta, z_0, z_theta, u_1d, z_shift, bins=20)
    # Disjoint supports: the histogram divergences take their extreme values exactly.
    assert got["tv"] == pytest.approx(1.0, rel=1e-12)
    assert got["kl"] == math.inf
    assert got["js"] == pytest.approx(LOG_2, rel=1e-12)
    # W shrinks with |theta|: the 2-D optimal transport of the samples and the notes' 1-D check.
    assert abs(got["w"] - abs(theta)) < 0.01
    assert abs(got["w_1d"] - abs(theta)) < 0.005


def test_a_tiny_shift_already_gives_the_extreme_divergences():
    rng = np.random.default_rng(2)
    z_0, z_theta = rng.uniform(size=(2, 300))
    got = toy.estimate(1e-3, z_0, z_theta, z_0, z_theta, bins=10)
    assert got["tv"] == pytest.approx(1.0) and got["kl"] == math.inf
    assert got["js"] == pytest.approx(LOG_2, rel=1e-12)
    # Same samples at theta = 0: nothing left but the noise of two samples of one distribution.
    same = toy.estimate(0.0, z_0, z_theta, z_0, z_theta, bins=10)
    assert same["tv"] < 0.15 and same["js"] < 0.02 and same["w"] < 0.05


def test_quick_run_writes_the_table_and_the_figure_without_a_backend(tmp_path, capsys):
    assert toy.main(["--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "log 2 = 0.6931471805599453" in printed
    assert (tmp_path / "distances.png").stat().st_size > 20_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["log_2"] == LOG_2
    rows = {row["theta"]: row for row in summary["table"]}
    assert sorted(rows) == [-1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0]
    for theta, row in rows.items():
        assert row["exact"] == (
            {"tv": 0.0, "kl": 0.0, "js": 0.0, "w": 0.0}
            if theta == 0
            else {"tv": 1.0, "kl": "inf", "js": LOG_2, "w": abs(theta)}
        )
        if theta != 0:
            assert row["estimate"]["kl"] == "inf"
            assert row["estimate"]["js"] == pytest.approx(LOG_2, rel=1e-12)
            assert row["estimate"]["w_1d"] == pytest.approx(abs(theta), abs=0.01)
    with open(tmp_path / "table.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 7 and float(table[-1]["w"]) == 1.0 and table[0]["kl"] == "inf"

    # The same run in a fresh process: no deep-learning backend loaded, the same numbers.
    code = (
        "import sys\n"
        "from recipes import wasserstein_toy\nfrom recipes.common import cli\n"
        f"assert cli.run(wasserstein_toy.main, ['--quick', '--out', {str(tmp_path / 'again')!r}]) == 0\n"
        "try:\n"
        "    wasserstein_toy.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules]\n"
        "print('loaded:', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["table"] == summary["table"]
    # --help shows this recipe's flags, not the training flags every other recipe has.
    assert "--theta-max" in proc.stdout and "--seed" in proc.stdout and "--quick" in proc.stdout
    assert "--epochs" not in proc.stdout and "--batch-size" not in proc.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--points", "4"], "error: --points must be odd and at least 3"),
        (["--epochs", "3"], "error: wasserstein_toy trains nothing: --epochs is not used"),
        (["--theta-max", "0"], "error: --theta-max must be positive"),
    ],
)
def test_bad_input_fails_with_one_line(args, message, tmp_path, capsys):
    assert cli.run(toy.main, [*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(message), err
    assert not (tmp_path / "out").exists()


def test_listed_by_python_m_recipes():
    sections = {name: section for name, section, _ in catalog()}
    assert sections["wasserstein_toy"] == "A 9.6"
