"""policy_gradient (A 8.3): REINFORCE with a baseline on CartPole-v1, through the engine."""

import json

import numpy as np
import pytest

from recipes import policy_gradient


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy_gradient")
    assert policy_gradient.main(["--quick", "--out", str(out)]) == 0
    for name in ("returns.png", "metrics.csv", "policy.keras"):
        assert (out / name).stat().st_size > 0
    return out, json.loads((out / "summary.json").read_text())


def test_short_run_beats_the_random_policy_threefold(run):
    _, summary = run
    assert 18 < summary["random_mean"] < 27  # 100 episodes; CartPole's random policy lasts about 22
    assert summary["last10_mean"] >= 3 * max(22.0, summary["random_mean"])
    assert summary["numpy_policy_matches_model"]  # the acting NumPy policy is the trained model


def test_resume_gives_the_same_episodes(run, tmp_path):
    # Same seed -> the same episode returns; a run stopped halfway and resumed equals the whole run.
    full_out, full = run
    out = tmp_path / "halves"
    half = policy_gradient.QUICK["epochs"] // 2
    assert policy_gradient.main(["--quick", "--epochs", str(half), "--out", str(out)]) == 0
    first = json.loads((out / "summary.json").read_text())["returns"]
    assert first == full["returns"][: len(first)]
    assert policy_gradient.main(["--quick", "--resume", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["returns"] == full["returns"]


def test_returns_to_go_and_advantages():
    np.testing.assert_allclose(policy_gradient.returns_to_go([1.0, 1.0, 1.0], 0.5), [1.75, 1.5, 1.0])
    episodes = [(np.ones((n, 4)), np.zeros(n, "int32"), np.ones(n)) for n in (3, 5)]
    _, _, advantages, mask = policy_gradient.batch_arrays(episodes, 0.9)
    assert mask.sum() == 8 and advantages.shape == (2, policy_gradient.MAX_STEPS)
    valid = advantages[mask == 1]
    assert abs(valid.mean()) < 1e-6 and valid.std() == pytest.approx(1.0, rel=1e-5)
    assert np.all(advantages[mask == 0] == 0)
