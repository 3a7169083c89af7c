"""python -m recipes.conv_arithmetic: D 4's worked example, backprop and counts."""

import json
import subprocess
import sys

import pytest

from recipes import conv_arithmetic as recipe
from recipes.__main__ import catalog
from recipes.common import cli
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv_arithmetic")
    assert recipe.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_the_worked_example_and_its_backprop(run):
    out, summary = run
    # 4.1 example I: a cross-correlation; the flipped kernel (a true convolution) gives other numbers.
    assert summary["worked_example"] == [[37, 47], [67, 77]]
    assert summary["true_convolution"] == [[23, 33], [53, 63]]
    # 4.3: dL/dw = x * dL/dO, the same numbers for G = [[1, 2], [3, 4]]; dL/dx the full convolution.
    assert summary["d_kernel"] == [[37, 47], [67, 77]]
    assert summary["d_x"] == summary["full_convolution"] == [[1, 2, 0], [3, 3, -2], [0, -3, -4]]
    assert (out / "conv_arithmetic.png").stat().st_size > 30_000


def test_shapes_and_parameter_counts_of_the_notes(run):
    _, summary = run
    shapes = summary["shapes"]
    assert shapes["II"] == {"shape": [28, 28, 1], "params": 5 * 5 * 3 + 1}
    # Erratum (D 4.1, line 244 of the notes): w x w x C x D (+ D), not w x w x C x D x K.
    assert shapes["III"] == {"shape": [28, 28, 4], "params": 304}
    assert shapes["IV"] == {"shape": [24, 24, 10], "params": 1010}


def test_output_size_formula_against_keras(run):
    _, summary = run
    rows = {(r["i"], r["k"], r["s"], r["p"]): r for r in summary["output_sizes"]}
    assert rows[(32, 5, 1, 0)]["formula"] == 28
    assert rows[(32, 3, 2, 1)]["formula"] == 16
    assert rows[(7, 3, 2, 0)]["formula"] == 3
    assert rows[(227, 5, 2, 0)]["formula"] == 112
    for r in rows.values():
        assert r["keras"] == r["formula"] == (r["i"] + 2 * r["p"] - r["k"]) // r["s"] + 1
        assert r["same_keras"] == r["same_formula"] == -(-r["i"] // r["s"])
        assert r["transpose_keras"] == r["transpose_formula"] == (r["i"] - 1) * r["s"] + r["k"]


def test_grouped_depthwise_and_bottleneck_counts(run):
    _, summary = run
    grouped = summary["grouped"]
    params = {r["groups"]: r["params"] for r in grouped["grouped"]}
    assert params == {1: 73_856, 2: 36_992, 4: 18_560, 8: 9_344, 64: 1_280}
    for r in grouped["grouped"]:
        assert r["params"] == r["formula"]
        assert r["multiply_adds"] == 9 * 64 * 128 * 28 * 28 // r["groups"]
    assert grouped["depthwise"]["params"] == grouped["depthwise"]["formula"] == 640
    assert grouped["separable"]["params"] == grouped["separable"]["formula"] == 8_896
    assert summary["grouped_vs_split"] < 1e-5
    bottleneck = summary["bottleneck"]
    assert bottleneck["weights"] == {"direct": 147_456, "bottleneck": 40_960}
    assert bottleneck["with_bias"] == {"direct": 147_584, "bottleneck": 41_120}
    assert bottleneck["multiply_adds"] == {"direct": 147_456 * 784, "bottleneck": 40_960 * 784}
    assert bottleneck["saving"] == pytest.approx(3.6)
    assert (bottleneck["vgg_two_3x3"], bottleneck["vgg_one_5x5"]) == (294_912, 409_600)
    assert summary["one_by_one_vs_dense"] < 1e-5
    assert summary["receptive_fields"] == {"1": 3, "2": 5, "3": 7}


def test_bad_input_and_help(tmp_path, capsys):
    assert cli.run(recipe.main, ["--epochs", "3", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: conv_arithmetic trains nothing: --epochs is not used"]
    assert not (tmp_path / "out").exists()
    code = (
        "import sys\n"
        "from recipes import conv_arithmetic\n"
        "try:\n"
        "    conv_arithmetic.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded:', [m for m in ('tensorflow', 'torch', 'jax') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout and "--size" in proc.stdout and "--epochs" not in proc.stdout


def test_listed_by_python_m_recipes():
    sections = {name: section for name, section, _ in catalog()}
    assert sections["conv_arithmetic"] == "D 4.1-4.6, B 3.1"
