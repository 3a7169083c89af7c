"""DQN: deep Q-learning with replay memory and a target network on CartPole.

Reproduces A 8.2, the two fixes of the Q-network of A 8.1 (NIPS 2013, Nature 2015), on gymnasium's
CartPole-v1 (reward 1 a step, at most 500 steps; the random policy lasts about 22):

1. capture and replay: every transition (s, a, r, s', done) goes into a replay memory of
   capacity N; each training step learns from a minibatch drawn uniformly from it, which breaks
   the correlation of consecutive samples;
2. a separate target network Q^ gives the targets y = r + gamma max_a' Q^(s', a') (y = r at a
   terminal state); it is a copy of the main network, refreshed only every C steps, so the
   targets do not move with every update;
3. epsilon-greedy acting, epsilon falling linearly from 1 to --epsilon-min;
4. the training step (Huber loss of y - Q(s, a), Adam) compiled through the engine on every
   backend; acting reads the main network's weights into a NumPy forward pass.

    python -m recipes.dqn
    KERAS_BACKEND=jax python -m recipes.dqn --episodes 300 --seed 1

Measured (default run, seed 0, JAX, 2 CPU cores): solved at episode 305 (mean return of the last 100
episodes 198.8 >= 195; the run stops there, short of CartPole-v1's own bar of 475), 38,039
environment steps and 37,540 updates in 88 s. TensorFlow and torch draw other initial weights from
the same seed and did not solve it in 400 episodes: best mean of 100 79.1 (TensorFlow, 23,627
updates, 179 s) and 118.5 (torch, OMP_NUM_THREADS=1, 31,704 updates, 190 s). All backends:
`python benchmarks/default_runs.py --runs dqn`.

A checkpoint after every episode holds both networks, Adam's state, the replay memory, the step
counters and the minibatch generator's state (each episode draws from its own generator), so
`--resume` continues exactly where it stopped: a resumed run equals the uninterrupted one.

Outputs (under --out, default runs/dqn): returns.png (the return curve), metrics.csv (one row
an episode), checkpoints/, q_network.keras, summary.json.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, rl

keras = cli.lazy_import("keras")

SECTION = "A 8.2"

ENV = "CartPole-v1"
SOLVED = 195.0  # CartPole-v0's bar: a mean return of 195 over 100 consecutive episodes


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(64, "transitions per training minibatch")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    episodes: int = cli.option(400, "episodes at most (the run stops once it is solved)")
    hidden: int = cli.option(64, "units of each of the two hidden layers")
    memory: int = cli.option(10000, "replay memory capacity N")
    target_every: int = cli.option(200, "training steps between target-network copies (C)")
    train_every: int = cli.option(1, "environment steps per training step")
    warmup: int = cli.option(500, "transitions in memory before training starts")
    gamma: float = cli.option(0.99, "discount")
    learning_rate: float = cli.option(1e-3, "Adam learning rate")
    epsilon_min: float = cli.option(0.05, "final exploration rate")
    epsilon_steps: int = cli.option(5000, "environment steps over which epsilon falls to its minimum")
    quick: bool = cli.option(False, "a short run (seconds)")

    def __post_init__(self):
        if min(self.episodes, self.hidden, self.memory, self.target_every, self.train_every) < 1:
            raise cli.UsageError("--episodes, --hidden, --memory, --target-every, --train-every >= 1")
        if not (0 < self.gamma <= 1 and self.learning_rate > 0 and 0 <= self.epsilon_min <= 1):
            raise cli.UsageError("--gamma in (0, 1], --learning-rate > 0, --epsilon-min in [0, 1]")
        if self.warmup < self.batch_size or self.memory < self.warmup:
            raise cli.UsageError("need --batch-size <= --warmup <= --memory")


# A smoke run: DQN needs thousands of updates on CartPole (the default run's mean first passes 3x the
# random policy after about 100 episodes), more than a test can afford on three backends.
QUICK = {"episodes": 20, "hidden": 16, "batch_size": 16, "warmup": 100, "target_every": 25}


class ReplayMemory:
    """A ring buffer of the last `capacity` transitions (the notes' replay memory D)."""

    def __init__(self, capacity, state_size):
        self.states = np.zeros((capacity, state_size), "float32")
        self.actions = np.zeros(capacity, "int32")
        self.rewards = np.zeros(capacity, "float32")
        self.next_states = np.zeros((capacity, state_size), "float32")
        self.done = np.zeros(capacity, "float32")
        self.capacity, self.size, self.next = capacity, 0, 0

    def add(self, state, action, reward, next_state, done):
        i = self.next
        self.states[i], self.actions[i], self.rewards[i] = state, action, reward
        self.next_states[i], self.done[i] = next_state, done
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size, rng):
        idx = rng.integers(self.size, size=batch_size)
        return (
            self.states[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_states[idx],
            self.done[idx],
        )


def build_q_network(config, seed):
    init = keras.initializers.HeUniform
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(config.hidden, activation="relu", kernel_initializer=init(seed)),
            keras.layers.Dense(config.hidden, activation="relu", kernel_initializer=init(seed + 1)),
            # (B, 4) -> (B, hidden) -> (B, hidden)
            keras.layers.Dense(2, kernel_initializer=init(seed + 2)),
            # (B, hidden) -> (B, 2): Q(s, left), Q(s, right)
        ]
    )


def numpy_q(weights, state):
    """Q(s, .) of the main network in NumPy, for acting (one state at a time)."""
    h = np.asarray(state, "float32")
    for i in range(0, len(weights), 2):
        h = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            h = np.maximum(h, 0.0)
    return h


class DQN:
    def __init__(self, config):
        self.gamma = config.gamma
        self.main = build_q_network(config, config.seed)
        self.target = build_q_network(config, config.seed + 10)
        self.sync_target()  # theta^- = theta
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self.optimizer.build(self.main.trainable_variables)
        self.state = [self.main, self.target, self.optimizer]

    def sync_target(self):
        self.target.set_weights(self.main.get_weights())

    def step(self, states, actions, rewards, next_states, done):
        # y = r + gamma max_a' Q^(s', a'), y = r at a terminal state; no gradient through Q^.
        next_q = keras.ops.max(self.target(next_states), axis=1)
        targets = keras.ops.stop_gradient(rewards + self.gamma * (1.0 - done) * next_q)

        def loss_fn():
            q = self.main(states)  # (B, 2)
            taken = keras.ops.take_along_axis(q, keras.ops.expand_dims(actions, 1), axis=1)[:, 0]
            return keras.ops.mean(keras.losses.huber(targets[:, None], taken[:, None]))

        variables = self.main.trainable_variables
        loss, grads = engine.value_and_grad(loss_fn, variables)
        self.optimizer.apply(grads, variables)
        return loss


class RunState:
    """What a checkpoint holds besides the networks and Adam, as Keras variables: the replay
    memory, [size, next slot, environment steps, training steps] and the minibatch generator's
    PCG64 state (128-bit state and increment, its cached half-word, as ten 32-bit words)."""

    def __init__(self, memory):
        self.memory = memory
        self.variables = {
            name: keras.Variable(getattr(memory, name), trainable=False, name=f"memory_{name}")
            for name in ("states", "actions", "rewards", "next_states", "done")
        }
        self.variables["counters"] = keras.Variable(np.zeros(4, "int32"), trainable=False)
        self.variables["generator"] = keras.Variable(np.zeros(10, "int32"), trainable=False)

    def save(self, env_steps, train_steps, rng):
        memory = self.memory
        for name in ("states", "actions", "rewards", "next_states", "done"):
            self.variables[name].assign(getattr(memory, name))
        counters = [memory.size, memory.next, env_steps, train_steps]
        self.variables["counters"].assign(np.asarray(counters, "int32"))
        self.variables["generator"].assign(generator_words(rng))

    def load(self, rng):
        """Fills the memory and `rng` from the variables; returns (env_steps, train_steps)."""
        memory = self.memory
        for name in ("states", "actions", "rewards", "next_states", "done"):
            getattr(memory, name)[:] = keras.ops.convert_to_numpy(self.variables[name])
        counters = keras.ops.convert_to_numpy(self.variables["counters"]).tolist()
        memory.size, memory.next, env_steps, train_steps = counters
        set_generator_words(rng, keras.ops.convert_to_numpy(self.variables["generator"]))
        return env_steps, train_steps


def generator_words(rng):
    state = rng.bit_generator.state
    words = [(state["state"][k] >> (32 * i)) & 0xFFFFFFFF for k in ("state", "inc") for i in range(4)]
    words += [state["has_uint32"], state["uinteger"]]
    return np.asarray(words, "uint32").view("int32")


def set_generator_words(rng, words):
    w = [int(x) for x in np.asarray(words, "int32").view("uint32")]
    value = lambda k: sum(w[4 * k + i] << (32 * i) for i in range(4))  # noqa: E731
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": value(0), "inc": value(1)},
        "has_uint32": w[8],
        "uinteger": w[9],
    }


class _Solved(Exception):
    pass


def epsilon_at(config, step):
    return max(config.epsilon_min, 1.0 - (1.0 - config.epsilon_min) * step / config.epsilon_steps)


def train(config, env, out, log=print):
    """Runs up to `config.episodes` episodes (from the last checkpoint in `out` with --resume);
    returns (agent, returns, target-copy record, the last losses). The record's target changes
    are those this process saw."""
    agent = DQN(config)
    step = engine.function(agent.step, agent.state)
    memory = ReplayMemory(config.memory, 4)
    sample_rng = np.random.default_rng([config.seed, 1])
    run_state = RunState(memory)
    networks = {"main": agent.main, "target": agent.target, "optimizer": agent.optimizer}
    loop = engine.Loop(
        out,
        {**networks, **run_state.variables},
        resume=config.resume,
        overwrite=config.overwrite,
        verbose=log is print,
        # --episodes may change on --resume: the run goes on to the new number.
        config={k: v for k, v in dataclasses.asdict(config).items() if k != "episodes"},
    )
    env_steps = train_steps = 0
    if loop.epoch:
        env_steps, train_steps = run_state.load(sample_rng)
    returns = [row["return"] for row in loop.history]
    losses, target_changes = [], []

    def play(episode_number):
        nonlocal env_steps, train_steps
        if len(returns) >= 100 and np.mean(returns[-100:]) >= SOLVED:
            raise _Solved
        episode = episode_number - 1
        weights = agent.main.get_weights()
        target_fingerprint = float(np.abs(agent.target.get_weights()[0]).sum())
        rng = rl.episode_rng(config.seed, episode)
        state = rl.reset(env, config.seed, episode)
        done, episode_return = False, 0.0
        while not done:
            if rng.random() < epsilon_at(config, env_steps):
                action = int(rng.integers(2))
            else:
                action = int(np.argmax(numpy_q(weights, state)))
            next_state, reward, terminated, truncated, _ = env.step(action)
            # A truncated episode (500 steps) is not terminal: its target still bootstraps.
            memory.add(state, action, reward, next_state, float(terminated))
            state, done = next_state, terminated or truncated
            episode_return += reward
            env_steps += 1
            if memory.size >= config.warmup and env_steps % config.train_every == 0:
                losses.append(step(*memory.sample(config.batch_size, sample_rng)))
                train_steps += 1
                if train_steps % config.target_every == 0:
                    agent.sync_target()
                weights = agent.main.get_weights()
                fingerprint = float(np.abs(agent.target.get_weights()[0]).sum())
                if fingerprint != target_fingerprint:
                    target_changes.append(train_steps)
                    target_fingerprint = fingerprint
        returns.append(episode_return)
        mean100 = float(np.mean(returns[-100:]))
        log(f"episode {episode + 1}: return {episode_return:.0f}, mean of last 100 {mean100:.1f}")
        run_state.save(env_steps, train_steps, sample_rng)
        return {"return": episode_return, "mean_last_100": mean100}

    try:
        loop.run(play, epochs=config.episodes)
    except _Solved:
        pass
    losses = [float(keras.ops.convert_to_numpy(x)) for x in losses[-100:]]
    record = {"env_steps": env_steps, "train_steps": train_steps, "target_changes": target_changes}
    return agent, np.asarray(returns), record, losses


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.dqn", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, ("epochs", "dataset", "data_dir"), "dqn", "counts --episodes")
    out = Path(config.out or "runs/dqn")
    engine.set_seed(config.seed)
    env = rl.make_env(ENV)
    random_mean = float(rl.random_returns(env, 100, config.seed + 10**6).mean())
    print(f"DQN on {ENV}: replay memory {config.memory}, target copied every {config.target_every}")
    start = time.perf_counter()
    agent, returns, record, losses = train(
        config, env, out, log=print if not config.quick else lambda m: None
    )
    seconds = time.perf_counter() - start
    means = [float(np.mean(returns[max(0, i - 99) : i + 1])) for i in range(len(returns))]
    solved_at = next((i + 1 for i, m in enumerate(means) if i >= 99 and m >= SOLVED), None)
    rl.plot_returns(
        out / "returns.png",
        returns,
        f"DQN on {ENV}",
        window=100 if len(returns) >= 100 else 10,
        target=SOLVED,
        random_mean=random_mean,
    )
    agent.main.save(out / "q_network.keras")
    summary = {
        "backend": engine.backend(),
        "seed": config.seed,
        "episodes": len(returns),
        "seconds": seconds,
        "random_mean": random_mean,
        "last10_mean": float(returns[-10:].mean()),
        "best_mean_100": max(means[99:], default=None),
        "solved_at_episode": solved_at,
        "target_every": config.target_every,
        "returns": returns.tolist(),
        "final_losses": losses,
        **record,
    }
    print(
        f"{len(returns)} episodes ({record['env_steps']} steps, {record['train_steps']} updates) in "
        f"{seconds:.0f} s: mean return of the last 10 {summary['last10_mean']:.1f}, random "
        f"{random_mean:.1f}; "
        + (f"solved (mean of 100 >= {SOLVED:g}) at episode {solved_at}" if solved_at else "not solved")
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
