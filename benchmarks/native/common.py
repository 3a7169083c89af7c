"""The project's side of the native comparison: its models, batches and training steps.

Runs in a process whose backend Keras has already chosen. `project(name)` builds the project's
model for one of MODELS with its recipe's defaults and returns a `Project`: the Keras models, the
step the recipe trains with (compiled as the recipe compiles it), one fixed batch, the parameter
counts and the inputs of the output check. The native modules (`torch_models`, `jax_models`,
`tf_models`) build their own models from the same sizes, copy the weights with `keras_weights`,
and must match `Project.reference` (forward outputs in training mode) within `TOLERANCE`.
"""

import dataclasses
import math

import numpy as np

MODELS = ("dcgan", "bahdanau", "transformer")
TOLERANCE = 1e-4  # largest |native - project| of a forward output, relative to max(1, |project|)


@dataclasses.dataclass
class Project:
    name: str
    batch: int
    models: dict  # {"G": keras.Model, "D": ...} or {"model": ...}
    step: object  # () -> something `sync` waits for
    sync: object
    arrays: dict  # the fixed batch (NumPy) both sides train on
    sizes: dict  # what the native builders need (widths, vocabularies, lengths, optimizer)
    check_inputs: dict = None
    reference: dict = None  # forward outputs of the Keras models on check_inputs (training=True)

    @property
    def counts(self):
        return {key: int(model.count_params()) for key, model in self.models.items()}


def keras_weights(model):
    """The model's weights (trainable and not, e.g. BatchNorm statistics), NumPy, in Keras order."""
    return [np.asarray(w) for w in model.get_weights()]


def _numpy(x):
    import keras

    return keras.ops.convert_to_numpy(x)


def dcgan():
    """DCGAN of recipes/dcgan.py (mnist arch, width 1): one D update and one G update per step."""
    import keras

    from recipes import dcgan as recipe
    from recipes import engine

    config = recipe.Config()
    batch = config.batch_size
    gan = recipe.DCGAN(config)
    step = engine.function(gan.step, list(gan.state.values()), jit=True)
    rng = np.random.default_rng(0)
    real = rng.uniform(0.0, 1.0, size=(batch, 28, 28, 1)).astype("float32")
    z = rng.normal(size=(batch, config.latent_dim)).astype("float32")
    # The check runs on copies, so that the timed models' BatchNorm statistics stay untouched.
    G = keras.models.clone_model(gan.generator)
    D = keras.models.clone_model(gan.discriminator)
    G.set_weights(gan.generator.get_weights())
    D.set_weights(gan.discriminator.get_weights())
    reference = {"G": _numpy(G(z, training=True)), "D": _numpy(D(real, training=True))}
    return Project(
        "dcgan",
        batch,
        {"G": gan.generator, "D": gan.discriminator},
        lambda: step(real),
        lambda out: float(np.asarray(out["d_loss"])),
        {"real": real},
        dict(
            latent=config.latent_dim,
            lr=config.learning_rate,
            beta_1=config.beta_1,
            slope=config.leaky_slope,
        ),
        {"z": z, "real": real},
        reference,
    )


def _translation(name):
    """Bahdanau NMT (recipes/nmt_attention.py) or the Transformer (recipes/transformer.py) on one
    batch of 128 date pairs (sources padded to 23 characters, targets to 11), `train_on_batch`."""
    from benchmarks.translation_steps import date_batch
    from recipes import engine
    from recipes.common import translation

    if name == "transformer":
        from recipes import transformer as recipe

        config = recipe.Config()
    else:
        from recipes import nmt_attention as recipe

        config = recipe.Config()
        config.learning_rate = 1e-2  # what the recipe's main() picks for bahdanau
    batch = config.batch_size
    engine.set_seed(0)
    task, (source, decoder_input, target) = date_batch(batch)
    model = recipe.build_model(config, task)
    translation.compile_for_training(config, model, recipe.build_optimizer(config, task))
    reference = {"logits": _numpy(model([source, decoder_input], training=True))}

    if engine.backend() == "torch":
        # What `fit` runs per batch on torch: its train function on the batch's tensors.
        # (`train_on_batch` adds a symbolic build on every call, which rebuilds the model's torch
        # parameter dict: about 2 ms a step that `fit` does not spend.)
        import keras

        model.make_train_function()
        tensors = [keras.ops.convert_to_tensor(a) for a in (source, decoder_input, target)]

        def step():
            return model.train_function([(tensors[:2], tensors[2])])["loss"]

    elif engine.backend() == "jax":
        # What `fit` runs per batch on JAX: its jitted train function, the variables' state threaded
        # from step to step. (`train_on_batch` also gathers every variable's value and writes it
        # back on every call, which `fit` does once per epoch.)
        import keras

        model.optimizer.build(model.trainable_variables)
        model.make_train_function()
        source_t, decoder_t, target_t = map(keras.ops.convert_to_tensor, (source, decoder_input, target))
        data = ([source_t, decoder_t], target_t)
        state = [
            model._get_jax_state(
                trainable_variables=True,
                non_trainable_variables=True,
                optimizer_variables=True,
                metrics_variables=True,
            )
        ]

        def step():
            logs, state[0] = model.train_function(state[0], iter([data]))
            return logs["loss"]

    else:

        def step():
            return model.train_on_batch([source, decoder_input], target)

    sizes = dict(
        source_vocab=len(task.source_vocab.tokens),
        target_vocab=len(task.target_vocab.tokens),
        source_length=23,
        target_length=11,
        lr=config.learning_rate,
    )
    if name == "transformer":
        sizes.update(
            d_model=config.d_model,
            heads=config.num_heads,
            ff=config.ff_dim,
            layers=config.layers,
            beta_2=0.98,
            epsilon=1e-9,
        )
    else:
        sizes.update(
            embedding=config.embedding,
            units=config.units,
            attention_units=config.attention_units,
            maxout_units=config.maxout_units,
            beta_2=0.999,
            epsilon=1e-7,
        )
    arrays = {"source": source, "decoder_input": decoder_input, "target": target}
    return Project(
        name,
        batch,
        {"model": model},
        step,
        float,
        arrays,
        sizes,
        {"source": source, "decoder_input": decoder_input},
        reference,
    )


def project(name):
    if name == "dcgan":
        return dcgan()
    if name in ("bahdanau", "transformer"):
        return _translation(name)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def positional_encoding(length, depth):
    """layers.PositionalEncoding's table (length, depth), float32, in NumPy."""
    position = np.arange(length, dtype="float32")[:, None]
    index = np.arange(depth)
    angle = position / np.power(10000.0, (2 * (index // 2)).astype("float32") / depth)
    return np.where(index % 2 == 0, np.sin(angle), np.cos(angle)).astype("float32")


def compare(name, native, reference):
    """Raises AssertionError with the worst difference unless every output matches."""
    for key, expected in reference.items():
        got = np.asarray(native[key])
        if got.shape != expected.shape:
            raise AssertionError(f"{name}: output {key} has shape {got.shape}, project {expected.shape}")
        error = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
        if not math.isfinite(error) or error > TOLERANCE:
            raise AssertionError(f"{name}: output {key} differs from the project's by {error:.2e}")


def check_counts(name, native_counts, project_counts):
    if native_counts != project_counts:
        raise AssertionError(
            f"{name}: native parameter counts {native_counts} != project's {project_counts}"
        )


def transformer_shapes(sizes):
    """{name: shape} of the Transformer's weights (recipes/transformer.py's layout), for the JAX and
    TensorFlow natives."""
    d, f, h = sizes["d_model"], sizes["ff"], sizes["heads"]
    k = d // h

    def attention(prefix):
        return {f"{prefix}_{n}": s for n, s in (
            ("wq", (d, h, k)), ("bq", (h, k)), ("wk", (d, h, k)), ("bk", (h, k)),
            ("wv", (d, h, k)), ("bv", (h, k)), ("wo", (h, k, d)), ("bo", (d,)))}  # fmt: skip

    def norm(prefix):
        return {f"{prefix}_gamma": (d,), f"{prefix}_beta": (d,)}

    def ff(prefix):
        return {
            f"{prefix}_w1": (d, f),
            f"{prefix}_b1": (f,),
            f"{prefix}_w2": (f, d),
            f"{prefix}_b2": (d,),
        }

    shapes = {
        "source_embedding": (sizes["source_vocab"], d),
        "target_embedding": (sizes["target_vocab"], d),
    }
    for i in range(sizes["layers"]):
        shapes.update(
            {**attention(f"e{i}_att"), **norm(f"e{i}_n1"), **ff(f"e{i}_ff"), **norm(f"e{i}_n2")}
        )
    for i in range(sizes["layers"]):
        shapes.update({**attention(f"d{i}_self"), **norm(f"d{i}_n1"), **attention(f"d{i}_cross"),
                       **norm(f"d{i}_n2"), **ff(f"d{i}_ff"), **norm(f"d{i}_n3")})  # fmt: skip
    shapes.update(logits_w=(d, sizes["target_vocab"]), logits_b=(sizes["target_vocab"],))
    return shapes
