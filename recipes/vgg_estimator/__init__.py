"""Estimator-style training: A 5.3's exam-score regression and VGG (A 6.2) through one facade.

Reproduces A 5.3 and 6.2 with `recipes.common.estimator` (TF1's `tf.estimator`, which no longer
exists, rebuilt on Keras 3 for every backend: model_fn, input_fn, train / evaluate / predict and
checkpoints in a model_dir).
- `--task exam` (`exam.py`): the notes' `hccho_model`, Dense(5, relu) -> Dense(1) on three exam
  scores, Adagrad 0.1, 1000 steps of batch 2 with logging hooks every 200, then `evaluate`
  ("Test set loss: ..., xxxx: ...") and `predict`.
- `--task vgg` (`vgg.py`): VGG16 / VGG19 exactly as the notes' table (138,357,544 and 143,667,240
  parameters, counted from the table without building them) and preprocessing; a narrow VGG16
  (`--width`, `--fc-units`) trained through the same Estimator on the embedded digits resized to
  32x32, one train + evaluate per epoch on 20% held out (`--dataset cifar10`: CIFAR-10).
- `--weights imagenet` (`imagenet.py`): Keras' ImageNet VGG weights (downloaded once, about 530
  MB) and the top-5 classes of `--image` (default: scikit-learn's china.jpg).
The default run (`--task all`) is the exam example followed by the VGG on digits.

    python -m recipes.vgg_estimator                      # exam example, then VGG16 on digits
    python -m recipes.vgg_estimator --task exam --resume # 1000 more steps: global_step 2000
    python -m recipes.vgg_estimator --task vgg --depth 19 --dataset cifar10 --width 0.5
    python -m recipes.vgg_estimator --weights imagenet --image cat.jpg

Measured (default run; narrow VGG16 on digits, held-out accuracy): 97.8% on TensorFlow (71 s),
98.6% on torch (119 s), 98.1% on JAX (131 s). Outputs (under --out, default runs/vgg_estimator):
exam/ and vgg/ (the Estimators' model_dirs: ckpt-STEP.npz and the `checkpoint` index; a run with
--resume continues their global steps), vgg.keras (the trained VGG), summary.json.
"""

import dataclasses
import json
import shutil
import time
from pathlib import Path

from recipes import engine
from recipes.common import cli
from recipes.common.estimator import ModeKeys
from recipes.vgg_estimator.exam import (
    EXAM_A,
    EXAM_A2,
    EXAM_B,
    exam_input_fns,
    exam_model_fn,
    my_format,
    run_exam,
)
from recipes.vgg_estimator.imagenet import default_image, imagenet_top5, load_image
from recipes.vgg_estimator.vgg import (
    BLOCKS,
    CHANNELS,
    VGG_MEAN,
    build_vgg,
    load_vgg_data,
    preprocess_bgr,
    run_vgg,
    vgg_model_fn,
    vgg_parameter_count,
    vgg_table,
)

__all__ = [
    "BLOCKS",
    "CHANNELS",
    "EXAM_A",
    "EXAM_A2",
    "EXAM_B",
    "VGG_MEAN",
    "Config",
    "build_vgg",
    "default_image",
    "exam_input_fns",
    "exam_model_fn",
    "imagenet_top5",
    "load_image",
    "load_vgg_data",
    "main",
    "my_format",
    "preprocess_bgr",
    "run_exam",
    "run_vgg",
    "vgg_model_fn",
    "vgg_parameter_count",
    "vgg_table",
]

SECTION = "A 5.3, 6.2"


@dataclasses.dataclass
class Config(cli.RunConfig):
    task: str = cli.option(
        "all",
        "exam: A 5.3's example; vgg: VGG on images; all: both",
        choices=("all", "exam", "vgg"),
    )
    epochs: int = cli.option(15, "VGG training epochs (one Estimator.train + evaluate each)")
    batch_size: int = cli.option(32, "VGG examples per step")
    dataset: str = cli.option("digits", "VGG training images", choices=("digits", "cifar10"))
    exam_steps: int = cli.option(1000, "training steps of the exam example (batch 2)")
    log_every: int = cli.option(200, "the logging hook fires every this many steps")
    depth: int = cli.option(16, "VGG16 or VGG19", choices=(16, 19))
    width: float = cli.option(
        None, "channel multiplier of the small VGG (default 1/8 digits, 1/2 cifar10)"
    )
    fc_units: int = cli.option(128, "units of the small VGG's fc6 and fc7 (4096 in ImageNet VGG)")
    dropout: float = cli.option(0.5, "dropout rate after fc6 and fc7 (VGG's 0.5)")
    dtype_policy: str = cli.dtype_policy_option()
    image_size: int = cli.option(32, "VGG input size (digits are resized from 28)")
    learning_rate: float = cli.option(1e-3, "initial Adam learning rate of the VGG (cosine decay to 0)")
    limit: int = cli.option(None, "use only this many images (train + held out)")
    save_checkpoints_steps: int = cli.option(100, "an Estimator checkpoint every this many steps")
    weights: str = cli.option(
        "none", "imagenet: load Keras' ImageNet VGG and classify --image", choices=("none", "imagenet")
    )
    image: str = cli.option(None, "image for --weights imagenet (default: scikit-learn's china.jpg)")


# Quick: 120 VGG steps (480 digits, batch 16, 4 epochs) without dropout: held-out accuracy 0.63-0.83
# on the three backends (with dropout 0.5 the narrow VGG stays at chance for about 100 steps).
QUICK = dict(
    exam_steps=200,
    epochs=4,
    batch_size=16,
    limit=600,
    width=1 / 8,
    fc_units=64,
    dropout=0.0,
    save_checkpoints_steps=50,
)


def check(config):
    """Rejects options the recipe cannot use, before anything is written."""
    if config.exam_steps < 1 or config.log_every < 1 or config.save_checkpoints_steps < 1:
        raise cli.UsageError("--exam-steps, --log-every and --save-checkpoints-steps must be at least 1")
    if config.data_dir:
        raise cli.UsageError("--data-dir is not used here: choose --dataset digits or cifar10")
    if not 0 <= config.dropout < 1:
        raise cli.UsageError(f"--dropout must be in [0, 1), got {config.dropout}")
    if config.image_size < 32:
        raise cli.UsageError(
            f"--image-size must be at least 32 (five 2x2 poolings), got {config.image_size}"
        )


def model_dirs(out, tasks, resume, overwrite):
    """{task: out/task}. A new run (no --resume) into model_dirs that hold a previous run is refused
    in one line before anything is trained or deleted; --overwrite empties them (global_step 0)."""
    dirs = {task: out / task for task in tasks}
    if resume and overwrite:
        raise cli.UsageError("--resume continues the run in --out, --overwrite deletes it: give one")
    held = [d for d in dirs.values() if d.is_dir() and any(d.iterdir())]
    if held and not resume and not overwrite:
        raise cli.UsageError(
            f"{held[0]} holds a previous run: continue it with --resume, or start over with "
            "--overwrite (deletes it)"
        )
    for model_dir in held if overwrite else []:
        shutil.rmtree(model_dir)
    return dirs


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.vgg_estimator",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    check(config)
    out = Path(config.out or "runs/vgg_estimator")
    if out.exists() and not out.is_dir():
        raise cli.UsageError(f"the output folder {out} is a file (--out must name a folder)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cli.UsageError(f"cannot write to the output folder {out} ({error.strerror})") from None
    summary = {"backend": engine.backend(), "seed": config.seed}
    if config.weights == "imagenet":
        summary["imagenet_top5"] = imagenet_top5(config)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return 0
    summary["parameters"] = {f"vgg{d}": vgg_parameter_count(d) for d in BLOCKS}
    print(
        "VGG with the ImageNet head (A 6.2's table): "
        + ", ".join(f"VGG{d} {vgg_parameter_count(d):,} parameters" for d in BLOCKS)
    )
    tasks = [task for task in ("exam", "vgg") if config.task in ("all", task)]
    start = time.perf_counter()
    for task, model_dir in model_dirs(out, tasks, config.resume, config.overwrite).items():
        print(f"\n== {task} (backend {engine.backend()}, model_dir {model_dir})")
        if task == "exam":
            summary["exam"] = run_exam(config, model_dir)
        else:
            estimator, summary["vgg"] = run_vgg(config, model_dir)
            if not config.quick:  # Keras' serializer imports TensorFlow: seconds a smoke run skips.
                engine.save_model(estimator.model(ModeKeys.EVAL), out / "vgg.keras")
    summary["seconds"] = time.perf_counter() - start
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nOutputs in {out}/ ({summary['seconds']:.1f} s)")
    return 0
