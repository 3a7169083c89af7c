"""char_rnn's models, optimizers, the compiled stateful training step and the NumPy sampler.

A corpus model is called as `model(ids, states) -> (logits, states)`; `model.numpy_step(weights)`
runs one character through NumPy copies of its weights, for sampling.

`--dtype-policy` (mixed precision): `build_model` and `build_toy_model` build under the policy, so
the recurrences compute in float16 or bfloat16 with float32 weights; logits and carried states are
float32 (the output layer of the stacked and toy models is float32). Under mixed_float16
`build_optimizer` wraps the optimizer in `keras.optimizers.LossScaleOptimizer` and `make_step`
scales the loss (`engine.value_and_grad(..., loss_scale=optimizer)`, `engine.apply`).
"""

import functools

import numpy as np

from recipes import engine
from recipes.common import cli, precision

keras = cli.lazy_import("keras")


@functools.cache
def model_classes():
    """(MinimalRNN, StackedRNN), defined on first use: subclassing keras.Model imports the backend,
    which `--help` must not."""

    class MinimalRNN(keras.Model):
        """min-char-rnn's vanilla RNN with explicit weights (row-vector layout: W_xh is (vocab, hidden)).

        h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h), y_t = h_t W_hy + b_y with one-hot characters x_t;
        weights N(0, 0.01^2), biases 0 (23,165 parameters for 65 characters and 100 hidden units).
        The input term is a one-hot x_t times W_xh, as in min-char-rnn. (A gather of row x_t would
        give the same forward pass, but on TensorFlow its gradient is a list of rows in which a
        character seen twice in a window appears twice, and Keras' optimizers then square and clip the
        rows one by one instead of their sum: no longer min-char-rnn's update.)
        """

        def __init__(self, vocab_size, hidden=100, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.hidden = vocab_size, hidden
            small = keras.initializers.RandomNormal(0.0, 0.01, seed=seed)
            self.w_xh = self.add_weight((vocab_size, hidden), small, name="w_xh")
            self.w_hh = self.add_weight((hidden, hidden), small, name="w_hh")
            self.w_hy = self.add_weight((hidden, vocab_size), small, name="w_hy")
            self.b_h = self.add_weight((hidden,), "zeros", name="b_h")
            self.b_y = self.add_weight((vocab_size,), "zeros", name="b_y")

        def state_shapes(self, batch_size):
            return [(batch_size, self.hidden)]

        def call(self, ids, states):
            ops = keras.ops
            h = ops.cast(states[0], self.compute_dtype)  # (batch, hidden)
            one_hot = ops.one_hot(ids, self.vocab_size, dtype=self.compute_dtype)
            inputs = ops.matmul(one_hot, self.w_xh)
            # (batch, T, hidden): x_t W_xh for every step
            outputs = []
            for t in range(ids.shape[1]):  # unrolled: T is fixed, as in min-char-rnn
                h = ops.tanh(inputs[:, t] + ops.matmul(h, self.w_hh) + self.b_h)
                outputs.append(h)
            # T x (batch, hidden)
            logits = ops.matmul(ops.stack(outputs, axis=1), self.w_hy) + self.b_y
            # (batch, T, vocab), float32 under a mixed policy too
            return ops.cast(logits, "float32"), [ops.cast(h, "float32")]

        def numpy_step(self, weights):
            w_xh, w_hh, w_hy, b_h, b_y = weights

            def step(i, states):
                h = np.tanh(w_xh[i] + states[0] @ w_hh + b_h)
                return h @ w_hy + b_y, [h]

            return step

    class StackedRNN(keras.Model):
        """char-rnn: embedding (vocab, hidden), `layers` x LSTM/GRU/SimpleRNN(hidden), Dense(vocab)."""

        CELLS = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

        def __init__(self, vocab_size, hidden=128, layers=2, kind="lstm", seed=0, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.hidden, self.kind = vocab_size, hidden, kind
            # An embedding as a one-hot product (see MinimalRNN on why not a gather), Embedding's init.
            uniform = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)
            self.embedding = keras.layers.Dense(
                hidden, use_bias=False, kernel_initializer=uniform, name="embedding"
            )
            cell = getattr(keras.layers, self.CELLS[kind])
            self.rnns = [
                cell(hidden, return_sequences=True, return_state=True, seed=seed + i, name=f"{kind}_{i}")
                for i in range(layers)
            ]
            self.head = keras.layers.Dense(vocab_size, name="logits", dtype="float32")

        def _per_layer(self):
            return 2 if self.kind == "lstm" else 1  # an LSTM carries (h, c)

        def state_shapes(self, batch_size):
            return [(batch_size, self.hidden)] * (self._per_layer() * len(self.rnns))

        def call(self, ids, states):
            ops = keras.ops
            x = self.embedding(ops.one_hot(ids, self.vocab_size, dtype=self.compute_dtype))
            # (batch, T, hidden)
            new, k = [], self._per_layer()
            for i, rnn in enumerate(self.rnns):
                own = [ops.cast(s, self.compute_dtype) for s in states[i * k : (i + 1) * k]]
                x, *state = rnn(x, initial_state=own if k > 1 else own[0])
                new.extend(ops.cast(s, "float32") for s in state)
            # (batch, T, hidden); each layer's final state (batch, hidden) carried to the next window
            return self.head(x), new  # (batch, T, vocab), float32 (the head is)

        def numpy_step(self, weights):
            """One character through NumPy copies of the weights (Keras' gate layouts)."""
            embedding, rest = weights[0], weights[1:]
            per = 3  # kernel, recurrent kernel, bias
            cells = [rest[i * per : (i + 1) * per] for i in range(len(self.rnns))]
            w_out, b_out = rest[-2:]
            n, k = self.hidden, self._per_layer()

            def sigmoid(z):
                return 1.0 / (1.0 + np.exp(-z))

            def step(i, states):
                x, new = embedding[i][None], []
                for layer, (w, u, b) in enumerate(cells):
                    if self.kind == "lstm":  # Keras' gate order: input, forget, cell, output
                        h, c = states[2 * layer], states[2 * layer + 1]
                        z = x @ w + h @ u + b
                        gi, gf, gc, go = (z[:, j * n : (j + 1) * n] for j in range(4))
                        c = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gc)
                        h = sigmoid(go) * np.tanh(c)
                        new += [h, c]
                    elif self.kind == "gru":  # reset_after=True: bias has an input and a recurrent row.
                        h = states[layer]
                        zx, zh = x @ w + b[0], h @ u + b[1]
                        z = sigmoid(zx[:, :n] + zh[:, :n])
                        r = sigmoid(zx[:, n : 2 * n] + zh[:, n : 2 * n])
                        cand = np.tanh(zx[:, 2 * n :] + r * zh[:, 2 * n :])
                        h = z * h + (1 - z) * cand
                        new.append(h)
                    else:
                        h = np.tanh(x @ w + states[layer] @ u + b)
                        new.append(h)
                    x = new[-1] if k == 1 else new[-2]
                return (x @ w_out + b_out)[0], new

            return step

    return MinimalRNN, StackedRNN


def build_model(config, vocab_size):
    """min-char-rnn (`--model minimal`) or char-rnn's stack of `--layers` recurrent layers, built
    under `--dtype-policy`."""
    minimal_rnn, stacked_rnn = model_classes()
    with precision.dtype_policy(config):
        if config.model == "minimal":
            model = minimal_rnn(vocab_size, config.hidden, seed=config.seed, name="min_char_rnn")
        else:
            model = stacked_rnn(
                vocab_size, config.hidden, config.layers, config.model, config.seed, name="char_rnn"
            )
    states = [keras.ops.zeros(s) for s in model.state_shapes(1)]
    model(keras.ops.zeros((1, 1), "int32"), states)  # builds the weights
    return model


def build_optimizer(config, steps_per_pass):
    """minimal: Adagrad with every gradient clipped to [-clip, clip]; stacked: Adam decayed by
    `--decay` per pass over the text, gradients clipped to global norm `--clip` (char-rnn's).
    Under mixed_float16 in a `keras.optimizers.LossScaleOptimizer` (which clips the unscaled
    gradients)."""
    if config.model == "minimal":
        # Exactly min-char-rnn's update: mem += g^2; p -= lr g / sqrt(mem + 1e-8), mem from 0.
        optimizer = keras.optimizers.Adagrad(
            config.learning_rate, initial_accumulator_value=0.0, epsilon=1e-8, clipvalue=config.clip
        )
    else:
        schedule = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, steps_per_pass, config.decay, staircase=True
        )
        optimizer = keras.optimizers.Adam(schedule, global_clipnorm=config.clip)
    return precision.loss_scaled(config, optimizer)


def make_step(model, optimizer, state_vars, reduction):
    """The compiled step (`engine.function`): loss on one window per stream, update, and the hidden
    state carried over to the next window in `state_vars`. A `LossScaleOptimizer` (mixed_float16)
    gets the loss scaled before differentiation; the reported loss is unscaled."""
    params = model.trainable_variables
    ops = keras.ops

    def step(inputs, targets):
        def loss_fn():
            logits, new = model(inputs, [v.value for v in state_vars])
            losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
            # minimal: min-char-rnn's sum over the window; stacked: the mean, as char-rnn.
            total = ops.sum(losses) if reduction == "sum" else ops.mean(losses)
            return total, (ops.mean(losses), new)

        (_, (per_char, new)), grads = engine.value_and_grad(
            loss_fn, params, has_aux=True, loss_scale=optimizer
        )
        engine.apply(optimizer, grads, params)
        for variable, value in zip(state_vars, new):
            variable.assign(ops.stop_gradient(value))
        return ops.stop_gradient(per_char)

    return engine.function(step, [model, optimizer, *state_vars])


def sample(step, states, first, length, temperature, rng):
    """`length` character ids drawn one at a time from softmax(logits / temperature).

    temperature 1 samples the model's distribution; towards 0 it becomes greedy.
    """
    states, i, out = [np.array(s, "float64") for s in states], int(first), []
    for _ in range(length):
        logits, states = step(i, states)
        z = np.asarray(logits, "float64").reshape(-1) / temperature
        p = np.exp(z - z.max())
        i = int(rng.choice(len(p), p=p / p.sum()))
        out.append(i)
    return out


def build_toy_model(which, vocab_size, seed=0, head=True, dtype_policy="float32"):
    """The notes' models for the toy strings, one-hot characters (B, T, V) in, logits out.

    short: SimpleRNN(13) (351 parameters) -> Dense(13); `head=False` makes the RNN's tanh outputs
    the logits, as the notes do. long: SimpleRNN(25) x 2 -> Dense(25), 3,200 parameters (torch's
    two biases per layer make 3,250).

    `dtype_policy`: the RNNs compute under it; the logits are float32 (the head is; without a head,
    a float32 linear activation casts the tanh outputs). Keras' `compile` then scales the loss under
    mixed_float16 (its optimizer becomes a `LossScaleOptimizer`).
    """
    with precision.dtype_policy(dtype_policy):
        layers = [keras.Input((None, vocab_size))]
        count = 1 if which == "short" else 2
        for i in range(count):
            layers.append(
                keras.layers.SimpleRNN(vocab_size, return_sequences=True, seed=seed + i, name=f"rnn_{i}")
            )
            # (B, T, V)
        if which == "long" or head:
            layers.append(keras.layers.Dense(vocab_size, name="fc", dtype="float32"))
            # (B, T, V) logits
        elif dtype_policy != "float32":
            layers.append(keras.layers.Activation("linear", name="logits", dtype="float32"))
        return keras.Sequential(layers, name=f"char_rnn_{which}")
