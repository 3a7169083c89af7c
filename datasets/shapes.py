"""Generated images of coloured shapes with template captions, the embedded data of
`image_captioning` (no network).

    from datasets.shapes import make_shapes
    images, captions = make_shapes(4000, seed=0)   # (4000, 32, 32, 3) in [0, 1]; 3 captions each
    captions[0]   # [['a', 'small', 'yellow', 'circle'], ['there', 'is', 'a', 'small', ...], ...]

Each image shows one or two shapes (circle, square, triangle; red, green, blue, yellow; small or
large) on a dark, noisy background, with three template captions from their attributes: "a small
red circle above a large blue square", "there is a ...", and the relation turned round, "a large
blue square below a small red circle" (one shape: "a small red circle", "there is a small red
circle", "a red circle that is small").
"""

import numpy as np

COLOURS = {
    "red": (0.9, 0.15, 0.15),
    "green": (0.2, 0.8, 0.25),
    "blue": (0.2, 0.35, 0.95),
    "yellow": (0.95, 0.9, 0.2),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": (0.09, 0.13), "large": (0.18, 0.22)}  # half-extent as a fraction of the side
RELATIONS = {"above": "below", "below": "above", "to the left of": "to the right of"}
RELATIONS["to the right of"] = "to the left of"


def shape_mask(size, shape, centre, radius):
    """The (size, size) boolean mask of `shape` (circle, square, upward triangle) at `centre` (y, x)."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    cy, cx = centre
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
    if shape == "square":
        half = 0.85 * radius  # the same area as a circle of the same radius, roughly
        return (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    if shape == "triangle":
        top, bottom = cy - radius, cy + radius
        return (y >= top) & (y <= bottom) & (np.abs(x - cx) <= (y - top) * 0.6)
    raise ValueError(f"unknown shape {shape!r}")


def draw_shape(image, shape, colour, centre, radius):
    """Paints `shape` of `colour` into `image` (H, W, 3) in place; returns its mask."""
    inside = shape_mask(image.shape[0], shape, centre, radius)
    image[inside] = colour
    return inside


def _phrase(item):
    return f"{item['size']} {item['colour']} {item['shape']}"


def captions_for(items, relation=None):
    """The three template captions of an image with one item, or two items in `relation`."""
    if relation is None:
        (item,) = items
        words = _phrase(item)
        return [
            f"a {words}",
            f"there is a {words}",
            f"a {item['colour']} {item['shape']} that is {item['size']}",
        ]
    first, second = (_phrase(item) for item in items)
    return [
        f"a {first} {relation} a {second}",
        f"there is a {first} {relation} a {second}",
        f"a {second} {RELATIONS[relation]} a {first}",
    ]


def make_shapes(count, seed=0, size=32, noise=0.05, two_shapes=0.5):
    """`count` images (count, size, size, 3) in [0, 1] and their captions (three word lists each).

    Colours are jittered, the background is a random dark grey with Gaussian noise. With two shapes,
    the first lies wholly above (or left of) the second along the relation's axis, so the relation
    in the caption is never ambiguous.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), "float32")
    captions = []
    for n in range(count):
        image = np.full((size, size, 3), rng.uniform(0.0, 0.25), "float32")
        image += rng.normal(0.0, noise, image.shape) if noise > 0 else 0.0
        items = [
            {
                "shape": SHAPES[rng.integers(len(SHAPES))],
                "colour": list(COLOURS)[rng.integers(len(COLOURS))],
                "size": list(SIZES)[rng.integers(len(SIZES))],
            }
            for _ in range(2 if rng.random() < two_shapes else 1)
        ]
        radii = [size * rng.uniform(*SIZES[item["size"]]) for item in items]
        relation = None
        if len(items) == 1:
            centres = [rng.uniform(radii[0], size - radii[0], 2)]
        else:
            relation = list(RELATIONS)[rng.integers(len(RELATIONS))]
            axis = 0 if relation in ("above", "below") else 1  # 0: rows (y), 1: columns (x)
            gap = radii[0] + radii[1] + 1.0
            while True:  # rejection: far enough apart along the relation's axis
                centres = [rng.uniform(r, size - r, 2) for r in radii]
                if abs(centres[0][axis] - centres[1][axis]) >= gap:
                    break
            before = centres[0][axis] < centres[1][axis]
            if before != (relation in ("above", "to the left of")):
                centres.reverse()  # items[0] is the one the relation describes
        for item, centre, radius in zip(items, centres, radii):
            colour = np.clip(np.array(COLOURS[item["colour"]]) + rng.uniform(-0.08, 0.08, 3), 0, 1)
            draw_shape(image, item["shape"], colour, centre, radius)
        images[n] = np.clip(image, 0.0, 1.0)
        captions.append([caption.split() for caption in captions_for(items, relation)])
    return images, captions
