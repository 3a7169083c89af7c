"""Hand-written JAX versions of the compared training steps: plain jax.numpy / lax, one jax.jit.

Parameters are pytrees (dicts of arrays, NHWC images and the Keras kernel layouts), the whole step
(forward, `jax.grad`, Adam written out, BatchNorm statistics) is one jitted function of the state
with the state buffers donated. Transposed convolutions use the sub-pixel form (a stride-1
`lax.conv_general_dilated` to 4x the channels, then depth-to-space): `lax.conv_transpose` makes the
step about 3 times slower on XLA:CPU (its kernel gradient). GRUs run under `lax.scan`.
Each class builds its parameters from the sizes alone, `load` copies a Keras model's weights,
`forward` gives the outputs compared with the project's and `prepare` returns the step.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks.native.common import keras_weights, positional_encoding, transformer_shapes
from layers.conv import _subpixel_axis  # NumPy only: which kernel tap feeds which output phase


def _init(key, shapes):
    keys = jax.random.split(key, len(shapes))
    return {name: 0.02 * jax.random.normal(k, shape) for k, (name, shape) in zip(keys, shapes.items())}


def _count(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def _load(tree, arrays):
    """`arrays` (Keras order) into the leaves of `tree` (same order), shapes checked."""
    names = list(tree)
    if len(names) != len(arrays):
        raise AssertionError(f"{len(arrays)} Keras weights for {len(names)} native parameters")
    for name, array in zip(names, arrays):
        if tuple(tree[name].shape) != array.shape:
            raise AssertionError(f"{name}: Keras shape {array.shape}, native {tree[name].shape}")
        tree[name] = jnp.asarray(array)


def adam_init(params):
    def zeros():
        return jax.tree_util.tree_map(jnp.zeros_like, params)

    return {"t": jnp.zeros((), jnp.float32), "m": zeros(), "v": zeros()}


def adam(params, grads, state, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Keras' (and Kingma and Ba's) Adam: the bias corrections folded into the step size."""
    t = state["t"] + 1
    m = jax.tree_util.tree_map(lambda m, g: beta_1 * m + (1 - beta_1) * g, state["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: beta_2 * v + (1 - beta_2) * g * g, state["v"], grads)
    step = lr * jnp.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    params = jax.tree_util.tree_map(lambda p, m, v: p - step * m / (jnp.sqrt(v) + epsilon), params, m, v)
    return params, {"t": t, "m": m, "v": v}


# ---- DCGAN ---------------------------------------------------------------------------------------


def _batch_norm(x, gamma, beta, mean, var):
    """Training-mode BatchNorm over all axes but the last; returns (y, new mean, new variance)."""
    axes = tuple(range(x.ndim - 1))
    batch_mean, batch_var = jnp.mean(x, axes), jnp.var(x, axes)
    y = (x - batch_mean) * lax.rsqrt(batch_var + 1e-3) * gamma + beta
    return y, 0.9 * mean + 0.1 * batch_mean, 0.9 * var + 0.1 * batch_var


def _conv(x, kernel, bias, stride):
    dims = ("NHWC", "HWIO", "NHWC")
    y = lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=dims)
    return y + bias


def _deconv_plan(kernel_size, stride):
    taps, pads, trim = _subpixel_axis(kernel_size, stride, "same")
    assert trim == 0
    t = taps[:, None, :, None], taps[None, :, None, :]
    index = np.where((t[0] >= 0) & (t[1] >= 0), t[0] * kernel_size + t[1], kernel_size**2)
    return index.astype("int32"), pads


def _deconv(x, kernel, bias, plan, stride=2):
    """'same' transposed convolution (kernel (k, k, out, in)) as a sub-pixel convolution."""
    index, pads = plan
    k, _, out, inp = kernel.shape
    w = jnp.transpose(kernel, (0, 1, 3, 2)).reshape(k * k, inp * out)
    w = jnp.take(jnp.pad(w, ((0, 1), (0, 0))), index, axis=0)  # (window, window, s, s, in * out)
    w = w.reshape(*index.shape, inp, out).transpose(0, 1, 4, 2, 3, 5)
    w = w.reshape(index.shape[0], index.shape[1], inp, stride * stride * out)
    x = jnp.pad(x, ((0, 0), pads, pads, (0, 0)))
    dims = ("NHWC", "HWIO", "NHWC")
    y = lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dims)
    n, h, wd, _ = y.shape
    y = y.reshape(n, h, wd, stride, stride, out).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * stride, wd * stride, out) + bias


def _bn_names(prefix, n):
    return {f"{prefix}_{k}": (n,) for k in ("gamma", "beta", "mean", "var")}


class DCGAN:
    def __init__(self, sizes):
        self.sizes = sizes
        g = {"w1": (sizes["latent"], 1024), "b1": (1024,), **_bn_names("bn1", 1024),
             "w2": (1024, 6272), "b2": (6272,), **_bn_names("bn2", 6272),
             "k3": (5, 5, 128, 128), "b3": (128,), **_bn_names("bn3", 128),
             "k4": (5, 5, 1, 128), "b4": (1,)}  # fmt: skip
        d = {"k1": (5, 5, 1, 11), "b1": (11,), "k2": (5, 5, 11, 74), "b2": (74,),
             **_bn_names("bn2", 74), "w3": (3626, 1024), "b3": (1024,), **_bn_names("bn3", 1024),
             "w4": (1024, 1), "b4": (1,)}  # fmt: skip
        self.g, self.d = _init(jax.random.key(1), g), _init(jax.random.key(2), d)
        self.plan = _deconv_plan(5, 2)

    def counts(self):
        return {"G": _count(self.g), "D": _count(self.d)}

    def load(self, project):
        _load(self.g, keras_weights(project.models["G"]))
        _load(self.d, keras_weights(project.models["D"]))

    @staticmethod
    def _split(tree):
        """(trainable, statistics): BatchNorm means and variances are not trained."""
        stats = {k: v for k, v in tree.items() if k.endswith(("_mean", "_var"))}
        return {k: v for k, v in tree.items() if k not in stats}, stats

    def generator(self, g, stats, z):
        new = {}

        def bn(x, name):
            y, new[f"{name}_mean"], new[f"{name}_var"] = _batch_norm(
                x, g[f"{name}_gamma"], g[f"{name}_beta"], stats[f"{name}_mean"], stats[f"{name}_var"]
            )
            return y

        x = jax.nn.relu(bn(z @ g["w1"] + g["b1"], "bn1"))
        x = jax.nn.relu(bn(x @ g["w2"] + g["b2"], "bn2")).reshape(-1, 7, 7, 128)
        x = jax.nn.relu(bn(_deconv(x, g["k3"], g["b3"], self.plan), "bn3"))
        return jax.nn.sigmoid(_deconv(x, g["k4"], g["b4"], self.plan)), new

    def discriminator(self, d, stats, image):
        new, slope = {}, self.sizes["slope"]

        def bn(x, name):
            y, new[f"{name}_mean"], new[f"{name}_var"] = _batch_norm(
                x, d[f"{name}_gamma"], d[f"{name}_beta"], stats[f"{name}_mean"], stats[f"{name}_var"]
            )
            return y

        x = jax.nn.leaky_relu(_conv(image, d["k1"], d["b1"], 2), slope)
        x = jax.nn.leaky_relu(bn(_conv(x, d["k2"], d["b2"], 2), "bn2"), slope)
        x = jax.nn.leaky_relu(bn(x.reshape(x.shape[0], -1) @ d["w3"] + d["b3"], "bn3"), slope)
        return x @ d["w4"] + d["b4"], new

    def forward(self, inputs):
        image, _ = self.generator(*self._split(self.g), jnp.asarray(inputs["z"]))
        logits, _ = self.discriminator(*self._split(self.d), jnp.asarray(inputs["real"]))
        return {"G": np.asarray(image), "D": np.asarray(logits)}

    def prepare(self, project):
        sizes = self.sizes
        opt = dict(lr=sizes["lr"], beta_1=sizes["beta_1"])

        def bce(logits, label):  # binary cross-entropy from logits, averaged
            return jnp.mean(
                jnp.maximum(logits, 0) - logits * label + jnp.log1p(jnp.exp(-jnp.abs(logits)))
            )

        def step(state, real):
            g, g_stats, d, d_stats, g_opt, d_opt, key = state
            key, k_d, k_g = jax.random.split(key, 3)
            n = real.shape[0]
            fake, g_stats = self.generator(g, g_stats, jax.random.normal(k_d, (n, sizes["latent"])))
            fake = lax.stop_gradient(fake)

            def d_loss_fn(d):
                real_logits, stats = self.discriminator(d, d_stats, real)
                fake_logits, stats = self.discriminator(d, stats, fake)
                return bce(real_logits, 1.0) + bce(fake_logits, 0.0), stats

            (d_loss, d_stats), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d)
            d, d_opt = adam(d, grads, d_opt, **opt)

            def g_loss_fn(g):
                image, g_new = self.generator(g, g_stats, jax.random.normal(k_g, (n, sizes["latent"])))
                logits, d_new = self.discriminator(d, d_stats, image)
                return bce(logits, 1.0), (g_new, d_new)

            (g_loss, (g_stats, d_stats_2)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g)
            g, g_opt = adam(g, grads, g_opt, **opt)
            return (g, g_stats, d, d_stats_2, g_opt, d_opt, key), d_loss

        g, g_stats = self._split(self.g)
        d, d_stats = self._split(self.d)
        state = [(g, g_stats, d, d_stats, adam_init(g), adam_init(d), jax.random.key(0))]
        return _stateful(step, state, jnp.asarray(project.arrays["real"]))


def _stateful(step, state, *batch):
    """A () -> loss callable that runs the jitted `step` and keeps its (donated) state."""
    jitted = jax.jit(step, donate_argnums=0)

    def run():
        state[0], loss = jitted(state[0], *batch)
        return loss

    return run


def sync(out):
    return float(out)


# ---- translation models ---------------------------------------------------------------------------


def _masked_softmax(scores, mask):
    weights = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
    return jnp.where(mask, weights, 0.0)


def _masked_cross_entropy(logits, target):
    mask = (target != 0).astype(logits.dtype)
    picked = jnp.take_along_axis(logits, target[..., None], -1)[..., 0]
    losses = jax.nn.logsumexp(logits, -1) - picked
    return jnp.sum(losses * mask) / jnp.sum(mask)


def _translation_prepare(model, project, opt):
    source, decoder_input, target = (
        jnp.asarray(project.arrays[k], jnp.int32) for k in ("source", "decoder_input", "target")
    )

    def step(state, source, decoder_input, target):
        params, opt_state = state

        def loss_fn(params):
            return _masked_cross_entropy(model.logits(params, source, decoder_input), target)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        params, opt_state = adam(params, grads, opt_state, **opt)
        return (params, opt_state), loss

    state = [(model.params, adam_init(model.params))]
    return _stateful(step, state, source, decoder_input, target)


def _gru_scan(x_proj, mask, recurrent, bias_h, reverse):
    """Keras GRU (reset_after, gates z, r, h) over time; masked steps keep the state.

    x_proj: (B, T, 3n) input projections with the input bias. Returns (outputs (B, T, n), last).
    """
    n = recurrent.shape[0]

    def cell(h, inputs):
        gx, m = inputs
        gh = h @ recurrent + bias_h
        z = jax.nn.sigmoid(gx[:, :n] + gh[:, :n])
        r = jax.nn.sigmoid(gx[:, n : 2 * n] + gh[:, n : 2 * n])
        candidate = jnp.tanh(gx[:, 2 * n :] + r * gh[:, 2 * n :])
        h = jnp.where(m[:, None], z * h + (1 - z) * candidate, h)
        return h, h

    h0 = jnp.zeros((x_proj.shape[0], n), x_proj.dtype)
    last, outputs = lax.scan(
        cell, h0, (jnp.swapaxes(x_proj, 0, 1), jnp.swapaxes(mask, 0, 1)), reverse=reverse
    )
    return jnp.swapaxes(outputs, 0, 1), last


class Bahdanau:
    def __init__(self, sizes):
        e, h, a, m = sizes["embedding"], sizes["units"], sizes["attention_units"], sizes["maxout_units"]
        v_s, v_t = sizes["source_vocab"], sizes["target_vocab"]
        self.sizes = sizes
        shapes = {
            "source_embedding": (v_s, e),
            "fw_w": (e, 3 * h), "fw_u": (h, 3 * h), "fw_b": (2, 3 * h),
            "bw_w": (e, 3 * h), "bw_u": (h, 3 * h), "bw_b": (2, 3 * h),
            "target_embedding": (v_t, e), "init_w": (h, h), "init_b": (h,),
            "cell_w": (e + 2 * h, 3 * h), "cell_u": (h, 3 * h), "cell_b": (3 * h,),
            "query": (h, a), "key": (2 * h, a), "att_b": (a,), "score": (a,),
            "maxout_w": (h + e + 2 * h, 2 * m), "maxout_b": (2 * m,),
            "logits_w": (m, v_t), "logits_b": (v_t,),
        }  # fmt: skip
        self.params = _init(jax.random.key(3), shapes)

    def counts(self):
        return {"model": _count(self.params)}

    def load(self, project):
        _load(self.params, keras_weights(project.models["model"]))

    def logits(self, p, source, decoder_input):
        mask = source != 0
        x = p["source_embedding"][source]  # (B, S, e)
        forward, _ = _gru_scan(x @ p["fw_w"] + p["fw_b"][0], mask, p["fw_u"], p["fw_b"][1], False)
        backward, last = _gru_scan(x @ p["bw_w"] + p["bw_b"][0], mask, p["bw_u"], p["bw_b"][1], True)
        annotations = jnp.concatenate([forward, backward], -1)  # (B, S, 2h)
        state = jnp.tanh(last @ p["init_w"] + p["init_b"])
        keys = annotations @ p["key"] + p["att_b"]
        embedded = p["target_embedding"][decoder_input]
        n, m = state.shape[1], self.sizes["maxout_units"]
        outputs = []
        for t in range(decoder_input.shape[1]):
            y = embedded[:, t]
            scores = jnp.tanh((state @ p["query"])[:, None] + keys) @ p["score"]
            weights = _masked_softmax(scores, mask)
            context = jnp.einsum("bs,bsd->bd", weights, annotations)
            gx = jnp.concatenate([y, context], -1) @ p["cell_w"] + p["cell_b"]
            zr = jax.nn.sigmoid(gx[:, : 2 * n] + state @ p["cell_u"][:, : 2 * n])
            z, r = zr[:, :n], zr[:, n:]
            candidate = jnp.tanh(gx[:, 2 * n :] + (r * state) @ p["cell_u"][:, 2 * n :])
            readout = jnp.concatenate([state, y, context], -1) @ p["maxout_w"] + p["maxout_b"]
            readout = readout.reshape(-1, m, 2).max(-1)
            outputs.append(readout @ p["logits_w"] + p["logits_b"])
            state = z * state + (1 - z) * candidate
        return jnp.stack(outputs, 1)

    def forward(self, inputs):
        logits = jax.jit(self.logits)(self.params, inputs["source"], inputs["decoder_input"])
        return {"logits": np.asarray(logits)}

    def prepare(self, project):
        opt = dict(lr=self.sizes["lr"], beta_2=self.sizes["beta_2"], epsilon=self.sizes["epsilon"])
        return _translation_prepare(self, project, opt)


def _layer_norm(x, gamma, beta):
    mean = jnp.mean(x, -1, keepdims=True)
    var = jnp.var(x, -1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-6) * gamma + beta


class Transformer:
    def __init__(self, sizes):
        d = sizes["d_model"]
        self.sizes = sizes
        shapes = transformer_shapes(sizes)
        self.params = _init(jax.random.key(4), shapes)
        self.source_pe = jnp.asarray(positional_encoding(sizes["source_length"], d))
        self.target_pe = jnp.asarray(positional_encoding(sizes["target_length"], d))

    def counts(self):
        return {"model": _count(self.params)}

    def load(self, project):
        _load(self.params, keras_weights(project.models["model"]))

    @staticmethod
    def _attend(p, prefix, query, memory, mask):
        def heads(x, name):  # (B, T, d) -> (B, H, T, k)
            return (
                jnp.einsum("btd,dhk->bhtk", x, p[f"{prefix}_w{name}"]) + p[f"{prefix}_b{name}"][:, None]
            )

        q, k, v = heads(query, "q"), heads(memory, "k"), heads(memory, "v")
        scores = jnp.einsum("bhqk,bhtk->bhqt", q / np.sqrt(q.shape[-1]), k)
        weights = _masked_softmax(scores, mask)
        out = jnp.einsum("bhqt,bhtk->bhqk", weights, v)
        return jnp.einsum("bhtv,hvd->btd", out, p[f"{prefix}_wo"]) + p[f"{prefix}_bo"]

    def logits(self, p, source, decoder_input):
        d, layers = self.sizes["d_model"], self.sizes["layers"]

        def norm(x, prefix):
            return _layer_norm(x, p[f"{prefix}_gamma"], p[f"{prefix}_beta"])

        def ff(x, prefix):
            hidden = jax.nn.relu(x @ p[f"{prefix}_w1"] + p[f"{prefix}_b1"])
            return hidden @ p[f"{prefix}_w2"] + p[f"{prefix}_b2"]

        padding = (source != 0)[:, None, None, :]  # (B, 1, 1, S)
        t = decoder_input.shape[1]
        causal = jnp.tril(jnp.ones((t, t), bool))
        x = p["source_embedding"][source] * np.sqrt(d) + self.source_pe
        for i in range(layers):
            x = norm(x + self._attend(p, f"e{i}_att", x, x, padding), f"e{i}_n1")
            x = norm(x + ff(x, f"e{i}_ff"), f"e{i}_n2")
        y = p["target_embedding"][decoder_input] * np.sqrt(d) + self.target_pe
        for i in range(layers):
            y = norm(y + self._attend(p, f"d{i}_self", y, y, causal), f"d{i}_n1")
            y = norm(y + self._attend(p, f"d{i}_cross", y, x, padding), f"d{i}_n2")
            y = norm(y + ff(y, f"d{i}_ff"), f"d{i}_n3")
        return y @ p["logits_w"] + p["logits_b"]

    def forward(self, inputs):
        logits = jax.jit(self.logits)(self.params, inputs["source"], inputs["decoder_input"])
        return {"logits": np.asarray(logits)}

    def prepare(self, project):
        s = self.sizes
        opt = dict(lr=s["lr"], beta_2=s["beta_2"], epsilon=s["epsilon"])
        return _translation_prepare(self, project, opt)


NATIVE = {"dcgan": DCGAN, "bahdanau": Bahdanau, "transformer": Transformer}
