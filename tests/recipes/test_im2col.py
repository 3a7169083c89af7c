"""python -m recipes.im2col: A 6.1's (9, 75) example, the dx of element 22, layers vs Keras."""

import json
import subprocess
import sys

import numpy as np
import pytest

from recipes import im2col as recipe
from recipes.__main__ import catalog
from recipes.common import cli
from tests.conftest import ROOT


def test_the_six_copies_of_element_22():
    copies = recipe.element_copies((1, 3, 7, 7), 5, 5, (0, 0, 3, 1))
    # Windows (oh, ow) with oh in 0..2, ow in 0..1; column (h - oh) * 5 + (w - ow) of channel 0.
    assert copies == [(0, 16), (1, 15), (3, 11), (4, 10), (6, 6), (7, 5)]
    col = recipe.example_input()[0]
    for row, column in copies:
        oh, ow = divmod(row, 3)
        c, rest = divmod(column, 25)
        i, j = divmod(rest, 5)
        assert col[c, oh + i, ow + j] == 22
    dcol, same = recipe.example_dcol(seed=0)
    assert same == copies and dcol.shape == (9, 75)
    assert [float(dcol[r, c]) for r, c in copies] == pytest.approx(
        [-0.53, 0.77, 0.05, 0.03, 0.29, -0.29]
    )
    assert sum(recipe.DCOL_TERMS) == pytest.approx(0.32)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("im2col")
    assert recipe.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_reproduces_the_notes(quick_run, capsys):
    out, summary = quick_run
    assert summary["col_shape"] == [9, 75]
    assert summary["col_shape_batch_10"] == [90, 75]
    assert summary["count_at_element"] == 6
    per_axis = np.array([1, 2, 3, 3, 3, 2, 1])
    assert summary["counts_channel_0"] == np.outer(per_axis, per_axis).tolist()
    assert summary["dx_element"] == pytest.approx(0.32, abs=1e-6)
    assert summary["dx_vs_autodiff"] < 1e-5
    assert summary["filter_product_shape"] == [1, 1, 3, 3]
    assert summary["filter_product_vs_conv2d"] < 1e-5
    assert (out / "im2col.png").stat().st_size > 30_000


def test_quick_run_layers_equal_keras_and_timing(quick_run):
    _, summary = quick_run
    conv = {(r["padding"], r["strides"]): r for r in summary["conv_vs_keras"]}
    assert sorted(conv) == [("same", 1), ("same", 2), ("valid", 1), ("valid", 2)]
    assert all(r["max_abs_diff"] < 1e-5 for r in conv.values())
    assert conv[("valid", 2)]["output_shape"] == [2, 4, 3, 4]
    assert conv[("same", 2)]["output_shape"] == [2, 5, 4, 4]
    assert len(summary["pool_vs_keras"]) == 6
    for r in summary["pool_vs_keras"]:
        assert r["max_abs_diff"] == 0
        assert r["output_shape"][1] == r["poh_formula"]
    timing = summary["timing"]
    assert timing["input_shape"] == [2, 8, 8, 4]
    assert set(timing["seconds_per_step"]) == {"Im2ColConv2D", "Conv2D"}
    assert all(0 < s < 5 for s in timing["seconds_per_step"].values())


@pytest.mark.parametrize(
    "args,message",
    [
        (["--epochs", "3"], "error: im2col trains nothing: --epochs is not used"),
        (["--kernel-size", "0"], "error: --kernel-size must be at least 1"),
    ],
)
def test_bad_input_fails_with_one_line(args, message, tmp_path, capsys):
    assert cli.run(recipe.main, [*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(message), err
    assert not (tmp_path / "out").exists()


def test_help_imports_no_backend():
    code = (
        "import sys\n"
        "from recipes import im2col\n"
        "try:\n"
        "    im2col.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded:', [m for m in ('tensorflow', 'torch', 'jax') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout
    assert "--kernel-size" in proc.stdout and "--no-timing" in proc.stdout
    assert "--epochs" not in proc.stdout


def test_listed_by_python_m_recipes():
    sections = {name: section for name, section, _ in catalog()}
    assert sections["im2col"] == "A 6.1"
