"""im2col.png: the (9, 75) matrix with the six copies of element 22 marked, the window counts
col2im(ones) and the input gradient col2im(dcol)."""

from recipes.common import plots
from recipes.im2col.example import ELEMENT, ELEMENT_POSITION


def plot(example, path):
    plt = plots.pyplot()
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(15, 8))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.5])
    top = fig.add_subplot(grid[0, :])
    col = example["col"]
    top.imshow(col, cmap="Greys", aspect="auto", interpolation="nearest")
    for row, column in example["copies"]:
        top.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="red", lw=2))
    for channel in (1, 2):
        top.axvline(channel * 25 - 0.5, color="C0", lw=1)
    top.set(
        title=f"im2col of arange(147) as (1, 3, 7, 7), 5x5 filter: a {col.shape} matrix, one row per "
        f"window (red: the six copies of {ELEMENT})",
        xlabel="column = (channel, filter row, filter column); blue lines separate the channels",
        ylabel="window (row)",
    )
    x = example["x"][0, 0]
    panels = (
        (x, "input, channel 0 (values)", "{:.0f}"),
        (example["counts"][0, 0], "col2im(all ones): windows covering each element", "{:.0f}"),
        (example["dx"][0, 0], "col2im(dcol), channel 0: the input gradient", "{:.2f}"),
    )
    h, w = ELEMENT_POSITION[2:]
    for index, (values, title, fmt) in enumerate(panels):
        ax = fig.add_subplot(grid[1, index])
        ax.imshow(values, cmap="viridis" if index else "Greys")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                light = index or values[i, j] > values.mean()  # white on the dark cells
                colour = "red" if (i, j) == (h, w) else ("white" if light else "black")
                ax.text(
                    j, i, fmt.format(values[i, j]), ha="center", va="center", color=colour, fontsize=9
                )
        ax.add_patch(Rectangle((w - 0.5, h - 0.5), 1, 1, fill=False, ec="red", lw=2))
        ax.set(title=title, xticks=range(7), yticks=range(7))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
