"""The project's training steps against hand-written native ones in the same framework (not a test).

    python benchmarks/native_compare.py                       # 3 models x 3 backends, ~10 minutes
    python benchmarks/native_compare.py --models dcgan --backends torch --repeats 7 --seconds 3

Models (the recipes' defaults): the DCGAN step of recipes/dcgan.py (G 6,974,849 and D 3,740,175
parameters, batch 64: one D update and one G update, noise drawn in the step, Adam 2e-4, beta_1 0.5),
the Bahdanau NMT step of recipes/nmt_attention.py (128,943 parameters) and the Transformer step of
recipes/transformer.py (171,919 parameters), both on one batch of 128 date pairs (sources padded to
23 characters, targets to 11) with Adam. The project side is what the recipes run: the DCGAN step
through `engine.function` (jax.jit / tf.function / torch eager), the translation models through
`model.fit`'s compiled step: its train function on torch (eager) and JAX (jitted, the variables'
state threaded from step to step as `fit` does), `train_on_batch` on TensorFlow. The native side
is hand-written in benchmarks/native/ (torch_models.py: eager, NCHW, nn.GRU,
scaled_dot_product_attention, torch.optim.Adam; jax_models.py: jax.jit of plain jax.numpy/lax code,
sub-pixel transposed convolutions, lax.scan GRUs, Adam written out; tf_models.py: tf.function with
XLA, tf.nn.conv2d_transpose, Adam written out).
The translation models' learning-rate schedules are left out on the native side (a constant rate).

Same work: before timing, each native model must have the project's parameter counts, and with the
project's weights copied in, its forward outputs (training mode) must equal the Keras model's
within 1e-4 (--no-check skips this). It fails loudly otherwise.

Protocol: each backend runs in its own process (Keras picks its backend once per process). In it,
for each model, both sides first take untimed warm-up steps (compiling), then `--repeats` rounds
each time both sides for `--seconds` (at least `--min-steps` steps), project and native
alternating (the side that goes first alternates too); a rate is steps over wall time, waiting for
the last step's result. The table shows the median of the rounds and ratio = project / native
of those medians; "paired" is the median (and range) of each round's project rate over the
native rate of the same round, which a load drifting during the run (a shared machine) moves less.
Writes the results as JSON (--json, default runs/native_compare.json).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

if not __package__:  # run as a script: the project root on the path, for `benchmarks.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import timing  # noqa: E402

ROOT, BACKENDS = timing.ROOT, timing.BACKENDS
MODELS = ("dcgan", "bahdanau", "transformer")
NATIVE_MODULES = {
    "tensorflow": "benchmarks.native.tf_models",
    "torch": "benchmarks.native.torch_models",
    "jax": "benchmarks.native.jax_models",
}
PROTOCOL = (
    "protocol: warm-up (compiling) excluded; project and native interleaved in one process per "
    "backend; median of {repeats} rounds of >= {seconds} s (>= {min_steps} steps) each; paired: "
    "median of the rounds' project / native"
)


def measure(args):
    """Runs in the child process: one result dict per model for the current backend."""
    import importlib

    from benchmarks.native import common
    from recipes import engine

    engine.configure()
    backend = engine.backend()
    native_module = importlib.import_module(NATIVE_MODULES[backend])
    results = []
    for name in args.models:
        project = common.project(name)
        native = native_module.NATIVE[name](project.sizes)
        common.check_counts(name, native.counts(), project.counts)
        if args.check:
            native.load(project)
            common.compare(
                f"{name} on {backend}", native.forward(project.check_inputs), project.reference
            )
        native_step = native.prepare(project)
        sides = {
            "project": (project.step, project.sync),
            "native": (native_step, native_module.sync),
        }
        for step, sync in sides.values():
            for _ in range(args.warmup):
                sync(step())
        rates = {side: [] for side in sides}
        for round_ in range(args.repeats):
            order = list(sides) if round_ % 2 == 0 else list(sides)[::-1]
            for side in order:
                rates[side].append(timing.rate(*sides[side], args.seconds, args.min_steps))
        project_rate = statistics.median(rates["project"])
        native_rate = statistics.median(rates["native"])
        # Each round's project rate over the native rate of the same round: a load that drifts
        # during the run (a shared machine) slows both sides of a round alike.
        paired = [p / n for p, n in zip(rates["project"], rates["native"], strict=True)]
        results.append(
            {
                "model": name,
                "batch": project.batch,
                "backend": backend,
                "parameters": project.counts,
                "checked": bool(args.check),
                "project_steps_per_s": round(project_rate, 3),
                "native_steps_per_s": round(native_rate, 3),
                "ratio": round(project_rate / native_rate, 3),
                "paired_ratio": round(statistics.median(paired), 3),
                "paired_range": [round(min(paired), 3), round(max(paired), 3)],
                "project_rounds": [round(r, 3) for r in rates["project"]],
                "native_rounds": [round(r, 3) for r in rates["native"]],
            }
        )
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


ROW = "{:<12}{:>6}  {:<11}{:>10}{:>10}{:>8}{:>20}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per side (median)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per side per round")
    parser.add_argument("--min-steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per side (compiling)")
    parser.add_argument(
        "--no-check", dest="check", action="store_false", help="skip the same-work check"
    )
    parser.add_argument("--json", default="runs/native_compare.json", help="where to write the results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.seconds <= 0 or args.warmup < 1:
        parser.error("--repeats and --warmup must be at least 1, --seconds positive")

    if args.child:
        print(json.dumps(measure(args)))
        return 0
    protocol = PROTOCOL.format(repeats=args.repeats, seconds=args.seconds, min_steps=args.min_steps)
    print("Training steps per second, project vs hand-written native code in the same framework")
    print(protocol)
    print(ROW.format("model", "batch", "backend", "project", "native", "ratio", "paired (range)"))
    rows, failed = [], []
    for backend in args.backends:
        env = timing.backend_env(backend)
        argv_child = [a for a in (argv if argv is not None else sys.argv[1:])]
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *argv_child, "--backends", backend],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or ["no output"]
            print(f"{backend}: FAILED: {lines[-1]}", flush=True)
            failed.append(backend)
            continue
        for row in json.loads(proc.stdout.strip().splitlines()[-1]):
            rows.append(row)
            print(
                ROW.format(
                    row["model"],
                    row["batch"],
                    backend,
                    f"{row['project_steps_per_s']:.2f}",
                    f"{row['native_steps_per_s']:.2f}",
                    f"{row['ratio']:.2f}",
                    "{:.2f} ({:.2f}-{:.2f})".format(row["paired_ratio"], *row["paired_range"]),
                ),
                flush=True,
            )
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"protocol": protocol, "results": rows}, indent=2) + "\n")
    print(f"Results in {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
