"""Every public layer under the mixed_float16 and mixed_bfloat16 policies, set globally and per
layer (`dtype=...`), checked as Keras' own `run_layer_test` checks its layers in mixed precision:

- the outputs have the compute dtype (float32 where the layer documents it: `GramMatrix`),
  symbolically (`keras.Input`) and in a training step, so a per-layer policy reaches every
  sub-layer;
- every float variable is float32;
- a training step (training mode where the layer takes `training`) has a finite float32 loss,
  finite float32 gradients for every weight (and finite gradients for the float inputs), not all
  zero, and leaves every variable finite (batch-norm statistics are updated in training mode).

The table holds one tiny input shape per layer. Weights that a layer lets us choose start from
NumPy (`NumpyNormal`); the step is compiled on JAX. The suite's float32 tests check the numbers.
"""

import inspect

import keras
import numpy as np
import pytest
from keras import ops

import layers
from recipes import engine
from tests.conftest import BACKEND
from tests.layers.layer_checks import as_list

POLICIES = ("mixed_float16", "mixed_bfloat16")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


IMAGES = rand(2, 4, 4, 3, seed=1)
SEQUENCE = rand(2, 3, 6, seed=2)
MEMORY = rand(2, 4, 6, seed=3)
VECTORS = rand(2, 6, seed=4)


class NumpyNormal(keras.initializers.Initializer):
    """N(0, 1 / fan_in) drawn by NumPy: seeded, and cheap on JAX, which compiles a random-number
    program for every new weight shape (seconds each on 2 cores) when Keras' initializers draw."""

    def __call__(self, shape, dtype=None):
        scale = 1.0 / np.sqrt(max(1, int(np.prod(shape[:-1]))))
        return np.random.default_rng(list(shape)).normal(0.0, scale, shape).astype(dtype or "float32")


INIT = NumpyNormal()


def rnn(cell):
    """A cell runs inside `keras.layers.RNN`; both take the policy, as in Keras' `SimpleRNN`."""
    return lambda **dtype: keras.layers.RNN(cell(3, **dtype), return_sequences=True, **dtype)


# name: (factory taking the optional `dtype=` keyword, inputs). One input shape per layer.
CASES = {
    "BahdanauAttention": (lambda **d: layers.BahdanauAttention(4, INIT, **d), [SEQUENCE, MEMORY]),
    "LuongAttention": (lambda **d: layers.LuongAttention("concat", 4, INIT, **d), [SEQUENCE, MEMORY]),
    "ScaledDotProductAttention": (layers.ScaledDotProductAttention, [SEQUENCE, MEMORY]),
    "MultiHeadAttention": (
        lambda **d: layers.MultiHeadAttention(2, 3, kernel_initializer=INIT, **d),
        [SEQUENCE, MEMORY],
    ),
    "DenseBlock": (
        lambda **d: layers.DenseBlock(1, growth_rate=2, kernel_initializer=INIT, **d),
        IMAGES,
    ),
    "FireModule": (lambda **d: layers.FireModule(2, 2, 2, kernel_initializer=INIT, **d), IMAGES),
    "InceptionModule": (
        lambda **d: layers.InceptionModule(2, 2, 2, 2, 2, 2, kernel_initializer=INIT, **d),
        IMAGES,
    ),
    "LocalResponseNormalization": (lambda **d: layers.LocalResponseNormalization(3, **d), IMAGES),
    "ResidualBlock": (lambda **d: layers.ResidualBlock(3, kernel_initializer=INIT, **d), IMAGES),
    "TransitionBlock": (lambda **d: layers.TransitionBlock(2, kernel_initializer=INIT, **d), IMAGES),
    "MatMulConv2DTranspose": (
        lambda **d: layers.MatMulConv2DTranspose(2, 3, 2, "same", kernel_initializer=INIT, **d),
        IMAGES,
    ),
    "SpaceToDepthConv2D": (
        lambda **d: layers.SpaceToDepthConv2D(2, 3, 2, "same", kernel_initializer=INIT, **d),
        IMAGES,
    ),
    "SubPixelConv2DTranspose": (
        lambda **d: layers.SubPixelConv2DTranspose(2, 3, 2, "same", kernel_initializer=INIT, **d),
        IMAGES,
    ),
    "SpatialPyramidPooling": (lambda **d: layers.SpatialPyramidPooling((1, 2), **d), IMAGES),
    "RoIPooling": (
        lambda **d: layers.RoIPooling((2, 2), **d),
        [IMAGES, np.array([[[0, 0, 3, 4]], [[1, 2, 4, 3]]], "int32")],
    ),
    "RPNHead": (lambda **d: layers.RPNHead(2, filters=2, kernel_initializer=INIT, **d), IMAGES),
    "YOLOHead": (lambda **d: layers.YOLOHead(4, 1, 2, kernel_initializer=INIT, **d), IMAGES),
    "PatchEmbedding": (lambda **d: layers.PatchEmbedding(2, 3, kernel_initializer=INIT, **d), IMAGES),
    "ClassToken": (lambda **d: layers.ClassToken(initializer=INIT, **d), SEQUENCE),
    "LearnedPositionalEmbedding": (
        lambda **d: layers.LearnedPositionalEmbedding(initializer=INIT, **d),
        SEQUENCE,
    ),
    "NADE": (lambda **d: layers.NADE(3, kernel_initializer=INIT, **d), VECTORS),
    "SinusoidalTimeEmbedding": (
        lambda **d: layers.SinusoidalTimeEmbedding(4, **d),
        np.array([3.0, 70.0], "float32"),
    ),
    "TimeResidualBlock": (
        lambda **d: layers.TimeResidualBlock(4, groups=1, kernel_initializer=INIT, **d),
        [IMAGES, VECTORS],
    ),
    "Maxout": (lambda **d: layers.Maxout(3, kernel_initializer=INIT, **d), VECTORS),
    "Sampling": (lambda **d: layers.Sampling(seed=1, **d), [VECTORS, VECTORS]),
    "ConcatLabel": (lambda **d: layers.ConcatLabel(3, **d), [VECTORS, np.array([0, 2])]),
    "Im2ColConv2D": (lambda **d: layers.Im2ColConv2D(2, 3, kernel_initializer=INIT, **d), IMAGES),
    "Im2ColMaxPool2D": (layers.Im2ColMaxPool2D, IMAGES),
    "PatchGAN": (
        lambda **d: layers.PatchGAN(2, seed=1, kernel_initializer=INIT, **d),
        [rand(1, 24, 24, 3, seed=5), rand(1, 24, 24, 3, seed=6)],
    ),
    "UNetDown": (lambda **d: layers.UNetDown(2, seed=1, kernel_initializer=INIT, **d), IMAGES),
    "UNetUp": (
        lambda **d: layers.UNetUp(2, apply_dropout=True, seed=1, kernel_initializer=INIT, **d),
        [IMAGES[:, :2, :2], IMAGES],
    ),
    "VanillaRNNCell": (rnn(layers.VanillaRNNCell), SEQUENCE),
    "ScratchLSTMCell": (rnn(layers.ScratchLSTMCell), SEQUENCE),
    "ScratchGRUCell": (rnn(layers.ScratchGRUCell), SEQUENCE),
    "GramMatrix": (layers.GramMatrix, IMAGES),
    "VGGFeatures": (lambda **d: layers.VGGFeatures(["block1_conv1"], **d), IMAGES),
    "PositionalEncoding": (layers.PositionalEncoding, SEQUENCE),
    "TransformerEncoderBlock": (
        lambda **d: layers.TransformerEncoderBlock(2, 4, kernel_initializer=INIT, **d),
        SEQUENCE,
    ),
    "TransformerDecoderBlock": (
        lambda **d: layers.TransformerDecoderBlock(2, 4, kernel_initializer=INIT, **d),
        [SEQUENCE, MEMORY],
    ),
}

# GramMatrix documents float32 outputs: a sum over every position loses most digits in half precision.
FLOAT32_OUTPUTS = {"GramMatrix"}


@pytest.mark.skipif(BACKEND != "jax", reason="inspects the package only; runs once")
def test_cases_cover_every_public_layer():
    public = {
        name
        for name in layers.__all__
        if isinstance(getattr(layers, name), type) and issubclass(getattr(layers, name), keras.Layer)
    }
    assert public == set(CASES)


@pytest.fixture
def restore_policy():
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _floating(outputs):
    return [o for o in keras.tree.flatten(outputs) if keras.backend.is_float_dtype(_dtype(o))]


@pytest.mark.parametrize("scope", ["global", "per_layer"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_under_mixed_policy(name, policy, scope, restore_policy):
    factory, inputs = CASES[name]
    inputs = as_list(inputs)
    if scope == "global":
        keras.config.set_dtype_policy(policy)
        layer = factory()
    else:
        layer = factory(dtype=policy)
    expected = "float32" if name in FLOAT32_OUTPUTS else keras.DTypePolicy(policy).compute_dtype

    symbolic = [keras.Input(batch_shape=x.shape, dtype=str(x.dtype)) for x in inputs]
    symbolic_outputs = _floating(layer(*symbolic))  # Also builds the layer: its weights exist.
    assert symbolic_outputs and [_dtype(o) for o in symbolic_outputs] == [expected] * len(
        symbolic_outputs
    )
    variables = [w for w in layer.weights if keras.backend.is_float_dtype(_dtype(w))]
    assert [_dtype(w) for w in variables] == ["float32"] * len(variables)

    # The gradients of a float32 loss, in training mode where the layer takes `training`, compiled
    # on JAX (one program instead of one per eager operation and shape), with respect to the
    # weights and to the float inputs: weight-free layers must pass gradients through.
    kwargs = {"training": True} if "training" in inspect.signature(layer.call).parameters else {}
    is_float = [x.dtype.kind == "f" for x in inputs]
    weights = layer.trainable_weights

    def loss(*float_inputs):
        values = iter(float_inputs)
        args = [next(values) if f else x for x, f in zip(inputs, is_float)]
        outputs = _floating(layer(*args, **kwargs))
        return sum(ops.mean(ops.square(ops.cast(o, "float32"))) for o in outputs), outputs

    def step(*float_inputs):
        (value, outputs), grads = engine.value_and_grad(loss, [*float_inputs, *weights], has_aux=True)
        return value, outputs, grads

    float_inputs = [ops.convert_to_tensor(x) for x, f in zip(inputs, is_float) if f]
    train_step = engine.function(step, [layer], jit=BACKEND == "jax")
    value, outputs, grads = train_step(*float_inputs)

    assert [_dtype(o) for o in outputs] == [expected] * len(symbolic_outputs)
    assert [_dtype(g) for g in grads[len(float_inputs) :]] == ["float32"] * len(weights)
    grads = [ops.convert_to_numpy(ops.cast(g, "float32")) for g in grads]
    assert np.isfinite(float(ops.convert_to_numpy(value)))
    assert all(np.isfinite(g).all() for g in grads)
    assert sum(float(np.abs(g).sum()) for g in grads) > 0
    assert all(np.isfinite(ops.convert_to_numpy(w)).all() for w in variables)
