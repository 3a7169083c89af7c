"""`python -m recipes`: lists every recipe with the section of the notes it reproduces."""

import ast
import pkgutil
from pathlib import Path

import recipes

NOTES = {
    "A": "Deep Learning (2018)",
    "B": "AI basics with PyTorch",
    "C": "PyTorch chapter 3",
    "D": "introductory deep-learning course",
    "E": "RNN practice and GANs",
}


def catalog():
    """[(name, section, title)] of every module in `recipes/` that declares a SECTION."""
    rows = []
    for module in pkgutil.iter_modules(recipes.__path__):
        if module.ispkg or module.name.startswith("_"):
            continue
        source = Path(recipes.__path__[0], module.name + ".py").read_text()
        tree = ast.parse(source)
        section = None
        for node in tree.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
                "SECTION"
            ]:
                section = ast.literal_eval(node.value)
        if section is not None:
            title = (ast.get_docstring(tree) or "").splitlines()[0]
            rows.append((module.name, section, title))
    return rows


def main():
    rows = catalog()
    width = max(len(name) for name, _, _ in rows)
    print("Recipes (python -m recipes.NAME --help for options):\n")
    for name, section, title in rows:
        print(f"  {name:<{width}}  {section:<22}  {title}")
    print("\nSections: " + "; ".join(f"{key} = {title}" for key, title in NOTES.items()))


if __name__ == "__main__":
    main()
