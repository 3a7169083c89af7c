"""`python -m recipes`: the catalogue; `python -m recipes NAME [ARGS]`: runs recipe NAME.

`python -m recipes dcgan --epochs 1` is the same as `python -m recipes.dcgan --epochs 1`.
"""

import ast
import pkgutil
import runpy
import sys
from pathlib import Path

import recipes

# The citation scheme: "A 9.7" is section 9.7 of notes A.
NOTES = {
    "A": "Deep Learning (2018)",
    "B": "AI basics with PyTorch",
    "C": "PyTorch chapter 3",
    "D": "introductory deep-learning course",
    "E": "RNN practice and GANs",
}
NOT_RECIPES = ("common", "engine")  # the shared sub-packages: never runnable


def _source(module):
    """The file that holds a recipe's SECTION and docstring: NAME.py or NAME/__init__.py."""
    root = Path(recipes.__path__[0])
    return root / module.name / "__init__.py" if module.ispkg else root / f"{module.name}.py"


def catalog():
    """[(name, section, title)] of every recipe: a module or package in `recipes/` with a SECTION."""
    rows = []
    for module in pkgutil.iter_modules(recipes.__path__):
        if module.name.startswith("_") or module.name in NOT_RECIPES:
            continue
        tree = ast.parse(_source(module).read_text())
        section = None
        for node in tree.body:
            targets = [getattr(t, "id", None) for t in getattr(node, "targets", [])]
            if isinstance(node, ast.Assign) and targets == ["SECTION"]:
                section = ast.literal_eval(node.value)
        if section is not None:
            title = (ast.get_docstring(tree) or "").splitlines()[0]
            rows.append((module.name, section, title))
    return rows


def legend():
    """One line naming the five notes behind the section letters."""
    return "Sections: " + "; ".join(f"{key} = {title}" for key, title in NOTES.items())


def print_catalog():
    rows = catalog()
    width = max(len(name) for name, _, _ in rows)
    print("Recipes (python -m recipes NAME --help, or python -m recipes.NAME --help, for options):\n")
    for name, section, title in rows:
        print(f"  {name:<{width}}  {section:<22}  {title}")
    print(f'\n{legend()} ("A 9.7" is section 9.7 of notes A)')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print_catalog()
        return 0
    name, args = argv[0], argv[1:]
    names = [row[0] for row in catalog()]
    if name not in names:
        print(
            f"python -m recipes: unknown recipe {name!r}; python -m recipes lists them all",
            file=sys.stderr,
        )
        return 2
    sys.argv = [f"python -m recipes.{name}", *args]
    try:
        runpy.run_module(f"recipes.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        return stop.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
