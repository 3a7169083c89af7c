"""DCGAN training steps per second on each backend, compiled and eager (not a test).

    python benchmarks/dcgan_steps.py                       # all three backends, default widths
    python benchmarks/dcgan_steps.py --backends jax --arch celeba --batch-size 128
    python benchmarks/dcgan_steps.py --backends tensorflow --modes compiled \
        --implementations subpixel native --repeats 5 --seconds 3

Each backend runs in its own process (Keras picks its backend once per process). A step is one D
update and one G update on a batch of real images, with noise drawn inside the step, as in
`python -m recipes.dcgan`. The first steps (compiling) are excluded from the timing.
`--implementations` forces `SubPixelConv2DTranspose(implementation=...)` in G (auto, subpixel,
native): every (mode, implementation) pair is built and warmed up first, then timed in `--repeats`
interleaved rounds of `--seconds` each; the table shows the median round.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _forced(implementation):
    """Makes every SubPixelConv2DTranspose built from now on use `implementation`."""
    from layers import SubPixelConv2DTranspose

    original = getattr(SubPixelConv2DTranspose, "_unforced_init", SubPixelConv2DTranspose.__init__)
    SubPixelConv2DTranspose._unforced_init = original

    def forced(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "implementation": implementation})

    SubPixelConv2DTranspose.__init__ = forced


def _uses_subpixel(model):
    """The sub-pixel flags of the model's SubPixelConv2DTranspose layers (what `build` chose)."""
    from layers import SubPixelConv2DTranspose

    return {layer._subpixel for layer in model.layers if isinstance(layer, SubPixelConv2DTranspose)}


def measure(args):
    """Runs in the child process: {"mode/implementation": steps/s (median)} for the current backend."""
    import statistics

    import numpy as np

    from recipes import dcgan, engine

    config = dcgan.Config(arch=args.arch, batch_size=args.batch_size, width=args.width)
    size, channels, value_range, _ = dcgan.ARCHS[args.arch]
    rng = np.random.default_rng(0)
    real = rng.uniform(*value_range, size=(args.batch_size, size, size, channels)).astype("float32")
    steps = {}
    for mode in args.modes:
        for implementation in args.implementations:
            _forced(implementation)
            gan = dcgan.DCGAN(config)
            if implementation != "auto":
                assert _uses_subpixel(gan.generator) == {implementation == "subpixel"}
            step = engine.function(gan.step, list(gan.state.values()), jit=mode == "compiled")
            for _ in range(args.warmup):
                float(np.asarray(step(real)["d_loss"]))
            steps[f"{mode}/{implementation}"] = step
    rates = {key: [] for key in steps}
    for _ in range(args.repeats):
        for key, step in steps.items():
            count, start = 0, time.perf_counter()
            while count < args.min_steps or time.perf_counter() - start < args.seconds:
                losses = step(real)
                count += 1
            float(np.asarray(losses["d_loss"]))  # Wait for asynchronous backends to finish.
            rates[key].append(count / (time.perf_counter() - start))
    return {key: statistics.median(values) for key, values in rates.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    parser.add_argument("--modes", nargs="+", default=["compiled", "eager"])
    parser.add_argument("--arch", default="mnist", choices=["mnist", "celeba"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compiling)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per mode and round")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved timed rounds (median)")
    parser.add_argument(
        "--implementations",
        nargs="+",
        default=["auto"],
        choices=["auto", "subpixel", "native"],
        help="SubPixelConv2DTranspose implementation(s) in G",
    )
    parser.add_argument("--min-steps", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure(args)))
        return
    print(f"DCGAN ({args.arch}, width {args.width}) steps/s at batch size {args.batch_size}")
    columns = [f"{m}/{i}" for m in args.modes for i in args.implementations]
    print(f"{'backend':<12}" + "".join(f"{column:>20}" for column in columns))
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
        child = [sys.executable, __file__, "--child", *sys.argv[1:]]
        proc = subprocess.run(child, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{backend:<12}failed: {proc.stderr.strip().splitlines()[-1]}")
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{backend:<12}" + "".join(f"{result[c]:>20.2f}" for c in columns), flush=True)


if __name__ == "__main__":
    main()
