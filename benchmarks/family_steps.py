"""Training steps per second of one or more recipes per README family, on every backend (not a test).

    python benchmarks/family_steps.py                          # 14 recipes x 3 backends, ~15 minutes
    OMP_NUM_THREADS=1 python benchmarks/family_steps.py        # torch on one thread: a busy machine
    python benchmarks/family_steps.py --families dcgan sequence --backends torch jax
    python benchmarks/family_steps.py --recipes vae dqn --repeats 7 --seconds 2

The full run took 17 minutes on 2 CPU cores shared with other jobs (load 8-10), torch on one
thread: on such a machine torch's two intra-op threads ran char_rnn 6x slower than one.

Each timed step is the recipe's own training step, built by the recipe's own functions with its
default sizes (a random batch of the recipe's shapes, or its own data where that is cheap):
  foundations   mnist_mlp     the notes' CNN (default --model cnn), model.fit's step, batch 64
  classical     rbm           one CD-1 update of the 784 x 64 RBM (SGD + momentum), batch 100
  rl            dqn           one Double-DQN TD update (Adam, clipnorm) on a replay batch of 32
  autoencoders  vae           one -ELBO step of the MLP VAE (N_h 500, N_z 20), batch 128
  vision        segmentation  the FCN's fit step on 16 scenes of 64x64
                detection     the YOLO v1's fit step on 32 scenes
                vit           the ViT's fit step on 64 digits
  dcgan         dcgan         one D and one G update (benchmarks/native/common.py's DCGAN), batch 64
  gans          wgan          5 critic updates and 1 G update (weight clipping, RMSprop), batch 64
  sequence      nmt_attention Bahdanau NMT, train_on_batch on 128 date pairs (as native_compare.py)
                transformer   the Transformer, the same batch
                char_rnn      min-char-rnn (default --model minimal): one window of 25, batch 1
                cifar_cnn     A 5.2's CNN (3,445,034 parameters) on 64 images of 32x32x3
                neural_style  one Adam step on the pixels, longer side 256 (VGG19, --weights random)
fit-based recipes are timed through `train_on_batch` (fit's compiled step, the recipe's compile:
optimizer, schedule, loss, metrics, jit_compile, and on torch the engine's fast paths that the
recipe's `engine.Loop` installs), the others through the `engine.function` the
recipe compiles (jax.jit / tf.function / torch eager); neural_style runs the recipe's own
`style_transfer.optimize` loop, timed between the updates from its callback.

Protocol: the three backends run in three processes at once (Keras picks its backend once per
process), each holding the same recipe: all build it and take `--warmup` untimed steps (compiling),
then `--repeats` rounds time each backend for `--seconds` (at least `--min-steps` steps) while the
others wait idle, backends interleaved (the order rotates each round); a rate is steps over wall
time, waiting for the last step's result. The table shows the median round per backend; spread =
fastest / slowest backend. The machine's load average is printed before and after: on a shared
machine the numbers are noisy. Writes the results as JSON (--json, default runs/family_steps.json);
each child's log goes to family_steps_BACKEND.log beside it.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

if not __package__:  # run as a script: the project root on the path, for `benchmarks.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import timing  # noqa: E402

FAMILIES = {
    "foundations": "Foundations",
    "classical": "Classical machine learning",
    "rl": "Reinforcement learning",
    "autoencoders": "Autoencoders and VAE",
    "vision": "Vision II",
    "dcgan": "DCGAN",
    "gans": "The GAN family",
    "sequence": "Sequence models, CNNs, style transfer",
}
RECIPES = {  # recipe -> family, in the table's order
    "mnist_mlp": "foundations",
    "rbm": "classical",
    "dqn": "rl",
    "vae": "autoencoders",
    "segmentation": "vision",
    "detection": "vision",
    "vit": "vision",
    "dcgan": "dcgan",
    "wgan": "gans",
    "nmt_attention": "sequence",
    "transformer": "sequence",
    "char_rnn": "sequence",
    "cifar_cnn": "sequence",
    "neural_style": "sequence",
}
PROTOCOL = (
    "protocol: warm-up ({warmup} steps, compiling) excluded; one process per backend, backends "
    "interleaved round by round; median of {repeats} rounds of >= {seconds} s (>= {min_steps} "
    "steps) each"
)


# ---------------------------------------------------------------------------------------------
# The child: builds one recipe's step at a time on its backend and times rounds of it


@dataclasses.dataclass
class Bench:
    """A recipe's training step on the current backend: `step()` trains once, `sync(out)` waits."""

    model: str
    batch: int
    parameters: int
    step: object
    sync: object

    def warm_up(self, steps):
        for _ in range(steps):
            self.sync(self.step())

    def time(self, seconds, min_steps):
        return timing.rate(self.step, self.sync, seconds, min_steps)

    def close(self):
        pass


class CallbackBench:
    """A recipe whose training loop is not ours to call step by step: the loop runs in a thread
    and waits in its per-step callback until `time` lets it take the next step."""

    class _Stop(Exception):
        pass

    def __init__(self, model, batch, parameters, run):
        self.model, self.batch, self.parameters = model, batch, parameters
        self._go, self._done = threading.Semaphore(0), threading.Semaphore(0)
        self._stop, self.error = False, None
        self._thread = threading.Thread(target=self._main, args=(run,), daemon=True)
        self._thread.start()

    def callback(self, *_):
        self._done.release()
        self._go.acquire()
        if self._stop:
            raise self._Stop

    def _main(self, run):
        self._go.acquire()
        try:
            run(self.callback)
        except self._Stop:
            pass
        except BaseException as error:  # reported by the next `_one`
            self.error = error
            self._done.release()

    def _one(self):
        self._go.release()
        self._done.acquire()
        if self.error is not None:
            raise RuntimeError(f"the training loop failed: {self.error!r}") from self.error

    def warm_up(self, steps):
        for _ in range(steps):
            self._one()

    def time(self, seconds, min_steps):
        count, start = 0, time.perf_counter()
        while count < min_steps or time.perf_counter() - start < seconds:
            self._one()  # returns once the update's losses are on the host
            count += 1
        return count / (time.perf_counter() - start)

    def close(self):
        self._stop = True
        self._go.release()
        self._thread.join(timeout=60)


def _float(value):
    import keras

    return float(keras.ops.convert_to_numpy(value))


def _fit(model, x, y, label):
    """`model.fit`'s compiled step on one batch (`train_on_batch` returns host values), with what
    the recipe's `engine.Loop` installs for its model and optimizer (on torch: the in-place
    optimizer update and the functional graph call)."""
    from recipes import engine

    engine.fast_updates([model.optimizer], fit=True)
    engine.fast_calls([model])
    return Bench(label, len(x), model.count_params(), lambda: model.train_on_batch(x, y), lambda _: None)


def _images(rng, batch, shape, classes=10):
    return rng.uniform(size=(batch, *shape)).astype("float32"), rng.integers(classes, size=batch)


def _mnist_mlp(rng):
    from recipes import mnist_mlp
    from recipes.common import image_classification

    config = mnist_mlp.Config()  # --model cnn
    x, y = _images(rng, config.batch_size, (28, 28, 1))
    # The cosine spans the default run (4,000 digits and 2 shifted copies); its length is all it reads.
    model = image_classification._compiled(mnist_mlp.build_cnn, config, 12_000)
    return _fit(model, x, y, "CNN (B 2.7)")


def _cifar_cnn(rng):
    from recipes import cifar_cnn
    from recipes.common import image_classification

    config = cifar_cnn.Config()

    def build():
        return cifar_cnn.build_model(config.batch_norm, seed=config.seed, bn_momentum=config.bn_momentum)

    x, y = _images(rng, config.batch_size, (32, 32, 3))
    return _fit(image_classification._compiled(build, config, 1_500), x, y, "CNN (A 5.2)")


def _vit(rng):
    from recipes import vit
    from recipes.common import image_classification

    config = vit.Config()
    x, y = _images(rng, config.batch_size, (28, 28, 1))
    model = image_classification._compiled(lambda: vit.build_model(config), config, 12_000)
    return _fit(model, x, y, "ViT (7x7 patches, d 64, 2 blocks)")


def _segmentation(rng):
    from datasets.scenes import make_scenes
    from recipes import segmentation

    config = segmentation.Config()
    scenes = make_scenes(config.batch_size, seed=[config.seed, 0], size=config.size)
    steps = config.epochs * -(-config.train_size // config.batch_size)
    model = segmentation.compiled_model(config, steps)
    return _fit(model, scenes.images, scenes.masks, f"FCN ({config.size}x{config.size})")


def _detection(rng):
    import keras

    import layers
    from recipes import detection

    config = detection.Config()
    scenes = detection.load_scenes(config.batch_size, [config.seed, 1])
    y = detection.yolo_targets(scenes.boxes, scenes.labels, config.grid_size)
    model = detection.build_model(config.grid_size, config.boxes_per_cell, config.width)
    steps = config.epochs * -(-config.train_size // config.batch_size)
    model.compile(  # as detection.main compiles it
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
        ),
        loss=layers.YOLOv1Loss(
            config.boxes_per_cell, len(detection.CLASS_NAMES), config.lambda_coord, config.lambda_noobj
        ),
        jit_compile="auto",
    )
    return _fit(model, scenes.images, y, f"YOLO v1 (S {config.grid_size}, B {config.boxes_per_cell})")


def _rbm(rng):
    import keras

    from recipes import engine, rbm

    config = rbm.Config()
    engine.set_seed(config.seed)
    v = keras.ops.convert_to_tensor(rbm.load_binary("train")[: config.batch_size])
    model = rbm.RBM(784, config.hidden, config)
    step = engine.function(model.cd_step, [model.optimizer, model.noise, *model.variables])
    parameters = sum(math.prod(w.shape) for w in model.variables)
    return Bench(f"RBM 784 x {config.hidden}, CD-{config.cd_k}", config.batch_size, parameters,
                 lambda: step(v), _float)  # fmt: skip


def _dqn(rng):
    from recipes import dqn, engine

    config = dqn.Config()
    engine.set_seed(config.seed)
    agent = dqn.DQN(config)
    step = engine.function(agent.step, agent.state)
    memory = dqn.ReplayMemory(config.memory, 4)
    for _ in range(config.warmup):  # CartPole-like transitions
        state = rng.normal(scale=0.1, size=4)
        memory.add(
            state, rng.integers(2), 1.0, state + rng.normal(scale=0.01, size=4), rng.random() < 0.05
        )
    batch = memory.sample(config.batch_size, rng)
    return Bench(f"Q-network 4-{config.hidden}-{config.hidden}-2", config.batch_size,
                 agent.main.count_params(), lambda: step(*batch), _float)  # fmt: skip


def _vae(rng):
    from recipes import engine, vae
    from recipes.common import binary_digits

    config = vae.Config()
    engine.set_seed(config.seed)
    x = binary_digits.load(config.batch_size, 1, config.batch_size)[0]
    model = vae.VAE(config)
    step = engine.function(model.step, list(model.state.values()))
    parameters = model.encoder.count_params() + model.decoder.count_params()
    return Bench(f"MLP VAE (N_h {config.hidden}, N_z {config.latent})", config.batch_size, parameters,
                 lambda: step(x), lambda out: _float(out["loss"]))  # fmt: skip


def _native_project(name, label):
    """The DCGAN, Bahdanau and Transformer steps exactly as benchmarks/native_compare.py times them."""
    from benchmarks.native import common

    project = common.project(name)
    return Bench(label, project.batch, sum(project.counts.values()), project.step, project.sync)


def _dcgan(rng):
    return _native_project("dcgan", "DCGAN (G 6,974,849 + D 3,740,175)")


def _nmt_attention(rng):
    return _native_project("bahdanau", "Bahdanau NMT")


def _transformer(rng):
    return _native_project("transformer", "Transformer")


def _wgan(rng):
    from recipes import engine, wgan

    config = wgan.Config()  # --penalty clip, --arch conv
    gan = wgan.WGAN(config)
    step = engine.function(gan.step, list(gan.state.values()), jit=config.jit)
    n, batch = config.critic_steps, config.batch_size
    real = rng.uniform(-1.0, 1.0, size=(n, batch, 28, 28, 1)).astype("float32")
    parameters = gan.generator.count_params() + gan.critic.count_params()
    return Bench(f"WGAN (clip, {n} critic + 1 G updates)", batch, parameters, lambda: step(real),
                 lambda out: _float(out["g_loss"]))  # fmt: skip


def _char_rnn(rng):
    import keras
    import numpy as np

    import recipes.char_rnn as char_rnn
    from datasets.text import load_text
    from recipes import engine
    from recipes.char_rnn import data, model

    config = char_rnn.apply_presets(char_rnn.Config(), [])  # --model minimal
    # train.train_corpus's set-up, up to its step.
    engine.set_seed(config.seed)
    text = load_text(config.dataset, config.data_dir)
    vocab = data.char_vocabulary(text)
    x, y = data.streams(data.encode(vocab, text), config.batch_size, config.seq_length)
    net = model.build_model(config, len(vocab))
    optimizer = model.build_optimizer(config, len(x))
    optimizer.build(net.trainable_variables)
    state_vars = [
        keras.Variable(np.zeros(s, "float32"), trainable=False, name=f"state_{i}")
        for i, s in enumerate(net.state_shapes(config.batch_size))
    ]
    step = model.make_step(net, optimizer, state_vars, "sum" if config.model == "minimal" else "mean")
    label = f"min-char-rnn (H {config.hidden}, window {config.seq_length})"
    return Bench(label, config.batch_size, net.count_params(), lambda: step(x[0], y[0]), _float)


def _neural_style(rng):
    from recipes import engine, neural_style
    from recipes.common import style_transfer

    config = neural_style.Config(weights="random")  # the same arithmetic, no download
    content_rgb, style_rgb = neural_style.load_images(config)
    engine.set_seed(config.seed)
    layers = list(dict.fromkeys((*style_transfer.STYLE_LAYERS, style_transfer.CONTENT_LAYER)))
    features = style_transfer.build_features(layers, config.pooling, config.weights, config.seed)
    content_features, grams = neural_style.prepare(features, content_rgb, style_rgb)
    image = neural_style.starting_image(config, content_rgb)
    loss_fn, state = neural_style.build_loss(features, image, content_features, grams)
    h, w = content_rgb.shape[:2]

    def run(callback):
        style_transfer.optimize(
            loss_fn,
            image,
            steps=10**9,
            optimizer="adam",
            learning_rate=config.learning_rate,
            callback=callback,
            state=state,
            jit=config.jit,
        )

    return CallbackBench(f"VGG19 to conv5_1, Adam on {h}x{w} pixels", 1, features.count_params(), run)


BUILDERS = {
    "mnist_mlp": _mnist_mlp,
    "rbm": _rbm,
    "dqn": _dqn,
    "vae": _vae,
    "segmentation": _segmentation,
    "detection": _detection,
    "vit": _vit,
    "dcgan": _dcgan,
    "wgan": _wgan,
    "nmt_attention": _nmt_attention,
    "transformer": _transformer,
    "char_rnn": _char_rnn,
    "cifar_cnn": _cifar_cnn,
    "neural_style": _neural_style,
}


def child():
    """Serves JSON-line commands on stdin (build, time, drop) and answers on the original stdout;
    everything the recipes print goes to stderr."""
    import gc

    import numpy as np

    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from recipes import engine

    engine.configure()

    def answer(**message):
        protocol.write(json.dumps(message) + "\n")

    answer(backend=engine.backend())
    bench = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["op"] == "build":
                started = time.perf_counter()
                bench = BUILDERS[command["recipe"]](np.random.default_rng(0))
                built = time.perf_counter()
                bench.warm_up(command["warmup"])
                answer(model=bench.model, batch=bench.batch, parameters=int(bench.parameters),
                       build_s=round(built - started, 2),
                       warmup_s=round(time.perf_counter() - built, 2))  # fmt: skip
            elif command["op"] == "time":
                answer(rate=bench.time(command["seconds"], command["min_steps"]))
            elif command["op"] == "drop":
                if bench is not None:
                    bench.close()
                bench = None
                gc.collect()
                answer(dropped=True)
        except Exception as error:  # one recipe failing on one backend is a row's blank, not an end
            import traceback

            traceback.print_exc()
            bench = None
            answer(error=f"{type(error).__name__}: {error}".splitlines()[0][:200])


# ---------------------------------------------------------------------------------------------
# The parent: three children, the recipes one at a time, backends interleaved


class Child:
    def __init__(self, backend, log):
        self.backend, self.error = backend, None
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=timing.backend_env(backend),
            cwd=timing.ROOT,
            text=True,
            bufsize=1,
        )

    def send(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.proc.stdout.readline()
        if not line:
            self.error = f"the {self.backend} process ended (exit {self.proc.wait()}); see its log"
            return {"error": self.error}
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


def versions():
    from importlib import metadata

    found = {}
    for package in ("keras", "tensorflow", "torch", "jax"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def _rate_text(value):
    return "—" if value is None else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def summary(rows, backends):
    """Per family: the range of its recipes' spreads and how often each backend was fastest."""
    families = {}
    for row in rows:
        if row["spread"] is not None:
            families.setdefault(row["family"], []).append(row)
    lines = []
    for family, members in families.items():
        spreads = [r["spread"] for r in members]
        fastest = [r["fastest"] for r in members]
        counts = ", ".join(f"{b} {fastest.count(b)}" for b in backends if fastest.count(b))
        low, high = min(spreads), max(spreads)
        spread = f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
        lines.append({"family": family, "spread": spread, "fastest": counts})
    return lines


def main(argv=None):
    by_family = {f: [r for r, g in RECIPES.items() if g == f] for f in FAMILIES}
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0]
        + " Each backend in its own process; warm-up excluded; median of the rounds.",
        epilog="families and their recipes: "
        + "; ".join(f"{f} ({FAMILIES[f]}): {', '.join(rs)}" for f, rs in by_family.items())
        + ". The module docstring describes each timed step and the protocol.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--families",
        nargs="+",
        choices=FAMILIES,
        default=list(FAMILIES),
        metavar="FAMILY",
        help="families to run (listed below)",
    )
    parser.add_argument(
        "--recipes",
        nargs="+",
        choices=RECIPES,
        metavar="RECIPE",
        help="run only these recipes (listed below; overrides --families)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=timing.BACKENDS,
        default=list(timing.BACKENDS),
        metavar="BACKEND",
        help="tensorflow, torch and/or jax",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per backend (median)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per backend per round")
    parser.add_argument("--min-steps", type=int, default=1, help="steps per round at least")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compiling)")
    parser.add_argument("--json", default="runs/family_steps.json", help="where to write the results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child()
        return 0
    if args.repeats < 1 or args.warmup < 1 or args.min_steps < 1 or not args.seconds > 0:
        parser.error("--repeats, --warmup and --min-steps must be at least 1, --seconds positive")
    recipes = args.recipes or [r for r, f in RECIPES.items() if f in args.families]
    backends = list(dict.fromkeys(args.backends))

    protocol = PROTOCOL.format(
        warmup=args.warmup, repeats=args.repeats, seconds=args.seconds, min_steps=args.min_steps
    )
    info = {"machine": machine(), "versions": versions(), "load_before": os.getloadavg()}
    print("Training steps per second per recipe family and backend")
    print(f"{info['machine']['cpu']}, {info['machine']['cores']} cores; {protocol}")
    print("load average before: " + ", ".join(f"{x:.2f}" for x in info["load_before"]), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = {b: open(out.parent / f"family_steps_{b}.log", "w") for b in backends}  # noqa: SIM115
    children = {b: Child(b, logs[b]) for b in backends}
    for c in children.values():
        c.receive()  # the hello: the child has configured its backend
    header = "{:<13}{:<14}{:>6}" + "{:>12}" * len(backends) + "{:>8}  {}"
    print(header.format("family", "recipe", "batch", *backends, "spread", "fastest"), flush=True)
    rows, started = [], time.perf_counter()
    try:
        for recipe in recipes:
            live = [c for c in children.values() if c.error is None]
            for c in live:
                c.send(op="build", recipe=recipe, warmup=args.warmup)
            built = {c.backend: c.receive() for c in live}
            ready = [c for c in live if "error" not in built[c.backend]]
            rounds = {c.backend: [] for c in ready}
            for round_ in range(args.repeats):
                shift = round_ % max(len(ready), 1)
                for c in ready[shift:] + ready[:shift]:
                    c.send(op="time", seconds=args.seconds, min_steps=args.min_steps)
                    reply = c.receive()
                    if "error" in reply:
                        built[c.backend] = reply
                        rounds.pop(c.backend, None)
                        ready.remove(c)
                    else:
                        rounds[c.backend].append(reply["rate"])
            for c in live:
                if c.error is None:
                    c.send(op="drop")
                    c.receive()
            rates = {b: statistics.median(r) for b, r in rounds.items() if r}
            described = next((v for v in built.values() if "model" in v), {})
            spread = max(rates.values()) / min(rates.values()) if len(rates) > 1 else None
            row = {
                "family": RECIPES[recipe],
                "recipe": recipe,
                "model": described.get("model"),
                "batch": described.get("batch"),
                "parameters": described.get("parameters"),
                "steps_per_s": {b: round(r, 3) for b, r in rates.items()},
                "rounds": {b: [round(x, 3) for x in r] for b, r in rounds.items()},
                "build_s": {b: v["build_s"] for b, v in built.items() if "build_s" in v},
                "warmup_s": {b: v["warmup_s"] for b, v in built.items() if "warmup_s" in v},
                "errors": {b: v["error"] for b, v in built.items() if "error" in v},
                "spread": None if spread is None else round(spread, 3),
                "fastest": max(rates, key=rates.get) if rates else None,
            }
            rows.append(row)
            print(
                header.format(
                    row["family"],
                    recipe,
                    row["batch"] or "",
                    *(_rate_text(rates.get(b)) for b in backends),
                    "" if spread is None else f"{spread:.2f}",
                    row["fastest"] or "",
                ),
                flush=True,
            )
            for backend, error in row["errors"].items():
                print(f"  {recipe} on {backend} failed: {error}", flush=True)
    finally:
        for c in children.values():
            c.close()
        for log in logs.values():
            log.close()
    info["load_after"] = os.getloadavg()
    info["wall_s"] = round(time.perf_counter() - started, 1)
    families = summary(rows, backends)
    print("Per family: spread (fastest / slowest backend; a range over its recipes), fastest backend")
    for line in families:
        print(f"  {line['family']:<13} {line['spread']:<11} {line['fastest']}")
    print("load average after: " + ", ".join(f"{x:.2f}" for x in info["load_after"]))
    print(f"{info['wall_s']:.0f} s of measuring")
    result = {**info, "protocol": protocol, "results": rows, "families": families}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results in {out}")
    return 1 if any(row["errors"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
