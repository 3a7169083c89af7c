"""Shared, never-runnable code of the recipes: the library the recipes are written with.

Dependencies point one way: a recipe imports `recipes.common`, `recipes.engine`, `layers` and
`datasets`; code here imports no recipe.
"""
