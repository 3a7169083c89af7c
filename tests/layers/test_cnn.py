"""The classic-CNN blocks of layers.cnn: LRN against a NumPy loop of the AlexNet formula, the other
blocks against compositions of Keras built-ins holding the same weights; parameter counts of the
notes and papers; config and .keras round trips, gradients to every weight, bad input.

Cheap on JAX: each comparison is one functional model holding the block and its reference, run
with `predict_on_batch` (one compiled program instead of dozens of eagerly compiled operations),
and the round trips and gradients use one model chaining all six blocks.
"""

import keras
import numpy as np
import pytest

from layers.cnn import (
    DenseBlock,
    FireModule,
    InceptionModule,
    LocalResponseNormalization,
    ResidualBlock,
    TransitionBlock,
)
from recipes import engine
from tests.layers import layer_checks

L = keras.layers
X = (2, 6, 6, 8)  # One input shape for most tests: fewer distinct programs to compile on JAX.


def random(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype("float32")


def builtin(source, target, x):
    """Calls the Keras built-in `target` on symbolic `x` with `source`'s weights."""
    target.build(x.shape)
    target.set_weights(source.get_weights())
    return target


def randomise_batch_norms(layer, seed):
    """Random gamma, beta and moving statistics, so inference-mode batch norm is not the identity."""
    rng = np.random.default_rng(seed)
    for norm in [s for s in layer._flatten_layers() if isinstance(s, L.BatchNormalization)]:
        c = norm.gamma.shape[0]
        norm.set_weights(
            [
                rng.uniform(0.5, 1.5, c).astype("float32"),
                rng.normal(0, 0.3, c).astype("float32"),
                rng.normal(0, 0.3, c).astype("float32"),
                rng.uniform(0.5, 2.0, c).astype("float32"),
            ]
        )


def compare(layer, reference, x, tol=1e-4, seed=1):
    """Builds Model(x -> [layer(x), reference(layer, x)]), runs it once, asserts equal outputs;
    returns them."""
    inputs = keras.Input(x.shape[1:])
    got = layer(inputs)
    randomise_batch_norms(layer, seed)
    want = reference(layer, inputs)
    outputs = keras.Model(inputs, [got, want]).predict_on_batch(x)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=tol, atol=tol)
    return outputs


# ---------------------------------------------------------------------------------------------------
# LocalResponseNormalization


def lrn_reference(a, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Krizhevsky et al. 2012, 3.3, written as a loop over channels."""
    b = np.empty_like(a, dtype="float64")
    channels = a.shape[-1]
    for i in range(channels):
        lo, hi = max(0, i - size // 2), min(channels - 1, i + size // 2)
        total = np.sum(a[..., lo : hi + 1].astype("float64") ** 2, axis=-1)
        b[..., i] = a[..., i] / (k + alpha * total) ** beta
    return b


def test_lrn_matches_the_alexnet_formula():
    # Activations of tens to hundreds: alpha * sum a^2 is then comparable to k.
    x = random(X, seed=1, scale=60.0)
    settings = [{}, dict(size=3, alpha=0.5, beta=0.5, k=1.0), dict(size=1, alpha=1e-3, beta=1.0, k=0.5)]
    inputs = keras.Input(X[1:])
    model = keras.Model(inputs, [LocalResponseNormalization(**s)(inputs) for s in settings])
    for got, s in zip(model.predict_on_batch(x), settings):
        np.testing.assert_allclose(got, lrn_reference(x, **s), rtol=1e-5, atol=1e-5)
    # The paper's constants (k=2, n=5, alpha=1e-4, beta=0.75) really act here: b / a is at most
    # 2^-0.75 and falls well below it where the window holds large activations.
    ratio = model.predict_on_batch(x)[0] / x
    assert ratio.max() < 2**-0.75 + 1e-6 and ratio.min() < 0.6 * 2**-0.75


def test_lrn_arguments_and_shapes():
    with pytest.raises(ValueError, match="LocalResponseNormalization: size must be odd"):
        LocalResponseNormalization(size=4)
    assert LocalResponseNormalization().compute_output_shape((None, 5, 4, 9)) == (None, 5, 4, 9)


# ---------------------------------------------------------------------------------------------------
# InceptionModule


def inception_reference(module, x):
    """The four branches of Szegedy et al. Fig. 2b from Keras built-ins with the module's weights."""
    f1, f3r, f3, f5r, f5, fp = module.filters
    conv = lambda f, k: L.Conv2D(f, k, padding="same", activation="relu")  # noqa: E731
    b1 = builtin(module.branch_1x1, conv(f1, 1), x)(x)
    r3 = builtin(module.reduce_3x3, conv(f3r, 1), x)(x)
    b3 = builtin(module.branch_3x3, conv(f3, 3), r3)(r3)
    r5 = builtin(module.reduce_5x5, conv(f5r, 1), x)(x)
    b5 = builtin(module.branch_5x5, conv(f5, 5), r5)(r5)
    p = L.MaxPooling2D(3, strides=1, padding="same")(x)
    bp = builtin(module.branch_pool, conv(fp, 1), p)(p)
    return L.Concatenate()([b1, b3, b5, bp])


def test_inception_matches_keras_builtins_and_the_3a_numbers():
    got, _ = compare(InceptionModule(4, 3, 5, 2, 3, 2), inception_reference, random(X, seed=2))
    assert got.shape == (2, 6, 6, 14)
    # inception(3a): 28x28x192 -> 28x28x256, 163,696 parameters (B 3.3.1 and D 5.3);
    # 163,328 without the biases.
    module_3a = InceptionModule(64, 96, 128, 16, 32, 32)
    assert module_3a(keras.Input((28, 28, 192))).shape == (None, 28, 28, 256)
    assert module_3a.count_params() == 163_696
    assert sum(int(np.prod(w.shape)) for w in module_3a.weights if len(w.shape) == 4) == 163_328


# ---------------------------------------------------------------------------------------------------
# ResidualBlock


def residual_reference(block, x, training=False):
    """He et al. Fig. 5 from Keras built-ins (Conv2D, BatchNormalization, Add) with the weights."""
    norm = lambda: L.BatchNormalization(momentum=block.momentum, epsilon=block.epsilon)  # noqa: E731
    h = x
    for i, (conv, bn) in enumerate(zip(block.convs, block.norms)):
        c = conv.get_config()
        ref = L.Conv2D(c["filters"], c["kernel_size"], c["strides"], "same", use_bias=block.use_bias)
        h = builtin(conv, ref, h)(h)
        h = builtin(bn, norm(), h)(h, training=training)
        if i < len(block.convs) - 1:
            h = L.ReLU()(h)
    shortcut = x
    if block.shortcut_conv is not None:
        ref = L.Conv2D(block.out_channels, 1, strides=block.strides, use_bias=block.use_bias)
        shortcut = builtin(block.shortcut_conv, ref, x)(x)
        shortcut = builtin(block.shortcut_norm, norm(), shortcut)(shortcut, training=training)
    return L.ReLU()(L.Add()([h, shortcut]))


RESIDUAL_CASES = {
    # name: (arguments, output shape, strides of the convolutions of F)
    "basic identity": (dict(filters=8), (2, 6, 6, 8), [1, 1]),
    "basic projection": (dict(filters=6, strides=2), (2, 3, 3, 6), [2, 1]),
    "bottleneck v1.5": (dict(filters=3, bottleneck=True, strides=2), (2, 3, 3, 12), [1, 2, 1]),
    "bottleneck v1": (
        dict(filters=3, bottleneck=True, strides=2, downsample_first=True, use_bias=True),
        (2, 3, 3, 12),
        [2, 1, 1],
    ),
}


@pytest.mark.parametrize("case", list(RESIDUAL_CASES))
def test_residual_block_matches_keras_builtins(case):
    kwargs, shape, strides = RESIDUAL_CASES[case]
    block = ResidualBlock(**kwargs)
    got, _ = compare(block, residual_reference, random(X, seed=3), seed=4)
    assert [c.strides[0] for c in block.convs] == strides
    assert (block.shortcut_conv is None) == (case == "basic identity")
    assert got.shape == shape == block.compute_output_shape(X)


def test_residual_block_in_training_mode_uses_batch_statistics():
    block = ResidualBlock(3, bottleneck=True, strides=2)
    inputs = keras.Input(X[1:])
    got = block(inputs, training=True)
    want = residual_reference(block, inputs, training=True)
    outputs = keras.Model(inputs, [got, want]).predict_on_batch(random(X, seed=5))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)


def test_residual_block_zero_init_is_the_identity_and_counts():
    # zero_init_residual: gamma = 0 on the last batch norm, so ReLU(0 + x) = x for x >= 0.
    x = np.abs(random(X, seed=6))
    inputs = keras.Input(X[1:])
    blocks = [ResidualBlock(8, zero_init_residual=True), ResidualBlock(2, True, zero_init_residual=True)]
    for got in keras.Model(inputs, [b(inputs) for b in blocks]).predict_on_batch(x):
        np.testing.assert_allclose(got, x, atol=1e-6)
    # ResNet-50's first block (conv2_x): 64 -> 256 with a projection; 73,728 convolution weights
    # + gamma and beta of four batch norms = 75,008 trainable, torchvision's layer1[0].
    block = ResidualBlock(64, bottleneck=True)
    block.build((None, 56, 56, 64))
    trainable = sum(int(np.prod(w.shape)) for w in block.trainable_weights)
    assert trainable == 4096 + 36864 + 16384 + 16384 + 2 * (64 + 64 + 256 + 256) == 75_008


# ---------------------------------------------------------------------------------------------------
# DenseBlock and TransitionBlock


def dense_reference(block, x):
    norm = lambda: L.BatchNormalization(momentum=block.momentum, epsilon=block.epsilon)  # noqa: E731
    features = x
    for i in range(block.num_layers):
        h = features
        for bn, conv in block._unit(i):
            h = L.ReLU()(builtin(bn, norm(), h)(h))
            c = conv.get_config()
            h = builtin(
                conv, L.Conv2D(c["filters"], c["kernel_size"], padding="same", use_bias=False), h
            )(h)
        features = L.Concatenate()([features, h])
    return features


@pytest.mark.parametrize("bottleneck", [True, False])
def test_dense_block_matches_keras_builtins(bottleneck):
    x = random(X, seed=7)
    got, _ = compare(DenseBlock(3, growth_rate=4, bottleneck=bottleneck), dense_reference, x, seed=8)
    assert got.shape == (2, 6, 6, 8 + 3 * 4)
    np.testing.assert_array_equal(got[..., :8], x)  # The input passes through as the first channels.


def test_dense_block_channels_grow_linearly_and_counts():
    # D 5.5: DenseBlock(L=4, k=12) on 16 channels gives 16 + 48 = 64 (linear: c0 + L k).
    block = DenseBlock(4, growth_rate=12)
    assert block(keras.Input((8, 8, 16))).shape == (None, 8, 8, 64)
    # Layer l sees 16 + 12 l channels: BN (4 values a channel), 1x1 conv to 48, BN, 3x3 conv to 12.
    expected = sum(4 * (16 + 12 * i) + (16 + 12 * i) * 48 + 4 * 48 + 9 * 48 * 12 for i in range(4))
    assert block.count_params() == expected == 28_576


def transition_reference(block, x):
    h = L.ReLU()(builtin(block.norm, L.BatchNormalization(epsilon=1e-5), x)(x))
    h = builtin(block.conv, L.Conv2D(block.filters, 1, use_bias=False), h)(h)
    return L.AveragePooling2D(2)(h)


def test_transition_block_matches_keras_builtins_and_shapes():
    block = TransitionBlock(5)
    got, _ = compare(block, transition_reference, random((2, 7, 6, 8), seed=9), seed=10)
    assert got.shape == (2, 3, 3, 5) == block.compute_output_shape((2, 7, 6, 8))  # Odd sides round down.


# ---------------------------------------------------------------------------------------------------
# FireModule


def fire_reference(module, x):
    s = builtin(module.squeeze_conv, L.Conv2D(module.squeeze, 1, activation="relu"), x)(x)
    e1 = builtin(module.expand_1x1_conv, L.Conv2D(module.expand_1x1, 1, activation="relu"), s)(s)
    e3 = L.Conv2D(module.expand_3x3, 3, padding="same", activation="relu")
    e3 = builtin(module.expand_3x3_conv, e3, s)(s)
    return L.Concatenate()([e1, e3])


def test_fire_module_matches_keras_builtins_and_counts():
    got, _ = compare(FireModule(3, 4, 5), fire_reference, random(X, seed=11))
    assert got.shape == (2, 6, 6, 9)
    # fire2 of SqueezeNet (Iandola et al. 2016, Table 1): 96 -> 64 + 64 channels, 11,920 parameters.
    fire2 = FireModule(16, 64, 64)
    assert fire2(keras.Input((55, 55, 96))).shape == (None, 55, 55, 128)
    assert fire2.count_params() == 11_920


# ---------------------------------------------------------------------------------------------------
# All six: bad input, config and .keras round trips, gradients


FACTORIES = {
    LocalResponseNormalization: lambda: LocalResponseNormalization(alpha=1e-3),
    InceptionModule: lambda: InceptionModule(4, 3, 5, 2, 3, 2),
    ResidualBlock: lambda: ResidualBlock(3, bottleneck=True, strides=2),
    DenseBlock: lambda: DenseBlock(2, growth_rate=3),
    TransitionBlock: lambda: TransitionBlock(4),
    FireModule: lambda: FireModule(3, 4, 5),
}


class Chain(keras.layers.Layer):
    """The six blocks one after the other (2x6x6x8 -> 2x1x1x9), for the shared layer checks."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [factory() for factory in FACTORIES.values()]

    def call(self, x, training=None):
        for block in self.blocks:
            x = block(x, training=training) if hasattr(block, "momentum") else block(x)
        return x


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
def test_bad_input_names_the_layer_and_the_shape(cls):
    expected = r"\(batch, height" if cls is not TransitionBlock else r"\(batch, height >= 2"
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected inputs of shape {expected}"):
        FACTORIES[cls]()(np.zeros((2, 6, 8), "float32"))  # No batch axis.
    layer = FACTORIES[cls]()
    assert layer.__class__.from_config(layer.get_config()).get_config() == layer.get_config()
    if cls is TransitionBlock:
        with pytest.raises(
            ValueError, match=r"TransitionBlock: expected inputs of shape \(batch, height >= 2"
        ):
            layer(np.zeros((2, 1, 4, 3), "float32"))


def test_config_and_saved_round_trips_and_gradients_of_all_six(tmp_path):
    x = random(X, seed=12)
    inputs = keras.Input(X[1:])
    model = keras.Model(inputs, Chain()(inputs))
    for block in model.layers[-1].blocks:
        randomise_batch_norms(block, seed=13)
    want = model.predict_on_batch(x)
    assert want.shape == (2, 1, 1, 9)
    # Config: every block rebuilt from its config, given the weights, computes the same.
    inputs = keras.Input(X[1:])
    h = inputs
    for block in model.layers[-1].blocks:
        h = block.__class__.from_config(block.get_config())(h)
    clone = keras.Model(inputs, h)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict_on_batch(x), want, rtol=1e-6, atol=1e-6)
    # .keras: the saved clone loads and computes the same.
    clone.save(tmp_path / "blocks.keras")
    loaded = keras.saving.load_model(tmp_path / "blocks.keras")
    assert [type(layer) for layer in loaded.layers[1:]] == list(FACTORIES)
    np.testing.assert_allclose(loaded.predict_on_batch(x), want, rtol=1e-6, atol=1e-6)
    # Gradients of sum(outputs^2) reach every trainable weight of each block, each on its own: in
    # the chain a fresh initialisation can leave every ReLU of a narrow branch dead at the 1x1 end
    # (seen on torch). LRN has no weights: it stands in front of the inception module, which its
    # gradient must reach. Seeded: a narrow branch's ReLUs can all start dead (1 draw in 100 on torch).
    engine.set_seed(0)
    for cls, factory in FACTORIES.items():
        if cls is LocalResponseNormalization:
            continue
        if cls is InceptionModule:
            lrn = FACTORIES[LocalResponseNormalization]
            factory = lambda lrn=lrn, inception=factory: keras.Sequential([lrn(), inception()])  # noqa: E731
        layer_checks.assert_gradients_reach_every_weight(factory, x)
