"""Generated scenes of coloured shapes with per-pixel labels and boxes: the embedded data of
`segmentation` and `detection` (no network).

    from datasets.scenes import CLASSES, make_scenes
    scenes = make_scenes(1000, seed=0)   # size 64, one to three shapes a scene
    scenes.images    # (1000, 64, 64, 3) float32 in [0, 1]
    scenes.masks     # (1000, 64, 64) int32: 0 background, 1 circle, 2 square, 3 triangle
    scenes.boxes[0]  # (k, 4) float32 boxes of scene 0: y0, x0, y1, x1 in pixels (tight, end exclusive)
    scenes.labels[0] # (k,) int32 classes 1..3 of those boxes

The class is the shape, never the colour (any colour draws any shape, jittered), on a dark noisy
background. Shapes do not overlap (rejection sampling on their boxes with a one-pixel gap), so every
mask pixel belongs to exactly one object and every box encloses exactly its object's pixels.
"""

from dataclasses import dataclass

import numpy as np

from datasets.shapes import COLOURS, SHAPES, draw_shape

CLASSES = ("background", *SHAPES)  # mask values 0..3


@dataclass
class Scenes:
    images: np.ndarray
    masks: np.ndarray
    boxes: list
    labels: list


def _box(mask):
    rows, cols = np.nonzero(mask)
    return [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]


def _apart(box, others, gap=1):
    return all(
        box[2] + gap <= o[0] or o[2] + gap <= box[0] or box[3] + gap <= o[1] or o[3] + gap <= box[1]
        for o in others
    )


def make_scenes(count, seed=0, size=64, max_shapes=3, radius=(0.08, 0.2), noise=0.05):
    """`count` scenes of `size` x `size` pixels with 1..max_shapes shapes of radius `radius` (a
    fraction of the side, uniform)."""
    rng = np.random.default_rng(seed)
    colours = np.array(list(COLOURS.values()), "float32")
    images = np.empty((count, size, size, 3), "float32")
    masks = np.zeros((count, size, size), "int32")
    boxes, labels = [], []
    for n in range(count):
        image = np.full((size, size, 3), rng.uniform(0.0, 0.25), "float32")
        if noise > 0:
            image += rng.normal(0.0, noise, image.shape).astype("float32")
        placed, classes = [], []
        for _ in range(rng.integers(1, max_shapes + 1)):
            kind = int(rng.integers(len(SHAPES)))
            r = size * rng.uniform(*radius)
            for _ in range(50):  # rejection: clear of the shapes already placed
                centre = rng.uniform(r, size - r, 2)
                scratch = np.zeros((size, size, 3), "float32")
                inside = draw_shape(scratch, SHAPES[kind], 1.0, centre, r)
                if inside.any() and _apart(_box(inside), placed):
                    break
            else:
                continue  # no room left: the scene keeps the shapes it has
            colour = np.clip(colours[rng.integers(len(colours))] + rng.uniform(-0.08, 0.08, 3), 0, 1)
            image[inside] = colour
            masks[n][inside] = kind + 1
            placed.append(_box(inside))
            classes.append(kind + 1)
        images[n] = np.clip(image, 0.0, 1.0)
        boxes.append(np.asarray(placed, "float32").reshape(-1, 4))
        labels.append(np.asarray(classes, "int32"))
    return Scenes(images, masks, boxes, labels)
