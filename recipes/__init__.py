"""Runnable recipes that reproduce the lecture notes, one module per section family.

`python -m recipes` lists them; `python -m recipes.NAME --help` shows a recipe's options.
"""
