"""Each model's published input, its parameter count there and where the number comes from, and
the models built for the size they train on.

| model | published input | parameters | reference |
|---|---|---|---|
| lenet5 | 32x32x1, 10 | 61,706 | B 3.3.1 (LeNet-5, full C3 connectivity) |
| alexnet | 227x227x3, 1000 | 62,378,344 | B 3.3.1 (single-tower AlexNet, LRN) |
| googlenet | 224x224x3, 1000 | 6,998,552 | Szegedy et al. 2014, Table 1, no auxiliary heads |
| resnet18 | 224x224x3, 1000 | 11,689,512 + 9,600 | B 3.3.3 (torchvision layout) |
| resnet50 | 224x224x3, 1000 | 25,557,032 + 53,120 | B 3.3.3 (torchvision layout) |
| densenet121 | 224x224x3, 1000 | 8,062,504 | keras.applications.DenseNet121 |
| squeezenet | 224x224x3, 1000 | 1,248,424 | Iandola et al. 2016, Table 1 (v1.0) = torchvision |
| squeezenet1_1 | 224x224x3, 1000 | 1,235,496 | torchvision squeezenet1_1 (SqueezeNet v1.1) |

(+ N: the batch norms' moving statistics, which Keras counts and PyTorch does not.)
"""

import dataclasses
import functools

from recipes.classic_cnns.models import alexnet, densenet121, googlenet, lenet5, resnet, squeezenet
from recipes.common import cli
from recipes.common.image_classification import without_weights


@dataclasses.dataclass(frozen=True)
class Reference:
    """A model's published input, its parameter count there and where the number comes from."""

    build: object  # (input_shape, num_classes) -> keras.Model
    input_shape: tuple
    num_classes: int
    trainable: int
    non_trainable: int  # the batch norms' moving statistics
    source: str
    digits_size: int = 32  # side of the digits it trains on
    channels: int = 3  # the models made for colour images see the grey level on all three
    learning_rate: float = 1e-3  # Adam's, on the digits


REFERENCES = {
    "lenet5": Reference(
        lenet5,
        (32, 32, 1),
        10,
        61_706,
        0,
        "B 3.3.1 [DERIVED]: LeNet-5, full C3",
        channels=1,
    ),
    # 67x67 is the least AlexNet's arithmetic takes: the 32x32 digits are resized (PIL, bicubic).
    # At Adam 1e-3 its 58M fully connected weights reached only 36% held-out accuracy in 5 epochs.
    # (The notes' recipe, SGD 0.01 with momentum 0.9 and weight decay 5e-4 for 90 epochs of
    # ImageNet, is out of reach of a CPU.)
    "alexnet": Reference(
        alexnet,
        (227, 227, 3),
        1000,
        62_378_344,
        0,
        "B 3.3.1 [DERIVED]: the notes' single-tower AlexNet",
        digits_size=67,
        learning_rate=1e-4,
    ),
    # The total is derived from the paper's filter counts; the notes give only inception(3a).
    "googlenet": Reference(
        googlenet,
        (224, 224, 3),
        1000,
        6_998_552,
        0,
        "Szegedy et al. 2014 Table 1 filter counts, with biases, no auxiliary heads; "
        "inception(3a) 163,696 in B 3.3.1",
    ),
    "resnet18": Reference(
        functools.partial(resnet, 18),
        (224, 224, 3),
        1000,
        11_689_512,
        9_600,
        "B 3.3.3 [DERIVED]: torchvision resnet18",
    ),
    "resnet50": Reference(
        functools.partial(resnet, 50),
        (224, 224, 3),
        1000,
        25_557_032,
        53_120,
        "B 3.3.3 [DERIVED]: torchvision resnet50 (v1.5)",
    ),
    "densenet121": Reference(
        densenet121,
        (224, 224, 3),
        1000,
        7_978_856,
        83_648,
        "keras.applications.DenseNet121: 8,062,504 in all",
    ),
    # SqueezeNet learns slowly here: its 7x7 stride-2 stem and three pools leave 1x1 maps of a
    # 32x32 digit. At Adam 1e-4: 39% held-out after 5 epochs on JAX, still rising; at 1e-3 it
    # reached 20% at 32x32 and stayed at chance at 64x64 (its last convolution's ReLUs die).
    "squeezenet": Reference(
        functools.partial(squeezenet, version="1.0"),
        (224, 224, 3),
        1000,
        1_248_424,
        0,
        "Iandola et al. 2016 Table 1 (SqueezeNet v1.0), = torchvision squeezenet1_0",
        learning_rate=1e-4,
    ),
    "squeezenet1_1": Reference(
        functools.partial(squeezenet, version="1.1"),
        (224, 224, 3),
        1000,
        1_235_496,
        0,
        "torchvision squeezenet1_1 (SqueezeNet v1.1)",
        learning_rate=1e-4,
    ),
}
MODELS = tuple(REFERENCES)


def published_model(name):
    """The model `name` at its published input size and head, built without weights."""
    reference = REFERENCES[name]
    with without_weights():
        return reference.build(reference.input_shape, reference.num_classes)


def build_for(name, input_shape, num_classes=10):
    """Model `name` for `input_shape`; UsageError when its layer arithmetic leaves no pixels."""
    side = "x".join(map(str, input_shape[:2]))
    try:
        model = REFERENCES[name].build(tuple(input_shape), num_classes)
    except ValueError:  # Keras' message spans many lines; the gist fits in one.
        raise cli.UsageError(
            f"{name} cannot take {side} images: a layer's output would be empty "
            f"(at least {REFERENCES[name].digits_size}x{REFERENCES[name].digits_size})"
        ) from None
    for layer in model.layers:
        if any(d is not None and d < 1 for d in layer.output.shape[1:]):
            raise cli.UsageError(
                f"{name} cannot take {side} images: {layer.name} would output {layer.output.shape[1:]}"
            )
    return model
