"""Hand-written TensorFlow versions of the compared training steps: tf.function with XLA.

`tf.Variable`s in the Keras layouts (NHWC images), `tf.nn.conv2d` / `tf.nn.conv2d_transpose`,
`tf.nn.moments` BatchNorm, `tf.GradientTape`, Adam written out as variable assignments (XLA fuses
them), the whole step one `tf.function(jit_compile=True)`. GRUs are unrolled over the fixed source
length. Each class builds its variables from the sizes alone, `load` copies a Keras model's
weights, `forward` gives the outputs compared with the project's and `prepare` returns the step.
"""

import numpy as np
import tensorflow as tf

from benchmarks.native.common import keras_weights, positional_encoding, transformer_shapes

JIT = True  # tf.function(jit_compile=...) of the native steps


def _variables(shapes, seed):
    rng = np.random.default_rng(seed)
    return {
        name: tf.Variable(0.02 * rng.standard_normal(shape).astype("float32"), name=name)
        for name, shape in shapes.items()
    }


def _count(variables):
    return sum(int(np.prod(v.shape)) for v in variables.values())


def _load(variables, arrays):
    names = list(variables)
    if len(names) != len(arrays):
        raise AssertionError(f"{len(arrays)} Keras weights for {len(names)} native variables")
    for name, array in zip(names, arrays):
        if tuple(variables[name].shape) != array.shape:
            raise AssertionError(f"{name}: Keras shape {array.shape}, native {variables[name].shape}")
        variables[name].assign(array)


class Adam:
    """Keras' (and Kingma and Ba's) Adam: the bias corrections folded into the step size."""

    def __init__(self, variables, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.variables = variables
        self.lr, self.beta_1, self.beta_2, self.epsilon = lr, beta_1, beta_2, epsilon
        self.t = tf.Variable(0.0)
        self.m = [tf.Variable(tf.zeros_like(v)) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in variables]

    def apply(self, grads):
        b1, b2 = self.beta_1, self.beta_2
        t = self.t.assign_add(1.0)
        step = self.lr * tf.sqrt(1 - b2**t) / (1 - b1**t)
        for var, g, m, v in zip(self.variables, grads, self.m, self.v):
            g = tf.convert_to_tensor(g)  # an embedding's IndexedSlices summed, as the project does
            m = m.assign(b1 * m + (1 - b1) * g)
            v = v.assign(b2 * v + (1 - b2) * g * g)
            var.assign_sub(step * m / (tf.sqrt(v) + self.epsilon))


def _bn_names(prefix, n):
    return {f"{prefix}_{k}": (n,) for k in ("gamma", "beta", "mean", "var")}


def _batch_norm(x, p, name):
    """Training-mode BatchNorm (epsilon 1e-3, momentum 0.9) that updates the moving statistics."""
    mean, var = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
    p[f"{name}_mean"].assign(0.9 * p[f"{name}_mean"] + 0.1 * mean)
    p[f"{name}_var"].assign(0.9 * p[f"{name}_var"] + 0.1 * var)
    return tf.nn.batch_normalization(x, mean, var, p[f"{name}_beta"], p[f"{name}_gamma"], 1e-3)


def _trainable(p):
    return [v for k, v in p.items() if not k.endswith(("_mean", "_var"))]


class DCGAN:
    def __init__(self, sizes):
        self.sizes = sizes
        self.g = _variables(
            {"w1": (sizes["latent"], 1024), "b1": (1024,), **_bn_names("bn1", 1024),
             "w2": (1024, 6272), "b2": (6272,), **_bn_names("bn2", 6272),
             "k3": (5, 5, 128, 128), "b3": (128,), **_bn_names("bn3", 128),
             "k4": (5, 5, 1, 128), "b4": (1,)},
            1,
        )  # fmt: skip
        self.d = _variables(
            {"k1": (5, 5, 1, 11), "b1": (11,), "k2": (5, 5, 11, 74), "b2": (74,),
             **_bn_names("bn2", 74), "w3": (3626, 1024), "b3": (1024,), **_bn_names("bn3", 1024),
             "w4": (1024, 1), "b4": (1,)},
            2,
        )  # fmt: skip
        self.seed = tf.Variable([0, 0], dtype=tf.int64)

    def counts(self):
        return {"G": _count(self.g), "D": _count(self.d)}

    def load(self, project):
        _load(self.g, keras_weights(project.models["G"]))
        _load(self.d, keras_weights(project.models["D"]))

    def generator(self, z):
        g = self.g
        n = tf.shape(z)[0]
        x = tf.nn.relu(_batch_norm(z @ g["w1"] + g["b1"], g, "bn1"))
        x = tf.reshape(tf.nn.relu(_batch_norm(x @ g["w2"] + g["b2"], g, "bn2")), (-1, 7, 7, 128))
        x = tf.nn.conv2d_transpose(x, g["k3"], tf.stack([n, 14, 14, 128]), 2, "SAME") + g["b3"]
        x = tf.nn.relu(_batch_norm(x, g, "bn3"))
        return tf.sigmoid(
            tf.nn.conv2d_transpose(x, g["k4"], tf.stack([n, 28, 28, 1]), 2, "SAME") + g["b4"]
        )

    def discriminator(self, image):
        d, slope = self.d, self.sizes["slope"]
        x = tf.nn.leaky_relu(tf.nn.conv2d(image, d["k1"], 2, "SAME") + d["b1"], slope)
        x = tf.nn.leaky_relu(_batch_norm(tf.nn.conv2d(x, d["k2"], 2, "SAME") + d["b2"], d, "bn2"), slope)
        x = tf.reshape(x, (tf.shape(x)[0], -1))
        x = tf.nn.leaky_relu(_batch_norm(x @ d["w3"] + d["b3"], d, "bn3"), slope)
        return x @ d["w4"] + d["b4"]

    def forward(self, inputs):
        # On copies of the statistics: the check must not move the timed model's.
        saved = {k: v.numpy() for k, v in {**self.g, **self.d}.items()}
        image = self.generator(tf.constant(inputs["z"])).numpy()
        logits = self.discriminator(tf.constant(inputs["real"])).numpy()
        for k, v in {**self.g, **self.d}.items():
            v.assign(saved[k])
        return {"G": image, "D": logits}

    def prepare(self, project):
        s = self.sizes
        g_vars, d_vars = _trainable(self.g), _trainable(self.d)
        g_opt = Adam(g_vars, s["lr"], beta_1=s["beta_1"])
        d_opt = Adam(d_vars, s["lr"], beta_1=s["beta_1"])
        real = tf.constant(project.arrays["real"])

        def bce(logits, label):
            return tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(label * tf.ones_like(logits), logits)
            )

        @tf.function(jit_compile=JIT)
        def step(real):
            n = tf.shape(real)[0]
            seed = self.seed.assign_add([1, 0])
            z_d = tf.random.stateless_normal((n, s["latent"]), seed)
            z_g = tf.random.stateless_normal((n, s["latent"]), seed + [0, 1])
            fake = tf.stop_gradient(self.generator(z_d))
            with tf.GradientTape() as tape:
                d_loss = bce(self.discriminator(real), 1.0) + bce(self.discriminator(fake), 0.0)
            d_opt.apply(tape.gradient(d_loss, d_vars))
            with tf.GradientTape() as tape:
                g_loss = bce(self.discriminator(self.generator(z_g)), 1.0)
            g_opt.apply(tape.gradient(g_loss, g_vars))
            return d_loss

        return lambda: step(real)


def sync(out):
    return float(out)


# ---- translation models ---------------------------------------------------------------------------


def _masked_softmax(scores, mask):
    weights = tf.nn.softmax(tf.where(mask, scores, -1e9), axis=-1)
    return tf.where(mask, weights, 0.0)


def _masked_cross_entropy(logits, target):
    mask = tf.cast(target != 0, logits.dtype)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)
    return tf.reduce_sum(losses * mask) / tf.reduce_sum(mask)


class _Translation:
    """What the TensorFlow translation models share: `forward` and the compiled Adam step of
    `prepare`, around the subclass's `logits(source, decoder_input)` and `params`."""

    def counts(self):
        return {"model": _count(self.params)}

    def load(self, project):
        _load(self.params, keras_weights(project.models["model"]))

    def forward(self, inputs):
        logits = self.logits(*(tf.constant(inputs[k]) for k in ("source", "decoder_input")))
        return {"logits": logits.numpy()}

    def prepare(self, project):
        source, decoder_input, target = (
            tf.constant(project.arrays[k], tf.int32) for k in ("source", "decoder_input", "target")
        )
        variables = list(self.params.values())
        s = self.sizes
        adam = Adam(variables, lr=s["lr"], beta_2=s["beta_2"], epsilon=s["epsilon"])

        @tf.function(jit_compile=JIT)
        def step(source, decoder_input, target):
            with tf.GradientTape() as tape:
                loss = _masked_cross_entropy(self.logits(source, decoder_input), target)
            adam.apply(tape.gradient(loss, variables))
            return loss

        return lambda: step(source, decoder_input, target)


def _gru(x_proj, mask, recurrent, bias_h, reverse):
    """Keras GRU (reset_after, gates z, r, h), unrolled; masked steps keep the state."""
    n = recurrent.shape[0]
    h = tf.zeros((tf.shape(x_proj)[0], n))
    outputs = [None] * x_proj.shape[1]
    for t in reversed(range(x_proj.shape[1])) if reverse else range(x_proj.shape[1]):
        gx, gh = x_proj[:, t], h @ recurrent + bias_h
        z = tf.sigmoid(gx[:, :n] + gh[:, :n])
        r = tf.sigmoid(gx[:, n : 2 * n] + gh[:, n : 2 * n])
        candidate = tf.tanh(gx[:, 2 * n :] + r * gh[:, 2 * n :])
        h = tf.where(mask[:, t, None], z * h + (1 - z) * candidate, h)
        outputs[t] = h
    return tf.stack(outputs, 1), h


class Bahdanau(_Translation):
    def __init__(self, sizes):
        e, h, a, m = sizes["embedding"], sizes["units"], sizes["attention_units"], sizes["maxout_units"]
        v_s, v_t = sizes["source_vocab"], sizes["target_vocab"]
        self.sizes = sizes
        self.params = _variables(
            {
                "source_embedding": (v_s, e),
                "fw_w": (e, 3 * h), "fw_u": (h, 3 * h), "fw_b": (2, 3 * h),
                "bw_w": (e, 3 * h), "bw_u": (h, 3 * h), "bw_b": (2, 3 * h),
                "target_embedding": (v_t, e), "init_w": (h, h), "init_b": (h,),
                "cell_w": (e + 2 * h, 3 * h), "cell_u": (h, 3 * h), "cell_b": (3 * h,),
                "query": (h, a), "key": (2 * h, a), "att_b": (a,), "score": (a,),
                "maxout_w": (h + e + 2 * h, 2 * m), "maxout_b": (2 * m,),
                "logits_w": (m, v_t), "logits_b": (v_t,),
            },
            3,
        )  # fmt: skip

    def logits(self, source, decoder_input):
        p = self.params
        mask = source != 0
        x = tf.gather(p["source_embedding"], source)
        forward, _ = _gru(x @ p["fw_w"] + p["fw_b"][0], mask, p["fw_u"], p["fw_b"][1], False)
        backward, last = _gru(x @ p["bw_w"] + p["bw_b"][0], mask, p["bw_u"], p["bw_b"][1], True)
        annotations = tf.concat([forward, backward], -1)
        state = tf.tanh(last @ p["init_w"] + p["init_b"])
        keys = annotations @ p["key"] + p["att_b"]
        embedded = tf.gather(p["target_embedding"], decoder_input)
        n, m = state.shape[1], self.sizes["maxout_units"]
        outputs = []
        for t in range(decoder_input.shape[1]):
            y = embedded[:, t]
            scores = tf.linalg.matvec(tf.tanh((state @ p["query"])[:, None] + keys), p["score"])
            weights = _masked_softmax(scores, mask)
            context = tf.einsum("bs,bsd->bd", weights, annotations)
            gx = tf.concat([y, context], -1) @ p["cell_w"] + p["cell_b"]
            zr = tf.sigmoid(gx[:, : 2 * n] + state @ p["cell_u"][:, : 2 * n])
            z, r = zr[:, :n], zr[:, n:]
            candidate = tf.tanh(gx[:, 2 * n :] + (r * state) @ p["cell_u"][:, 2 * n :])
            readout = tf.concat([state, y, context], -1) @ p["maxout_w"] + p["maxout_b"]
            readout = tf.reduce_max(tf.reshape(readout, (-1, m, 2)), -1)
            outputs.append(readout @ p["logits_w"] + p["logits_b"])
            state = z * state + (1 - z) * candidate
        return tf.stack(outputs, 1)


def _layer_norm(x, gamma, beta):
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + 1e-6) * gamma + beta


class Transformer(_Translation):
    def __init__(self, sizes):
        d = sizes["d_model"]
        self.sizes = sizes
        shapes = transformer_shapes(sizes)
        self.params = _variables(shapes, 4)
        self.source_pe = tf.constant(positional_encoding(sizes["source_length"], d))
        self.target_pe = tf.constant(positional_encoding(sizes["target_length"], d))

    def _attend(self, prefix, query, memory, mask):
        p = self.params

        def heads(x, name):  # (B, T, d) -> (B, H, T, k)
            return (
                tf.einsum("btd,dhk->bhtk", x, p[f"{prefix}_w{name}"]) + p[f"{prefix}_b{name}"][:, None]
            )

        q, k, v = heads(query, "q"), heads(memory, "k"), heads(memory, "v")
        scores = tf.matmul(q / np.sqrt(q.shape[-1]), k, transpose_b=True)
        out = tf.matmul(_masked_softmax(scores, mask), v)
        return tf.einsum("bhtv,hvd->btd", out, p[f"{prefix}_wo"]) + p[f"{prefix}_bo"]

    def logits(self, source, decoder_input):
        p, d, layers = self.params, self.sizes["d_model"], self.sizes["layers"]

        def norm(x, prefix):
            return _layer_norm(x, p[f"{prefix}_gamma"], p[f"{prefix}_beta"])

        def ff(x, prefix):
            hidden = tf.nn.relu(x @ p[f"{prefix}_w1"] + p[f"{prefix}_b1"])
            return hidden @ p[f"{prefix}_w2"] + p[f"{prefix}_b2"]

        padding = (source != 0)[:, None, None, :]
        t = decoder_input.shape[1]
        causal = tf.constant(np.tril(np.ones((t, t), bool)))
        x = tf.gather(p["source_embedding"], source) * np.sqrt(d) + self.source_pe
        for i in range(layers):
            x = norm(x + self._attend(f"e{i}_att", x, x, padding), f"e{i}_n1")
            x = norm(x + ff(x, f"e{i}_ff"), f"e{i}_n2")
        y = tf.gather(p["target_embedding"], decoder_input) * np.sqrt(d) + self.target_pe
        for i in range(layers):
            y = norm(y + self._attend(f"d{i}_self", y, y, causal), f"d{i}_n1")
            y = norm(y + self._attend(f"d{i}_cross", y, x, padding), f"d{i}_n2")
            y = norm(y + ff(y, f"d{i}_ff"), f"d{i}_n3")
        return y @ p["logits_w"] + p["logits_b"]


NATIVE = {"dcgan": DCGAN, "bahdanau": Bahdanau, "transformer": Transformer}
