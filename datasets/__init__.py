"""Data sets for the recipes: embedded defaults that need no network, real ones on request."""

# Tells this package from Hugging Face's `datasets`, which has the same top-level name: the recipes
# check for this line at start-up (recipes/__init__.py) and refuse to run with a foreign `datasets`.
__keras_recipes__ = True

from datasets.digits import load_digits28
from datasets.images import DATASETS, fit_images, load_images, to_float
from datasets.mnist5k import load_mnist5k
from datasets.pairs import load_buildings, load_facades, load_folder_pairs
from datasets.remote import DatasetUnavailable

__all__ = [
    "DATASETS",
    "DatasetUnavailable",
    "fit_images",
    "load_buildings",
    "load_digits28",
    "load_facades",
    "load_folder_pairs",
    "load_images",
    "load_mnist5k",
    "to_float",
]
