"""DQN: deep Q-learning with replay memory and a target network on CartPole.

Reproduces A 8.2, the two fixes of the Q-network of A 8.1 (NIPS 2013, Nature 2015), on gymnasium's
CartPole-v1 (reward 1 a step, at most 500 steps; the random policy lasts about 22):

1. capture and replay: every transition (s, a, r, s', done) goes into a replay memory of
   capacity N; each training step learns from a minibatch drawn uniformly from it, which breaks
   the correlation of consecutive samples;
2. a separate target network Q^ gives the targets; it is a copy of the main network, refreshed
   only every C steps, so the targets do not move with every update. The targets are Double DQN's
   (van Hasselt et al. 2016), the standard fix of max's overestimation: the main network picks
   a' = argmax Q(s', .), the target network values it, y = r + gamma Q^(s', a') (y = r at a
   terminal state);
3. epsilon-greedy acting, epsilon falling linearly from 1 to --epsilon-min;
4. the training step (Huber loss of y - Q(s, a), Adam with gradients clipped to norm 10) compiled
   through the engine on every backend; acting reads the main network's weights into a NumPy
   forward pass. The initial weights (He-uniform) are drawn with NumPy, so every backend starts
   from the same network for a seed.

    python -m recipes.dqn
    python -m recipes.dqn --max-steps 2000 --seed 1   # the short run of the tests (SHORT)

Measured (default run, seed 0, OMP_NUM_THREADS=1, 2 busy CPU cores; the run stops once the mean
return of the last 100 episodes reaches 195, short of CartPole-v1's own bar of 475): solved at
episode 131 on JAX (best mean of 100 198.6, 20,907 updates, 64 s), 116 on TensorFlow (195.4,
19,726 updates, 178 s) and 387 on torch (195.5, 48,747 updates, about 930 s; the machine's load
average was 8-9, a step cost about 18 ms). The backends start from the same network, but their
float rounding differs and the runs part. The short run (the defaults stopped after 2,000
environment steps) ends with a mean return over its last 10 episodes of 119.5, 138.6, 31.6, 151.2,
116.8, 122.9, 129.8, 115.7 for seeds 0-7 on JAX (7 of 8 above 3x the random policy's about 22;
after 3,000 steps all of seeds 0-4 are, 117.1 at worst). All backends: `python
benchmarks/default_runs.py --runs dqn`.

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
    batch_size: int = cli.option(32, "transitions per training minibatch")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    episodes: int = cli.option(600, "episodes at most (the run stops once it is solved)")
    hidden: int = cli.option(64, "units of each of the two hidden layers")
    memory: int = cli.option(10000, "replay memory capacity N")
    target_every: int = cli.option(100, "training steps between target-network copies (C)")
    train_every: int = cli.option(1, "environment steps per training step")
    warmup: int = cli.option(200, "transitions in memory before training starts")
    gamma: float = cli.option(0.98, "discount")
    learning_rate: float = cli.option(2e-3, "Adam learning rate")
    clipnorm: float = cli.option(10.0, "Adam clips each gradient to this norm")
    epsilon_min: float = cli.option(0.05, "final exploration rate")
    epsilon_steps: int = cli.option(1000, "environment steps over which epsilon falls to its minimum")
    max_steps: int = cli.option(
        0, "stop after the episode that reaches this many environment steps (0: no limit)"
    )
    quick: bool = cli.option(False, "a short run (seconds)")

    def __post_init__(self):
        if min(self.episodes, self.hidden, self.memory, self.target_every, self.train_every) < 1:
            raise cli.UsageError("--episodes, --hidden, --memory, --target-every, --train-every >= 1")
        if not (0 < self.gamma <= 1 and self.learning_rate > 0 and 0 <= self.epsilon_min <= 1):
            raise cli.UsageError("--gamma in (0, 1], --learning-rate > 0, --epsilon-min in [0, 1]")
        if self.max_steps < 0 or self.clipnorm <= 0:
            raise cli.UsageError("--max-steps >= 0 and --clipnorm > 0")
        if self.warmup < self.batch_size or self.memory < self.warmup:
            raise cli.UsageError("need --batch-size <= --warmup <= --memory")


# A smoke run (seconds): too short to learn. SHORT is a short run that learns, for the tests: the
# defaults stopped after 2,000 environment steps (about 1,800 updates, 30-70 episodes).
SHORT = {"max_steps": 2000}
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


def initial_weights(hidden, seed):
    """He-uniform kernels (limit sqrt(6 / fan_in)) and zero biases drawn with NumPy, so that every
    backend starts from the same network for the same seed."""
    rng = np.random.default_rng([seed, 2])
    weights = []
    for fan_in, fan_out in ((4, hidden), (hidden, hidden), (hidden, 2)):
        limit = np.sqrt(6.0 / fan_in)
        weights += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32")]
        weights += [np.zeros(fan_out, "float32")]
    return weights


def build_q_network(config, seed):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(config.hidden, activation="relu"),
            keras.layers.Dense(config.hidden, activation="relu"),
            # (B, 4) -> (B, hidden) -> (B, hidden)
            keras.layers.Dense(2),
            # (B, hidden) -> (B, 2): Q(s, left), Q(s, right)
        ]
    )
    model.set_weights(initial_weights(config.hidden, seed))
    return model


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
        self.optimizer = keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)
        self.optimizer.build(self.main.trainable_variables)
        self.state = [self.main, self.target, self.optimizer]

    def sync_target(self):
        self.target.set_weights(self.main.get_weights())

    def step(self, states, actions, rewards, next_states, done):
        # Double DQN: the main network picks a' = argmax Q(s', .), the target network values it:
        # y = r + gamma Q^(s', a'), y = r at a terminal state; no gradient through the targets.
        batch = keras.ops.shape(states)[0]
        next_target = self.target(next_states)  # (B, 2)

        def loss_fn():
            q = self.main(keras.ops.concatenate([states, next_states], axis=0))  # (2B, 2)
            best = keras.ops.argmax(keras.ops.stop_gradient(q[batch:]), axis=1)
            next_q = keras.ops.take_along_axis(next_target, keras.ops.expand_dims(best, 1), 1)
            targets = keras.ops.stop_gradient(rewards + self.gamma * (1.0 - done) * next_q[:, 0])
            taken = keras.ops.take_along_axis(q[:batch], keras.ops.expand_dims(actions, 1), 1)
            return keras.ops.mean(keras.losses.huber(targets[:, None], taken))

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


class _Stop(Exception):
    pass


def fingerprint_of(model):
    return float(np.abs(keras.ops.convert_to_numpy(model.weights[0])).sum())


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
            raise _Stop  # solved
        if config.max_steps and env_steps >= config.max_steps:
            raise _Stop
        episode = episode_number - 1
        weights = agent.main.get_weights()
        target_fingerprint = fingerprint_of(agent.target)
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
                fingerprint = fingerprint_of(agent.target)
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
    except _Stop:
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
    engine.save_model(agent.main, out / "q_network.keras")
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
