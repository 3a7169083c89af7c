"""What the step benchmarks share: a timed round of training steps, and a backend's environment.

`native_compare.py` and `family_steps.py` run each backend in its own process (Keras picks its
backend once per process) with `backend_env(backend)`, and time steps with `rate`.
"""

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "torch", "jax")


def rate(step, sync, seconds, min_steps):
    """Steps per second of `step()` over one round of at least `seconds` and `min_steps` steps.

    `sync(out)` waits for the last step's result: asynchronous backends (JAX) have finished every
    step once the last one has, so the rate is of finished steps."""
    count, start = 0, time.perf_counter()
    while count < min_steps or time.perf_counter() - start < seconds:
        out = step()
        count += 1
    sync(out)
    return count / (time.perf_counter() - start)


def backend_env(backend):
    """The environment of a child process on `backend`: KERAS_BACKEND, the project on PYTHONPATH,
    and torch's intra-op threads on every core unless OMP_NUM_THREADS is set."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    if backend == "torch":
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    return env
