"""vit (B 5.3.2): the parameter count and token counts, a quick run that learns the digits, the
class token's attention maps, bad input; the trained model reloads on every backend."""

import json

import keras
import numpy as np
import pytest

from recipes import vit
from recipes.common import cli, image_classification


def vit_parameters(p, d, ff, blocks, tokens, classes=10):
    """Counted by hand: patch projection, class token, positions, blocks, head."""
    attention = 4 * (d * d + d)  # query, key, value, output projections with biases
    block = attention + (d * ff + ff) + (ff * d + d) + 2 * 2 * d  # + feed-forward + 2 layer norms
    return (p * p * d + d) + d + tokens * d + blocks * block + (d * classes + classes)


def test_parameter_and_token_counts():
    config = vit.Config()
    with image_classification.without_weights():
        model = vit.build_model(config)
    assert model.get_layer("positions").output.shape[1] == 17  # 28 / 7 = 4 -> 16 patches + 1
    expected = vit_parameters(7, 64, 128, 2, 17)
    assert model.count_params() == expected == 71_946
    config.patch_size = 4
    with image_classification.without_weights():
        model = vit.build_model(config)
    assert model.get_layer("positions").output.shape[1] == 50  # 7 x 7 = 49 patches + 1
    assert model.count_params() == vit_parameters(4, 64, 128, 2, 50)


def _quick(out):
    return vit.main(["--quick", "--out", str(out)])


def make_saved_model(folder):
    """MODEL_CASES: the quick run's model and four held-out digits."""
    assert _quick(folder) == 0
    _, _, x_test, _ = image_classification.load_mnist5k(vit.Config(test_limit=4, shifted_copies=0))
    return folder / "model.keras", x_test


MODEL_CASES = {"vit": make_saved_model}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vit")
    assert _quick(out) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_learns_the_digits(quick_run):
    out, summary = quick_run
    assert summary["tokens"] == 17 and summary["train_images"] == 2000
    assert summary["parameters"]["total"] == vit_parameters(7, 32, 64, 2, 17)
    # 252 steps: measured 0.64 on JAX; an untrained model scores about 0.1.
    assert summary["held_out_accuracy"] >= 0.4, summary["held_out_accuracy"]
    # The class token's weights over the 16 patches: the rest of its softmax row is on itself.
    sums = np.asarray(summary["class_attention_sums"])
    assert sums.shape == (8,) and np.all((sums > 0) & (sums < 1))
    for name in ("attention.png", "curves.png", "metrics.csv", "model.keras"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "checkpoints").glob("epoch-*.npz"))) >= 1


def test_attention_maps_are_the_blocks_softmax(quick_run):
    out, _ = quick_run
    model = keras.saving.load_model(out / "model.keras")
    _, _, x_test, _ = image_classification.load_mnist5k(vit.Config(test_limit=3, shifted_copies=0))
    predicted, maps = vit.class_attention(model, x_test)
    assert maps.shape == (3, 4, 4)
    np.testing.assert_array_equal(predicted, np.argmax(model.predict(x_test, verbose=0), axis=1))
    # NumPy: the last block's attention of token 0 from its input tokens and the MHA weights.
    block = model.get_layer("encoder_1")
    tokens = keras.Model(model.input, block.input).predict(x_test, verbose=0)
    mha = block.self_attention
    numpy = keras.ops.convert_to_numpy
    q, k = (
        np.einsum("btd,dhk->bhtk", tokens, numpy(kernel)) + numpy(bias)[None, :, None]
        for kernel, bias in ((mha.query_kernel, mha.query_bias), (mha.key_kernel, mha.key_bias))
    )
    scores = np.einsum("bhk,bhsk->bhs", q[:, :, 0], k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    np.testing.assert_allclose(maps.reshape(3, 16), weights[:, :, 1:].mean(1), atol=1e-5)


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(vit.main, ["--patch-size", "5", "--out", str(tmp_path)]) == 2
    assert "--patch-size must divide 28" in capsys.readouterr().err
    assert cli.run(vit.main, ["--d-model", "30", "--num-heads", "4", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --d-model (30) must be a multiple of --num-heads (4)"]
