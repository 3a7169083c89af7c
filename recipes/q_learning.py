"""Q-learning on FrozenLake: the Q-table and the linear Q-network.

Reproduces A 8.1 on gymnasium's FrozenLake-v1 4x4 map (SFFF / FHFH / FFFH / HFFG, reward 1 at G,
episodes end in a hole or after 100 steps), each step as the notes take it:

1. the random policy: about 1.25% of episodes reach the goal (exactly: the 100-step absorption
   probability of the random walk, computed here);
2. the dummy Q-table `Q(s,a) = r + max Q(s',a')`, ties broken at random: 85 ~ 95% success;
3. discount gamma and exploration (decaying epsilon-greedy, or decaying random noise on Q):
   "slightly better";
4. the slippery lake: the dummy rule drops to 1 ~ 2%; with a learning rate alpha,
   `Q <- (1 - alpha) Q + alpha (r + gamma max Q')` gets 50 ~ 60%;
5. the Q-network of fig. 42: one-hot(16) -> Dense(4, no bias), batch size 1, the squared error to
   the target at the taken action only, plain SGD through the engine's compiled step: the notes'
   "doesn't work well" 50 ~ 60% success, and a greedy policy that reaches the goal.

The rates are the share of successful training episodes, as the notes count them.

    python -m recipes.q_learning
    KERAS_BACKEND=jax python -m recipes.q_learning --seed 1 --quick

Measured (seed 0, 2000 episodes each, JAX, 20 s): random 1.40% (exact 1.394%), dummy 96.6%,
e-greedy 79.8%, noise 94.7%, slippery dummy 2.9%, slippery alpha 35.2% (50.5% over the last 200;
the notes' 50 ~ 60%), Q-network 92.6% on the deterministic lake (greedy policy reaches the goal).

Outputs (under --out, default runs/q_learning): success.png (the running success rate of each
run), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots, rl

keras = cli.lazy_import("keras")

SECTION = "A 8.1"

MAP = ("SFFF", "FHFH", "FFFH", "HFFG")
STEPS = 100  # FrozenLake-v1's time limit
# The notes' success rates (fraction of training episodes that reach the goal), as (low, high).
BANDS = {
    "random": (0.0125, 0.0125),  # "about 1.25%"
    "dummy": (0.85, 0.95),
    "slippery_dummy": (0.01, 0.02),
    "slippery_alpha": (0.50, 0.60),
    "q_network": (0.50, 0.60),
}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    episodes: int = cli.option(2000, "episodes of each Q-table run")
    network_episodes: int = cli.option(2000, "episodes of the Q-network run")
    gamma: float = cli.option(0.99, "discount of the discounted runs")
    alpha: float = cli.option(0.85, "learning rate of the slippery Q-table run")
    learning_rate: float = cli.option(0.1, "SGD learning rate of the Q-network")
    quick: bool = cli.option(False, "fewer episodes (a run of seconds)")

    def __post_init__(self):
        if self.episodes < 1 or self.network_episodes < 1:
            raise cli.UsageError("--episodes and --network-episodes must be at least 1")
        if not (0 < self.gamma <= 1 and 0 < self.alpha <= 1 and self.learning_rate > 0):
            raise cli.UsageError("--gamma and --alpha must be in (0, 1], --learning-rate positive")


QUICK = {"episodes": 400, "network_episodes": 100, "learning_rate": 0.5}


# ---- the random policy -----------------------------------------------------------------------------


def random_walk_success(steps=STEPS):
    """The probability that the uniformly random policy reaches G within `steps` steps.

    A random action on the slippery lake is still a uniformly random move (the slip turns it
    left, straight or right with 1/3 each), so both lakes give this number.
    """
    cells = "".join(MAP)
    size = len(MAP)
    moves = [(0, -1), (1, 0), (0, 1), (-1, 0)]  # left, down, right, up
    transition = np.zeros((16, 16))
    for s, cell in enumerate(cells):
        if cell in "HG":
            transition[s, s] = 1.0  # absorbing
            continue
        row, col = divmod(s, size)
        for dr, dc in moves:
            r, c = min(max(row + dr, 0), size - 1), min(max(col + dc, 0), size - 1)
            transition[s, r * size + c] += 0.25
    start = np.zeros(16)
    start[0] = 1.0
    return float((start @ np.linalg.matrix_power(transition, steps))[cells.index("G")])


# ---- the Q-table -------------------------------------------------------------------------------------


def train_table(env, episodes, seed, *, gamma=1.0, alpha=1.0, explore=None):
    """Q-learning with a table; returns (Q, rewards per episode).

    Args:
        gamma: the discount (1: the notes' dummy rule).
        alpha: the learning rate (1: replace Q(s,a) by the target).
        explore: None (greedy, random among ties), "egreedy" (epsilon = 1 / (i // 100 + 1)) or
            "noise" (argmax of Q + N(0, 1) / (i + 1)), as the notes write them.
    """
    q = np.zeros((env.observation_space.n, env.action_space.n))
    rewards = np.zeros(episodes)
    for i in range(episodes):
        rng = rl.episode_rng(seed, i)
        state = rl.reset(env, seed, i)
        epsilon = 1.0 / (i // 100 + 1)
        done = False
        while not done:
            if explore == "egreedy" and rng.random() < epsilon:
                action = int(rng.integers(env.action_space.n))
            elif explore == "noise":
                action = int(np.argmax(q[state] + rng.standard_normal(env.action_space.n) / (i + 1)))
            else:
                action = rl.argmax_random_tie(q[state], rng)
            next_state, reward, terminated, truncated, _ = env.step(action)
            # A hole or the goal has no future: its target is the reward alone.
            target = reward + (0.0 if terminated else gamma * q[next_state].max())
            q[state, action] = (1 - alpha) * q[state, action] + alpha * target
            rewards[i] += reward
            state, done = next_state, terminated or truncated
    return q, rewards


def greedy_success(env, q_values, seed, episodes=1):
    """The success rate of the greedy policy argmax Q (random among ties)."""
    policy = lambda s, rng: rl.argmax_random_tie(q_values[s], rng)  # noqa: E731
    return float(np.mean([rl.run_episode(env, policy, seed, k)[2].sum() for k in range(episodes)]))


# ---- the Q-network -----------------------------------------------------------------------------------


def build_q_network(seed):
    """one-hot state (16) -> Dense(4, no bias): Q(s, .) is row s of the kernel."""
    init = keras.initializers.RandomUniform(0.0, 0.01, seed=seed)  # the notes' uniform(0, 0.01)
    return keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(4, use_bias=False, kernel_initializer=init)]
    )  # (1, 16) -> (1, 4)


def train_network(env, episodes, seed, *, gamma, learning_rate):
    """The notes' Algorithm 1 without replay; returns (model, rewards per episode).

    epsilon = 1 / (i / 50 + 10) as in the notes' code. Acting reads Q(s, .) = W[s] from the kernel
    (the model's output for one-hot s), so each environment step costs one compiled training step.
    """
    model = build_q_network(seed)
    kernel = model.layers[-1].kernel
    optimizer = keras.optimizers.SGD(learning_rate)
    optimizer.build(model.trainable_variables)

    def step(one_hot, target):
        def loss_fn():
            # The notes' reduce_sum of squares; the target equals Q(s, .) except at the taken action.
            return keras.ops.sum(keras.ops.square(target - model(one_hot)))

        loss, grads = engine.value_and_grad(loss_fn, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    compiled = engine.function(step, [model, optimizer])
    eye = np.eye(16, dtype="float32")
    rewards = np.zeros(episodes)
    for i in range(episodes):
        rng = rl.episode_rng(seed, i)
        state = rl.reset(env, seed, i)
        epsilon = 1.0 / (i / 50 + 10)
        done = False
        while not done:
            q = keras.ops.convert_to_numpy(kernel)  # (16, 4)
            if rng.random() < epsilon:
                action = int(rng.integers(4))
            else:
                action = rl.argmax_random_tie(q[state], rng)
            next_state, reward, terminated, truncated, _ = env.step(action)
            target = q[state].copy()
            target[action] = reward + (0.0 if terminated else gamma * q[next_state].max())
            compiled(eye[state : state + 1], target[None])
            rewards[i] += reward
            state, done = next_state, terminated or truncated
    return model, rewards


def plot_success(path, runs):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, rewards in runs.items():
        ax.plot(np.cumsum(rewards) / np.arange(1, len(rewards) + 1), lw=1, label=label)
    ax.set(xlabel="episode", ylabel="success rate so far", title="FrozenLake 4x4", ylim=(0, 1))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.q_learning",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    cli.reject_unused(
        config,
        ("epochs", "batch_size", "dataset", "data_dir", "resume"),
        "q_learning",
        "keeps no checkpoints",
    )
    out = Path(config.out or "runs/q_learning")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    seed, n = config.seed, config.episodes
    lake = rl.make_env("FrozenLake-v1", is_slippery=False)
    slippery = rl.make_env("FrozenLake-v1", is_slippery=True)
    summary = {"backend": engine.backend(), "seed": seed, "episodes": n, "bands": BANDS}

    # 1. the random policy
    random_rewards = rl.random_returns(lake, n, seed)
    summary["random_exact"] = random_walk_success()
    runs = {"random": random_rewards}
    # 2.-4. the Q-table runs
    settings = {
        "dummy": (lake, {}),
        "egreedy": (lake, {"gamma": config.gamma, "explore": "egreedy"}),
        "noise": (lake, {"gamma": config.gamma, "explore": "noise"}),
        "slippery_dummy": (slippery, {}),
        "slippery_alpha": (slippery, {"gamma": config.gamma, "alpha": config.alpha, "explore": "noise"}),
    }
    tables = {}
    for name, (env, kwargs) in settings.items():
        tables[name], runs[name] = train_table(env, n, seed, **kwargs)
    # 5. the Q-network
    model, runs["q_network"] = train_network(
        lake, config.network_episodes, seed, gamma=config.gamma, learning_rate=config.learning_rate
    )
    network_q = keras.ops.convert_to_numpy(model(np.eye(16, dtype="float32")))
    summary["network_output_is_kernel"] = bool(
        np.allclose(network_q, keras.ops.convert_to_numpy(model.layers[-1].kernel), atol=1e-6)
    )
    summary["network_greedy_success"] = greedy_success(lake, network_q, seed)
    summary["dummy_greedy_success"] = greedy_success(lake, tables["dummy"], seed)

    last = max(1, n // 10)
    print(f"FrozenLake 4x4, seed {seed}: success rate over all episodes (last {last}); the notes' band")
    print(f"  random policy, exact 100-step probability: {summary['random_exact']:.4%}")
    for name, rewards in runs.items():
        band = BANDS.get(name)
        rate, tail = float(rewards.mean()), float(rewards[-max(1, len(rewards) // 10) :].mean())
        summary[name] = {"success": rate, "last_success": tail, "returns": rewards.tolist()}
        if band is None:
            band_text = "  notes: slightly better"
        elif band[0] == band[1]:
            band_text = f"  notes: about {band[0] * 100:g}%"
        else:
            band_text = f"  notes: {band[0] * 100:g}% ~ {band[1] * 100:g}%"
        print(f"  {name:15s} {rate:7.2%} ({tail:7.2%}) over {len(rewards)} episodes{band_text}")
    print(f"  greedy Q-network policy reaches the goal: {summary['network_greedy_success'] == 1.0}")
    plot_success(out / "success.png", runs)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
