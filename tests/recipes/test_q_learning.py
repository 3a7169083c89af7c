"""q_learning (A 8.1): the random policy, the Q-table runs and the linear Q-network on FrozenLake."""

import json

import numpy as np
import pytest

from recipes import q_learning
from recipes.common import rl
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("q_learning")
    assert q_learning.main(["--quick", "--out", str(out)]) == 0
    assert (out / "success.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_random_policy_is_the_notes_about_1_25_percent(summary):
    # The exact 100-step probability of the random walk; the notes' "about 1.25%" is one sample.
    assert summary["random_exact"] == pytest.approx(0.01394, abs=5e-5)
    assert summary["random"]["success"] < 0.05
    # 400 episodes: the rate lies within 3 binomial standard deviations of the exact probability.
    p = summary["random_exact"]
    assert abs(summary["random"]["success"] - p) < 3 * np.sqrt(p * (1 - p) / 400)


def test_deterministic_q_table_learns_the_lake(summary):
    for name in ("dummy", "noise"):
        assert summary[name]["last_success"] > 0.8, name
    assert summary["dummy_greedy_success"] == 1.0
    # The slippery lake defeats the dummy rule (the notes' 1 ~ 2%).
    assert summary["slippery_dummy"]["success"] < 0.05


def test_q_network_learns_the_deterministic_lake(summary):
    assert summary["network_output_is_kernel"]  # Q(s, .) is row s of the bias-free kernel
    assert summary["q_network"]["last_success"] > 0.5  # the notes' 50 ~ 60%
    assert summary["network_greedy_success"] == 1.0


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_same_seed_same_episodes_and_random_walk_formula():
    lake = rl.make_env("FrozenLake-v1", is_slippery=False)
    first = q_learning.train_table(lake, 60, seed=3, gamma=0.99, explore="egreedy")[1]
    again = q_learning.train_table(lake, 60, seed=3, gamma=0.99, explore="egreedy")[1]
    np.testing.assert_array_equal(first, again)
    # One step: no way to the goal; six steps: only the shortest paths, each of probability 4**-6.
    assert q_learning.random_walk_success(1) == 0.0
    assert q_learning.random_walk_success(6) == pytest.approx(
        sum(1 for p in _shortest_paths() if p) * 4.0**-6
    )


def _shortest_paths():
    """The 6-move paths of down/right moves from S to G that avoid the holes (gymnasium's map)."""
    import itertools

    cells = "".join(q_learning.MAP)
    for moves in set(itertools.permutations("DDDRRR")):
        row = col = 0
        safe = True
        for move in moves:
            row, col = row + (move == "D"), col + (move == "R")
            safe &= cells[row * 4 + col] != "H"
        yield safe


def test_q_network_run_is_reproducible():
    lake = rl.make_env("FrozenLake-v1", is_slippery=False)
    runs = [q_learning.train_network(lake, 15, 5, gamma=0.99, learning_rate=0.5) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_array_equal(*(np.asarray(m.layers[-1].kernel) for m, _ in runs))
