"""Shared pieces of the reinforcement-learning recipes (A 8): seeded gymnasium environments,
episodes of a NumPy policy, the random policy's baseline, and a return-curve figure.

Every episode `k` of a run resets its environment with seed `seed + k` and draws its own random
numbers from `numpy.random.default_rng([seed, k])`, so an episode's course depends only on the
policy's weights and (seed, k): a run is reproducible, and one resumed at episode k sees the same
episodes as the uninterrupted run.
"""

import numpy as np

from recipes.common import cli, plots


def make_env(name, **kwargs):
    """`gymnasium.make(name, **kwargs)`; gymnasium is imported here, on first use."""
    gymnasium = cli.lazy_import("gymnasium")
    return gymnasium.make(name, **kwargs)


def episode_rng(seed, episode):
    """The NumPy generator of episode `episode` of a run with `seed`."""
    return np.random.default_rng([seed, episode])


def reset(env, seed, episode):
    """Resets `env` for episode `episode` (seed `seed + episode`, the action space too)."""
    env.action_space.seed(seed + episode)
    state, _ = env.reset(seed=seed + episode)
    return state


def argmax_random_tie(values, rng):
    """The index of the largest value, a random one among ties (an all-zero Q row is a coin toss).

    `np.argmax` would always pick the first, so an untrained Q-table would only ever move left.
    """
    values = np.asarray(values)
    return int(rng.choice(np.flatnonzero(values == values.max())))


def run_episode(env, policy, seed, episode):
    """Plays one episode with `policy(state, rng) -> action`.

    Returns:
        (states, actions, rewards) as arrays; the episode ends when the environment terminates or
        truncates (CartPole-v1 at 500 steps, FrozenLake-v1 at 100).
    """
    rng = episode_rng(seed, episode)
    state = reset(env, seed, episode)
    states, actions, rewards = [], [], []
    done = False
    while not done:
        action = policy(state, rng)
        next_state, reward, terminated, truncated, _ = env.step(action)
        states.append(state)
        actions.append(action)
        rewards.append(reward)
        state, done = next_state, terminated or truncated
    return np.asarray(states), np.asarray(actions), np.asarray(rewards, dtype="float64")


def random_returns(env, episodes, seed):
    """The returns of `episodes` episodes of the uniformly random policy."""
    n = env.action_space.n
    return np.asarray(
        [
            run_episode(env, lambda s, rng: int(rng.integers(n)), seed, k)[2].sum()
            for k in range(episodes)
        ]
    )


def plot_returns(path, returns, title, *, window=10, target=None, random_mean=None):
    """Every episode's return (thin), its moving average over `window` episodes, and the targets."""
    plt = plots.pyplot()
    returns = np.asarray(returns, dtype="float64")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    episodes = np.arange(1, len(returns) + 1)
    ax.plot(episodes, returns, lw=0.6, color="0.6", label="episode return")
    if len(returns) >= window:
        average = np.convolve(returns, np.ones(window) / window, mode="valid")
        ax.plot(episodes[window - 1 :], average, lw=1.4, label=f"mean of {window}")
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:g}")
    if random_mean is not None:
        ax.axhline(random_mean, color="r", ls=":", lw=0.8, label=f"random policy {random_mean:.1f}")
    ax.set(xlabel="episode", ylabel="return", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
