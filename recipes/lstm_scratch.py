"""LSTM and GRU from scratch: cells equal to Keras', BPTT by hand, bidirectional states.

Reproduces "LSTM Networks" of A 7.4 and the RNN, LSTM and GRU of D 7.2-7.4:

1. cells written from the notes' equations (`layers.ScratchLSTMCell`, `ScratchGRUCell`,
   `VanillaRNNCell`) run inside `keras.layers.RNN` and equal Keras' `LSTM`, `GRU(reset_after=False)`
   and `SimpleRNN` once the Keras weights are permuted into the notes' layout;
2. the parameter counts: LSTM 4 (h (h + x) + h) = 300 for h = 5, x = 9 (D 7.3); GRU 3 ((x + h) h + h);
3. backpropagation through time written out in NumPy equals the engine's gradients through the
   Keras cell, for the standard cell and Nico Jimenez's variant (h_t = o_t c_t);
4. Nico's toy problem solved with that NumPy BPTT: the loss falls by orders of magnitude;
5. a bidirectional LSTM's final states: the forward one is the last output's first half, the
   backward one the first output's second half.

    python -m recipes.lstm_scratch
    KERAS_BACKEND=jax python -m recipes.lstm_scratch --seed 2

Measured: every equality holds on all three backends, in 6-20 s a run (2 CPU cores); Nico's loss
(NumPy, seed 0) falls from 0.5540 to 4.36e-06 in 100 iterations.

Outputs (under --out, default runs/lstm_scratch): nico_loss.png, summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 7.4, D 7.2-7.4"
NICO_TARGETS = (-0.5, 0.2, 0.1, -0.5)


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(100, "iterations of Nico's toy problem")
    batch_size: int = cli.option(3, "sequences in the equality checks")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    learning_rate: float = cli.option(0.1, "gradient-descent step of Nico's toy problem")
    units: int = cli.option(4, "units of the cells in the equality checks")


QUICK = {"epochs": 20}


# ---- NumPy LSTM with backpropagation through time ------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_forward(inputs, kernel, bias, variant="standard"):
    """Runs the notes' LSTM over inputs (batch, time, x); returns h (batch, time, units) and a cache.

    kernel: (x + units, 4 units), gates f, i, o, g (ScratchLSTMCell's layout); h_0 = c_0 = 0.
    """
    batch, steps, _ = inputs.shape
    units = kernel.shape[1] // 4
    h = np.zeros((batch, units), inputs.dtype)
    c = np.zeros((batch, units), inputs.dtype)
    hs, cache = [], []
    for t in range(steps):
        xh = np.concatenate([inputs[:, t], h], axis=-1)  # [x_t, h_{t-1}]: (batch, x + units)
        z = xh @ kernel + bias  # (batch, 4 units): f, i, o, g
        f, i, o = (sigmoid(z[:, k * units : (k + 1) * units]) for k in range(3))
        g = np.tanh(z[:, 3 * units :])
        c_previous, c = c, f * c + i * g
        h = o * (np.tanh(c) if variant == "standard" else c)  # (batch, units); nico: h = o c
        cache.append((xh, f, i, o, g, c_previous, c))
        hs.append(h)
    return np.stack(hs, axis=1), cache


def lstm_backward(dh_out, kernel, cache, variant="standard"):
    """BPTT: the gradients of a loss with dL/dh_t = dh_out[:, t] w.r.t. the kernel and the bias.

    The notes' backward equations: dh_t = dl(t) + dh~_t, dc_t = o_t dh_t + dc~_t, then do_t, di_t,
    dg_t, df_t, the gate derivatives dz_t, and dW = sum_t [x_t, h_{t-1}]^T dz_t.
    """
    units = kernel.shape[1] // 4
    input_dim = kernel.shape[0] - units
    d_kernel = np.zeros_like(kernel)
    d_bias = np.zeros(kernel.shape[1], kernel.dtype)
    dh_next = np.zeros_like(dh_out[:, 0])
    dc_next = np.zeros_like(dh_out[:, 0])
    for t in reversed(range(dh_out.shape[1])):
        xh, f, i, o, g, c_previous, c = cache[t]
        dh = dh_out[:, t] + dh_next  # dh_t = dl(t) + dh~_t
        if variant == "standard":
            do = dh * np.tanh(c)
            dc = dh * o * (1 - np.tanh(c) ** 2) + dc_next
        else:  # h = o * c
            do = dh * c
            dc = dh * o + dc_next  # dc_t = o_t dh_t + dc~_t
        di, dg, df = dc * g, dc * i, dc * c_previous
        dz = np.concatenate(
            [df * f * (1 - f), di * i * (1 - i), do * o * (1 - o), dg * (1 - g**2)], axis=-1
        )
        d_kernel += xh.T @ dz
        d_bias += dz.sum(axis=0)
        dh_next = (dz @ kernel.T)[:, input_dim:]  # sum over the gates of W_hh^T (gate' * dgate)
        dc_next = dc * f  # dc~_{t-1} = dc_t f_t
    return d_kernel, d_bias


def squared_loss(h, targets):
    """Nico's loss: sum_t (h_t[0] - y_t)^2 over the batch, and its gradient w.r.t. every h_t."""
    error = h[:, :, 0] - targets
    dh = np.zeros_like(h)
    dh[:, :, 0] = 2 * error
    return float((error**2).sum()), dh


def nico_toy(iterations, learning_rate, seed, units=100, input_dim=50):
    """Nico Jimenez's demo: fit h_t[0] to NICO_TARGETS by gradient descent; the loss per iteration.

    His settings: 100 memory cells, 50-dimensional random inputs, the `variant="nico"` cell
    (h_t = o_t c_t) with the loss sum_t (h_t[0] - y_t)^2, plain gradient descent (the notes: 0.1
    for 100 iterations). Returns the losses and the final h_t[0].
    """
    rng = np.random.default_rng(seed)
    kernel = rng.uniform(-0.1, 0.1, (input_dim + units, 4 * units))
    bias = rng.uniform(-0.1, 0.1, 4 * units)
    inputs = rng.random((1, len(NICO_TARGETS), input_dim))
    targets = np.array([NICO_TARGETS])
    losses = []
    for _ in range(iterations):
        h, cache = lstm_forward(inputs, kernel, bias, "nico")
        loss, dh = squared_loss(h, targets)
        d_kernel, d_bias = lstm_backward(dh, kernel, cache, "nico")
        kernel -= learning_rate * d_kernel
        bias -= learning_rate * d_bias
        losses.append(loss)
    final, _ = lstm_forward(inputs, kernel, bias, "nico")
    return losses, final[0, :, 0]


# ---- the same cells in Keras ---------------------------------------------------------------------


def _numpy(values):
    return [keras.ops.convert_to_numpy(v) for v in values]


def _same_layout(*weights):
    """SimpleRNN's weights as VanillaRNNCell takes them: the layouts are the same."""
    return list(weights)


def cells_equal_keras(inputs, units, seed):
    """Largest differences between each scratch cell and the Keras layer whose weights it takes."""
    import layers  # not lazily: torch's import scans sys.modules and would load it half-way

    # The notes' layouts: the fused LSTM weight has its gates in order f, i, o, g (Keras: i, f, c, o);
    # Keras' GRU writes h = z h_prev + (1 - z) h~ where the notes write h = (1 - z) h_prev + z h~, so
    # its update gate is the notes' negated. The `from_keras_*` helpers permute and negate.
    pairs = {
        "lstm": (
            keras.layers.LSTM(units, return_sequences=True, return_state=True, seed=seed, unroll=True),
            layers.ScratchLSTMCell(units),
            layers.recurrent.from_keras_lstm,
        ),
        "gru": (
            keras.layers.GRU(
                units,
                reset_after=False,
                return_sequences=True,
                return_state=True,
                seed=seed,
                unroll=True,
            ),
            layers.ScratchGRUCell(units),
            layers.recurrent.from_keras_gru,
        ),
        "simple_rnn": (
            keras.layers.SimpleRNN(
                units, return_sequences=True, return_state=True, seed=seed, unroll=True
            ),
            layers.VanillaRNNCell(units),
            _same_layout,
        ),
    }
    # unroll: the sequences are 6 steps; JAX would otherwise compile a scan per layer.
    differences, counts = {}, {}
    for name, (builtin, cell, convert) in pairs.items():
        expected = _numpy(builtin(inputs))
        scratch = keras.layers.RNN(cell, return_sequences=True, return_state=True, unroll=True)
        scratch(inputs)
        cell.set_weights(convert(*_numpy(builtin.weights)))
        got = _numpy(scratch(inputs))
        differences[name] = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
        counts[name] = (builtin.count_params(), scratch.count_params())
    return differences, counts


def engine_gradients(inputs, targets, kernel, bias, variant):
    """The loss sum_t (h_t[0] - y_t)^2 through ScratchLSTMCell and its gradients by the engine."""
    import layers

    cell = layers.ScratchLSTMCell(kernel.shape[1] // 4, variant=variant)
    rnn = keras.layers.RNN(cell, return_sequences=True, unroll=True)
    rnn(inputs)
    cell.set_weights([kernel, bias])
    targets = keras.ops.convert_to_tensor(targets)  # torch: tensor - ndarray raises

    def loss():
        h = rnn(inputs)
        return keras.ops.sum(keras.ops.square(h[:, :, 0] - targets))

    value, grads = engine.value_and_grad(loss, [cell.kernel, cell.bias])
    return float(value), _numpy(grads)


def bptt_matches_engine(batch, units, seed):
    """Relative largest difference of NumPy BPTT and the engine's gradients, per variant."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(batch, 5, 3))
    targets = rng.normal(size=(batch, 5)) * 0.5
    kernel = rng.normal(size=(3 + units, 4 * units)) * 0.5
    bias = rng.normal(size=4 * units) * 0.5
    result = {}
    for variant in ("standard", "nico"):
        h, cache = lstm_forward(inputs, kernel, bias, variant)
        loss, dh = squared_loss(h, targets)
        expected = lstm_backward(dh, kernel, cache, variant)
        f32 = [a.astype("float32") for a in (inputs, targets, kernel, bias)]
        value, grads = engine_gradients(*f32, variant)
        scale = max(float(np.abs(e).max()) for e in expected)
        result[variant] = {
            "loss_numpy": loss,
            "loss_engine": value,
            "max_relative_difference": max(
                float(np.abs(g - e).max()) / scale for g, e in zip(grads, expected)
            ),
        }
    return result


def bidirectional_states(inputs, units, seed):
    """Bidirectional LSTM: is h_fw the last output's first half and h_bw the first output's second?"""
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(units, return_sequences=True, return_state=True, seed=seed, unroll=True)
    )
    out, h_fw, _, h_bw, _ = _numpy(layer(inputs))
    return {
        "forward_is_last_output": bool(np.allclose(out[:, -1, :units], h_fw, atol=1e-6)),
        "backward_is_first_output": bool(np.allclose(out[:, 0, units:], h_bw, atol=1e-6)),
        "backward_is_not_last_output": bool(not np.allclose(out[:, -1, units:], h_bw, atol=1e-3)),
    }


def parameter_counts():
    """LSTM(5) and GRU(5) on 9 inputs: Keras' counts and the notes' formulas.

    LSTM 4 (h (h + x) + h) (D 7.3); GRU 3 ((x + h) h + h) (A 7.4) holds for reset_after=False only:
    Keras' default reset_after=True has a second bias row.
    """
    lstm = keras.layers.LSTM(5)
    lstm.build((None, 2, 9))
    gru = keras.layers.GRU(5, reset_after=False)
    gru.build((None, 2, 9))
    formula = {"lstm": 4 * (5 * (5 + 9) + 5), "gru": 3 * ((9 + 5) * 5 + 5)}
    return {"lstm": lstm.count_params(), "gru": gru.count_params()}, formula


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.lstm_scratch",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    if config.units < 1 or config.epochs < 1:
        raise cli.UsageError("--units and --epochs must be at least 1")
    out = Path(config.out or "runs/lstm_scratch")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    inputs = rng.normal(size=(config.batch_size, 6, 3)).astype("float32")  # (batch, 6 steps, 3)

    differences, counts = cells_equal_keras(inputs, config.units, config.seed)
    print("1. scratch cells against Keras (largest difference of outputs and states):")
    for name, difference in differences.items():
        print(
            f"   {name}: {difference:.2e}; parameters Keras {counts[name][0]}, scratch {counts[name][1]}"
        )

    counted, formula = parameter_counts()
    print(f"2. LSTM(5) on 9 inputs: {counted['lstm']} (4 (h (h + x) + h) = {formula['lstm']});")
    print(f"   GRU(5, reset_after=False): {counted['gru']} (3 ((x + h) h + h) = {formula['gru']})")

    bptt = bptt_matches_engine(config.batch_size, config.units, config.seed)
    print("3. NumPy BPTT against the engine's gradients (largest difference / largest gradient):")
    for variant, numbers in bptt.items():
        print(f"   {variant}: {numbers['max_relative_difference']:.2e}")

    losses, final = nico_toy(config.epochs, config.learning_rate, config.seed)
    print(
        f"4. Nico's toy problem: loss {losses[0]:.4f} -> {losses[-1]:.2e} in {config.epochs} "
        f"iterations; h[0] = {np.round(final, 4).tolist()} for targets {list(NICO_TARGETS)}"
    )
    plots.loss_curves(
        out / "nico_loss.png", losses, "Nico's LSTM toy problem, NumPy BPTT", xlabel="iteration"
    )

    bidirectional = bidirectional_states(inputs, config.units, config.seed)
    print(f"5. bidirectional LSTM: {bidirectional}")

    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "cell_differences": differences,
        "parameter_counts": {name: list(c) for name, c in counts.items()},
        "lstm_5_9_parameters": counted["lstm"],
        "gru_5_9_parameters": counted["gru"],
        "parameter_formulas": formula,
        "bptt": bptt,
        "nico_losses": losses,
        "nico_final_outputs": final.tolist(),
        "bidirectional": bidirectional,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
