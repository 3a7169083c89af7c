"""The README's sample pictures: a few rows of each GAN's default-run samples, a few KB each.

Reads the `samples.png` grids that `benchmarks/gan_quality.py --out DIR` keeps (DIR/NAME-BACKEND/)
and writes docs/samples/NAME.png: the first 30 samples in rows of 10 (for cgan: digits 0-9 across, 3
noise vectors down), at 1x scale, in 16 grey levels.

    python benchmarks/gan_quality.py --runs dcgan gan wgan wgan-gp cgan --backends jax --out runs/q
    python scripts/readme_samples.py runs/q --backend jax
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipes.common.gan_training import save_grid  # noqa: E402

RUNS = ("dcgan", "gan", "wgan", "wgan-gp", "cgan")
SCALE = 3  # the scale of samples.png
SIZE, PAD = 28, 2  # save_grid's cells: 28x28 images, 2-pixel gaps
ROWS, COLS = 3, 10


def cells(path):
    """The (rows, cols, 28, 28) images of a samples.png grid, back at 1x, in [0, 1]."""
    with Image.open(path) as picture:
        pixels = np.asarray(picture.convert("L"))[::SCALE, ::SCALE].astype(np.float32) / 255.0
    rows, cols = (pixels.shape[0] - PAD) // (SIZE + PAD), (pixels.shape[1] - PAD) // (SIZE + PAD)
    grid = np.empty((rows, cols, SIZE, SIZE), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            top, left = PAD + r * (SIZE + PAD), PAD + c * (SIZE + PAD)
            grid[r, c] = pixels[top : top + SIZE, left : left + SIZE]
    return grid


def excerpt(name, grid):
    """ROWS x COLS images: the first in reading order, or for cgan (row k = digit k) the first three
    noise columns, turned so that each row reads 0-9."""
    if name == "cgan":
        grid = grid.transpose(1, 0, 2, 3)  # now row j = noise j, column k = digit k
    return grid.reshape(-1, SIZE, SIZE, 1)[: ROWS * COLS]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs_dir", help="the --out folder of benchmarks/gan_quality.py")
    parser.add_argument("--backend", default="jax", help="whose runs to show")
    parser.add_argument("--to", default=str(ROOT / "docs" / "samples"), help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.to)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUNS:
        source = Path(args.runs_dir) / f"{name}-{args.backend}" / "samples.png"
        if not source.exists():
            print(f"skipped {name}: no {source}")
            continue
        target = out / f"{name}.png"
        save_grid(excerpt(name, cells(source)), target, scale=1, cols=COLS)
        with Image.open(target) as picture:  # 16 grey levels keep the file at a few KB.
            picture.convert("L").quantize(16).save(target, optimize=True)
        print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
