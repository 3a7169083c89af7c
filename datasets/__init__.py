"""Data sets for the recipes: embedded defaults that need no network, real ones on request."""

from datasets.digits import load_digits28
from datasets.images import DATASETS, fit_images, load_images, to_float
from datasets.remote import DatasetUnavailable

__all__ = [
    "DATASETS",
    "DatasetUnavailable",
    "fit_images",
    "load_digits28",
    "load_images",
    "to_float",
]
