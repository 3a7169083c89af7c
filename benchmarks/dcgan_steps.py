"""DCGAN training steps per second on each backend, compiled and eager (not a test).

    python benchmarks/dcgan_steps.py                       # all three backends, default widths
    python benchmarks/dcgan_steps.py --backends jax --arch celeba --batch-size 128

Each backend runs in its own process (Keras picks its backend once per process). A step is one D
update and one G update on a batch of real images, with noise drawn inside the step, as in
`python -m recipes.dcgan`. The first steps (compiling) are excluded from the timing.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(args):
    """Runs in the child process: {"compiled": steps/s, "eager": steps/s} for the current backend."""
    import numpy as np

    from recipes import dcgan, engine

    config = dcgan.Config(arch=args.arch, batch_size=args.batch_size, width=args.width)
    size, channels, value_range, _ = dcgan.ARCHS[args.arch]
    rng = np.random.default_rng(0)
    real = rng.uniform(*value_range, size=(args.batch_size, size, size, channels)).astype("float32")
    result = {}
    for mode in args.modes:
        gan = dcgan.DCGAN(config)
        step = engine.function(gan.step, list(gan.state.values()), jit=mode == "compiled")
        for _ in range(args.warmup):
            float(np.asarray(step(real)["d_loss"]))
        count, start = 0, time.perf_counter()
        while count < args.min_steps or time.perf_counter() - start < args.seconds:
            losses = step(real)
            count += 1
        float(np.asarray(losses["d_loss"]))  # Wait for asynchronous backends to finish.
        result[mode] = count / (time.perf_counter() - start)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    parser.add_argument("--modes", nargs="+", default=["compiled", "eager"])
    parser.add_argument("--arch", default="mnist", choices=["mnist", "celeba"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compiling)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per mode")
    parser.add_argument("--min-steps", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure(args)))
        return
    print(f"DCGAN ({args.arch}, width {args.width}) steps/s at batch size {args.batch_size}")
    print(f"{'backend':<12}" + "".join(f"{mode:>12}" for mode in args.modes))
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
        child = [sys.executable, __file__, "--child", *sys.argv[1:]]
        proc = subprocess.run(child, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{backend:<12}failed: {proc.stderr.strip().splitlines()[-1]}")
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{backend:<12}" + "".join(f"{result[mode]:>12.2f}" for mode in args.modes), flush=True)


if __name__ == "__main__":
    main()
