"""Shared test helpers. The suite runs once per backend: `KERAS_BACKEND=jax pytest`, etc."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from recipes import engine

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BACKEND = keras.backend.backend()

# JAX compiles every eager operation per shape; a disk cache shared by the test process and the
# recipe subprocesses it starts saves most of that.
engine.configure()


def run_module(module, *args, env=None, timeout=300):
    """Runs `python -m module args` on the current backend; returns the CompletedProcess."""
    full_env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """No network and an empty Keras cache: downloads fail at once (a closed local port)."""
    env = {"RECIPES_DATA_ORIGIN": "http://127.0.0.1:9/", "KERAS_HOME": str(tmp_path / "keras")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
