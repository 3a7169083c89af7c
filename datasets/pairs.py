"""Paired images for image-to-image translation (pix2pix, A 9.11): input -> target, uint8 NHWC.

- "buildings" (embedded, no network): procedurally drawn building fronts, a small stand-in for
  the facades set. The input is a label map (flat colours for sky, roof, brick wall, plaster
  wall, window, door); the target is the rendered front: a graded sky, brick courses, window
  frames with a centre cross and a shadow below, glass lighter at the top, light from the left.
  1,000 training pairs (seed 0) and 200 held-out pairs (seed 1).
- "facades": the CMP facades pairs of the pix2pix paper (400 train, 106 test; label map ->
  photo), downloaded once into the Keras cache with `remote.fetch`.
- a pix2pix-style folder: train/ and test/ (or val/) of side-by-side A|B images.
"""

import io
import tarfile
from pathlib import Path

import numpy as np

from datasets import remote
from datasets.images import IMAGE_SUFFIXES
from datasets.remote import DatasetUnavailable

FALLBACK = "Use the embedded pairs instead: --dataset buildings"
FACADES_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
FACADES_FILE = "facades.tar.gz"
BUILDINGS = {"train": (1000, 0), "test": (200, 1)}  # split: (pairs, seed)

PALETTE = np.array(
    [  # Label colours of the input maps: sky, roof, brick wall, plaster wall, window, door.
        (30, 30, 140),
        (210, 50, 40),
        (40, 110, 230),
        (70, 200, 220),
        (250, 180, 30),
        (120, 220, 90),
    ],
    np.uint8,
)
SKY, ROOF, BRICK, PLASTER, WINDOW, DOOR = range(6)


# ---------------------------------------------------------------------------------------------
# The embedded building fronts


def load_buildings(split="train", image_size=64, limit=None):
    """(label maps, renderings) of the embedded set, uint8 (N, size, size, 3).

    `split` "train" gives 1,000 pairs drawn from seed 0, "test" 200 from seed 1; `limit` keeps the
    first N of them (the same pairs as in the full set).
    """
    if split not in BUILDINGS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    count, seed = BUILDINGS[split]
    return render_buildings(min(limit or count, count), image_size, seed=seed)


def render_buildings(count, size=64, seed=0):
    """`count` (label map, rendered front) pairs as uint8 (count, size, size, 3) arrays.

    Pair i depends only on (seed, i), so the first n pairs are the same for any count >= n. The
    geometry scales with size (64 is the reference).
    """
    labels = np.empty((count, size, size, 3), np.uint8)
    images = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        label_map, image = _render_building(np.random.default_rng([seed, i]), size)
        labels[i] = PALETTE[label_map]
        images[i] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return labels, images


def _render_building(rng, size):
    """One (label map (size, size) of SKY..DOOR, float image (size, size, 3) in [0, 1]) pair."""
    s = size / 64

    def px(v):  # A length of the 64-pixel reference drawing at this size, at least one pixel.
        return max(1, int(round(v * s)))

    rows = np.arange(size, dtype=np.float32)[:, None, None]
    cols = np.arange(size, dtype=np.float32)[None, :, None]
    label = np.full((size, size), SKY, np.uint8)
    # Sky: a vertical gradient from deep blue to a pale horizon.
    image = np.broadcast_to(
        np.array([0.35, 0.55, 0.85]) + (rows / size) * np.array([0.4, 0.3, 0.1]), (size, size, 3)
    ).copy()

    left = int(rng.integers(0, px(10) + 1))
    right = size - int(rng.integers(0, px(10) + 1))
    top = int(rng.integers(px(6), px(18) + 1))
    roof = px(int(rng.integers(3, 6)))
    wall_top = top + roof
    wall = BRICK if rng.random() < 0.5 else PLASTER
    label[top:, left:right] = wall
    label[top:wall_top, left:right] = ROOF

    y, x = np.mgrid[0:size, 0:size]
    if wall == BRICK:  # Courses of 4 px, joints every 8 px, offset on alternate courses.
        course = (y - wall_top) // px(4)
        mortar = ((y - wall_top) % px(4) == px(4) - 1) | (
            (x - left + (course % 2) * px(4)) % px(8) == px(8) - 1
        )
        wall_color = np.where(mortar[..., None], [0.80, 0.76, 0.70], [0.62, 0.30, 0.22])
    else:
        wall_color = np.broadcast_to(
            np.array([0.86, 0.80, 0.66]) - (rows / size) * 0.08, (size, size, 3)
        )
    # Light from the left: the front darkens towards its right edge.
    light = 1.08 - 0.25 * np.clip((cols - left) / max(right - left, 1), 0, 1)
    wall_color = wall_color * light
    region = label == wall
    image[region] = wall_color[region]
    image[top:wall_top, left:right] = [0.30, 0.30, 0.36]
    image[top, left:right] = [0.60, 0.60, 0.66]  # The roof's lit upper edge.

    # Windows on a grid, a door in the bottom row.
    n_cols, n_rows = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    cell_w = (right - left) / n_cols
    cell_h = (size - wall_top) / (n_rows + 1)
    win_w = max(px(4), int(cell_w * rng.uniform(0.4, 0.65)))
    win_h = max(px(5), int(cell_h * rng.uniform(0.45, 0.7)))
    door_col = int(rng.integers(n_cols))
    frame, shadow = np.array([0.95, 0.95, 0.92]), 0.6
    t = px(1)
    for r in range(n_rows + 1):
        for c in range(n_cols):
            x0 = int(left + c * cell_w + (cell_w - win_w) / 2)
            if r == n_rows:
                if c != door_col:
                    continue
                w, h = max(px(6), int(cell_w * 0.5)), max(px(8), int(cell_h * 0.9))
                x0, y0 = int(left + c * cell_w + (cell_w - w) / 2), size - h
                label[y0:, x0 : x0 + w] = DOOR
                image[y0:, x0 : x0 + w] = frame
                image[y0 + t :, x0 + t : x0 + w - t] = [0.35, 0.20, 0.10]
                continue
            y0 = int(wall_top + r * cell_h + (cell_h - win_h) / 2)
            label[y0 : y0 + win_h, x0 : x0 + win_w] = WINDOW
            image[y0 + win_h : y0 + win_h + t, x0 : x0 + win_w] *= shadow
            glass = np.linspace(0, 1, win_h)[:, None, None]
            image[y0 : y0 + win_h, x0 : x0 + win_w] = (
                np.array([0.40, 0.55, 0.70]) * (1 - glass) + np.array([0.10, 0.16, 0.25]) * glass
            )
            image[y0 : y0 + win_h, x0 : x0 + win_w][[*range(t), *range(win_h - t, win_h)]] = frame
            image[y0 : y0 + win_h, x0 : x0 + t] = frame
            image[y0 : y0 + win_h, x0 + win_w - t : x0 + win_w] = frame
            mid_y, mid_x = y0 + win_h // 2, x0 + win_w // 2
            image[mid_y : mid_y + t, x0 : x0 + win_w] = frame  # The centre cross.
            image[y0 : y0 + win_h, mid_x : mid_x + t] = frame
    return label, image


# ---------------------------------------------------------------------------------------------
# Side-by-side A|B pairs: facades, pix2pix folders


def load_facades(split="train", image_size=256, direction="BtoA", limit=None):
    """The facades pairs of `split` ("train" or "test"), BtoA: label map -> photo, uint8.

    No published sha256 was found for the archive, so it is downloaded without a hash and checked
    by its contents instead (JPEG pairs under train/ and test/).
    """
    path = remote.fetch("facades", FACADES_FILE, default_origin=FACADES_URL, fallback=FALLBACK)
    try:
        with tarfile.open(path) as archive:
            members = sorted(
                (m for m in archive.getmembers() if m.isfile() and m.name.endswith(".jpg")),
                key=lambda m: _natural_key(m.name),
            )
            members = [m for m in members if Path(m.name).parent.name == split]
            files = [(m.name, io.BytesIO(archive.extractfile(m).read())) for m in members]
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetUnavailable(
            f"{path} is not a readable facades archive ({error}); delete it to download again. "
            f"{FALLBACK}"
        ) from None
    if not files:
        raise DatasetUnavailable(
            f"{path} holds no {split}/*.jpg pairs; delete it to download again. {FALLBACK}"
        )
    return _decode_pairs(files, image_size, direction, limit)


def load_folder_pairs(data_dir, split="train", image_size=256, direction="AtoB", limit=None):
    """Side-by-side pairs from `data_dir/train` or, for split "test", `test/` or else `val/`."""
    root = Path(data_dir)
    names = ("train",) if split == "train" else ("test", "val")
    for name in names:
        folder = root / name
        files = sorted(
            (p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        if files:
            return _decode_pairs([(str(p), p) for p in files], image_size, direction, limit)
    raise DatasetUnavailable(
        f"no image pairs found in {' or '.join(str(root / n) for n in names)} "
        "(a pix2pix folder has train/ and test/ or val/). Use the embedded pairs: --dataset buildings"
    )


def _natural_key(name):
    """Numbered files in numeric order (2.jpg before 10.jpg), then the others by name."""
    stem = Path(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def _split_pair(image, direction):
    """A side-by-side A|B pair -> (input, target) for the direction."""
    half = image.shape[1] // 2
    a, b = image[:, :half], image[:, half : 2 * half]
    return (a, b) if direction == "AtoB" else (b, a)


def _decode_pairs(files, size, direction, limit):
    """Reads side-by-side pairs from (name, file object or path) items; uint8 (N, size, size, 3)."""
    from PIL import Image

    inputs, targets = [], []
    for name, source in files[:limit] if limit is not None else files:
        try:
            with Image.open(source) as picture:
                picture = np.asarray(picture.convert("RGB"))
        except Exception as error:
            raise DatasetUnavailable(f"cannot read the image pair {name}: {error}") from None
        if picture.shape[1] < 2 or picture.shape[1] % 2:
            raise DatasetUnavailable(
                f"{name} is not a side-by-side A|B pair (width {picture.shape[1]} is odd)"
            )
        for half, out in zip(_split_pair(picture, direction), (inputs, targets)):
            resized = Image.fromarray(half).resize((size, size), Image.BICUBIC)
            out.append(np.asarray(resized))
    return np.stack(inputs), np.stack(targets)
