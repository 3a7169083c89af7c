"""rnn_lm's models with the notes' hand-written backward passes: Bengio's NPLM (A 1), Britz's RNN
LM (A 7.2) and sentence generation."""

import numpy as np

from recipes.common import cli, text

keras = cli.lazy_import("keras")


# ---- A 1: Bengio's NPLM, as Hinton's Coursera assignment 2 builds it -------------------------------


def build_nplm(
    vocab_size=250, context=3, embedding_dim=50, hidden=200, init_scale=0.01, weight_decay=0.0, seed=0
):
    """Three word ids -> a shared embedding (W0) -> sigmoid units (W1, b1) -> logits (W2, b2).

    With the notes' sizes, 92,950 parameters. Weights are drawn N(0, init_scale^2) (the
    assignment's 0.01). The notes' weight decay adds lambda W to the gradients of W1 and W2: that is
    Keras' L2(lambda / 2).
    """

    def normal(offset):
        return keras.initializers.RandomNormal(0.0, init_scale, seed=seed + offset)

    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    return keras.Sequential(
        [
            keras.Input((context,), dtype="int32"),
            # (B, 3) word ids
            keras.layers.Embedding(
                vocab_size, embedding_dim, embeddings_initializer=normal(0), name="word_embedding"
            ),
            # (B, 3, 50): row x_i of W0 for each context word
            keras.layers.Flatten(name="x1"),
            # (B, 150): the notes' X1 = [W0'K1; W0'K2; W0'K3] (K_i the one-hot words)
            keras.layers.Dense(
                hidden,
                "sigmoid",
                kernel_initializer=normal(1),
                kernel_regularizer=regularizer,
                name="hidden",
            ),
            # (B, 200)
            keras.layers.Dense(
                vocab_size, kernel_initializer=normal(2), kernel_regularizer=regularizer, name="logits"
            ),
            # (B, 250): softmax in the loss
        ],
        name="nplm",
    )


def nplm_backward(weights, contexts, targets, weight_decay=0.0):
    """The notes' hand-written backward pass (batch-major): gradients of mean cross-entropy + decay.

    `weights` = [W0 (V, D), W1 (C*D, H), b1 (H,), W2 (H, V), b2 (V,)]; returns the same list of
    gradients. dW0 = sum_i K_i dX1_i: each context position adds its rows (repeats accumulate).
    """
    w0, w1, b1, w2, b2 = (np.asarray(w, "float64") for w in weights)
    batch, context = contexts.shape
    dim = w0.shape[1]
    # ---- forward ----
    x1 = w0[contexts].reshape(batch, context * dim)
    f = 1.0 / (1.0 + np.exp(-(x1 @ w1 + b1)))
    logits = f @ w2 + b2
    y = np.exp(logits - logits.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    # ---- backward: softmax + cross-entropy, then layer by layer ----
    t = np.eye(w2.shape[1])[targets]
    dx3 = (y - t) / batch
    dw2 = f.T @ dx3 + weight_decay * w2
    db2 = dx3.sum(axis=0)
    dx2 = (dx3 @ w2.T) * f * (1 - f)
    dw1 = x1.T @ dx2 + weight_decay * w1
    db1 = dx2.sum(axis=0)
    dx1 = (dx2 @ w1.T).reshape(batch, context, dim)
    dw0 = np.zeros_like(w0)
    np.add.at(dw0, contexts, dx1)
    return [dw0, dw1, db1, dw2, db2]


# ---- A 7.2: Britz's RNN language model -------------------------------------------------------------


def build_rnn_lm(vocab_size, hidden=100, seed=0):
    """h_t = tanh(U x_t + W h_{t-1}), logits_t = V h_t, no biases (Britz's hidden 100).

    U is Embedding(N_x, hidden) followed by SimpleRNN's input kernel (U' = E K), W the recurrent
    kernel and V a bias-free Dense.
    """
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            # (B, T) word ids
            keras.layers.Embedding(
                vocab_size,
                hidden,
                name="embedding",
                embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
            ),
            # (B, T, H): E x_t
            keras.layers.SimpleRNN(
                hidden,
                use_bias=False,
                return_sequences=True,
                seed=seed,
                name="rnn",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
                recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2),
            ),
            # (B, T, H): h_t
            keras.layers.Dense(
                vocab_size,
                use_bias=False,
                name="output",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 3),
            ),
            # (B, T, N_x): logits; y_t = softmax in the loss
        ],
        name="rnn_lm",
    )


def truncated_bptt(weights, x, y, truncate):
    """Britz's truncated BPTT (the notes' dW, dU, dV) for one sentence; loss summed over its words.

    `weights` = [E (N_x, H), K (H, H), W (H, H), V (H, N_x)] in Keras layout (U x_t = E[x_t] K).
    From each output step t the error flows back at most `truncate` steps. Returns
    (loss, [dE, dK, dW, dV]); with truncate >= len(x) this is exact backpropagation (autodiff's
    gradients), with Britz's truncate = 4 it is not. Keras has no truncated BPTT: the recipe trains
    with full BPTT.
    """
    e, k, w, v = (np.asarray(a, "float64") for a in weights)
    steps = len(x)
    # ---- forward ----
    u = e[x] @ k  # (T, H): U x_t
    h = np.zeros((steps + 1, w.shape[0]))  # h[-1] is the zero initial state
    for t in range(steps):
        h[t] = np.tanh(u[t] + h[t - 1] @ w)
    logits = h[:steps] @ v
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(steps), y]).sum()
    # ---- backward: dV at each step, dW and dU through at most `truncate` earlier steps ----
    delta_o = p.copy()
    delta_o[np.arange(steps), y] -= 1.0
    dv = h[:steps].T @ delta_o
    dw, du = np.zeros_like(w), np.zeros((steps, w.shape[0]))
    for t in reversed(range(steps)):
        delta = (delta_o[t] @ v.T) * (1 - h[t] ** 2)
        for step in range(t, max(0, t - truncate) - 1, -1):
            dw += np.outer(h[step - 1], delta)
            du[step] += delta
            delta = (delta @ w.T) * (1 - h[step - 1] ** 2)
    dk = e[x].T @ du
    de = np.zeros_like(e)
    np.add.at(de, x, du @ k.T)
    return loss, [de, dk, dw, dv]


def generate(model, vocab, count, max_length, seed=0, temperature=1.0):
    """`count` sentences sampled word by word from START until END (or max_length words).

    Returns (the sentences as token lists, whether each reached END).
    """
    rng = np.random.default_rng(seed)
    start, end = vocab.index[text.START], vocab.index[text.END]
    unknown = vocab.index[text.UNKNOWN]
    ids = np.full((count, max_length + 1), end, "int32")  # one fixed shape for every step
    ids[:, 0] = start
    done = np.zeros(count, bool)
    lengths = np.full(count, max_length)
    for t in range(max_length):
        logits = keras.ops.convert_to_numpy(model(ids[:, :max_length], training=False))[:, t]
        logits = logits.astype("float64") / temperature
        logits[:, [start, unknown]] = -np.inf  # START is never a target; Britz skips UNKNOWN_TOKEN
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        for row in range(count):
            if not done[row]:
                ids[row, t + 1] = rng.choice(len(vocab), p=p[row])
                if ids[row, t + 1] == end:
                    done[row], lengths[row] = True, t
        if done.all():
            break
    return [vocab.decode(ids[row, 1 : lengths[row] + 1]) for row in range(count)], done
