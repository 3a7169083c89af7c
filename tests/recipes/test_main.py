"""`python -m recipes`: the catalogue, and `python -m recipes NAME ARGS` running recipe NAME."""

import os

import pytest

from recipes.__main__ import NOTES, catalog
from tests.conftest import BACKEND, ROOT, run_module


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


@pytest.mark.skipif(BACKEND != "jax", reason="start-up check before any backend import; runs once")
def test_a_foreign_datasets_package_first_on_the_path_stops_a_run_with_one_line(tmp_path):
    # Hugging Face's `datasets` stands in as a package of that name that must never be imported.
    foreign = tmp_path / "datasets"
    foreign.mkdir()
    (foreign / "__init__.py").write_text("raise SystemExit('the foreign datasets was imported')\n")
    # `python -m` puts the working folder first on the path, ahead of the project on PYTHONPATH.
    proc = run_module("recipes.dcgan", "--quick", "--out", tmp_path / "out", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the package 'datasets'"), lines
    assert str(foreign / "__init__.py") in lines[0] and "own virtual environment" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(BACKEND != "jax", reason="start-up check before any backend import; runs once")
def test_ours_hiding_an_installed_datasets_distribution_is_one_warning(tmp_path):
    metadata = tmp_path / "datasets-2.19.0.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text("Metadata-Version: 2.1\nName: datasets\nVersion: 2.19.0\n")
    proc = run_module("recipes", env={"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}, timeout=60)
    assert proc.returncode == 0 and "dcgan" in proc.stdout  # Ours is used: the run goes on.
    assert proc.stderr.strip().splitlines() == [
        "warning: this project's 'datasets' package hides the installed distribution "
        f"datasets-2.19.0 ({metadata}); install keras-recipes in its own virtual environment"
    ]
