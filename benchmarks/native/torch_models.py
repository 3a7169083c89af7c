"""Hand-written PyTorch versions of the compared training steps (eager, as PyTorch users train).

Idiomatic PyTorch: NCHW images, `F.conv2d` / `F.conv_transpose2d`, `F.batch_norm`, a fused
bidirectional `nn.GRU` over packed sequences, `F.scaled_dot_product_attention`, `torch.optim.Adam`
(its default multi-tensor "foreach" update). Each class builds its parameters from the sizes alone
(so their count is an independent check), `load` copies a Keras model's weights into them
(converting layouts), `forward` gives the outputs compared with the project's, `step` is one
training step on the project's batch.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.native.common import keras_weights, positional_encoding


def _param(*shape):
    return nn.Parameter(torch.randn(*shape) * 0.02)


def _count(tensors):
    return sum(t.numel() for t in tensors)


def _copy(target, array):
    array = torch.as_tensor(np.ascontiguousarray(array))
    if tuple(target.shape) != tuple(array.shape):
        raise AssertionError(f"shape {tuple(array.shape)} does not fit {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(array)


class _BatchNorm:
    """Parameters and running statistics of a BatchNorm (Keras: momentum 0.9, epsilon 1e-3)."""

    def __init__(self, n):
        self.weight, self.bias = nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n))
        self.mean, self.var = torch.zeros(n), torch.ones(n)

    def __call__(self, x):
        return F.batch_norm(x, self.mean, self.var, self.weight, self.bias, True, 0.1, 1e-3)

    def tensors(self):
        return [self.weight, self.bias, self.mean, self.var]


def _hwc_to_chw(n_h, n_w, n_c):
    """Index that reorders a flat (h, w, c) axis into (c, h, w)."""
    return np.arange(n_h * n_w * n_c).reshape(n_h, n_w, n_c).transpose(2, 0, 1).reshape(-1)


class DCGAN:
    def __init__(self, sizes):
        self.latent, self.slope = sizes["latent"], sizes["slope"]
        # G: z (100) -> 1024 -> 6272 = 128 x 7 x 7 -> deconv 128 x 14 x 14 -> deconv 1 x 28 x 28
        self.g = dict(
            w1=_param(100, 1024), b1=_param(1024), w2=_param(1024, 6272), b2=_param(6272),
            k3=_param(128, 128, 5, 5), b3=_param(128), k4=_param(128, 1, 5, 5), b4=_param(1),
        )  # fmt: skip
        self.g_bn = [_BatchNorm(1024), _BatchNorm(6272), _BatchNorm(128)]
        # D: 1 x 28 x 28 -> conv 11 x 14 x 14 -> conv 74 x 7 x 7 -> 3626 -> 1024 -> 1
        self.d = dict(
            k1=_param(11, 1, 5, 5), b1=_param(11), k2=_param(74, 11, 5, 5), b2=_param(74),
            w3=_param(3626, 1024), b3=_param(1024), w4=_param(1024, 1), b4=_param(1),
        )  # fmt: skip
        self.d_bn = [_BatchNorm(74), _BatchNorm(1024)]
        adam = dict(lr=sizes["lr"], betas=(sizes["beta_1"], 0.999), eps=1e-7)
        self.g_opt = torch.optim.Adam(self._g_params(), **adam)
        self.d_opt = torch.optim.Adam(self._d_params(), **adam)

    def _g_params(self):
        return [*self.g.values(), *(p for bn in self.g_bn for p in (bn.weight, bn.bias))]

    def _d_params(self):
        return [*self.d.values(), *(p for bn in self.d_bn for p in (bn.weight, bn.bias))]

    def counts(self):
        g = _count(self.g.values()) + sum(_count(bn.tensors()) for bn in self.g_bn)
        d = _count(self.d.values()) + sum(_count(bn.tensors()) for bn in self.d_bn)
        return {"G": g, "D": d}

    def generator(self, z):
        g, (bn1, bn2, bn3) = self.g, self.g_bn
        x = F.relu(bn1(torch.addmm(g["b1"], z, g["w1"])))
        x = F.relu(bn2(torch.addmm(g["b2"], x, g["w2"]))).view(-1, 128, 7, 7)
        # Keras' "same" transposed convolution crops one row and column before and two after.
        x = F.conv_transpose2d(x, g["k3"], g["b3"], stride=2, padding=1)[:, :, :14, :14]
        x = F.relu(bn3(x))
        x = F.conv_transpose2d(x, g["k4"], g["b4"], stride=2, padding=1)[:, :, :28, :28]
        return torch.sigmoid(x)

    def discriminator(self, image):
        d, (bn2, bn3) = self.d, self.d_bn
        # TensorFlow's "same" padding of a 5x5 stride-2 convolution: one before, two after.
        x = F.leaky_relu(F.conv2d(F.pad(image, (1, 2, 1, 2)), d["k1"], d["b1"], 2), self.slope)
        x = F.leaky_relu(bn2(F.conv2d(F.pad(x, (1, 2, 1, 2)), d["k2"], d["b2"], 2)), self.slope)
        x = F.leaky_relu(bn3(torch.addmm(d["b3"], x.flatten(1), d["w3"])), self.slope)
        return torch.addmm(d["b4"], x, d["w4"])

    def load(self, project):
        g = keras_weights(project.models["G"])
        order = _hwc_to_chw(7, 7, 128)  # Keras reshapes the 6272 units as (7, 7, 128)
        g_arrays = [
            g[0], g[1], g[6][:, order], g[7][order],
            g[12].transpose(3, 2, 0, 1), g[13], g[18].transpose(3, 2, 0, 1), g[19],
        ]  # fmt: skip
        for target, array in zip(self.g.values(), g_arrays):
            _copy(target, array)
        for bn, start, index in zip(self.g_bn, (2, 8, 14), (None, order, None)):
            for target, array in zip(bn.tensors(), g[start : start + 4]):
                _copy(target, array if index is None else array[index])
        d = keras_weights(project.models["D"])
        flat = _hwc_to_chw(7, 7, 74)  # Keras flattens (7, 7, 74)
        d_arrays = [
            d[0].transpose(3, 2, 0, 1), d[1], d[2].transpose(3, 2, 0, 1), d[3],
            d[8][flat], d[9], d[14], d[15],
        ]  # fmt: skip
        for target, array in zip(self.d.values(), d_arrays):
            _copy(target, array)
        for bn, start in zip(self.d_bn, (4, 10)):
            for target, array in zip(bn.tensors(), d[start : start + 4]):
                _copy(target, array)

    def forward(self, inputs):
        with torch.no_grad():
            image = self.generator(torch.as_tensor(inputs["z"])).permute(0, 2, 3, 1)
            logits = self.discriminator(torch.as_tensor(inputs["real"]).permute(0, 3, 1, 2))
        return {"G": image.numpy(), "D": logits.numpy()}

    def prepare(self, project):
        real = torch.as_tensor(project.arrays["real"]).permute(0, 3, 1, 2).contiguous()
        bce = F.binary_cross_entropy_with_logits
        d_params, g_params = self._d_params(), self._g_params()

        def step():
            n = real.shape[0]
            # (1) D on real images and G(z) (G held fixed), (2) G through the updated D.
            with torch.no_grad():
                fake = self.generator(torch.randn(n, self.latent))
            real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
            d_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(
                fake_logits, torch.zeros_like(fake_logits)
            )
            for p, grad in zip(d_params, torch.autograd.grad(d_loss, d_params)):
                p.grad = grad
            self.d_opt.step()
            fake_logits = self.discriminator(self.generator(torch.randn(n, self.latent)))
            g_loss = bce(fake_logits, torch.ones_like(fake_logits))
            for p, grad in zip(g_params, torch.autograd.grad(g_loss, g_params)):
                p.grad = grad
            self.g_opt.step()
            return d_loss

        return step


def _gru_weights(kernel, recurrent, bias):
    """Keras GRU (reset_after, gates z, r, h) -> torch nn.GRU (gates r, z, n) weights."""
    n = recurrent.shape[0]

    def reorder(a):  # last axis [z, r, h] -> [r, z, h], then (3n, ...) rows
        return np.concatenate([a[..., n : 2 * n], a[..., :n], a[..., 2 * n :]], axis=-1)

    return reorder(kernel).T, reorder(recurrent).T, reorder(bias[0]), reorder(bias[1])


def _masked_softmax(scores, mask):
    scores = scores.masked_fill(~mask, -1e9)
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)


def _masked_cross_entropy(logits, target):
    """Mean cross-entropy over the non-<pad> (id 0) target tokens."""
    return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=0)


class _Translation:
    """The forward pass and the training step shared by the translation models (`self.logits`,
    `self.opt`)."""

    def forward(self, inputs):
        with torch.no_grad():
            logits = self.logits(*(torch.as_tensor(inputs[k]) for k in ("source", "decoder_input")))
        return {"logits": logits.numpy()}

    def prepare(self, project):
        source, decoder_input, target = (
            torch.as_tensor(project.arrays[k]).long() for k in ("source", "decoder_input", "target")
        )

        def step():
            self.opt.zero_grad(set_to_none=True)
            loss = _masked_cross_entropy(self.logits(source, decoder_input), target)
            loss.backward()
            self.opt.step()
            return loss

        return step


class Bahdanau(_Translation):
    """Bidirectional GRU encoder (nn.GRU on packed sequences), Bahdanau attention decoder."""

    def __init__(self, sizes):
        e, h, a, m = sizes["embedding"], sizes["units"], sizes["attention_units"], sizes["maxout_units"]
        v_s, v_t = sizes["source_vocab"], sizes["target_vocab"]
        self.maxout_units = m
        self.source_embedding = _param(v_s, e)
        self.encoder = nn.GRU(e, h, batch_first=True, bidirectional=True)
        self.p = dict(
            target_embedding=_param(v_t, e), init_w=_param(h, h), init_b=_param(h),
            cell_w=_param(e + 2 * h, 3 * h), cell_u=_param(h, 3 * h), cell_b=_param(3 * h),
            query=_param(h, a), key=_param(2 * h, a), att_b=_param(a), score=_param(a),
            maxout_w=_param(h + e + 2 * h, 2 * m), maxout_b=_param(2 * m),
            logits_w=_param(m, v_t), logits_b=_param(v_t),
        )  # fmt: skip
        self.opt = torch.optim.Adam(self.parameters(), lr=sizes["lr"], eps=sizes["epsilon"])

    def parameters(self):
        return [self.source_embedding, *self.encoder.parameters(), *self.p.values()]

    def counts(self):
        return {"model": _count(self.parameters())}

    def load(self, project):
        w = keras_weights(project.models["model"])
        _copy(self.source_embedding, w[0])
        for suffix, (k, u, b) in (("", w[1:4]), ("_reverse", w[4:7])):
            for name, array in zip(
                ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), _gru_weights(k, u, b)
            ):
                _copy(getattr(self.encoder, f"{name}_l0{suffix}"), array)
        for target, array in zip(self.p.values(), w[7:]):
            _copy(target, array)

    def logits(self, source, decoder_input):
        p = self.p
        mask = source != 0  # (B, S)
        lengths = mask.sum(1)
        packed = nn.utils.rnn.pack_padded_sequence(
            F.embedding(source, self.source_embedding), lengths, batch_first=True, enforce_sorted=False
        )
        out, last = self.encoder(packed)
        annotations, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=source.shape[1]
        )  # (B, S, 2h): forward and backward states of each position, zeros on padding
        state = torch.tanh(torch.addmm(p["init_b"], last[1], p["init_w"]))  # the backward final state
        keys = annotations @ p["key"] + p["att_b"]  # (B, S, a)
        embedded = F.embedding(decoder_input, p["target_embedding"])  # (B, T, e)
        n = state.shape[1]
        outputs = []
        for t in range(decoder_input.shape[1]):
            y = embedded[:, t]
            scores = torch.tanh((state @ p["query"])[:, None] + keys) @ p["score"]  # (B, S)
            weights = _masked_softmax(scores, mask)
            context = torch.bmm(weights[:, None], annotations)[:, 0]  # (B, 2h)
            # GRU cell with the reset gate before the recurrent product (Keras reset_after=False).
            x = torch.cat([y, context], -1)
            gx = torch.addmm(p["cell_b"], x, p["cell_w"])
            gh = state @ p["cell_u"][:, : 2 * n]
            z, r = torch.sigmoid(gx[:, : 2 * n] + gh).chunk(2, -1)
            candidate = torch.tanh(gx[:, 2 * n :] + (r * state) @ p["cell_u"][:, 2 * n :])
            readout = torch.addmm(p["maxout_b"], torch.cat([state, y, context], -1), p["maxout_w"])
            readout = readout.view(-1, self.maxout_units, 2).amax(-1)
            outputs.append(torch.addmm(p["logits_b"], readout, p["logits_w"]))
            state = z * state + (1 - z) * candidate
        return torch.stack(outputs, 1)


class Transformer(_Translation):
    """Post-norm encoder-decoder; attention through F.scaled_dot_product_attention."""

    def __init__(self, sizes):
        d, f, v_s, v_t = sizes["d_model"], sizes["ff"], sizes["source_vocab"], sizes["target_vocab"]
        self.heads, self.d = sizes["heads"], d
        self.source_pe = torch.as_tensor(positional_encoding(sizes["source_length"], d))
        self.target_pe = torch.as_tensor(positional_encoding(sizes["target_length"], d))

        def attention():  # query, key, value, output: (d, d) kernels and (d,) biases
            return [_param(d, d), _param(d), _param(d, d), _param(d), _param(d, d), _param(d),
                    _param(d, d), _param(d)]  # fmt: skip

        def norm():
            return [nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))]

        def ff():
            return [_param(d, f), _param(f), _param(f, d), _param(d)]

        self.source_embedding, self.target_embedding = _param(v_s, d), _param(v_t, d)
        self.encoder = [attention() + norm() + ff() + norm() for _ in range(sizes["layers"])]
        self.decoder = [
            attention() + norm() + attention() + norm() + ff() + norm() for _ in range(sizes["layers"])
        ]
        self.out = [_param(d, v_t), _param(v_t)]
        self.opt = torch.optim.Adam(
            self.parameters(), lr=sizes["lr"], betas=(0.9, sizes["beta_2"]), eps=sizes["epsilon"]
        )

    def parameters(self):
        blocks = [p for block in self.encoder + self.decoder for p in block]
        return [self.source_embedding, self.target_embedding, *blocks, *self.out]

    def counts(self):
        return {"model": _count(self.parameters())}

    def load(self, project):
        w = keras_weights(project.models["model"])
        head = (self.heads, self.d // self.heads)

        def flat(a):  # per-head kernels and biases -> (d, d) and (d,)
            if a.ndim == 3:
                return a.reshape(-1, a.shape[2]) if a.shape[:2] == head else a.reshape(a.shape[0], -1)
            return a.reshape(-1) if a.shape == head else a

        arrays = [flat(a) for a in w]
        for target, array in zip(self.parameters(), arrays, strict=True):
            _copy(target, array)

    def _attend(self, p, query, memory, mask=None, causal=False):
        batch, n_q, n_k = query.shape[0], query.shape[1], memory.shape[1]
        wq, bq, wk, bk, wv, bv, wo, bo = p

        def heads(x, w, b, n):
            return torch.addmm(b, x.flatten(0, 1), w).view(batch, n, self.heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(query, wq, bq, n_q), heads(memory, wk, bk, n_k), heads(memory, wv, bv, n_k),
            attn_mask=None if mask is None else mask[:, None, None, :], is_causal=causal,
        )  # fmt: skip
        return torch.addmm(bo, out.transpose(1, 2).reshape(batch * n_q, -1), wo).view(batch, n_q, -1)

    def _norm(self, x, p):
        return F.layer_norm(x, (self.d,), p[0], p[1], 1e-6)

    def _ff(self, x, p):
        return F.linear(F.relu(x @ p[0] + p[1]), p[2].T, p[3])

    def logits(self, source, decoder_input):
        mask = source != 0
        x = F.embedding(source, self.source_embedding) * self.d**0.5 + self.source_pe
        for b in self.encoder:
            x = self._norm(x + self._attend(b[:8], x, x, mask), b[8:10])
            x = self._norm(x + self._ff(x, b[10:14]), b[14:16])
        y = F.embedding(decoder_input, self.target_embedding) * self.d**0.5 + self.target_pe
        for b in self.decoder:
            y = self._norm(y + self._attend(b[:8], y, y, causal=True), b[8:10])
            y = self._norm(y + self._attend(b[10:18], y, x, mask), b[18:20])
            y = self._norm(y + self._ff(y, b[20:24]), b[24:26])
        return y @ self.out[0] + self.out[1]


NATIVE = {"dcgan": DCGAN, "bahdanau": Bahdanau, "transformer": Transformer}


def sync(out):
    return float(out)
