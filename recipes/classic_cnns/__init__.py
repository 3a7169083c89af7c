"""Classic CNNs: LeNet-5, AlexNet, GoogLeNet, ResNet-18/50, DenseNet-121, SqueezeNet on the digits.

Reproduces B 3.3 (LeNet, AlexNet, GoogLeNet, ResNet; VGG is in recipes.vgg_estimator), D 5 (modern
CNNs: AlexNet, GoogLeNet, ResNet, DenseNet) and A 6.4 (SqueezeNet) with the blocks of `layers.cnn`.
Each builder (`models.py`) makes the published architecture for any input size and number of
classes; at the published input size and head its parameter count equals a reference
(`references.py`: the notes, the papers, torchvision or keras.applications), e.g. LeNet-5 61,706,
AlexNet 62,378,344, GoogLeNet 6,998,552, ResNet-50 25,557,032 + 53,120 batch-norm statistics.

Training (`--model NAME`, default lenet5): the 1,797 embedded digits (`datasets.digits`), a fixed
fifth held out, zero-padded to 32x32 as LeNet-5 padded MNIST (AlexNet's resized to 67x67, the
least its arithmetic takes; `--image-size` changes the size); Adam 1e-3 (1e-4 for AlexNet and
SqueezeNet), batch 64, 5 epochs, cross-entropy on logits, through `model.fit`.

    python -m recipes.classic_cnns                   # LeNet-5
    python -m recipes.classic_cnns --model resnet18
    KERAS_BACKEND=torch python -m recipes.classic_cnns --model squeezenet --epochs 10

Measured (JAX, 5 epochs, held-out accuracy): LeNet-5, the default run, 92.2% (31 s of fit on a
shared 2-core CPU); SqueezeNet 39%, still rising; AlexNet at Adam 1e-3 only 36%, hence 1e-4.
Outputs (under --out, default runs/classic_cnns/MODEL): metrics.csv, curves.png, checkpoints/,
model.keras, summary.json (parameter counts at the published size and as trained, the reference,
held-out accuracy, time).
"""

import dataclasses

from recipes import engine
from recipes.classic_cnns.models import (
    FIRE,
    INCEPTION,
    RESNET_STAGES,
    alexnet,
    densenet121,
    googlenet,
    lenet5,
    resnet,
    squeezenet,
)
from recipes.classic_cnns.references import (
    MODELS,
    REFERENCES,
    Reference,
    build_for,
    published_model,
)
from recipes.common import cli, image_classification
from recipes.common.image_classification import parameter_counts, without_weights

__all__ = [
    "FIRE",
    "INCEPTION",
    "MODELS",
    "REFERENCES",
    "RESNET_STAGES",
    "Config",
    "Reference",
    "alexnet",
    "build_for",
    "densenet121",
    "googlenet",
    "lenet5",
    "main",
    "parameter_counts",
    "published_model",
    "resnet",
    "squeezenet",
    "without_weights",
]

SECTION = "B 3.3, D 5, A 6.4"


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(5, "number of training epochs")
    model: str = cli.option("lenet5", "the architecture to train", choices=MODELS)
    dataset: str = cli.option(
        "digits", "digits (embedded) or cifar10 (downloaded)", choices=image_classification.DATASETS
    )
    data_dir: str = cli.option(None, cli.HIDDEN)  # No folder: refused (prepared_data).
    image_size: int = cli.option(None, "side of the training images (default: 32; 67 for alexnet)")
    learning_rate: float = cli.option(
        None, "Adam learning rate (default: 1e-4 for alexnet and squeezenet, else 1e-3)"
    )
    limit: int = cli.option(None, "use only the first N training images")
    test_limit: int = cli.option(None, "evaluate on only the first N held-out images")
    distribute: str = cli.distribute_option()


# --quick: 32 steps of 16 images, enough for LeNet-5 to learn the digits (held-out accuracy 0.56-0.84).
QUICK = dict(epochs=1, batch_size=16, limit=512, test_limit=32)


def published(reference):
    """The summary's entry for the model at its published size."""
    return {
        "published": {
            "input_shape": list(reference.input_shape),
            "num_classes": reference.num_classes,
            "trainable": reference.trainable,
            "non_trainable": reference.non_trainable,
            "source": reference.source,
        }
    }


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.classic_cnns",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    engine.set_seed(config.seed)
    reference = REFERENCES[config.model]
    if config.learning_rate is None:
        config.learning_rate = reference.learning_rate
    size = config.image_size or reference.digits_size
    if size < 1:
        raise cli.UsageError(f"--image-size must be positive, got {size}")
    data = image_classification.prepared_data(config, size, reference.channels)
    input_shape = (size, size, reference.channels)

    def build():
        return build_for(config.model, input_shape)

    def describe(model):
        return published(reference)

    out = config.out or f"runs/classic_cnns/{config.model}"
    image_classification.train_and_evaluate(build, config, data, out, config.model, describe)
    return 0
