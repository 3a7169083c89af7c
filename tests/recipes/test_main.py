"""`python -m recipes`: the catalogue, and `python -m recipes NAME ARGS` running recipe NAME."""

import pytest

from recipes.__main__ import NOTES, catalog
from tests.conftest import BACKEND, run_module


def test_the_catalogue_lists_every_recipe_with_its_section_and_the_legend():
    rows = {name: section for name, section, _ in catalog()}
    # Modules and packages alike; the shared sub-packages are not recipes.
    assert {"dcgan", "wgan", "pix2pix", "nmt_attention", "char_rnn"} <= set(rows)
    assert not {"common", "engine", "quality", "cli"} & set(rows)
    assert rows["dcgan"].startswith("A 9.7") and rows["text_lstm"] == "E 01"
    for section in rows.values():
        assert section.split()[0].rstrip(",") in NOTES  # every citation uses a letter of the legend
    proc = run_module("recipes")
    assert proc.returncode == 0, proc.stderr
    assert "dcgan" in proc.stdout and "A = Deep Learning (2018)" in proc.stdout


@pytest.mark.skipif(BACKEND != "jax", reason="argument handling only: once, not once per backend")
def test_an_unknown_recipe_is_one_line_and_exit_2():
    proc = run_module("recipes", "dcgn", "--epochs", "1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "python -m recipes: unknown recipe 'dcgn'; python -m recipes lists them all"
    ]


def test_a_named_recipe_runs_with_its_arguments(tmp_path):
    # The same run as python -m recipes.wasserstein_toy --quick (no backend needed, a second).
    proc = run_module("recipes", "wasserstein_toy", "--quick", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "distances.png").exists()
    help_text = run_module("recipes", "wasserstein_toy", "--help")
    assert help_text.returncode == 0 and "python -m recipes.wasserstein_toy" in help_text.stdout
    bad = run_module("recipes", "wasserstein_toy", "--epochs", "-3")
    assert bad.returncode == 2
