"""The loss-curve figure most recipes write (matplotlib, Agg: no display needed)."""

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported on first use (keeps `--help` fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curves(path, series, title, *, xlabel="epoch", ylabel="loss", log=True, acceptance=None):
    """One line per {label: values} (x = 1, 2, ...), log-scaled unless `log=False`, saved to `path`.

    `acceptance`: a value drawn as a dashed line (a target the run must get under). A single
    unlabelled series can be given as a plain sequence.
    """
    plt = pyplot()
    if not isinstance(series, dict):
        series = {None: series}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in series.items():
        (ax.semilogy if log else ax.plot)(np.arange(1, len(values) + 1), values, label=label, lw=1)
    if acceptance is not None:
        ax.axhline(acceptance, color="k", ls="--", lw=0.8, label=f"acceptance {acceptance}")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    if any(label is not None for label in series) or acceptance is not None:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
