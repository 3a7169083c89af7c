"""Shared test helpers. The suite runs once per backend: `KERAS_BACKEND=jax pytest`, etc."""

import os
import re
import subprocess
import sys
from pathlib import Path

# One OpenMP thread (torch's CPU kernels, NumPy's BLAS), in this process and the recipe runs it
# starts: on the 2-core test machine torch's two spinning threads fight every other process, and
# its quick runs took up to 4 times longer (tests/recipes/test_cifar_cnn.py, test_classic_cnns.py
# and test_nmt_attention.py on torch with another job running: 467 s with 2 threads, 118 s with 1).
# Set before keras imports the backend, which reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# XLA (JAX, and TensorFlow's compiled steps) compiles without LLVM's optimisation passes: the suite
# compiles thousands of small programs that each run for milliseconds, and on an empty JAX cache
# compiling is most of its time (tests/recipes/test_dcgan.py + tests/layers/test_cnn.py on JAX:
# 237 s -> 114 s). Convolutions and matrix products call the same precompiled kernels either way.
# The compile cache keys on the flags, so these programs never mix with a user's optimised ones.
# A long training run pays for it in its steps instead: `run_module(..., xla_optimized=True)`.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
).strip()

import keras  # noqa: E402
import pytest

from recipes import engine

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BACKEND = keras.backend.backend()

# JAX compiles every eager operation per shape; a disk cache shared by the test process and the
# recipe subprocesses it starts saves most of that.
engine.configure()


def run_module(module, *args, env=None, timeout=300, cwd=ROOT, xla_optimized=False):
    """Runs `python -m module args` on the current backend; returns the CompletedProcess.

    `env` adds to (or replaces, PYTHONPATH included) the environment; `cwd` comes first on the path.
    `xla_optimized`: XLA compiles with its optimisation passes (the suite's flags without level 0),
    for runs of hundreds of steps: the NMT default run takes 60 s instead of 91 on JAX, 72 instead
    of 111 on TensorFlow, where quick runs are faster at level 0 (the DCGAN short run: 34 s at
    level 0, 35 s optimised).
    """
    full_env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=str(ROOT))
    if xla_optimized:
        flags = os.environ["XLA_FLAGS"].split()
        full_env["XLA_FLAGS"] = " ".join(f for f in flags if f != "--xla_backend_optimization_level=0")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_plain_log(stdout, epochs):
    """Output written to a pipe or file (not a terminal) is a readable log: no carriage returns or ANSI
    escape codes of a live progress bar, and one progress summary line ("28/28 - 3s - ...") per epoch."""
    # (`run_module`'s text mode turns a "\r" into "\n"; the bar's backspaces and colours stay.)
    assert "\r" not in stdout and "\b" not in stdout, "a progress bar redraws itself in a log"
    assert "\x1b[" not in stdout, "ANSI escape codes in a log"
    summaries = [line for line in stdout.splitlines() if re.match(r"\d+/\d+ - \d+s - ", line)]
    assert len(summaries) == epochs, stdout[-2000:]


def failing_replace(name):
    """`os.replace` that fails like a full disk when it would create `name`: patch it into
    `recipes.engine.loop.os` to break the checkpoint write of one epoch."""
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(name):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    return replace


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """No network and an empty Keras cache: downloads fail at once (a closed local port)."""
    env = {"RECIPES_DATA_ORIGIN": "http://127.0.0.1:9/", "KERAS_HOME": str(tmp_path / "keras")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
