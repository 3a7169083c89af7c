"""data_pipeline (B 2.1, 2.5): standardisation, the notes' Dataset/DataLoader as a PyDataset."""

import json

import numpy as np
import pytest

from recipes import data_pipeline as pipeline
from recipes.common import cli
from tests.conftest import BACKEND

numpy_only = pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("data_pipeline")
    assert pipeline.main(["--out", str(out), "--seed", "1"]) == 0
    assert (out / "batches.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


@numpy_only
def test_standardisation_and_min_max():
    facts = pipeline.scalings(pipeline.X_SCORES)
    np.testing.assert_allclose(facts["mean"], [84.8, 84.6, 85.6])
    np.testing.assert_allclose(facts["std_ddof1"], [11.0544, 12.2393, 12.6214], atol=1e-4)
    # torch's std (ddof 1), as the notes' lab-07_1 prints it.
    np.testing.assert_allclose(
        facts["standardised_ddof1"],
        [[-1.0674, -0.3758, -0.8398], [0.7418, 0.2778, 0.5863], [0.3799, 0.5229, 0.3486],
         [1.0132, 1.0948, 1.1409], [-1.0674, -1.5197, -1.2360]],
        atol=1e-4,
    )  # fmt: skip
    np.testing.assert_allclose(facts["standardised_ddof0"][0], [-1.1934, -0.4202, -0.9390], atol=1e-4)
    np.testing.assert_allclose(
        facts["min_max"],
        [[0, 0.4375, 0.1667], [0.8696, 0.6875, 0.7667], [0.6957, 0.7812, 0.6667], [1, 1, 1], [0, 0, 0]],
        atol=1e-4,
    )


@numpy_only
def test_the_two_rows_full_batch_by_hand():
    epochs = [[[0, 1]]] * 20
    weights, bias = pipeline.replay_numpy(pipeline.X_SCORES[:2], pipeline.Y_SCORES[:2], epochs)
    # The 1.104712 is the float32 computation; exact (float64) arithmetic gives 1.104703.
    assert pipeline.mse(pipeline.X_SCORES[:2], pipeline.Y_SCORES[:2], weights, bias) == pytest.approx(
        1.104703, abs=1e-6
    )
    w32, b32 = pipeline.replay_numpy(
        pipeline.X_SCORES[:2], pipeline.Y_SCORES[:2], epochs, dtype="float32"
    )
    cost32 = np.mean(
        (np.asarray(pipeline.X_SCORES[:2], "float32") @ w32 + b32 - pipeline.Y_SCORES[:2]) ** 2
    )
    assert cost32 == pytest.approx(1.104712, abs=2e-6)


@numpy_only
def test_the_pydataset_batches_and_shuffles_like_a_dataloader():
    two = pipeline.score_batches(pipeline.X_SCORES[:2], pipeline.Y_SCORES[:2], 2, shuffle=True)
    assert len(two) == 1 and two[0][0].shape == (2, 3) and two[0][1].shape == (2, 1)
    five = pipeline.score_batches(pipeline.X_SCORES, pipeline.Y_SCORES, 2, shuffle=True, seed=7)
    assert len(five) == 3 and [len(five[i][0]) for i in range(3)] == [2, 2, 1]
    dropped = pipeline.score_batches(pipeline.X_SCORES, pipeline.Y_SCORES, 2, drop_last=True)
    assert len(dropped) == 2
    again = pipeline.score_batches(pipeline.X_SCORES, pipeline.Y_SCORES, 2, shuffle=True, seed=7)
    other = pipeline.score_batches(pipeline.X_SCORES, pipeline.Y_SCORES, 2, shuffle=True, seed=8)
    for epoch in range(5):
        for dataset in (five, again, other):
            dataset.set_epoch(epoch)
        rows = np.concatenate([five[i][0] for i in range(len(five))])
        # every sample exactly once per epoch
        assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, pipeline.X_SCORES))
    assert five.orders == again.orders  # the same seed, the same orders
    assert five.orders != other.orders and len({tuple(o) for o in five.orders.values()}) > 1


@numpy_only
def test_bad_flags_are_refused():
    with pytest.raises(cli.UsageError, match="--batch-size"):
        pipeline.main(["--batch-size", "6"])
    for flag in ("--resume", "--epochs=3"):
        with pytest.raises(cli.UsageError, match=flag.split("=")[0]):
            pipeline.main([flag])


def test_keras_normalization(summary):
    scaling = summary["scaling"]
    # adapt() uses the population variance (ddof 0); given torch's ddof-1 variance it matches torch.
    np.testing.assert_allclose(scaling["normalization_adapt"], scaling["standardised_ddof0"], atol=1e-5)
    np.testing.assert_allclose(scaling["ops_std"], scaling["standardised_ddof0"], atol=1e-5)
    np.testing.assert_allclose(scaling["normalization_ddof1"], scaling["standardised_ddof1"], atol=1e-5)
    np.testing.assert_allclose(scaling["normalization_ddof1"][0], [-1.0674, -0.3758, -0.8398], atol=1e-4)


def test_fit_on_the_notes_two_rows(summary):
    run = summary["full_batch"]
    assert run["batches"] == 1 and run["batch_shapes"] == [[2, 3], [2, 1]]
    assert run["losses"][0] == pytest.approx(28664.5, rel=1e-6)  # fit reports the cost before
    assert len(run["losses"]) == 20
    # float32 rounding (Keras measured 1.104703-1.104704, NumPy float32 1.104712)
    assert run["final_cost"] == pytest.approx(1.104703, rel=2e-5)
    assert run["final_cost_numpy"] == pytest.approx(1.104703, abs=1e-6)


def test_fit_on_shuffled_minibatches_is_the_replayed_sgd(summary):
    run = summary["minibatch"]
    assert run["batches"] == 3 and len(run["orders"]) == summary["epochs"] == 20
    assert all(sorted(order) == [0, 1, 2, 3, 4] for order in run["orders"])
    assert len({tuple(order) for order in run["orders"]}) > 5  # reshuffled every epoch
    # The same updates as NumPy over the recorded orders: fit saw each epoch's order.
    np.testing.assert_allclose(run["weights"], run["weights_replay"], rtol=1e-4, atol=1e-6)
    assert run["final_cost"] == pytest.approx(run["final_cost_replay"], rel=1e-4)
    # 50 NumPy seeds of this shuffling end within 1.58-2.04; full-batch reaches 1.619.
    assert 1.5 < run["final_cost"] < 2.1
