"""The builders: each returns a keras.Model of logits for (input_shape, num_classes).

The shape comments are those at the published input size and head (`references.REFERENCES`).
"""

from recipes.common import cli

keras = cli.lazy_import("keras")


def _cnn():
    """layers.cnn, imported on first use (importing the `layers` package imports Keras)."""
    from layers import cnn

    return cnn


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
# He et al. 2015, Table 1: (bottleneck blocks?, blocks per stage).
RESNET_STAGES = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3))}


def lenet5(input_shape=(32, 32, 1), num_classes=10):
    """LeNet-5 (LeCun et al. 1998): C1 6@5x5 -> S2 -> C3 16@5x5 -> S4 -> C5 120 -> F6 84 -> 10.

    tanh units and 2x2 average pooling; C3 connects to all six S2 maps (the paper's sparse table
    is left out), and S2/S4 have no trainable coefficients, as in most modern descriptions.
    """
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")  # (N, 32, 32, 1)
    x = layers.Conv2D(6, 5, activation="tanh", name="c1")(inputs)  # (N, 28, 28, 6)
    x = layers.AveragePooling2D(2, name="s2")(x)  # (N, 14, 14, 6)
    x = layers.Conv2D(16, 5, activation="tanh", name="c3")(x)  # (N, 10, 10, 16)
    x = layers.AveragePooling2D(2, name="s4")(x)  # (N, 5, 5, 16)
    x = layers.Flatten(name="flatten")(x)  # (N, 400)
    x = layers.Dense(120, activation="tanh", name="c5")(x)  # (N, 120)
    x = layers.Dense(84, activation="tanh", name="f6")(x)  # (N, 84)
    outputs = layers.Dense(num_classes, name="output")(x)  # (N, 10)
    return keras.Model(inputs, outputs, name="lenet5")


def alexnet(input_shape=(227, 227, 3), num_classes=1000, seed=None):
    """The notes' single-tower AlexNet (B 3.3.1): CONV1 96@11x11/4 -> POOL 3/2 -> NORM -> CONV2
    256@5x5 pad 2 -> POOL 3/2 -> NORM -> CONV3 384@3x3 -> CONV4 384@3x3 -> CONV5 256@3x3 -> POOL 3/2
    -> FC6 4096 -> FC7 4096 -> FC8 (dropout 0.5 before FC7 and FC8).

    Its arithmetic (11x11 stride 4, three 3x3 stride-2 pools, no padding) needs at least 67x67
    inputs, which leave 1x1x256 before FC6.
    """
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")  # (N, 227, 227, 3)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)  # (N, 55, 55, 96)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = _cnn().LocalResponseNormalization(name="norm1")(x)  # (N, 27, 27, 96)
    x = layers.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)  # (N, 27, 27, 256)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = _cnn().LocalResponseNormalization(name="norm2")(x)  # (N, 13, 13, 256)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)  # (N, 13, 13, 384)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)  # (N, 6, 6, 256)
    x = layers.Flatten(name="flatten")(x)  # (N, 9216)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, seed=seed, name="drop6")(x)  # (N, 4096)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, seed=None if seed is None else seed + 1, name="drop7")(x)  # (N, 4096)
    outputs = layers.Dense(num_classes, name="fc8")(x)  # (N, 1000)
    return keras.Model(inputs, outputs, name="alexnet")


def _googlenet_conv(filters, size, name, strides=1):
    """GoogLeNet's convolutions: "same" padding, ReLU, He-normal initial weights."""
    return keras.layers.Conv2D(
        filters,
        size,
        strides=strides,
        padding="same",
        activation="relu",
        kernel_initializer="he_normal",
        name=name,
    )


def _googlenet_pool(name):
    """GoogLeNet's 3x3/2 max pooling with "same" padding: halves the side (rounding up)."""
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)


def googlenet(input_shape=(224, 224, 3), num_classes=1000, seed=None):
    """GoogLeNet (Szegedy et al. 2014, Table 1) without the auxiliary classifiers: conv 7x7/2 ->
    max pool 3x3/2 -> LRN -> conv 1x1 (64) -> conv 3x3 (192) -> LRN -> max pool -> inception 3a, 3b
    -> max pool -> 4a-4e -> max pool -> 5a, 5b -> global average pool -> dropout 0.4 -> linear.

    He-normal initial weights: with Glorot's, the 22 ReLU layers without batch norm shrink the
    signal so much that training never starts (chance accuracy after 5 epochs on the digits); the
    paper trained with auxiliary classifiers.
    """
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")  # (N, 224, 224, 3)
    x = _googlenet_conv(64, 7, "conv1", strides=2)(inputs)  # (N, 112, 112, 64)
    x = _googlenet_pool("pool1")(x)
    x = _cnn().LocalResponseNormalization(name="norm1")(x)  # (N, 56, 56, 64)
    x = _googlenet_conv(64, 1, "conv2_reduce")(x)
    x = _googlenet_conv(192, 3, "conv2")(x)
    x = _cnn().LocalResponseNormalization(name="norm2")(x)  # (N, 56, 56, 192)
    x = _googlenet_pool("pool2")(x)  # (N, 28, 28, 192)
    for name, filters in INCEPTION.items():
        if name in ("4a", "5a"):
            x = _googlenet_pool(f"pool{int(name[0]) - 1}")(x)
        x = _cnn().InceptionModule(*filters, kernel_initializer="he_normal", name=f"inception_{name}")(x)
    # 3a, 3b: (N, 28, 28, 256), (N, 28, 28, 480); 4a-4e: (N, 14, 14, 512) ... (N, 14, 14, 832);
    # 5a, 5b: (N, 7, 7, 832), (N, 7, 7, 1024)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.4, seed=seed, name="dropout")(x)  # (N, 1024)
    outputs = layers.Dense(num_classes, name="linear")(x)  # (N, 1000)
    return keras.Model(inputs, outputs, name="googlenet")


def resnet(depth, input_shape=(224, 224, 3), num_classes=1000, variant="torchvision"):
    """ResNet-18/34/50 (He et al. 2015, Table 1): conv 7x7/2 (64) -> BN -> ReLU -> max pool 3x3/2
    -> four stages of `ResidualBlock`s (64, 128, 256, 512 filters; stride 2 at the start of stages
    2-4) -> global average pool -> linear.

    variant "torchvision": no convolution biases, stride on the 3x3 (v1.5), BN epsilon 1e-5, as in
    the notes' `torchvision.models.resnet`; "keras": convolution biases, stride on the first 1x1,
    BN epsilon 1.001e-5, as in `keras.applications.ResNet50` (25,636,712 parameters in all for
    depth 50). Padding as torch: 3 then 1 zeros (the max pool sees post-ReLU values, so zeros act
    as torch's -inf padding).
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
    inputs = keras.Input(input_shape, name="images")  # (N, 224, 224, 3)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(
        64, 7, strides=2, use_bias=keras_variant, kernel_initializer="he_normal", name="conv1"
    )(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=epsilon, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)  # (N, 112, 112, 64)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)  # (N, 56, 56, 64)
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
    # conv2 ... conv5: (N, 56, 56, 64), (N, 28, 28, 128), (N, 14, 14, 256), (N, 7, 7, 512); four
    # times the channels with bottleneck blocks (ResNet-50: (N, 7, 7, 2048))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)  # (N, 512) or (N, 2048)
    outputs = layers.Dense(num_classes, name="fc")(x)  # (N, 1000)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")


def densenet121(input_shape=(224, 224, 3), num_classes=1000):
    """DenseNet-121 (Huang et al. 2016, Table 1; the layout of keras.applications.DenseNet121):
    conv 7x7/2 (64) -> BN -> ReLU -> max pool 3x3/2 -> dense blocks of 6, 12, 24, 16 layers (growth
    32, bottlenecks) with transitions halving the channels -> BN -> ReLU -> global average pool ->
    linear."""
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")  # (N, 224, 224, 3)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, kernel_initializer="he_normal", name="conv1")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)  # (N, 112, 112, 64)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)  # (N, 56, 56, 64)
    channels = 64
    for i, count in enumerate((6, 12, 24, 16), start=1):
        x = _cnn().DenseBlock(count, growth_rate=32, name=f"dense_block{i}")(x)
        channels += 32 * count
        if i < 4:
            channels //= 2
            x = _cnn().TransitionBlock(channels, name=f"transition{i}")(x)
    # blocks 1-3 and their transitions: (N, 56, 56, 256) -> (N, 28, 28, 128), (N, 28, 28, 512) ->
    # (N, 14, 14, 256), (N, 14, 14, 1024) -> (N, 7, 7, 512); block 4: (N, 7, 7, 1024)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)  # (N, 1024)
    outputs = layers.Dense(num_classes, name="fc")(x)  # (N, 1000)
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
    inputs = keras.Input(input_shape, name="images")  # (N, 224, 224, 3)
    if version == "1.0":
        x = layers.Conv2D(96, 7, strides=2, activation="relu", kernel_initializer=he, name="conv1")(
            inputs
        )  # (N, 109, 109, 96)
        pools_after = (4, 8)
    else:
        x = layers.Conv2D(64, 3, strides=2, activation="relu", kernel_initializer=he, name="conv1")(
            inputs
        )  # (N, 111, 111, 64)
        pools_after = (3, 5)
    x = _ceil_max_pool(x, "pool1")  # (N, 54, 54, 96); v1.1 (N, 55, 55, 64)
    for index, filters in FIRE.items():
        x = _cnn().FireModule(*filters, kernel_initializer=he, name=f"fire{index}")(x)
        if index in pools_after:
            x = _ceil_max_pool(x, f"pool{index}")
    # v1.0: fire2-4 at 54, 27 after pool4, 13 after pool8; fire9 (N, 13, 13, 512)
    x = layers.Dropout(0.5, seed=seed, name="dropout")(x)
    final_init = keras.initializers.RandomNormal(0.0, 0.01)
    x = layers.Conv2D(num_classes, 1, activation="relu", kernel_initializer=final_init, name="conv10")(x)
    # (N, 13, 13, 1000)
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)  # (N, 1000)
    return keras.Model(inputs, outputs, name="squeezenet" + ("1_1" if version == "1.1" else ""))
