"""Classic CNNs: LeNet-5, AlexNet, GoogLeNet, ResNet-18/50, DenseNet-121 and SqueezeNet, built
from the blocks in `layers.cnn` and trained on the embedded digits.

Reproduces section 3.3 of seeds/001 (LeNet, AlexNet, GoogLeNet, ResNet; VGG is in recipes.vgg_estimator),
section 5 of seeds/003 (modern CNNs: AlexNet, GoogLeNet, ResNet, DenseNet) and section 6.4 of
seeds/000 (SqueezeNet). Each builder makes the published architecture for any input size and number
of classes; at the published input size and head its parameter count is checked against a reference
(`REFERENCES`, with its source):

| model | published input | parameters | reference |
|---|---|---|---|
| lenet5 | 32x32x1, 10 | 61,706 | notes 001 3.3.1 (LeNet-5, full C3 connectivity) |
| alexnet | 227x227x3, 1000 | 62,378,344 | notes 001 3.3.1 (single-tower AlexNet, LRN) |
| googlenet | 224x224x3, 1000 | 6,998,552 | Szegedy et al. 2014, Table 1, no auxiliary heads [1] |
| resnet18 | 224x224x3, 1000 | 11,689,512 + 9,600 | notes 001 3.3.3 (torchvision layout) |
| resnet50 | 224x224x3, 1000 | 25,557,032 + 53,120 | notes 001 3.3.3 (torchvision layout) [2] |
| densenet121 | 224x224x3, 1000 | 8,062,504 | keras.applications.DenseNet121 |
| squeezenet | 224x224x3, 1000 | 1,248,424 | Iandola et al. 2016, Table 1 (v1.0) = torchvision |
| squeezenet1_1 | 224x224x3, 1000 | 1,235,496 | torchvision squeezenet1_1 (SqueezeNet v1.1) |

[1] The total is derived from the table's filter counts; the notes give inception(3a): 163,696.
[2] `resnet(50, variant="keras")` is keras.applications.ResNet50: 25,636,712 in all.

(+ N: the batch norms' moving statistics, which Keras counts and PyTorch does not.)

Training (`--model NAME`, default lenet5): the 1,797 embedded digits (28x28, `datasets.digits`),
a fixed fifth held out, zero-padded to 32x32 as LeNet-5 padded MNIST; the models made for colour
images see the grey level on all three channels. AlexNet's arithmetic (11x11 stride 4, three 3x3
stride-2 pools, no padding) needs at least 67x67, so its digits are resized from 32x32 to 67x67
(PIL, bicubic), which leaves 1x1x256 before FC6. `--image-size` changes the size. Adam 1e-3, batch
64, 5 epochs, cross-entropy on logits, through `model.fit` (progress bar, CSV log, checkpoints);
AlexNet trains with Adam 1e-4: at 1e-3 its 58M fully connected weights reached only 36% held-out
accuracy in 5 epochs. (The notes' AlexNet recipe, SGD 0.01 with momentum 0.9 and weight decay 5e-4
for 90 epochs of ImageNet, is out of reach of a CPU.) SqueezeNet learns slowly here: its 7x7
stride-2 stem and three pools leave 1x1 maps of a 32x32 digit. It trains with Adam 1e-4 (39%
held-out after 5 epochs on JAX, still rising); at 1e-3 it reached 20% at 32x32 and stayed at chance
at 64x64 (its last convolution's ReLUs die).

Outputs (under --out, default runs/classic_cnns/MODEL): metrics.csv, curves.png, checkpoints/,
model.keras, summary.json (parameter counts at the published size and as trained, the reference,
held-out accuracy, time).

    python -m recipes.classic_cnns --model resnet18
    KERAS_BACKEND=torch python -m recipes.classic_cnns --model squeezenet --epochs 10
"""

import contextlib
import dataclasses
import sys

import numpy as np

from recipes.common import cli, image_classification

keras = cli.lazy_import("keras")


def _cnn():
    """layers.cnn, imported on first use (importing the `layers` package imports Keras)."""
    from layers import cnn

    return cnn


SECTION = "B 3.3, D 5, A 6.4"

# Table 1 of Szegedy et al. 2014: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# Table 1 of Iandola et al. 2016: fire modules 2-9 as (squeeze, expand 1x1, expand 3x3).
FIRE = {
    2: (16, 64, 64),
    3: (16, 64, 64),
    4: (32, 128, 128),
    5: (32, 128, 128),
    6: (48, 192, 192),
    7: (48, 192, 192),
    8: (64, 256, 256),
    9: (64, 256, 256),
}


# ---------------------------------------------------------------------------------------------
# Builders: each returns a keras.Model of logits for (input_shape, num_classes).


def lenet5(input_shape=(32, 32, 1), num_classes=10):
    """LeNet-5 (LeCun et al. 1998): C1 6@5x5 -> S2 -> C3 16@5x5 -> S4 -> C5 120 -> F6 84 -> 10.

    tanh units and 2x2 average pooling; C3 connects to all six S2 maps (the paper's sparse table
    is left out), and S2/S4 have no trainable coefficients, as in most modern descriptions.
    """
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")
    x = layers.Conv2D(6, 5, activation="tanh", name="c1")(inputs)
    x = layers.AveragePooling2D(2, name="s2")(x)
    x = layers.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = layers.AveragePooling2D(2, name="s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation="tanh", name="c5")(x)
    x = layers.Dense(84, activation="tanh", name="f6")(x)
    outputs = layers.Dense(num_classes, name="output")(x)
    return keras.Model(inputs, outputs, name="lenet5")


def alexnet(input_shape=(227, 227, 3), num_classes=1000, seed=None):
    """The notes' single-tower AlexNet: CONV1 96@11x11/4 -> POOL 3/2 -> NORM -> CONV2 256@5x5 pad 2
    -> POOL 3/2 -> NORM -> CONV3 384@3x3 -> CONV4 384@3x3 -> CONV5 256@3x3 -> POOL 3/2 ->
    FC6 4096 -> FC7 4096 -> FC8 (dropout 0.5 before FC7 and FC8). 227 -> 55 -> 27 -> 13 -> 6."""
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = _cnn().LocalResponseNormalization(name="norm1")(x)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = _cnn().LocalResponseNormalization(name="norm2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, seed=seed, name="drop6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, seed=None if seed is None else seed + 1, name="drop7")(x)
    outputs = layers.Dense(num_classes, name="fc8")(x)
    return keras.Model(inputs, outputs, name="alexnet")


def googlenet(input_shape=(224, 224, 3), num_classes=1000, seed=None):
    """GoogLeNet (Szegedy et al. 2014, Table 1) without the auxiliary classifiers: conv 7x7/2 ->
    max pool 3x3/2 -> LRN -> conv 1x1 (64) -> conv 3x3 (192) -> LRN -> max pool -> inception 3a, 3b
    -> max pool -> 4a-4e -> max pool -> 5a, 5b -> global average pool -> dropout 0.4 -> linear.
    "Same" padding: 224 -> 112 -> 56 -> 28 -> 14 -> 7. He-normal initial weights: with Glorot's,
    the 22 ReLU layers without batch norm shrink the signal so much that training never starts
    (chance accuracy after 5 epochs on the digits); the paper trained with auxiliary classifiers."""
    layers = keras.layers
    conv = lambda f, k, name, s=1: layers.Conv2D(  # noqa: E731
        f, k, strides=s, padding="same", activation="relu", kernel_initializer="he_normal", name=name
    )
    pool = lambda name: layers.MaxPooling2D(3, strides=2, padding="same", name=name)  # noqa: E731
    inputs = keras.Input(input_shape, name="images")
    x = conv(64, 7, "conv1", s=2)(inputs)
    x = pool("pool1")(x)
    x = _cnn().LocalResponseNormalization(name="norm1")(x)
    x = conv(64, 1, "conv2_reduce")(x)
    x = conv(192, 3, "conv2")(x)
    x = _cnn().LocalResponseNormalization(name="norm2")(x)
    x = pool("pool2")(x)
    for name, filters in INCEPTION.items():
        if name in ("4a", "5a"):
            x = pool(f"pool{int(name[0]) - 1}")(x)
        x = _cnn().InceptionModule(*filters, kernel_initializer="he_normal", name=f"inception_{name}")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.4, seed=seed, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="linear")(x)
    return keras.Model(inputs, outputs, name="googlenet")


RESNET_STAGES = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3))}


def resnet(depth, input_shape=(224, 224, 3), num_classes=1000, variant="torchvision"):
    """ResNet-18/34/50 (He et al. 2015, Table 1): conv 7x7/2 (64) -> BN -> ReLU -> max pool 3x3/2
    -> four stages of `ResidualBlock`s (64, 128, 256, 512 filters; stride 2 at the start of stages
    2-4) -> global average pool -> linear.

    variant "torchvision": no convolution biases, stride on the 3x3 (v1.5), BN epsilon 1e-5, as in
    the notes' `torchvision.models.resnet`; "keras": convolution biases, stride on the first 1x1,
    BN epsilon 1.001e-5, as in `keras.applications.ResNet50`. Padding as torch: 3 then 1 zeros
    (the max pool sees post-ReLU values, so zeros act as torch's -inf padding).
    """
    if depth not in RESNET_STAGES or variant not in ("torchvision", "keras"):
        raise ValueError(
            f"resnet: depth must be one of {sorted(RESNET_STAGES)} and variant "
            f"'torchvision' or 'keras', got {depth}, {variant!r}"
        )
    layers = keras.layers
    bottleneck, blocks = RESNET_STAGES[depth]
    keras_variant = variant == "keras"
    epsilon = 1.001e-5 if keras_variant else 1e-5
    inputs = keras.Input(input_shape, name="images")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(
        64, 7, strides=2, use_bias=keras_variant, kernel_initializer="he_normal", name="conv1"
    )(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=epsilon, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, (filters, count) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for i in range(count):
            x = _cnn().ResidualBlock(
                filters,
                bottleneck=bottleneck,
                strides=2 if i == 0 and stage > 2 else 1,
                use_bias=keras_variant,
                downsample_first=keras_variant,
                epsilon=epsilon,
                name=f"conv{stage}_block{i + 1}",
            )(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


def densenet121(input_shape=(224, 224, 3), num_classes=1000):
    """DenseNet-121 (Huang et al. 2016, Table 1; the layout of keras.applications.DenseNet121):
    conv 7x7/2 (64) -> BN -> ReLU -> max pool 3x3/2 -> dense blocks of 6, 12, 24, 16 layers (growth
    32, bottlenecks) with transitions halving the channels -> BN -> ReLU -> global average pool ->
    linear."""
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, kernel_initializer="he_normal", name="conv1")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    channels = 64
    for i, count in enumerate((6, 12, 24, 16), start=1):
        x = _cnn().DenseBlock(count, growth_rate=32, name=f"dense_block{i}")(x)
        channels += 32 * count
        if i < 4:
            channels //= 2
            x = _cnn().TransitionBlock(channels, name=f"transition{i}")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, outputs, name="densenet121")


def _ceil_max_pool(x, name):
    """3x3/2 max pooling with torch's ceil_mode=True (SqueezeNet's): a zero row and column are
    added at the end when the last window would be cut off (inputs are post-ReLU, so zero padding
    acts as -inf padding)."""
    pad = [0 if side is None or (side - 3) % 2 == 0 else 1 for side in x.shape[1:3]]
    if any(pad):
        x = keras.layers.ZeroPadding2D(((0, pad[0]), (0, pad[1])), name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


def squeezenet(input_shape=(224, 224, 3), num_classes=1000, version="1.0", seed=None):
    """SqueezeNet (Iandola et al. 2016, Table 1): conv1 -> max pool -> fire2-4 -> max pool ->
    fire5-8 -> max pool -> fire9 -> dropout 0.5 -> conv10 1x1 (classes, ReLU) -> global average
    pool. v1.0: conv1 96@7x7/2, pools after conv1, fire4 and fire8; v1.1: conv1 64@3x3/2, pools
    after conv1, fire3 and fire5 (2.4x less computation, same accuracy)."""
    if version not in ("1.0", "1.1"):
        raise ValueError(f"squeezenet: version must be '1.0' or '1.1', got {version!r}")
    layers = keras.layers
    he = "he_uniform"  # torchvision's kaiming_uniform; conv10 starts at N(0, 0.01), as there.
    inputs = keras.Input(input_shape, name="images")
    if version == "1.0":
        x = layers.Conv2D(96, 7, strides=2, activation="relu", kernel_initializer=he, name="conv1")(
            inputs
        )
        pools_after = (4, 8)
    else:
        x = layers.Conv2D(64, 3, strides=2, activation="relu", kernel_initializer=he, name="conv1")(
            inputs
        )
        pools_after = (3, 5)
    x = _ceil_max_pool(x, "pool1")
    for index, filters in FIRE.items():
        x = _cnn().FireModule(*filters, kernel_initializer=he, name=f"fire{index}")(x)
        if index in pools_after:
            x = _ceil_max_pool(x, f"pool{index}")
    x = layers.Dropout(0.5, seed=seed, name="dropout")(x)
    final_init = keras.initializers.RandomNormal(0.0, 0.01)
    x = layers.Conv2D(num_classes, 1, activation="relu", kernel_initializer=final_init, name="conv10")(x)
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name="squeezenet" + ("1_1" if version == "1.1" else ""))


@dataclasses.dataclass(frozen=True)
class Reference:
    """A model's published input, its parameter count there and where the number comes from."""

    build: object  # (input_shape, num_classes) -> keras.Model
    input_shape: tuple
    num_classes: int
    trainable: int
    non_trainable: int
    source: str
    digits_size: int = 32  # side of the digits it trains on
    channels: int = 3
    learning_rate: float = 1e-3  # Adam's, on the digits


REFERENCES = {
    "lenet5": Reference(
        lambda s, n: lenet5(s, n),
        (32, 32, 1),
        10,
        61_706,
        0,
        "notes 001 3.3.1 [DERIVED]: LeNet-5, full C3",
        channels=1,
    ),
    "alexnet": Reference(
        lambda s, n: alexnet(s, n),
        (227, 227, 3),
        1000,
        62_378_344,
        0,
        "notes 001 3.3.1 [DERIVED]: the notes' single-tower AlexNet",
        digits_size=67,
        learning_rate=1e-4,
    ),
    "googlenet": Reference(
        lambda s, n: googlenet(s, n),
        (224, 224, 3),
        1000,
        6_998_552,
        0,
        "Szegedy et al. 2014 Table 1 filter counts, with biases, no auxiliary heads; "
        "inception(3a) 163,696 in notes 001 3.3.1",
    ),
    "resnet18": Reference(
        lambda s, n: resnet(18, s, n),
        (224, 224, 3),
        1000,
        11_689_512,
        9_600,
        "notes 001 3.3.3 [DERIVED]: torchvision resnet18",
    ),
    "resnet50": Reference(
        lambda s, n: resnet(50, s, n),
        (224, 224, 3),
        1000,
        25_557_032,
        53_120,
        "notes 001 3.3.3 [DERIVED]: torchvision resnet50 (v1.5)",
    ),
    "densenet121": Reference(
        lambda s, n: densenet121(s, n),
        (224, 224, 3),
        1000,
        7_978_856,
        83_648,
        "keras.applications.DenseNet121: 8,062,504 in all",
    ),
    "squeezenet": Reference(
        lambda s, n: squeezenet(s, n, "1.0"),
        (224, 224, 3),
        1000,
        1_248_424,
        0,
        "Iandola et al. 2016 Table 1 (SqueezeNet v1.0), = torchvision squeezenet1_0",
        learning_rate=1e-4,
    ),
    "squeezenet1_1": Reference(
        lambda s, n: squeezenet(s, n, "1.1"),
        (224, 224, 3),
        1000,
        1_235_496,
        0,
        "torchvision squeezenet1_1 (SqueezeNet v1.1)",
        learning_rate=1e-4,
    ),
}
MODELS = tuple(REFERENCES)


@contextlib.contextmanager
def without_weights():
    """Models built inside get variables with shapes but no values: counting the parameters of a
    62M-parameter AlexNet takes milliseconds instead of seconds of random initialisation. Such
    models cannot be run. (Keras defers the initialisation of variables created in a
    StatelessScope; the deferred ones are dropped again on exit, which reaches into Keras' global
    state. Should that change, the models are simply built with weights.)"""
    try:
        from keras.src.backend.common import global_state

        key = "uninitialized_variables"
        before = list(global_state.get_global_attribute(key) or [])
    except (ImportError, AttributeError):
        yield
        return
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute(key, before)


def parameter_counts(model):
    """{"trainable", "non_trainable", "total"} from the variables' shapes (works without values)."""
    size = lambda weights: sum(int(np.prod(w.shape)) for w in weights)  # noqa: E731
    trainable, non_trainable = size(model.trainable_weights), size(model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": non_trainable, "total": trainable + non_trainable}


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


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(5, "number of training epochs")
    model: str = cli.option("lenet5", "the architecture to train", choices=MODELS)
    dataset: str = cli.option(
        "digits", "digits (embedded) or cifar10 (downloaded)", choices=image_classification.DATASETS
    )
    image_size: int = cli.option(None, "side of the training images (default: 32; 67 for alexnet)")
    learning_rate: float = cli.option(
        None, "Adam learning rate (default: 1e-4 for alexnet and squeezenet, else 1e-3)"
    )
    limit: int = cli.option(None, "use only the first N training images")
    test_limit: int = cli.option(None, "evaluate on only the first N held-out images")


QUICK = dict(epochs=1, batch_size=32, limit=96, test_limit=32)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.classic_cnns",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    from recipes import engine

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
        return {
            "published": {
                "input_shape": list(reference.input_shape),
                "num_classes": reference.num_classes,
                "trainable": reference.trainable,
                "non_trainable": reference.non_trainable,
                "source": reference.source,
            }
        }

    out = config.out or f"runs/classic_cnns/{config.model}"
    image_classification.train_and_evaluate(build, config, data, out, config.model, describe)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
