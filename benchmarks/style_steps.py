"""Seconds per neural-style optimisation step at 256x256 on the current backend (not a test).

    python benchmarks/style_steps.py                          # adam and lbfgs, KERAS_BACKEND's backend
    KERAS_BACKEND=jax python benchmarks/style_steps.py --steps 10
    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/style_steps.py   # on a busy machine

The problem is `python -m recipes.neural_style --weights random --size 256` with both photographs
resized to 256x256: VGG19 up to conv5_1, content at conv4_2, five Gram matrices, TV. An Adam step
is one compiled value-and-gradient plus the update; an L-BFGS iteration is one or more compiled
value-and-gradient evaluations plus scipy's work (the evaluations per iteration are printed). The
first step (compiling) is not timed.
"""

import argparse
import json

from recipes import engine, neural_style
from recipes.common import style_transfer


def measure(optimizer, size, steps):
    import keras

    content = style_transfer.load_image("china", (size, size))
    style = style_transfer.load_image("flower", (size, size))
    layers = list(dict.fromkeys((*style_transfer.STYLE_LAYERS, style_transfer.CONTENT_LAYER)))
    features = style_transfer.build_features(layers, "max", "random", seed=0)
    target, grams = neural_style.prepare(features, content, style)
    image = keras.Variable(style_transfer.preprocess(content)[None])
    loss_fn, state = neural_style.build_loss(features, image, target, grams)
    history = style_transfer.optimize(
        loss_fn, image, steps=steps, optimizer=optimizer, learning_rate=5.0, state=state
    )
    result = {"seconds_per_step": style_transfer.seconds_per_step(history), "steps": history[-1]["step"]}
    if "evaluations" in history[0]:
        result["evaluations_per_iteration"] = history[0]["evaluations"] / max(history[-1]["step"], 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizers", nargs="+", default=["adam", "lbfgs"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--steps", type=int, default=6, help="steps per optimizer (the first is not timed)"
    )
    args = parser.parse_args()
    engine.configure()
    results = {}
    for optimizer in args.optimizers:
        results[optimizer] = measure(optimizer, args.size, args.steps)
        print(
            f"{engine.backend()} {optimizer}: {results[optimizer]['seconds_per_step']:.3f} s per step "
            f"at {args.size}x{args.size}",
            flush=True,
        )
    print(json.dumps({"backend": engine.backend(), "size": args.size, **results}))


if __name__ == "__main__":
    main()
