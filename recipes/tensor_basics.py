"""Tensor basics: the notes' tensors, indexing, broadcasting, reshapes and scatter in keras.ops.

Reproduces C's "Tensor" slide and B I.2.2 (tensor manipulation) with `keras.ops`, on whichever
backend Keras runs, and checks every result against NumPy:

1. C: the vector 't','e','n','s','0','r' (shape (6,); keras.ops has no strings, so its code
   points), the 6x4 matrix of the first 24 digits of pi (they sum to 115) and a (4, 4, 2) tensor
   (the notes give no values: seeded random digits here);
2. B I.2.2: creation, t[0] = [1, 2, 3], slicing, boolean masks (the notes' t[:, t > 4] raises in
   torch; t[t > 4] = [5, 6] is meant), broadcasting [1, 2] + 3 and (1, 2) + (2, 1), mul and
   matmul, mean/sum/max/argmax, view (2, 2, 3) -> (4, 3), squeeze and unsqueeze, casts,
   cat and stack (stack = cat of unsqueezed), ones_like, the in-place mul_ (a Variable's assign),
   and scatter_(1, index, src) = [[1, 2, 3], [5, 6, 4]].

    python -m recipes.tensor_basics
    KERAS_BACKEND=torch python -m recipes.tensor_basics --seed 3

Measured: every result equals NumPy and the notes on the three backends, in about a second.

Outputs (under --out, default runs/tensor_basics): tensors.png (the pi matrix, the broadcast and
the scatter drawn as grids), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "B I.2.2, C"
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")

WORD = ("t", "e", "n", "s", "0", "r")  # the slide's fifth letter is a zero
PI_MATRIX = [[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 8], [9, 7, 9, 3], [2, 3, 8, 4], [6, 2, 6, 4]]
SCATTER_SOURCE = [[1, 2, 3], [4, 5, 6]]
SCATTER_INDEX = [[0, 1, 2], [2, 0, 1]]


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    seed: int = cli.option(0, "seed of the (4, 4, 2) tensor's random digits")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes a second)")


def pi_digits(count):
    """The first `count` decimal digits of pi (3, 1, 4, ...), by Machin's formula in integers."""
    scale = 10 ** (count + 10)

    def arctan_inverse(n):  # arctan(1/n) * scale
        total, term, k, sign = 0, scale // n, 1, 1
        while term:
            total += sign * term // k
            term //= n * n
            k, sign = k + 2, -sign
        return total

    pi = 4 * (4 * arctan_inverse(5) - arctan_inverse(239))
    return [int(c) for c in str(pi)[:count]]


def numpy_of(x):
    return keras.ops.convert_to_numpy(x)


def squeeze_like_torch(x, axis):
    """torch's squeeze(dim): removes the axis when it has size 1, else returns x unchanged
    (`keras.ops.squeeze` refuses an axis of another size)."""
    return keras.ops.squeeze(x, axis=axis) if x.shape[axis] == 1 else x


def scatter_rows(source, index, shape):
    """torch.zeros(shape).scatter_(1, index, source): out[i, index[i, j]] = source[i, j]."""
    index = np.asarray(index)
    rows = np.repeat(np.arange(index.shape[0]), index.shape[1])
    coordinates = np.stack([rows, index.ravel()], axis=1).astype("int32")
    values = keras.ops.reshape(keras.ops.convert_to_tensor(source, "float32"), (-1,))
    return keras.ops.scatter(coordinates, values, shape)


# ---- 1. C's three tensors -------------------------------------------------------------------


def slide_tensors(seed):
    ops = keras.ops
    vector = ops.convert_to_tensor([ord(c) for c in WORD], "int32")
    matrix = ops.convert_to_tensor(PI_MATRIX, "int32")
    cube = keras.random.randint((4, 4, 2), 0, 10, seed=keras.random.SeedGenerator(seed))
    return {
        "vector_shape": list(vector.shape),
        "vector_decoded": "".join(chr(c) for c in numpy_of(vector)),
        "matrix_shape": list(matrix.shape),
        "matrix_sum": int(numpy_of(ops.sum(matrix))),
        "matrix_flat": numpy_of(ops.reshape(matrix, (-1,))).tolist(),
        "pi_digits": pi_digits(24),
        "cube_shape": list(cube.shape),
        "cube": numpy_of(cube).tolist(),
        # CV batches are (batch, height, width, channels) in Keras, NLP (batch, length, dim).
        "image_batch_shape": list(ops.zeros((8, 28, 28, 1)).shape),
        "text_batch_shape": list(ops.zeros((8, 10, 16)).shape),
    }


# ---- 2. B I.2.2, each result next to NumPy's -----------------------------------------------


def manipulations():
    """{name: (keras.ops result, NumPy result)} for every example of B I.2.2."""
    ops = keras.ops
    t = ops.convert_to_tensor([[1, 2, 3], [4, 5, 6]], "float32")
    n = np.array([[1, 2, 3], [4, 5, 6]], "float32")
    m1, m2 = ops.convert_to_tensor([[1, 2]]), ops.convert_to_tensor([[2], [3]])  # (1, 2), (2, 1)
    n1, n2 = np.array([[1, 2]]), np.array([[2], [3]])
    s = ops.convert_to_tensor([[1, 2], [3, 4]], "float32")
    sn = np.array([[1, 2], [3, 4]], "float32")
    v = ops.convert_to_tensor([[[1, 2, 2], [3, 4, 2]], [[3, 1, 1], [2, 3, 5]]])  # (2, 2, 3)
    vn = np.array([[[1, 2, 2], [3, 4, 2]], [[3, 1, 1], [2, 3, 5]]])
    t1, t2 = ops.convert_to_tensor([[1, 2], [3, 4]]), ops.convert_to_tensor([[5, 6], [7, 8]])
    a, b = np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]])
    x, y, z = (ops.convert_to_tensor(r) for r in ([1, 4], [2, 5], [3, 6]))
    xn, yn, zn = np.array([1, 4]), np.array([2, 5]), np.array([3, 6])
    one = ops.expand_dims(t, 0)  # (1, 2, 3)
    mask = numpy_of(t > 4)  # a boolean mask has a data-dependent shape: taken in NumPy
    in_place = keras.Variable(np.array([[1, 2], [3, 4]], "float32"))
    in_place.assign(in_place * ops.convert_to_tensor([[5, 6], [7, 8]], "float32"))  # t1.mul_(t2)
    long_tensor = ops.convert_to_tensor([1, 2, 3, 4], "int32")
    results = {
        # creation
        "zeros": (ops.zeros((2, 3, 4)), np.zeros((2, 3, 4))),
        "ones": (ops.ones((2, 3, 4)), np.ones((2, 3, 4))),
        "arange": (ops.arange(0, 10), np.arange(0, 10)),
        "eye": (ops.eye(4), np.eye(4)),
        "ndim": (ops.ndim(t), n.ndim),
        # indexing and slicing
        "t[0]": (t[0], n[0]),
        "t[t > 4]": (numpy_of(t)[mask], n[n > 4]),
        "t[:, [0, 2]]": (ops.take(t, [0, 2], axis=1), n[:, [0, 2]]),
        "t[1, 2]": (t[1, 2], n[1, 2]),
        "t[:, 1:3]": (t[:, 1:3], n[:, 1:3]),
        "t[:, ::2]": (t[:, ::2], n[:, ::2]),
        # broadcasting and multiplication
        "[1, 2] + 3": (ops.convert_to_tensor([1, 2]) + ops.convert_to_tensor(3), np.array([1, 2]) + 3),
        "(1, 2) + (2, 1)": (m1 + m2, n1 + n2),
        "mul": (ops.multiply(m1, m2), n1 * n2),
        "matmul": (ops.matmul(m1, m2), n1 @ n2),
        # reductions on [[1, 2], [3, 4]]
        "mean": (ops.mean(s), sn.mean()),
        "mean(dim=1)": (ops.mean(s, axis=1), sn.mean(axis=1)),
        "sum": (ops.sum(s), sn.sum()),
        "sum(dim=1)": (ops.sum(s, axis=1), sn.sum(axis=1)),
        "max(dim=1) values": (ops.max(s, axis=1), sn.max(axis=1)),
        "max(dim=1) indices": (ops.argmax(s, axis=1), sn.argmax(axis=1)),
        "argmax()": (ops.argmax(ops.reshape(s, (-1,))), sn.argmax()),
        # reshaping
        "view([-1, 3])": (ops.reshape(v, (-1, 3)), vn.reshape(-1, 3)),
        "squeeze()": (ops.squeeze(one), n),
        "squeeze(dim=0)": (squeeze_like_torch(one, 0), n),
        "squeeze(dim=2)": (squeeze_like_torch(one, 2), n[None]),
        "unsqueeze(1)": (ops.expand_dims(t, 1), n[:, None, :]),
        # casts
        "float()": (ops.cast(long_tensor, "float32"), np.array([1, 2, 3, 4], "float32")),
        "float().long()": (
            ops.cast(ops.cast(long_tensor, "float32"), "int32"),
            np.array([1, 2, 3, 4], "int32"),
        ),
        # joining
        "cat dim 0": (ops.concatenate([t1, t2]), np.concatenate([a, b])),
        "cat dim 1": (ops.concatenate([t1, t2], axis=1), np.concatenate([a, b], axis=1)),
        "stack dim 0": (ops.stack([x, y, z]), np.stack([xn, yn, zn])),
        "stack dim 1": (ops.stack([x, y, z], axis=1), np.stack([xn, yn, zn], axis=1)),
        "cat of unsqueeze(1)": (
            ops.concatenate([ops.expand_dims(r, 1) for r in (x, y, z)], axis=1),
            np.stack([xn, yn, zn], axis=1),
        ),
        "ones_like": (ops.ones_like(t), np.ones_like(n)),
        "zeros_like": (ops.zeros_like(t), np.zeros_like(n)),
        "mul_ (in place)": (in_place.value, a * b),
        "scatter_(1, index, src)": (
            scatter_rows(SCATTER_SOURCE, SCATTER_INDEX, (2, 3)),
            scatter_numpy(SCATTER_SOURCE, SCATTER_INDEX, (2, 3)),
        ),
    }
    return {name: (np.asarray(numpy_of(ours)), np.asarray(ref)) for name, (ours, ref) in results.items()}


def scatter_numpy(source, index, shape):
    out = np.zeros(shape)
    for i, row in enumerate(index):
        for j, column in enumerate(row):
            out[i, column] = source[i][j]
    return out


# ---- the steps of main ----------------------------------------------------------------------


def report_slide(config, summary):
    facts = slide_tensors(config.seed)
    print(
        f"1. C: {''.join(WORD)!r} -> shape {tuple(facts['vector_shape'])}; the pi matrix "
        f"{tuple(facts['matrix_shape'])}, sum {facts['matrix_sum']}, its digits == pi's first 24: "
        f"{facts['matrix_flat'] == facts['pi_digits']}; a tensor {tuple(facts['cube_shape'])}"
    )
    summary["slide"] = facts


def report_manipulations(summary):
    print(f"2. B I.2.2 in keras.ops ({engine.backend()}), each equal to NumPy:")
    results = {}
    for name, (ours, reference) in manipulations().items():
        equal = ours.shape == reference.shape and np.allclose(ours, reference)
        shown = np.array2string(ours, separator=", ").replace("\n", "")
        if ours.size > 8:
            shown = f"shape {ours.shape}"
        print(f"   {name:<24} {shown} {'' if equal else '  != NumPy ' + str(reference.tolist())}")
        results[name] = {
            "value": ours.tolist(),
            "shape": list(ours.shape),
            "dtype": str(ours.dtype),
            "equals_numpy": equal,
        }
    summary["manipulations"] = results


def plot(path, summary):
    """The pi matrix, the (1, 2) + (2, 1) broadcast and the scatter, as numbered grids."""
    plt = plots.pyplot()
    grids = {
        "C: 6x4 pi digits (sum 115)": np.asarray(PI_MATRIX),
        "[[1, 2]] + [[2], [3]]": np.asarray(summary["manipulations"]["(1, 2) + (2, 1)"]["value"]),
        "scatter source": np.asarray(SCATTER_SOURCE),
        "scatter index (dim 1)": np.asarray(SCATTER_INDEX),
        "scatter result": np.asarray(summary["manipulations"]["scatter_(1, index, src)"]["value"]),
    }
    fig, axes = plt.subplots(1, len(grids), figsize=(2.6 * len(grids), 3))
    for ax, (title, grid) in zip(axes, grids.items()):
        ax.imshow(grid, cmap="Blues", vmin=grid.min() - 1, vmax=grid.max() + 1)
        for (i, j), value in np.ndenumerate(grid):
            ax.text(j, i, f"{value:g}", ha="center", va="center")
        ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.tensor_basics", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "tensor_basics")
    out = Path(config.out or "runs/tensor_basics")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed}
    report_slide(config, summary)
    report_manipulations(summary)
    plot(out / "tensors.png", summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
