"""The steps of an `image_captioning` run after the data: teacher-forced training with `fit`, greedy
captions of the held-out images scored by BLEU-4, and the outputs."""

import dataclasses
import json
import math
import textwrap
import time

import numpy as np

from recipes import engine
from recipes.common import cli, fitting, plots
from recipes.common.bleu import bleu_statistics, corpus_bleu
from recipes.image_captioning.data import most_frequent_caption
from recipes.image_captioning.model import (
    generate,
    learning_rate,
    make_decoder,
    masked_caption_loss,
)

keras = cli.lazy_import("keras")


def fit(config, model, data, out):
    """Trains on every (image, caption) pair with teacher forcing; returns (history, seconds).

    One `fit` epoch per `engine.Loop` epoch on the pairs in an order fixed by (seed, epoch)
    (`recipes.common.fitting`): a checkpoint after every epoch holds the weights and batch-norm
    statistics, Adam's slots and iteration count (the warm-up and cosine's position), the epoch and
    the metrics rows, so `--resume` ends where the uninterrupted run would. The cosine spans
    --epochs: a resume with other --epochs is refused in one line.
    """
    x_img, x_cap, y_cap = data.train_arrays
    steps = config.epochs * math.ceil(len(x_cap) / config.batch_size)
    # (dense_gradients: the embedding's Adam step as on torch and JAX; see recipes.engine)
    optimizer = engine.dense_gradients(keras.optimizers.Adam(learning_rate(config, steps)))
    model.compile(optimizer=optimizer, loss=masked_caption_loss)
    loop = engine.Loop(
        out,
        fitting.checkpoint_state(model),
        resume=config.resume,
        overwrite=config.overwrite,
        # --max-length changes the decoding only.
        config={k: v for k, v in dataclasses.asdict(config).items() if k != "max_length"},
        epochs_in_schedule=True,
    )
    v_img, v_cap, v_y = data.held_arrays
    rows, seconds = fitting.fit_epochs(
        model,
        loop,
        [x_img, x_cap],
        y_cap,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        validation_data=([v_img, v_cap], v_y),
        name="the captioning model",
    )
    return {key: [row[key] for row in rows] for key in ("loss", "val_loss")}, seconds


def evaluate(config, model, data):
    """Greedy captions of the held-out images and their scores, as a dict.

    Corpus BLEU-4 (Papineni et al. 2002: clipped n-gram precisions for n = 1..4, their geometric
    mean, times the brevity penalty) against all three references of each image; the baseline gives
    every image the most frequent training caption. The notes report that with an LSTM on MS-COCO
    "BLEU is hard to push past 0.3"; the toy captions here are far more predictable.
    """
    decoder = make_decoder(model, config.max_length)
    generate(decoder, data.held_images[:1], data.vocab)  # compile outside the timing
    started = time.perf_counter()
    generated = generate(decoder, data.held_images, data.vocab)
    decode_seconds = time.perf_counter() - started
    references = data.held_captions
    baseline_caption = most_frequent_caption(data.train_captions)
    return {
        "generated": generated,
        "bleu": corpus_bleu(references, generated),
        "baseline_caption": baseline_caption,
        "baseline": corpus_bleu(references, [baseline_caption] * len(references)),
        "exact": np.mean([hyp in refs for hyp, refs in zip(generated, references)]),
        "statistics": bleu_statistics(references, generated),  # matches, totals, c, r
        "decode_seconds": decode_seconds,
    }


def plot_samples(path, images, generated, references):
    """A grid of images, each titled with its generated and a reference caption."""
    plt = plots.pyplot()
    count = len(images)
    cols = min(4, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, hyp, ref in zip(axes.ravel(), images, generated, references):
        ax.imshow(image, interpolation="nearest")
        text = "\n".join(textwrap.wrap("gen: " + " ".join(hyp), 32))
        text += "\n" + "\n".join(textwrap.wrap("ref: " + " ".join(ref), 32))
        ax.set_title(text, fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(config, model, data, history, train_seconds, results, out):
    """model.keras, samples.png, loss.png and summary.json under `out`; prints the result."""
    generated, bleu, baseline = results["generated"], results["bleu"], results["baseline"]
    baseline_caption, exact = results["baseline_caption"], results["exact"]
    matches, totals, c, r = results["statistics"]
    held_images, held_captions = data.held_images, data.held_captions
    engine.save_model(model, out / "model.keras")
    shown = min(config.samples, len(held_images))
    if shown:
        refs = [caps[0] for caps in held_captions[:shown]]
        plot_samples(out / "samples.png", held_images[:shown], generated[:shown], refs)
    plots.loss_curves(
        out / "loss.png",
        {"train": history["loss"], "held-out": history["val_loss"]},
        f"BLEU-4 {bleu:.3f} (most frequent caption {baseline:.3f})",
        ylabel="masked cross-entropy (nats/word)",
        log=False,
    )
    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "vocab_size": len(data.vocab),
        "caption_tokens": data.length,
        "parameters": model.count_params(),
        "bleu4": bleu,
        "baseline_bleu4": baseline,
        "baseline_caption": " ".join(baseline_caption),
        "precisions": (matches / np.maximum(totals, 1)).tolist(),
        "brevity": {"hypothesis_length": int(c), "reference_length": int(r)},
        "exact_match": float(exact),
        "train_seconds": train_seconds,
        "decode_seconds": results["decode_seconds"],
        "samples": [
            {"generated": " ".join(g), "references": [" ".join(x) for x in refs]}
            for g, refs in zip(generated[:shown], held_captions[:shown])
        ],
        "history": history,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(f"  {s['generated']:<55} | {s['references'][0]}" for s in summary["samples"][:6]))
    print(
        f"held-out BLEU-4 {bleu:.3f} against the most frequent caption's {baseline:.3f} "
        f"({' '.join(baseline_caption)!r}); {100 * exact:.1f}% exactly a reference; "
        f"training {train_seconds:.1f} s, decoding {len(held_images)} images "
        f"{results['decode_seconds']:.2f} s"
    )
    return summary
