"""--dtype-policy outside the GANs (issue 16): char_rnn's step and the style-transfer optimisation.

Through the recipes' own builders on tiny sizes: the networks compute in float16 or bfloat16 with
float32 weights, logits, features, images and losses stay float32, mixed_float16 trains through
`keras.optimizers.LossScaleOptimizer`, and the losses track a float32 run of the same steps.
"""

import keras
import numpy as np
import pytest

from recipes import char_rnn, engine, neural_style
from recipes.common import cli, precision, style_transfer
from tests.conftest import BACKEND


def char_config(policy, *args):
    argv = ["--hidden", "16", "--seq-length", "6", "--seed", "1", "--dtype-policy", policy, *args]
    return char_rnn.apply_presets(cli.parse(char_rnn.Config, argv, prog="x", description=""), argv)


def char_run(config, steps=2):
    """`steps` compiled char_rnn steps on a fixed batch; (model, optimizer, losses, logits)."""
    vocab = 11
    model = char_rnn.build_model(config, vocab)
    optimizer = char_rnn.build_optimizer(config, 10)
    optimizer.build(model.trainable_variables)
    states = [
        keras.Variable(np.zeros(s, "float32"), trainable=False)
        for s in model.state_shapes(config.batch_size)
    ]
    reduction = "sum" if config.model == "minimal" else "mean"
    step = char_rnn.make_step(model, optimizer, states, reduction)
    ids = np.random.default_rng(0).integers(0, vocab, (config.batch_size, 7)).astype("int32")
    losses = [float(step(ids[:, :-1], ids[:, 1:])) for _ in range(steps)]
    logits, new = model(ids[:, :-1], [v.value for v in states])
    assert all(v.dtype == "float32" for v in states)
    return model, optimizer, losses, logits


def test_char_rnn_mixed_float16_scales_the_loss_and_tracks_float32():
    model, optimizer, losses, logits = char_run(char_config("mixed_float16"))
    assert keras.config.dtype_policy().name == "float32"  # restored after the model is built
    assert (model.compute_dtype, model.w_hh.dtype) == ("float16", "float32")
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.Adagrad)
    # Both updates applied (none skipped) at Keras' initial scale.
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 2
    assert float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)) == 2.0**15
    *_, reference, _ = char_run(char_config("float32"))
    # min-char-rnn's window sum, ln(11) * 6 = 14.4 at first; float16 to about 1e-3 of it.
    np.testing.assert_allclose(losses, reference, rtol=3e-3)
    assert losses[1] < losses[0]


def test_char_rnn_stacked_mixed_bfloat16():
    config = char_config("mixed_bfloat16", "--model", "gru", "--layers", "1", "--quick")
    model, optimizer, losses, logits = char_run(config)
    assert model.rnns[0].compute_dtype == "bfloat16" and model.head.compute_dtype == "float32"
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    # Mean cross-entropy from about ln(11) = 2.40, finite and falling.
    assert all(np.isfinite(losses)) and abs(losses[0] - np.log(11)) < 0.1, losses
    assert losses[1] < losses[0]


LAYERS = ("block1_conv1", "block2_conv1")


def style_problem(policy, style_weight=1.0, tv_weight=1.0):
    """neural_style's loss on an 8x8 image with two random-weight VGG layers."""
    features = style_transfer.build_features(LAYERS, "max", "random", seed=0, dtype_policy=policy)
    rng = np.random.default_rng(0)
    content, style = (rng.uniform(0, 255, (8, 8, 3)).astype("float32") for _ in range(2))
    targets = neural_style.prepare(
        features, content, style, content_layer=LAYERS[1], style_layers=LAYERS
    )
    image = keras.Variable(style_transfer.preprocess(content)[None], name="image")
    loss_fn, state = neural_style.build_loss(
        features,
        image,
        *targets,
        style_weight=style_weight,
        tv_weight=tv_weight,
        content_layer=LAYERS[1],
        style_layers=LAYERS,
    )
    return features, image, loss_fn, state


def test_style_transfer_mixed_float16_adam_is_loss_scaled(monkeypatch):
    used = []
    adam = style_transfer._adam
    monkeypatch.setattr(style_transfer, "_adam", lambda *args: used.append(args[3]) or adam(*args))
    features, image, loss_fn, state = style_problem("mixed_float16")
    assert features._vgg_layers[0].compute_dtype == "float16"
    assert features._vgg_layers[0].kernel.dtype == "float32"
    out = features(image)
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in out.values())
    history = style_transfer.optimize(loss_fn, image, steps=2, state=state, dtype_policy="mixed_float16")
    (optimizer,) = used
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 2  # no step skipped
    assert image.dtype == "float32"
    *_, ref_image, ref_loss, ref_state = style_problem("float32")
    reference = style_transfer.optimize(ref_loss, ref_image, steps=2, state=ref_state)
    totals = [row["total"] for row in history]
    assert all(np.isfinite(totals)) and totals[-1] < totals[0]
    np.testing.assert_allclose(totals, [row["total"] for row in reference], rtol=1e-2)


def test_style_transfer_lbfgs_halves_its_scale_on_float16_overflow():
    # With these weights the unscaled float16 gradient overflows on this noise; L-BFGS given it
    # would stop at once (scipy's line search fails on inf). The scale must come down instead.
    features, image, loss_fn, state = style_problem("mixed_float16", 200.0, 2.0)
    _, (unscaled,) = engine.value_and_grad(lambda: loss_fn()[0], [image])
    assert not np.all(np.isfinite(keras.ops.convert_to_numpy(unscaled)))
    history = style_transfer.optimize(
        loss_fn, image, steps=1, optimizer="lbfgs", state=state, dtype_policy="mixed_float16"
    )
    totals = [row["total"] for row in history]
    assert len(totals) == 2 and np.isfinite(totals[1]) and totals[1] < 0.9 * totals[0], totals


def test_style_transfer_mixed_bfloat16():
    features, image, loss_fn, state = style_problem("mixed_bfloat16")
    assert features._vgg_layers[2].compute_dtype == "bfloat16"
    history = style_transfer.optimize(
        loss_fn, image, steps=2, state=state, dtype_policy="mixed_bfloat16"
    )
    totals = [row["total"] for row in history]
    assert all(np.isfinite(totals)) and totals[-1] < totals[0], totals


@pytest.mark.skipif(BACKEND != "jax", reason="parses flags only; runs once")
def test_the_policy_is_a_flag_of_char_rnn_and_the_style_recipes():
    from recipes import photo_style, texture_synthesis

    for config_class in (char_rnn.Config, neural_style.Config, photo_style.Config):
        assert config_class().dtype_policy == "float32"
    assert texture_synthesis.Config().dtype_policy == "float32"
    with precision.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
