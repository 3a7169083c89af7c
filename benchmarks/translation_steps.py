"""Training steps per second of the translation models on the date task (not a test).

    python benchmarks/translation_steps.py                  # bahdanau, luong-dot, transformer
    KERAS_BACKEND=jax python benchmarks/translation_steps.py --steps 50 --batch-size 128
    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/translation_steps.py   # on a busy machine

Each model has its recipe's default sizes and is trained with `train_on_batch` on one fixed batch
of the date task (sources padded to 23 characters, targets to 11): the same compiled step as `fit`
(jax.jit / tf.function; eager on torch). The first step (compiling) is timed separately.
"""

import argparse
import json
import time


def date_batch(batch_size):
    """(task, (source, decoder_input, target)): one batch of date pairs, sources padded to 23
    characters and targets to 11, with vocabularies fitted on it."""
    from recipes.common import translation

    train, held, tokenizer = translation.load_task("dates", batch_size, 8, seed=0)
    task = translation.Task(
        "dates",
        tokenizer,
        train,
        held,
        translation.Vocabulary.fit([s for s, _ in train]),
        translation.Vocabulary.fit([t for _, t in train]),
        23,
        11,
        None,
        None,
    )
    return task, translation.make_arrays(train, task.source_vocab, task.target_vocab, 23, 11)


def measure(name, batch_size, steps):
    import keras

    from recipes import engine, nmt_attention, transformer
    from recipes.common import translation

    config_class, build = (
        (transformer.Config, transformer.build_model)
        if name == "transformer"
        else (nmt_attention.Config, nmt_attention.build_model)
    )
    config = config_class(train_size=batch_size, heldout_size=8, batch_size=batch_size)
    if name != "transformer":
        config.attention = name
    engine.set_seed(0)
    task, arrays = date_batch(batch_size)
    model = build(config, task)
    model.compile(keras.optimizers.Adam(1e-3), loss=translation.masked_loss())
    started = time.perf_counter()
    model.train_on_batch(list(arrays[:2]), arrays[2])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(list(arrays[:2]), arrays[2])
    seconds = (time.perf_counter() - started) / steps
    return {
        "first_step_s": round(first, 2),
        "ms_per_step": round(1000 * seconds, 1),
        "steps_per_s": round(1 / seconds, 2),
        "parameters": model.count_params(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["bahdanau", "luong-dot", "transformer"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    from recipes import engine

    engine.configure()
    results = {m: measure(m, args.batch_size, args.steps) for m in args.models}
    print(json.dumps({"backend": engine.backend(), "batch_size": args.batch_size, **results}, indent=2))


if __name__ == "__main__":
    main()
