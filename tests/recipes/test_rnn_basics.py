"""rnn_basics (A 7.5, B 4.1): the notes' facts about cells, stacks, embeddings, masks."""

import json

import numpy as np
import pytest

from recipes import rnn_basics


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn_basics")
    before = np.get_printoptions()
    assert rnn_basics.main(["--out", str(out)]) == 0
    assert np.get_printoptions() == before  # its print precision must not leak into other code
    assert (out / "masks.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_parameter_counts_are_the_notes(summary):
    assert summary["parameters"] == rnn_basics.PARAMETERS


def test_state_is_the_last_output(summary):
    for kind in ("simple_rnn", "lstm", "gru"):
        assert summary[f"{kind}_state_is_last_output"]
    assert summary["stack7_pairs"] == [[[3, 4], [3, 4]]] * 7
    assert summary["stack7_last_h_is_last_output"]
    assert summary["two_layer_output_shape"] == [3, 5, 3]


def test_embedding_lookup_is_the_printed_array(summary):
    assert summary["embedding_equals_notes"] and summary["embedding_take_equals_layer"]
    by_layer, _ = rnn_basics.embedding_lookup()
    np.testing.assert_array_equal(by_layer[2, 1], [24, 25, 26, 27, 28, 29])


def test_masks_zero_the_padding_and_keep_the_state(summary):
    assert summary["masked_outputs_zero"]
    assert summary["masked_state_at_length"] and summary["masked_state_equals_alone"]
    assert summary["packed_batch_sizes"] == [5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 1, 1]
    assert sum(summary["packed_batch_sizes"]) == 47


def test_sequence_loss_is_the_weighted_mean(summary):
    assert summary["sequence_loss"] == pytest.approx(summary["sequence_loss_numpy"], rel=1e-5)
    # Keras' sample-weighted mean divides by all 15 positions, not by the 12 weighted ones.
    assert summary["keras_weighted_mean"] == pytest.approx(summary["sequence_loss"] * 12 / 15, rel=1e-5)


def test_hello_batch_is_one_hot():
    x = rnn_basics.hello_batch()
    assert x.shape == (3, 5, 4)
    np.testing.assert_array_equal(x[0].argmax(-1), [0, 1, 2, 2, 3])  # h e l l o
