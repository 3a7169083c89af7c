"""Texture synthesis (A 9.8), neural style (A 9.9) and recipes.common.style_transfer.

Every image here is 48x72 (the embedded photographs at --size 72, what `--quick` uses): few shapes
keep JAX's compiles few, and XLA:CPU runs VGG's 512-channel convolutions very slowly on feature maps
only 2 pixels high, which a 32-pixel image would give.

    KERAS_BACKEND=tensorflow python -m tests.recipes.test_neural_style   # rewrites the parity reference
"""

import inspect
import json

import keras
import numpy as np
import pytest
from keras import ops

from recipes import neural_style, texture_synthesis
from recipes.common import cli, image_classification, style_transfer
from tests.conftest import FIXTURES

SIZE = 72  # Longer side: the photographs become 48x72.
PARITY = FIXTURES / "parity" / "neural_style.json"
# The notes' (and Gatys et al.'s) layers: content at conv4_2, style at conv1_1 ... conv5_1. Keras'
# VGG19 names convolution I of block B blockB_convI (its ReLU included): the mapping is checked
# against keras.applications.VGG19 below.
PAPER_LAYERS = {
    "conv4_2": "block4_conv2",
    "conv1_1": "block1_conv1",
    "conv2_1": "block2_conv1",
    "conv3_1": "block3_conv1",
    "conv4_1": "block4_conv1",
    "conv5_1": "block5_conv1",
}
CONTENT_LAYER = PAPER_LAYERS["conv4_2"]
STYLE_LAYERS = tuple(
    PAPER_LAYERS[name] for name in ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
)
NS_LAYERS = [*STYLE_LAYERS, CONTENT_LAYER]


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def photos():
    return style_transfer.load_image("china", SIZE), style_transfer.load_image("flower", SIZE)


@pytest.fixture(scope="module")
def ns_features():
    return style_transfer.build_features(NS_LAYERS, "max", "random", seed=0)


@pytest.fixture(scope="module")
def texture_features():
    return style_transfer.build_features(texture_synthesis.TEXTURE_LAYERS, "avg", "random", seed=0)


# ---------------------------------------------------------------------------------------------
# The losses of the notes


def test_gram_of_the_notes():
    # A 9.8: Gram(arange(8).reshape(1, 2, 2, 2)) = [[56, 68], [68, 84]].
    x = np.arange(8, dtype="float32").reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(numpy(style_transfer.gram_matrix(x)), [[[56, 68], [68, 84]]])


def test_losses_vanish_at_their_targets():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((1, 4, 5, 3)).astype("float32")
    gram = numpy(style_transfer.gram_matrix(features))
    assert float(style_transfer.style_loss(gram, gram, 20, 3)) == 0.0
    assert float(style_transfer.content_loss(features, features)) == 0.0
    assert float(style_transfer.total_variation_loss(np.full((1, 6, 7, 3), 42.0, "float32"))) == 0.0
    # TV of [[0, 1], [0, 1]] = 2 (A 9.9, check 2), in any of the accepted ranks.
    tv = np.array([[0, 1], [0, 1]], "float32")
    for image in (tv, tv[..., None], tv[None, ..., None]):
        assert float(style_transfer.total_variation_loss(image)) == 2.0
    assert float(style_transfer.total_variation_loss(tv.T)) == 2.0


def test_loss_scaling_by_hand():
    x = np.arange(8, dtype="float32").reshape(1, 2, 2, 2)  # M = 4 positions, N = 2 channels.
    gram = style_transfer.gram_matrix(x)
    # lambda_s = 1 / (4 M^2 N^2) = 1/256; sum of squares of [[56, 68], [68, 84]] = 19440.
    assert float(style_transfer.style_loss(gram, np.zeros((1, 2, 2), "float32"), 4, 2)) == 19440 / 256
    assert float(style_transfer.content_loss(x, np.zeros_like(x))) == 0.5 * 140  # lambda_c = 1/2.
    rng = np.random.default_rng(1)
    f, p = rng.standard_normal((2, 1, 3, 5, 4)).astype("float32")
    g, a = (ff.reshape(15, 4).T @ ff.reshape(15, 4) for ff in (f, p))
    want = np.sum((g - a) ** 2) / (4 * 15**2 * 4**2)
    got = style_transfer.style_loss(style_transfer.gram_matrix(f), a[None], 15, 4)
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(style_transfer.content_loss(f, p)) == pytest.approx(
        0.5 * np.sum((f - p) ** 2), rel=1e-5
    )


# ---------------------------------------------------------------------------------------------
# Images and features


def test_images_preprocess_as_keras_and_come_back(photos):
    china, flower = photos
    assert china.shape == flower.shape == (48, 72, 3) and china.dtype == np.float32
    assert 0 <= china.min() and china.max() <= 255 and china.std() > 20
    assert style_transfer.load_image("flower", (20, 30)).shape == (20, 30, 3)
    x = style_transfer.preprocess(china)
    np.testing.assert_allclose(
        x, numpy(keras.applications.vgg19.preprocess_input(china.copy())), atol=1e-4
    )
    back = style_transfer.deprocess(x[None])
    assert back.dtype == np.uint8 and back.shape == (48, 72, 3)
    np.testing.assert_array_equal(back, np.rint(china).astype(np.uint8))


def test_unreadable_image_is_a_usage_error(tmp_path):
    (tmp_path / "bad.png").write_text("not an image")
    for source in [str(tmp_path / "missing.jpg"), str(tmp_path / "bad.png")]:
        with pytest.raises(cli.UsageError, match="cannot read image .* embedded images: china, flower"):
            style_transfer.load_image(source, 32)


def test_random_weights_are_a_numpy_draw(ns_features):
    # The same NumPy numbers on every backend: what makes the parity reference weight-free.
    rng = np.random.default_rng(0)
    kernel, bias = ns_features.get_weights()[:2]
    np.testing.assert_array_equal(
        kernel, (rng.standard_normal((3, 3, 3, 64)) * np.sqrt(2 / 27)).astype("float32")
    )
    assert not bias.any()
    assert len(ns_features.get_weights()) == 2 * 13  # conv1_1 ... conv5_1.


def test_imagenet_weights_come_from_the_cached_keras_file(monkeypatch):
    # The download itself needs a network; this checks what happens with the file in the cache.
    model = keras.applications.VGG19(weights=None, include_top=False, input_shape=(48, 48, 3))
    calls = []

    def fake_vgg19(**kwargs):
        calls.append(kwargs)
        return model

    monkeypatch.setattr(style_transfer, "imagenet_weights_path", lambda: "/cache/vgg19_notop.h5")
    monkeypatch.setattr(keras.applications, "VGG19", fake_vgg19)
    features = style_transfer.build_features(["block1_conv1", "block2_conv1"], weights="imagenet")
    assert calls == [{"weights": "/cache/vgg19_notop.h5", "include_top": False}]
    want = [w for layer in model.layers[1:5] if layer.weights for w in layer.get_weights()]
    assert len(features.get_weights()) == len(want) == 6
    for got, expected in zip(features.get_weights(), want):
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# Optimisation


def test_texture_loss_is_zero_at_the_texture_and_a_step_lowers_it(texture_features, photos):
    texture = style_transfer.preprocess(photos[1])
    grams = style_transfer.target_grams(texture_features, texture, texture_synthesis.TEXTURE_LAYERS)
    image = keras.Variable(texture[None])
    loss_fn, state = texture_synthesis.build_loss(texture_features, image, grams, tv_weight=1.0)
    total, terms = loss_fn()
    assert float(numpy(terms["texture"])) == 0.0
    assert float(numpy(terms["norm"])) == 0.0 and float(numpy(terms["tv"])) > 0
    image.assign(style_transfer.noise_image((48, 72), seed=1)[None])
    history = style_transfer.optimize(loss_fn, image, steps=1, learning_rate=5.0, state=state)
    assert [row["step"] for row in history] == [0, 1]
    assert history[1]["total"] < history[0]["total"]


def neural_style_problem(features, photos, **layers):
    content, style = photos
    p, grams = neural_style.prepare(features, content, style, **layers)
    image = keras.Variable(style_transfer.noise_image((48, 72), 0)[None])
    loss_fn, state = neural_style.build_loss(features, image, p, grams, **layers)
    return loss_fn, image, state


SMALL = dict(style_layers=("block1_conv1", "block2_conv1", "block3_conv1"), content_layer="block2_conv2")


@pytest.fixture(scope="module")
def small_features():
    """The first three style layers only: a third of the full VGG's work, for the longer runs."""
    return style_transfer.build_features(
        [*SMALL["style_layers"], SMALL["content_layer"]], "max", "random"
    )


def test_loss_falls_by_a_large_factor(small_features, photos):
    # 25 Adam steps of 40 pixel units from noise, alpha = 1, beta = 1e3, gamma = 10: 19.8x lower
    # on TensorFlow (L-BFGS: 13.4x in 12 iterations; the quick run and the parity test cover it).
    loss_fn, image, state = neural_style_problem(small_features, photos, **SMALL)
    history = style_transfer.optimize(loss_fn, image, steps=25, learning_rate=40.0, state=state)
    first, last = history[0]["total"], history[-1]["total"]
    assert last * 10 < first, (first, last)
    assert [row["step"] for row in history] == list(range(26))
    pixels = numpy(image)
    assert np.all(pixels >= style_transfer.LOWER - 1e-3) and np.all(
        pixels <= style_transfer.UPPER + 1e-3
    )


def parity_losses(features, photos):
    """Total and per-term losses of 2 Adam steps and 1 L-BFGS iteration from the same noise."""
    out = {}
    for optimizer in ("adam", "lbfgs"):
        loss_fn, image, state = neural_style_problem(features, photos)
        steps = 2 if optimizer == "adam" else 1
        history = style_transfer.optimize(loss_fn, image, steps=steps, optimizer=optimizer, state=state)
        out[optimizer] = [{k: row[k] for k in ("total", *neural_style.TERMS)} for row in history]
    return out


def test_losses_match_the_tensorflow_reference(ns_features, photos):
    reference = json.loads(PARITY.read_text())
    assert reference["backend"] == "tensorflow"
    got = parity_losses(ns_features, photos)
    for optimizer, rows in reference["losses"].items():
        assert len(got[optimizer]) == len(rows)
        for step, (mine, want) in enumerate(zip(got[optimizer], rows)):
            for key in want:
                assert mine[key] == pytest.approx(want[key], rel=2e-3), f"{optimizer} step {step} {key}"


# ---------------------------------------------------------------------------------------------
# The recipes


def test_the_papers_layer_names_are_keras_vgg19_layers():
    # convB_I: the I-th convolution after B - 1 poolings of VGG19, with the widths of the notes' table.
    with image_classification.without_weights():
        vgg = keras.applications.VGG19(weights=None, include_top=False, input_shape=(48, 72, 3))
    block, conv, convs = 1, 0, {}
    for layer in vgg.layers[1:]:
        if isinstance(layer, keras.layers.MaxPooling2D):
            block, conv = block + 1, 0
        elif isinstance(layer, keras.layers.Conv2D):
            conv += 1
            convs[f"conv{block}_{conv}"] = layer
    assert len(convs) == 16 and "conv5_4" in convs
    widths = {"conv1_1": (3, 64), "conv2_1": (64, 128), "conv3_1": (128, 256), "conv4_1": (256, 512)}
    widths |= {"conv4_2": (512, 512), "conv5_1": (512, 512)}
    for paper, name in PAPER_LAYERS.items():
        assert convs[paper].name == name, paper
        assert tuple(convs[paper].kernel.shape) == (3, 3, *widths[paper]), paper
    # What the recipes use.
    assert style_transfer.CONTENT_LAYER == PAPER_LAYERS["conv4_2"] == "block4_conv2"
    assert style_transfer.STYLE_LAYERS == STYLE_LAYERS


def test_neural_style_uses_the_papers_layers(tmp_path, monkeypatch):
    # Content at conv4_2, style at conv1_1 ... conv5_1: the defaults of the loss and what main builds.
    for function in (neural_style.build_loss, neural_style.prepare):
        parameters = inspect.signature(function).parameters
        assert parameters["content_layer"].default == CONTENT_LAYER, function.__name__
        assert tuple(parameters["style_layers"].default) == STYLE_LAYERS, function.__name__
    requested = []

    class Built(Exception):
        pass

    def record(layer_names, *args, **kwargs):
        requested.append(list(layer_names))
        raise Built

    monkeypatch.setattr(style_transfer, "build_features", record)
    with pytest.raises(Built):
        neural_style.main(["--quick", "--weights", "random", "--out", str(tmp_path)])
    assert sorted(requested[0]) == sorted(NS_LAYERS)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_neural_style_quick_run_writes_its_outputs(tmp_path, optimizer, capsys):
    args = ["--quick", "--weights", "random", "--optimizer", optimizer, "--out", str(tmp_path)]
    args += ["--steps", "2", "--snapshot-every", "1"] if optimizer == "lbfgs" else []
    assert neural_style.main(args) == 0
    printed = capsys.readouterr().out
    assert ("step 6/6" if optimizer == "adam" else "iteration 2/2") in printed
    for name in ["result.png", "losses.png", "comparison.png", "snapshots/snapshot_0000.png"]:
        assert (tmp_path / name).stat().st_size > 200, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final"]["total"] < summary["initial"]["total"]
    assert summary["config"]["optimizer"] == optimizer and summary["backend"] == keras.backend.backend()
    from PIL import Image

    with Image.open(tmp_path / "result.png") as result:
        assert result.size == (72, 48) and result.mode == "RGB"
    if optimizer == "adam":
        assert summary["steps"] == 6 and summary["seconds_per_step"] > 0
        assert (tmp_path / "snapshots/snapshot_0003.png").exists()
        assert (tmp_path / "snapshots/snapshot_0006.png").exists()
        assert summary["initial"]["content"] == 0.0  # Starts from the content image.


def test_texture_synthesis_quick_run_writes_its_outputs(tmp_path):
    assert texture_synthesis.main(["--quick", "--weights", "random", "--out", str(tmp_path)]) == 0
    for name in ["result.png", "losses.png", "comparison.png", "snapshots/snapshot_0006.png"]:
        assert (tmp_path / name).stat().st_size > 200, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final"]["texture"] < summary["initial"]["texture"]
    assert summary["config"]["pooling"] == "avg" and summary["final"]["norm"] == 0.0


@pytest.mark.parametrize("recipe", [neural_style, texture_synthesis])
def test_offline_imagenet_weights_fail_with_one_line(recipe, tmp_path, no_network, capsys):
    out = tmp_path / "out"
    assert cli.run(recipe.main, ["--quick", "--out", str(out)]) == 2  # --weights imagenet: default.
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "error: could not download the VGG19 ImageNet weights from http://127.0.0.1:9/"
    )
    assert lines[0].endswith("--weights random")
    assert not out.exists()


def test_bad_input_exits_with_code_2(tmp_path, capsys):
    for args in (["--content", str(tmp_path / "none.jpg")], ["--steps", "0"], ["--size", "8"]):
        assert cli.run(neural_style.main, ["--weights", "random", "--out", str(tmp_path), *args]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_help_lists_the_options():
    from tests.conftest import run_module

    proc = run_module("recipes.neural_style", "--help", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ["--content", "--style", "--size", "--steps", "--optimizer", "--init", "--weights"]:
        assert flag in proc.stdout
    assert "--batch-size" not in proc.stdout


def write_reference():
    """Writes the parity reference on the current backend (TensorFlow)."""
    photos = (style_transfer.load_image("china", SIZE), style_transfer.load_image("flower", SIZE))
    features = style_transfer.build_features(NS_LAYERS, "max", "random", seed=0)
    data = {"backend": keras.backend.backend(), "losses": parity_losses(features, photos)}
    PARITY.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {PARITY}")


if __name__ == "__main__":
    write_reference()
