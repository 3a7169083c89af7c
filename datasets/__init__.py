"""Data sets for the recipes: embedded defaults that need no network, real ones on request."""

from datasets.digits import load_digits28

__all__ = ["load_digits28"]
