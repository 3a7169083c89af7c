"""D 4.1-4.3: the worked example I, a cross-correlation, and its backprop, itself a convolution."""

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")

X = np.arange(1, 10, dtype="float32").reshape(3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
KERNEL = np.array([[1, 2], [3, 4]], "float32")
G = np.array([[1, 2], [3, 4]], "float32")  # dL/dO of 4.3's example
W_FOR_DX = np.array([[1, 0], [0, -1]], "float32")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def conv2d(kernel, **kwargs):
    """A built single-channel Conv2D without bias holding `kernel` (KH, KW)."""
    layer = keras.layers.Conv2D(1, kernel.shape, use_bias=False, **kwargs)
    layer.build((None, None, None, 1))
    layer.set_weights([kernel[:, :, None, None]])
    return layer


def as_image(x):
    """(H, W) -> a (1, H, W, 1) tensor."""
    return keras.ops.convert_to_tensor(x[None, :, :, None])


def correlate_valid(x, k):
    """NumPy reference: out[i, j] = sum_pq k[p, q] x[i + p, j + q]."""
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1), x.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(k * x[i : i + kh, j : j + kw])
    return out


def worked_example():
    """Example I through Keras' Conv2D: (f * g)(i, j) = sum_pq f(p, q) g(i + p, j + q), a
    cross-correlation, [[37, 47], [67, 77]]; the flipped kernel gives the true convolution,
    [[23, 33], [53, 63]]."""
    layer = conv2d(KERNEL)
    output = numpy(layer(as_image(X)))[0, :, :, 0]  # (2, 2): O = i - K + 1
    flipped = numpy(conv2d(KERNEL[::-1, ::-1].copy())(as_image(X)))[0, :, :, 0]
    terms = [
        " + ".join(f"{int(KERNEL[p, q])}*{int(X[i + p, j + q])}" for p in range(2) for q in range(2))
        for i in range(2)
        for j in range(2)
    ]
    return {"output": output, "true_convolution": flipped, "terms": terms}


def conv_gradients():
    """4.3: dL/dw (G = dL/dO) and dL/dx (w = [[1, 0], [0, -1]]) of L = sum(G * conv(x, w)), by the
    backend's autodiff. dL/dw = x * G is [[37, 47], [67, 77]] again; dL/dx is the full convolution
    of G with w, [[1, 2, 0], [3, 3, -2], [0, -3, -4]]."""
    from keras import ops

    upstream = ops.convert_to_tensor(G[None, :, :, None])
    layer = conv2d(KERNEL)

    def loss_of_kernel():
        return ops.sum(ops.multiply(layer(as_image(X)), upstream))

    _, (d_kernel,) = engine.value_and_grad(loss_of_kernel, [layer.kernel])  # (2, 2, 1, 1)
    layer_dx = conv2d(W_FOR_DX)

    def loss_of_input(x):
        return ops.sum(ops.multiply(layer_dx(x), upstream))

    _, (d_x,) = engine.value_and_grad(loss_of_input, [as_image(X)])  # (1, 3, 3, 1)
    # The full convolution of G with w: G zero-padded by 1, correlated with w flipped.
    full = correlate_valid(np.pad(G, 1), W_FOR_DX[::-1, ::-1])
    return {
        "d_kernel": numpy(d_kernel)[:, :, 0, 0],
        "x_correlate_g": correlate_valid(X, G),
        "d_x": numpy(d_x)[0, :, :, 0],
        "full_convolution": full,
    }
