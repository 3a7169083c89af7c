"""--dtype-policy in the GAN training steps (issue 16): mixed precision with Keras' loss scaling.

Through the gan recipe's own step (`GAN.step`, compiled by `engine.function`) on tiny networks:
the models compute in float16 or bfloat16 with float32 outputs, mixed_float16 trains through
`keras.optimizers.LossScaleOptimizer` (an overflowing step is skipped and the scale halves), the
loss scale is part of the checkpoint, and a resume with another --dtype-policy is refused.
"""

import dataclasses

import keras
import numpy as np
import pytest

from recipes import engine, gan
from recipes.common import cli
from recipes.engine import CheckpointError
from tests.conftest import BACKEND

INITIAL_SCALE = 2.0**15  # LossScaleOptimizer's default


def tiny_gan(policy):
    argv = ["--hidden", "8", "--latent-dim", "8", "--seed", "3", "--dtype-policy", policy]
    config = cli.parse(gan.Config, argv, prog="gan", description="")
    return gan.GAN(config)


def real_batch():
    return np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")


def numpy_weights(model):
    return [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]


def train(model, step, steps):
    out = [step(real_batch()) for _ in range(steps)]
    return [{k: float(keras.ops.convert_to_numpy(v)) for k, v in row.items()} for row in out]


def compiled_step(model):
    return engine.function(model.step, list(model.state.values()))


def scale(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.dynamic_scale))


def iterations(optimizer):
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def test_mixed_float16_trains_with_loss_scaling_and_float32_outputs(tmp_path):
    model = tiny_gan("mixed_float16")
    assert keras.config.dtype_policy().name == "float32"  # restored after the models are built
    hidden = model.generator.layers[1]
    assert (hidden.compute_dtype, hidden.kernel.dtype) == ("float16", "float32")
    assert model.discriminator.layers[2].compute_dtype == "float16"
    assert model.generator.output.dtype == model.discriminator.output.dtype == "float32"
    for optimizer in (model.g_optimizer, model.d_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    # Two ordinary steps: finite float32 losses, both updates applied at the initial scale.
    step = compiled_step(model)
    rows = train(model, step, 2)
    assert all(np.isfinite(v) for row in rows for v in row.values()), rows
    assert iterations(model.d_optimizer) == iterations(model.g_optimizer) == 2
    assert scale(model.d_optimizer) == INITIAL_SCALE
    images = model.generate(np.zeros((2, 8), "float32"))
    assert images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1

    # A loss scale so large that D's float16 gradients overflow: D's update is skipped (weights
    # and iterations unchanged) and its scale halves; G's update, at its own scale, goes through.
    model.d_optimizer.dynamic_scale.assign(2.0**60)
    d_before, g_before = numpy_weights(model.discriminator), numpy_weights(model.generator)
    (row,) = train(model, step, 1)
    assert all(np.isfinite(v) for v in row.values()), row  # the reported losses are unscaled
    for before, after in zip(d_before, numpy_weights(model.discriminator)):
        np.testing.assert_array_equal(before, after)
    assert not all(np.array_equal(b, a) for b, a in zip(g_before, numpy_weights(model.generator)))
    assert scale(model.d_optimizer) == 2.0**59 and iterations(model.d_optimizer) == 2
    assert scale(model.g_optimizer) == INITIAL_SCALE and iterations(model.g_optimizer) == 3

    # The loss scale is optimizer state: the checkpoint carries it and --resume restores it.
    config = dataclasses.asdict(model.config)
    loop = engine.Loop(tmp_path, model.state, config=config, verbose=False)
    loop.run(lambda epoch: {"d_loss": row["d_loss"]}, epochs=1)
    resumed = tiny_gan("mixed_float16")
    engine.Loop(tmp_path, resumed.state, resume=True, config=config, verbose=False)
    assert scale(resumed.d_optimizer) == 2.0**59 and iterations(resumed.g_optimizer) == 3
    for saved, restored in zip(numpy_weights(model.generator), numpy_weights(resumed.generator)):
        np.testing.assert_array_equal(saved, restored)

    # A resume under another policy is refused in one line that names the flag.
    changed = dict(config, dtype_policy="float32")
    with pytest.raises(CheckpointError, match="--dtype-policy mixed_float16 \\(now float32\\)"):
        engine.Loop(tmp_path, resumed.state, resume=True, config=changed, verbose=False)


def test_mixed_bfloat16_trains_without_loss_scaling():
    model = tiny_gan("mixed_bfloat16")
    assert model.generator.layers[1].compute_dtype == "bfloat16"
    assert model.generator.output.dtype == model.discriminator.output.dtype == "float32"
    assert not isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    before = numpy_weights(model.discriminator)
    rows = train(model, compiled_step(model), 2)
    assert all(np.isfinite(v) for row in rows for v in row.values()), rows
    assert not all(np.array_equal(b, a) for b, a in zip(before, numpy_weights(model.discriminator)))


@pytest.mark.skipif(BACKEND != "jax", reason="parses flags only; runs once")
def test_dtype_policy_is_a_flag_of_the_custom_loops_only():
    from recipes import cifar_cnn, gan_1d, pix2pix

    for config_class in (gan.Config, gan_1d.Config, pix2pix.Config):
        assert config_class().dtype_policy == "float32"
    assert "dtype_policy" not in {f.name for f in dataclasses.fields(cifar_cnn.Config)}
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(gan.Config, ["--dtype-policy", "float16"], prog="gan", description="")
    assert exit_info.value.code == cli.EXIT_USAGE
