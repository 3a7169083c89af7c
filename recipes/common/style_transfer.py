"""What the style-transfer recipes share (A 9.8-9.10): images, VGG19 features, the losses of the
notes and the pixel optimisation.

- Images: `load_image` reads a file or one of the two photographs scikit-learn ships ("china",
  "flower"), `preprocess` turns RGB in [0, 255] into VGG19's input (BGR, ImageNet mean subtracted,
  as `keras.applications.vgg19.preprocess_input`), `deprocess` and `save_image` go back.
- Features: `build_features` makes a `layers.VGGFeatures` with the Keras VGG19 ImageNet weights
  (downloaded once into the Keras cache) or with random weights drawn by NumPy from a seed, which
  are the same on every backend.
- Losses (A 9.9): content eq. 11 with lambda_c = 1/2, style eq. 12 with
  lambda_s = 1/(4 M^2 N^2) (M positions, N channels), total variation eq. 13 with squared
  differences.
- `optimize`: Adam (compiled through the engine) or L-BFGS (scipy, on a compiled value and gradient)
  on the pixels of a `keras.Variable`.
- Mixed precision (`--dtype-policy`): the VGG19 features compute in float16 or bfloat16 (float32
  weights) and are returned as float32, so the image, the Gram matrices and the losses stay float32;
  under mixed_float16 Adam is a `keras.optimizers.LossScaleOptimizer` with an initial scale of 1
  (a step whose float16 gradients overflow is skipped and the scale halved). L-BFGS takes the
  gradient of a loss scaled likewise (from 1, halved while the gradient overflows).
"""

import dataclasses
import functools
import json
import os
import time
from pathlib import Path

import numpy as np

from datasets import remote
from recipes import engine
from recipes.common import cli, plots, precision

keras = cli.lazy_import("keras")

CONTENT_LAYER = "block4_conv2"  # The notes' conv4_2 (Keras names the ReLU output after the conv).
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
EMBEDDED_IMAGES = ("china", "flower")
MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype="float32")  # keras.applications' "caffe" mode.
# Pixel bounds in the preprocessed space: every channel stays in [0, 255] before the mean.
LOWER, UPPER = -MEAN_BGR, 255.0 - MEAN_BGR

WEIGHTS_ORIGIN = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"  # As keras.applications.vgg19 checks it.
RANDOM_HINT = "Run with random VGG weights instead: --weights random"


@dataclasses.dataclass
class StyleConfig(cli.RunConfig):
    """Flags every pixel-optimising style recipe takes."""

    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    size: int = cli.option(256, "longer side of the output image in pixels")
    steps: int = cli.option(500, "Adam updates or L-BFGS iterations")
    optimizer: str = cli.option("adam", "adam or lbfgs (scipy L-BFGS-B)", choices=("adam", "lbfgs"))
    learning_rate: float = cli.option(5.0, "Adam step size in pixel units (0-255 space)")
    weights: str = cli.option(
        "imagenet",
        "VGG19 weights: imagenet (downloaded once into the Keras cache) or random (NumPy, seeded)",
        choices=("imagenet", "random"),
    )
    snapshot_every: int = cli.option(50, "write snapshots/snapshot_XXXX.png every N steps")
    print_every: int = cli.option(10, "print the losses every N steps")
    jit: bool = cli.option(True, "compile the step (jax.jit / tf.function)")
    dtype_policy: str = cli.dtype_policy_option()

    def check(self, min_size=16):
        for name in ("steps", "snapshot_every", "print_every"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise cli.UsageError(f"{flag} must be at least 1, got {getattr(self, name)}")
        if self.size < min_size:
            raise cli.UsageError(f"--size must be at least {min_size} (VGG19 pools 4 times)")
        if self.learning_rate <= 0:
            raise cli.UsageError(f"--learning-rate must be positive, got {self.learning_rate}")


# ---------------------------------------------------------------------------------------------
# Images


def _embedded_path(name):
    # sklearn.datasets.load_sample_image reads these files; opening them directly skips its import.
    import importlib.util

    root = os.path.dirname(importlib.util.find_spec("sklearn").origin)
    return os.path.join(root, "datasets", "images", f"{name}.jpg")


def load_image(source, size):
    """RGB float32 (height, width, 3) in [0, 255] from a path or an embedded name ("china", "flower").

    `size`: an int, the longer side (the aspect ratio is kept), or `(height, width)`. A file that
    cannot be read raises `cli.UsageError` with a one-line message.
    """
    from PIL import Image

    path = _embedded_path(source) if source in EMBEDDED_IMAGES else source
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:120]
        raise cli.UsageError(
            f"cannot read image {source!r} ({reason}); give a path or one of the embedded "
            f"images: {', '.join(EMBEDDED_IMAGES)}"
        ) from None
    if isinstance(size, int):
        scale = size / max(image.width, image.height)
        shape = (max(1, round(image.height * scale)), max(1, round(image.width * scale)))
    else:
        shape = tuple(int(s) for s in size)
    if min(shape) < 1:
        raise cli.UsageError(f"image size must be positive, got {shape}")
    if (image.height, image.width) != shape:
        image = image.resize((shape[1], shape[0]), Image.LANCZOS)
    return np.asarray(image, dtype="float32")


def preprocess(rgb):
    """RGB in [0, 255] (..., 3) -> VGG19 input: BGR minus the ImageNet mean, float32."""
    return np.asarray(rgb, dtype="float32")[..., ::-1] - MEAN_BGR


def deprocess(x):
    """VGG19 input (..., 3), a NumPy array or tensor -> uint8 RGB (the batch axis of 1 dropped)."""
    x = np.asarray(keras.ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x)
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    rgb = (x + MEAN_BGR)[..., ::-1]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def save_image(path, rgb):
    """Writes RGB (height, width, 3), uint8 or float in [0, 255], as a PNG (or any PIL format)."""
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def noise_image(shape, seed):
    """White noise, uniform over [0, 255] per RGB pixel, preprocessed; the same on every backend."""
    rgb = np.random.default_rng(seed).uniform(0, 255, size=(*shape, 3)).astype("float32")
    return preprocess(rgb)


# ---------------------------------------------------------------------------------------------
# VGG19 features


def imagenet_weights_path():
    """The Keras VGG19 ImageNet weights (no top) in the Keras cache, downloaded on first use.

    The same file `keras.applications.VGG19(weights="imagenet")` uses (checked by md5). Offline this
    raises `DatasetUnavailable` with one line naming `--weights random`. $RECIPES_DATA_ORIGIN replaces
    the download location (a mirror).
    """
    return remote.fetch(
        "the VGG19 ImageNet weights",
        WEIGHTS_FILE,
        "models",
        default_origin=WEIGHTS_ORIGIN,
        file_hash=WEIGHTS_MD5,
        fallback=RANDOM_HINT,
    )


def randomize_weights(features, seed):
    """He-normal kernels and zero biases drawn with NumPy from `seed`, layer by layer.

    NumPy, not the backend's generator, so that every backend gets the same numbers: the losses of a
    few optimisation steps can then be compared across backends without a weight file. With He
    scaling the ReLU activations keep the magnitude of the preprocessed input through all 16 layers.
    """
    rng = np.random.default_rng(seed)
    for layer in features._vgg_layers:
        if not layer.weights:
            continue
        kernel, bias = layer.get_weights()
        fan_in = np.prod(kernel.shape[:-1])
        kernel = rng.standard_normal(kernel.shape) * np.sqrt(2.0 / fan_in)
        layer.set_weights([kernel.astype("float32"), np.zeros_like(bias)])


@functools.cache
def _float32_features_class():
    """`VGGFeatures` whose outputs are cast to float32, defined on first use (subclassing a Keras
    layer imports the backend)."""
    from layers.style import VGGFeatures

    class Float32Features(VGGFeatures):
        """VGGFeatures computing under its dtype policy, returning float32 features."""

        def call(self, inputs):
            out = super().call(inputs)
            cast = functools.partial(keras.ops.cast, dtype="float32")
            return (
                [cast(x) for x in out] if isinstance(out, list) else {k: cast(x) for k, x in out.items()}
            )

    return Float32Features


def build_features(
    layer_names, pooling="max", weights="imagenet", seed=0, pool_padding="valid", dtype_policy="float32"
):
    """A built `layers.VGGFeatures` returning {name: features} for `layer_names`.

    weights: "imagenet" (Keras VGG19 weights, downloaded once) or "random" (NumPy draw from `seed`).
    dtype_policy: `--dtype-policy`; under a mixed policy the convolutions compute in float16 or
    bfloat16 and the features come back as float32.
    """
    from layers.style import VGGFeatures

    if weights not in ("imagenet", "random"):
        raise cli.UsageError(f"--weights must be imagenet or random, got {weights!r}")
    path = imagenet_weights_path() if weights == "imagenet" else None
    if dtype_policy == "float32":
        features = VGGFeatures(list(layer_names), pooling=pooling, pool_padding=pool_padding)
    else:
        features = _float32_features_class()(
            list(layer_names), pooling=pooling, pool_padding=pool_padding, dtype=dtype_policy
        )
    features.build((None, None, None, 3))
    features.trainable = False
    if path is not None:
        features.copy_weights_from(keras.applications.VGG19(weights=path, include_top=False))
    else:
        randomize_weights(features, seed)
    return features


# ---------------------------------------------------------------------------------------------
# Losses of A 9.9


def gram_matrix(features):
    """Gram(F) = F^T F of features (batch, h, w, N) flattened to (h w, N): (batch, N, N)."""
    from layers.style import GramMatrix

    return GramMatrix()(features)


def content_loss(features, target):
    """Eq. 11 for one layer with lambda_c = 1/2: 1/2 sum (F - P)^2."""
    ops = keras.ops
    return 0.5 * ops.sum(ops.square(ops.cast(features, "float32") - target))


def style_loss(gram, target_gram, positions, channels):
    """Eq. 12 for one layer: sum (G - A)^2 / (4 M^2 N^2), M = positions (h w), N = channels."""
    ops = keras.ops
    scale = 1.0 / (4.0 * float(positions) ** 2 * float(channels) ** 2)
    return scale * ops.sum(ops.square(gram - target_gram))


def layers_style_loss(outputs, target_grams, layer_names):
    """Eq. 12 over several layers, each weighing w_l = 1 / len(layer_names):

        sum_l w_l sum (G_l - A_l)^2 / (4 M_l^2 N_l^2),  G_l = Gram of `outputs[l]` (batch, h, w, N).

    `target_grams`: {layer: A_l}, Gram matrices (1, N, N) for an image of the outputs' size.
    """
    loss = 0.0
    for name in layer_names:
        positions, channels = layer_size(outputs[name])
        gram = gram_matrix(outputs[name])  # (1, N, N)
        loss += style_loss(gram, target_grams[name], positions, channels)
    return loss / len(layer_names)


def total_variation_loss(image):
    """Eq. 13: sum (x[i+1, j] - x[i, j])^2 + (x[i, j+1] - x[i, j])^2 over (batch, h, w, c) (or (h, w)
    / (h, w, c)). The squared form of the notes, not tf.image.total_variation's absolute values."""
    ops = keras.ops
    image = ops.convert_to_tensor(image, "float32")
    while len(image.shape) < 4:
        image = ops.expand_dims(image, 0 if len(image.shape) == 3 else -1)
    down = image[:, 1:, :, :] - image[:, :-1, :, :]
    right = image[:, :, 1:, :] - image[:, :, :-1, :]
    return ops.sum(ops.square(down)) + ops.sum(ops.square(right))


def layer_size(features):
    """(M, N): the positions and channels of features of shape (batch, h, w, N)."""
    _, h, w, n = features.shape
    return h * w, n


def target_grams(features, image, layer_names, positions=None):
    """Gram matrices of `image`'s features (NumPy), rescaled to `positions` per layer when given.

    Eq. 12 compares Gram matrices of the same size; a style image of another size is matched by
    scaling its Gram by M_x / M_style (Gram grows with the number of positions).
    """
    out = features(np.asarray(image)[None])
    grams = {}
    for name in layer_names:
        gram = keras.ops.convert_to_numpy(gram_matrix(out[name]))
        own, _ = layer_size(out[name])
        if positions is not None:
            gram = gram * (positions[name] / own)
        grams[name] = gram
    return grams


# ---------------------------------------------------------------------------------------------
# Pixel optimisation


def _floats(total, terms):
    row = {"total": float(keras.ops.convert_to_numpy(total))}
    row.update({k: float(keras.ops.convert_to_numpy(v)) for k, v in terms.items()})
    return row


def _clip(image):
    ops = keras.ops
    image.assign(
        ops.minimum(ops.maximum(image, ops.convert_to_tensor(LOWER)), ops.convert_to_tensor(UPPER))
    )


def optimize(
    loss_fn,
    image,
    *,
    steps,
    optimizer="adam",
    learning_rate=10.0,
    callback=None,
    state=(),
    clip=True,
    jit=True,
    dtype_policy="float32",
):
    """Minimises `loss_fn()` over the pixels of `image`, in place.

    Args:
        loss_fn: `() -> (total, {term: value})`, reading `image` (and the layers in `state`).
        image: a `keras.Variable` of shape (1, h, w, 3) in the preprocessed space.
        steps: Adam updates, or L-BFGS iterations (each may evaluate the loss more than once).
        optimizer: "adam" (compiled `engine.value_and_grad` + Keras Adam) or "lbfgs"
            (`scipy.optimize.minimize(method="L-BFGS-B", jac=True)` on a compiled value and gradient).
        learning_rate: Adam's step size, in pixel units of the preprocessed 0-255 space.
        callback: `callback(step, image_numpy, terms)` after each update or iteration: the number of
            updates so far, the image after it and the losses the update measured.
        state: the layers and variables `loss_fn` reads besides `image` (the VGGFeatures, target
            variables); a compiled JAX step must be given all of them.
        clip: keep every pixel within [0, 255] before preprocessing (Adam: clipped after each update;
            L-BFGS: box bounds).
        jit: compile the step (False: eager, for debugging).
        dtype_policy: `--dtype-policy`; mixed_float16 makes Adam a `LossScaleOptimizer` (the loss is
            scaled before differentiation). The features' policy is set by `build_features`.

    Returns:
        The history: one dict per step `{"step", "total", term..., "seconds"}` with the loss of the
        image after `step` updates (step 0 = the start), `seconds` since the start.
    """
    if optimizer == "adam":
        # The loss scale starts at 1, not Keras' 2**15: these losses (1e6 to 1e10) give gradients
        # that overflow float16 long before they underflow; a dynamic scale halves from there.
        adam = keras.optimizers.Adam(learning_rate)
        adam = precision.loss_scaled(dtype_policy, adam, initial_scale=1.0)
        return _adam(loss_fn, image, steps, adam, callback, list(state), clip, jit)
    if optimizer == "lbfgs":
        scaled = dtype_policy == "mixed_float16"
        return _lbfgs(loss_fn, image, steps, callback, list(state), clip, jit, scaled)
    raise cli.UsageError(f"--optimizer must be adam or lbfgs, got {optimizer!r}")


def _adam(loss_fn, image, steps, adam, callback, state, clip, jit):
    adam.build([image])

    def step():
        (total, terms), grads = engine.value_and_grad(loss_fn, [image], has_aux=True, loss_scale=adam)
        engine.apply(adam, grads, [image])
        if clip:
            _clip(image)
        return total, terms

    compiled = engine.function(step, [image, adam, *state], jit=jit)
    evaluate = engine.function(loss_fn, [image, *state], jit=jit)
    history, start = [], time.perf_counter()
    for i in range(steps):
        row = _floats(*compiled())
        history.append({"step": i, **row, "seconds": time.perf_counter() - start})
        if callback is not None:
            callback(i + 1, keras.ops.convert_to_numpy(image), row)
    final = {"step": steps, **_floats(*evaluate()), "seconds": time.perf_counter() - start}
    history.append({**final, "final_evaluation": True})  # Not an update: left out of the timing.
    return history


def _lbfgs(loss_fn, image, steps, callback, state, clip, jit, loss_scaled=False):
    import scipy.optimize

    shape = tuple(image.shape)
    # mixed_float16: the loss is multiplied by a scale (from 1) before differentiation and the
    # gradient divided by it; a gradient that overflows float16 halves the scale and is recomputed.
    scale = keras.Variable(1.0, trainable=False, name="loss_scale") if loss_scaled else None

    def value_and_grad():
        if scale is None:
            (total, terms), grads = engine.value_and_grad(loss_fn, [image], has_aux=True)
            return total, terms, grads[0]

        def scaled_loss():
            total, terms = loss_fn()
            return total * scale, (keras.ops.stop_gradient(total), terms)

        (_, (total, terms)), grads = engine.value_and_grad(scaled_loss, [image], has_aux=True)
        return total, terms, grads[0] / scale

    compiled = engine.function(
        value_and_grad, [image, *state, *([scale] if scale is not None else [])], jit=jit
    )
    evaluations, start = [], time.perf_counter()

    def fun(x):
        image.assign(x.reshape(shape).astype("float32"))
        total, terms, grad = compiled()
        grad = keras.ops.convert_to_numpy(grad).astype("float64").ravel()
        for _ in range(64):  # 2**-64: beyond any loss these recipes reach
            if scale is None or np.all(np.isfinite(grad)):
                break
            scale.assign(scale / 2.0)
            total, terms, grad = compiled()
            grad = keras.ops.convert_to_numpy(grad).astype("float64").ravel()
        evaluations.append(_floats(total, terms))
        return evaluations[-1]["total"], grad

    history = []

    def on_iteration(intermediate_result):
        # L-BFGS-B's last evaluation is at the point its line search accepted.
        row = dict(evaluations[-1], total=float(intermediate_result.fun))
        history.append({"step": len(history), **row, "seconds": time.perf_counter() - start})
        if callback is not None:
            callback(len(history) - 1, intermediate_result.x.reshape(shape).astype("float32"), row)

    x0 = keras.ops.convert_to_numpy(image).astype("float64").ravel()
    bounds = None
    if clip:
        lower = np.broadcast_to(LOWER, shape).ravel()
        upper = np.broadcast_to(UPPER, shape).ravel()
        bounds = scipy.optimize.Bounds(lower, upper)
    fun(x0)
    history.append({"step": 0, **evaluations[-1], "seconds": time.perf_counter() - start})
    evaluations.clear()  # The first evaluation again, at x0, comes from scipy.
    result = scipy.optimize.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        callback=on_iteration,
        options={"maxiter": steps, "maxfun": 10 * steps + 20, "maxcor": 10},
    )
    image.assign(result.x.reshape(shape).astype("float32"))
    history[0]["evaluations"] = result.nfev
    return history


def seconds_per_step(history):
    """Wall seconds per update (Adam step or L-BFGS iteration), leaving out compiling.

    Adam: the first step (which compiles) and the final evaluation are left out. L-BFGS: the time
    after the first evaluation (which compiles), divided by the iterations.
    """
    if history[-1].get("final_evaluation"):
        updates = history[:-1]  # updates[i]: the time after update i + 1.
        if len(updates) < 2:
            return float("nan")
        return (updates[-1]["seconds"] - updates[0]["seconds"]) / (len(updates) - 1)
    if len(history) < 2:
        return float("nan")
    return (history[-1]["seconds"] - history[0]["seconds"]) / history[-1]["step"]


# ---------------------------------------------------------------------------------------------
# Outputs


def plot_losses(history, path, title, terms):
    """Total loss and each term per step, log scale."""
    plt = plots.pyplot()
    steps = [row["step"] for row in history]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for key in ("total", *terms):
        values = np.array([row[key] for row in history], dtype=float)
        if np.any(values > 0):  # A log scale has no zero (content at a content start, unused terms).
            values = np.where(values > 0, values, np.nan)
            ax.plot(steps, values, label=key, lw=2 if key == "total" else 1.2)
    ax.set(xlabel="step", ylabel="loss (weighted)", title=title, yscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_row(row, terms):
    return f"loss {row['total']:.4g} (" + ", ".join(f"{t} {row[t]:.3g}" for t in terms) + ")"


def run(loss_fn, image, state, config, out, *, title, terms, summary=None):
    """Optimises `image` as `config` says and writes the outputs under `out`.

    Prints the losses every `config.print_every` steps, writes snapshots/snapshot_XXXX.png every
    `config.snapshot_every` steps, then result.png, losses.png (total and each term, log scale) and
    summary.json (initial and final losses, seconds per step, backend, config, plus `summary`).
    Returns the summary dict.
    """
    out = Path(out)
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    save_image(out / "snapshots" / "snapshot_0000.png", deprocess(keras.ops.convert_to_numpy(image)))
    start = time.perf_counter()
    unit = "iteration" if config.optimizer == "lbfgs" else "step"

    def callback(step, pixels, row):
        if step % config.snapshot_every == 0 or step == config.steps:
            save_image(out / "snapshots" / f"snapshot_{step:04d}.png", deprocess(pixels))
        if step % config.print_every == 0 or step == config.steps or step == 1:
            elapsed = time.perf_counter() - start
            print(
                f"{unit} {step}/{config.steps}: {format_row(row, terms)}  [{elapsed:.1f} s]", flush=True
            )

    history = optimize(
        loss_fn,
        image,
        steps=config.steps,
        optimizer=config.optimizer,
        learning_rate=config.learning_rate,
        callback=callback,
        state=state,
        jit=config.jit,
        dtype_policy=config.dtype_policy,
    )
    result = deprocess(keras.ops.convert_to_numpy(image))
    save_image(out / "result.png", result)
    plot_losses(history, out / "losses.png", title, terms)
    first, last = history[0], history[-1]
    per_step = seconds_per_step(history)
    factor = first["total"] / max(last["total"], 1e-30)
    print(
        f"loss {first['total']:.4g} -> {last['total']:.4g} ({factor:.3g}x lower) after "
        f"{last['step']} {unit}s, {per_step:.3f} s per {unit} ({engine.backend()})"
    )
    summary = {
        **(summary or {}),
        "initial": {k: first[k] for k in ("total", *terms)},
        "final": {k: last[k] for k in ("total", *terms)},
        "steps": last["step"],
        f"seconds_per_{unit}": per_step,
        "seconds": last["seconds"],
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
    }
    if "evaluations" in first:
        summary["loss_evaluations"] = first["evaluations"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Outputs in {out}/")
    return summary
