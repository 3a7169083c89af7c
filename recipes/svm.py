"""Soft-margin support vector machine: the primal by gradient descent, the dual by a QP, kernels.

Reproduces A 10.5 (the notes follow Wikipedia). The classifier is sgn(w.x - b); the soft margin
minimises the mean hinge loss plus an L2 term,

    (1/n) sum_i max(0, 1 - y_i (w.x_i - b)) + lambda |w|^2,            labels y_i = +-1,

and its dual maximises sum_i c_i - 1/2 sum_ij y_i c_i (x_i.x_j) y_j c_j subject to
sum_i c_i y_i = 0 and 0 <= c_i <= 1/(2 n lambda); then w = sum_i c_i y_i x_i, and b = w.x_i - y_i
for a support vector on the margin (0 < c_i < 1/(2 n lambda)).

1. Primal, on every backend: `Dense(1)` with `kernel_regularizer=L2(lambda)` (Keras' L2 is
   lambda sum w^2, the notes' term) and `keras.losses.Hinge`, full-batch gradient descent through
   the engine (`recipes.common.gradient_descent.descend`, one compiled step); Dense's bias is -b.
2. Dual, in NumPy/SciPy: the QP above by `scipy.optimize.minimize(method="SLSQP")`.
3. Both against `sklearn.svm.SVC(kernel="linear", C=1/(2 n lambda))` (the same problem scaled by
   1/(2 lambda)): direction cosines, b, the support vectors; the margin width 2/|w|.
4. The kernel trick (a heading in the notes): on concentric circles (`sklearn.datasets.make_circles`),
   which no line separates, `SVC(kernel="rbf")` against the linear one, on held-out points.

    python -m recipes.svm
    KERAS_BACKEND=torch python -m recipes.svm --lam 0.05 --seed 1

Measured, default run (JAX, 5-15 s on 2 shared cores): 100 points, lambda 0.01 (C = 0.5); the
primal, the dual and scikit-learn agree to direction cosine 1.000000 (w = (1.021, 0.826),
b = -0.066); 22 support vectors, 3 of them on the margin, the same as SVC's; margin width 1.52;
objective 0.187852 by gradient descent, 0.187845 by the QP, SVC and the dual value; circles
held out: RBF kernel 1.00, linear 0.56.

Outputs (under --out, default runs/svm): svm.png (the linear SVM's line, margins and support
vectors; the RBF boundary on the circles), objective.png (the primal's descent), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots
from recipes.common.gradient_descent import descend

keras = cli.lazy_import("keras")

SECTION = "A 10.5"


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    examples: int = cli.option(100, "points in the two overlapping blobs")
    lam: float = cli.option(0.01, "lambda of the soft margin (C = 1 / (2 n lambda))")
    steps: int = cli.option(3000, "gradient-descent updates of the primal")
    lr: float = cli.option(0.1, "learning rate of the primal's gradient descent")


QUICK = dict(steps=800)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


def blobs(n, rng):
    """Two overlapping Gaussian blobs in 2-D, labels +-1 (half each), float32."""
    y = np.where(np.arange(n) < n // 2, -1.0, 1.0)
    x = rng.normal(size=(n, 2)) + y[:, None] * np.array([1.4, 0.9])
    return x.astype("float32"), y.astype("float32")


def objective(w, b, x, y, lam):
    """The notes' primal objective (1/n) sum hinge + lambda |w|^2, float64."""
    margins = y * (x.astype("float64") @ w - b)
    return float(np.maximum(0.0, 1.0 - margins).mean() + lam * np.dot(w, w))


def primal(x, y, lam, steps, lr, seed):
    """Dense(1) + L2(lam) + Hinge by full-batch gradient descent; returns w, b, the costs."""
    layer = keras.layers.Dense(
        1,
        kernel_regularizer=keras.regularizers.L2(lam),
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01, seed=seed),
    )
    layer.build((None, 2))
    hinge = keras.losses.Hinge()
    x_t, y_t = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y[:, None])

    def cost():
        return hinge(y_t, layer(x_t)) + keras.ops.sum(layer.losses)

    costs = descend(cost, layer.trainable_variables, keras.optimizers.SGD(lr), steps, state=[layer])
    kernel, bias = (keras.ops.convert_to_numpy(v).astype("float64") for v in (layer.kernel, layer.bias))
    return kernel[:, 0], -float(bias[0]), costs


def dual(x, y, lam):
    """The notes' dual by SLSQP: c, w = sum c_i y_i x_i, b from the margin support vectors."""
    from scipy.optimize import minimize

    x, y = x.astype("float64"), y.astype("float64")
    n = len(y)
    bound = 1.0 / (2 * n * lam)
    q = (y[:, None] * x) @ (y[:, None] * x).T
    result = minimize(
        lambda c: 0.5 * c @ q @ c - c.sum(),  # minus the dual objective
        np.zeros(n),
        jac=lambda c: q @ c - 1.0,
        bounds=[(0.0, bound)] * n,
        constraints=[{"type": "eq", "fun": lambda c: c @ y, "jac": lambda c: y}],
        method="SLSQP",
        options={"maxiter": 500, "ftol": 1e-12},
    )
    c = np.clip(result.x, 0.0, bound)
    w = (c * y) @ x
    tol = 1e-6 * bound
    on_margin = (c > tol) & (c < bound - tol)
    b = float(np.mean(x[on_margin] @ w - y[on_margin]))
    return dict(c=c, w=w, b=b, bound=bound, on_margin=on_margin, success=bool(result.success))


def cosine(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def kernel_trick(seed):
    """Held-out accuracy of the RBF and the linear SVC on concentric circles, and the RBF model."""
    from sklearn.datasets import make_circles
    from sklearn.svm import SVC

    x, y = make_circles(n_samples=400, noise=0.1, factor=0.4, random_state=seed)
    split = 300
    rbf = SVC(kernel="rbf", C=1.0, gamma="scale").fit(x[:split], y[:split])
    linear = SVC(kernel="linear", C=1.0).fit(x[:split], y[:split])
    return (
        float(rbf.score(x[split:], y[split:])),
        float(linear.score(x[split:], y[split:])),
        (rbf, x, y, split),
    )


def plot(path, x, y, w, b, support, rbf_parts):
    plt = plots.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=14)
    left.scatter(*x[support].T, s=80, facecolors="none", edgecolors="k", label="support vectors")
    xs = np.linspace(x[:, 0].min(), x[:, 0].max(), 2)
    for offset, style in ((0, "-"), (1, "--"), (-1, "--")):  # w.x - b = offset
        left.plot(xs, (b + offset - w[0] * xs) / w[1], "k" + style, lw=1)
    left.set(ylim=(x[:, 1].min() - 0.5, x[:, 1].max() + 0.5), title="w.x - b = 0, +-1 (dual)")
    left.legend(loc="lower right")
    rbf, xc, yc, split = rbf_parts
    grid = np.linspace(-1.5, 1.5, 200)
    gx, gy = np.meshgrid(grid, grid)
    values = rbf.decision_function(np.c_[gx.ravel(), gy.ravel()]).reshape(gx.shape)
    right.contourf(gx, gy, values, levels=20, cmap="coolwarm", alpha=0.4)
    right.contour(gx, gy, values, levels=[-1, 0, 1], colors="k", linestyles=["--", "-", "--"])
    right.scatter(*xc[split:].T, c=yc[split:], cmap="coolwarm", s=14, edgecolors="k", lw=0.3)
    right.set(title="RBF kernel, held-out circles", aspect="equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.svm", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, UNUSED, "svm", "descends a fixed number of --steps")
    if config.examples < 4 or config.lam <= 0 or config.steps < 1 or config.lr <= 0:
        raise cli.UsageError(
            "--examples must be at least 4, --steps at least 1, --lam and --lr positive"
        )
    out = Path(config.out or "runs/svm")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    x, y = blobs(config.examples, np.random.default_rng(config.seed))
    n, lam = len(y), config.lam

    w_p, b_p, costs = primal(x, y, lam, config.steps, config.lr, config.seed)
    sol = dual(x, y, lam)
    from sklearn.svm import SVC

    svc = SVC(kernel="linear", C=sol["bound"], tol=1e-6).fit(x, y)
    w_s, b_s = svc.coef_[0], -float(svc.intercept_[0])
    c, w_d, b_d = sol["c"], sol["w"], sol["b"]
    support = c > 1e-6 * sol["bound"]
    margins = y * (x @ w_d - b_d)
    objectives = {
        "primal_gd": objective(w_p, b_p, x, y, lam),
        "dual_qp": objective(w_d, b_d, x, y, lam),
        "sklearn": objective(w_s, b_s, x, y, lam),
    }
    # dual value = primal optimum / (2 lam) ... scaled back to the notes' objective (strong duality)
    dual_value = float(c.sum() - 0.5 * np.sum(((c * y) @ x) ** 2)) * 2 * lam
    rbf_accuracy, linear_accuracy, rbf_parts = kernel_trick(config.seed)
    print(f"{n} points, lambda {lam}: C = 1/(2 n lambda) = {sol['bound']:.4g}")
    print(f"1. primal ({engine.backend()}, {config.steps} GD steps): w {w_p.round(4)}, b {b_p:.4f}")
    print(f"2. dual (SLSQP): w {w_d.round(4)}, b {b_d:.4f}; sum c_i y_i = {c @ y:.1e}")
    print(f"3. sklearn SVC: w {w_s.round(4)}, b {b_s:.4f}; cosines primal {cosine(w_p, w_s):.6f},")
    print(f"   dual {cosine(w_d, w_s):.6f}; {int(support.sum())} support vectors")
    print(
        f"   ({int(sol['on_margin'].sum())} on the margin), margin 2/|w| = {2 / np.linalg.norm(w_d):.4f}"
    )
    print(f"   objectives {', '.join(f'{k} {v:.6f}' for k, v in objectives.items())}; {dual_value=:.6f}")
    print(f"4. circles, held out: RBF kernel {rbf_accuracy:.3f}, linear {linear_accuracy:.3f}")
    plot(out / "svm.png", x, y, w_d, b_d, support, rbf_parts)
    plots.loss_curves(
        out / "objective.png", costs, "primal by gradient descent", xlabel="update", ylabel="objective"
    )
    summary = dict(
        backend=engine.backend(),
        examples=n,
        lam=lam,
        bound=sol["bound"],
        w_primal=w_p.tolist(),
        b_primal=b_p,
        w_dual=w_d.tolist(),
        b_dual=b_d,
        w_sklearn=w_s.tolist(),
        b_sklearn=b_s,
        cosine_primal_sklearn=cosine(w_p, w_s),
        cosine_dual_sklearn=cosine(w_d, w_s),
        cosine_primal_dual=cosine(w_p, w_d),
        qp_success=sol["success"],
        sum_c_y=float(c @ y),
        c_min=float(c.min()),
        c_max=float(c.max()),
        support_vectors=int(support.sum()),
        on_margin=int(sol["on_margin"].sum()),
        sklearn_support_vectors=sorted(svc.support_.tolist()),
        dual_support_vectors=np.flatnonzero(support).tolist(),
        margin_of_margin_vectors=margins[sol["on_margin"]].tolist(),
        margin_of_zero_c_min=float(margins[~support].min()),
        margin_of_bound_c_max=float(margins[c > sol["bound"] * (1 - 1e-6)].max(initial=-np.inf)),
        margin_width=float(2 / np.linalg.norm(w_d)),
        objectives=objectives,
        dual_value=dual_value,
        first_cost=float(costs[0]),
        last_cost=float(costs[-1]),
        cost_numpy_at_end=objective(w_p, b_p, x, y, lam),
        train_accuracy=float(np.mean(np.sign(x @ w_d - b_d) == y)),
        rbf_held_out_accuracy=rbf_accuracy,
        linear_held_out_accuracy_on_circles=linear_accuracy,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
