"""Classic CNNs (B 3.3, D 5, A 6.4): parameter counts of the notes, papers
and keras.applications, feature-map shapes, a --quick run of LeNet-5."""

import collections
import json
import subprocess
import sys

import keras
import pytest

from recipes import cifar_cnn, classic_cnns
from recipes.__main__ import catalog
from recipes.common import cli
from tests.conftest import BACKEND, ROOT, assert_plain_log


def shape(model, layer):
    return tuple(model.get_layer(layer).output.shape[1:])


@pytest.mark.parametrize("name", classic_cnns.MODELS)
def test_parameter_counts_at_the_published_size(name):
    reference = classic_cnns.REFERENCES[name]
    model = classic_cnns.published_model(name)
    counts = classic_cnns.parameter_counts(model)
    assert (counts["trainable"], counts["non_trainable"]) == (
        reference.trainable,
        reference.non_trainable,
    )
    assert model.output.shape == (None, reference.num_classes)
    # The size it trains on: same weights but 10 classes, and the arithmetic leaves pixels.
    size, channels = reference.digits_size, reference.channels
    with classic_cnns.without_weights():
        assert classic_cnns.build_for(name, (size, size, channels)).output.shape == (None, 10)


def test_lenet5_and_alexnet_shapes_of_the_notes():
    lenet = classic_cnns.published_model("lenet5")
    assert [shape(lenet, n) for n in ("c1", "s2", "c3", "s4", "c5", "f6")] == [
        (28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (120,), (84,)
    ]  # fmt: skip
    alexnet = classic_cnns.published_model("alexnet")
    # B 3.3.1: 227 -> 55x55x96 -> 27x27x96 -> 27x27x256 -> 13x13x256 -> 13x13x384 ... -> 6x6x256
    expected = {
        "conv1": (55, 55, 96), "pool1": (27, 27, 96), "norm1": (27, 27, 96), "conv2": (27, 27, 256),
        "pool2": (13, 13, 256), "norm2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
        "conv5": (13, 13, 256), "pool3": (6, 6, 256), "fc6": (4096,), "fc7": (4096,),
    }  # fmt: skip
    assert {n: shape(alexnet, n) for n in expected} == expected
    # Per-layer counts of the notes: conv 34,944 ... FC 37,752,832 + 16,781,312 + 4,097,000.
    counts = [alexnet.get_layer(n).count_params() for n in ("conv1", "conv2", "conv3", "conv4", "conv5")]
    assert counts == [34_944, 614_656, 885_120, 1_327_488, 884_992]
    assert [alexnet.get_layer(n).count_params() for n in ("fc6", "fc7", "fc8")] == [
        37_752_832, 16_781_312, 4_097_000
    ]  # fmt: skip


def test_googlenet_follows_table_1_of_the_paper():
    model = classic_cnns.published_model("googlenet")
    # Output channels and sides of Szegedy et al. Table 1.
    channels = {
        "3a": 256,
        "3b": 480,
        "4a": 512,
        "4b": 512,
        "4c": 512,
        "4d": 528,
        "4e": 832,
        "5a": 832,
        "5b": 1024,
    }
    sides = {"3": 28, "4": 14, "5": 7}
    for name, c in channels.items():
        assert shape(model, f"inception_{name}") == (sides[name[0]], sides[name[0]], c)
    assert shape(model, "conv2") == (56, 56, 192)
    assert model.get_layer("inception_3a").count_params() == 163_696  # B 3.3.1

    def inception(c_in, f1, f3r, f3, f5r, f5, fp):  # weights + biases, from the table's columns
        return (
            c_in * f1
            + f1
            + c_in * f3r
            + f3r
            + 9 * f3r * f3
            + f3
            + c_in * f5r
            + f5r
            + 25 * f5r * f5
            + f5
            + c_in * fp
            + fp
        )

    inputs = [192, 256, 480, 512, 512, 512, 528, 832, 832]
    modules = sum(inception(c, *f) for c, f in zip(inputs, classic_cnns.INCEPTION.values()))
    stem = (49 * 3 * 64 + 64) + (64 * 64 + 64) + (9 * 64 * 192 + 192)
    assert stem + modules + 1024 * 1000 + 1000 == 6_998_552 == model.count_params()


def test_resnet_and_squeezenet_shapes():
    resnet18 = classic_cnns.published_model("resnet18")
    stages = [shape(resnet18, f"conv{s}_block2") for s in (2, 3, 4, 5)]
    assert stages == [(56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512)]
    resnet50 = classic_cnns.published_model("resnet50")
    assert shape(resnet50, "conv5_block3") == (7, 7, 2048)
    # torch ceil_mode pooling: 224 -> 109 -> 54 -> 27 -> 13 (v1.0), 224 -> 111 -> 55 -> 27 -> 13 (v1.1).
    v10, v11 = classic_cnns.published_model("squeezenet"), classic_cnns.published_model("squeezenet1_1")
    assert [shape(v10, n)[0] for n in ("conv1", "pool1", "pool4", "pool8", "conv10")] == [
        109,
        54,
        27,
        13,
        13,
    ]
    assert [shape(v11, n)[0] for n in ("conv1", "pool1", "pool3", "pool5", "conv10")] == [
        111,
        55,
        27,
        13,
        13,
    ]
    assert shape(v10, "fire9") == (13, 13, 512)


@pytest.fixture(scope="module")
def keras_applications():
    """keras.applications' ResNet50 and DenseNet121 (weights=None), without allocating weights."""
    with classic_cnns.without_weights():
        return {
            "resnet50": keras.applications.ResNet50(weights=None),
            "densenet121": keras.applications.DenseNet121(weights=None),
        }


@pytest.mark.parametrize("name,total", [("resnet50", 25_636_712), ("densenet121", 8_062_504)])
def test_same_parameters_as_keras_applications(keras_applications, name, total):
    with classic_cnns.without_weights():
        ours = (
            classic_cnns.resnet(50, variant="keras")
            if name == "resnet50"
            else classic_cnns.densenet121()
        )
    theirs = keras_applications[name]
    assert classic_cnns.parameter_counts(ours) == classic_cnns.parameter_counts(theirs)
    assert ours.count_params() == theirs.count_params() == total
    # The same variables, up to order: every kernel, bias and batch-norm vector has its twin.
    shapes = lambda m: collections.Counter((tuple(w.shape), w.trainable) for w in m.weights)  # noqa: E731
    assert shapes(ours) == shapes(theirs)


def test_too_small_images_fail_with_one_line(tmp_path, capsys):
    args = ["--model", "alexnet", "--image-size", "64", "--quick", "--out", str(tmp_path / "out")]
    assert cli.run(classic_cnns.main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alexnet cannot take 64x64 images" in err[0], err


@pytest.mark.skipif(BACKEND != "jax", reason="argument checks before any training; runs once")
@pytest.mark.parametrize(
    "recipe,args,message",
    [
        # --data-dir was shown and silently ignored (issue 16 item 7): now hidden and refused.
        (classic_cnns, ["--data-dir", "/tmp"], "--data-dir is not used: choose --dataset digits"),
        (cifar_cnn, ["--data-dir", "/tmp"], "--data-dir is not used: choose --dataset digits"),
        (classic_cnns, ["--limit", "-3"], "--limit must be at least 1, got -3"),  # Was: all but 3.
        (cifar_cnn, ["--test-limit", "0"], "--test-limit must be at least 1, got 0"),
    ],
)
def test_unused_or_out_of_range_flags_fail_with_one_line(recipe, args, message, tmp_path, capsys):
    assert cli.run(recipe.main, [*args, "--quick", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_quick_run_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "lenet5"
    assert classic_cnns.main(["--quick", "--out", str(out)]) == 0
    assert_plain_log(capsys.readouterr().out, epochs=1)  # Captured, not a terminal: fit(verbose=2).
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["total"] == 61_706 and summary["published"]["trainable"] == 61_706
    assert summary["input_shape"] == [32, 32, 1] and summary["held_out_images"] == 32
    # 32 steps learn: 0.56-0.84 measured on the three backends and two seeds; chance is 0.1.
    assert summary["train_images"] == 512 and summary["held_out_accuracy"] >= 0.3
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 2  # Header + 1 epoch.
    loaded = keras.saving.load_model(out / "model.keras")
    assert loaded.count_params() == 61_706
    assert (out / "curves.png").stat().st_size > 0


def test_help_imports_no_backend_and_the_recipes_are_listed():
    code = (
        "import sys\n"
        "from recipes import cifar_cnn, classic_cnns\n"
        "for m in (cifar_cnn, classic_cnns):\n"
        "    try:\n"
        "        m.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "names = ('keras.src', 'tensorflow', 'torch', 'jax')\n"
        "print('loaded:', [m for m in names if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "--batch-norm" in proc.stdout and "densenet121" in proc.stdout
    assert "loaded: []" in proc.stdout
    sections = {name: section for name, section, _ in catalog()}
    assert sections["cifar_cnn"] == "A 5.2" and sections["classic_cnns"] == "B 3.3, D 5, A 6.4"
