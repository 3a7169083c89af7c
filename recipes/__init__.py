"""Runnable recipes that reproduce the lecture notes, one module per section family.

`python -m recipes` lists them; `python -m recipes.NAME --help` shows a recipe's options.
"""

# The marker line in datasets/__init__.py that tells this project's `datasets` package from another.
DATASETS_MARKER = "__keras_recipes__ = True"


def _check_datasets_package():
    """Makes sure the top-level `datasets` package is this project's, not Hugging Face's `datasets`.

    Installed side by side, one hides the other. Theirs first on the path would break every recipe
    with an obscure ImportError, so a recipe run stops at once with one line (exit code 2); ours
    first hides theirs from other code in the environment, which gets a one-line warning. Only
    files are read: nothing is imported, so the check costs milliseconds.
    """
    import importlib.util
    import os
    import sys

    try:
        spec = importlib.util.find_spec("datasets")
    except (ImportError, ValueError):
        return  # No `datasets` at all: importing ours fails with its own clear message.
    if spec is None:
        return
    origin = spec.origin or ", ".join(spec.submodule_search_locations or ())
    try:
        with open(spec.origin, encoding="utf-8", errors="replace") as f:
            ours = DATASETS_MARKER in f.read()
    except (OSError, TypeError):
        ours = False
    if not ours:
        message = (
            f"the package 'datasets' found first on the path ({origin}) is not this project's (is "
            "Hugging Face's datasets installed?): install keras-recipes in its own virtual "
            "environment, or `pip uninstall datasets` there"
        )
        if sys.argv and sys.argv[0] == "-m":  # Being started by `python -m recipes...`.
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(2)
        raise ImportError(message)
    # An installed distribution named `datasets` (its metadata folder on the path), found by listing
    # the path's folders: importlib.metadata would add 50 ms to every start.
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("datasets-") and name.endswith((".dist-info", ".egg-info")):
                where = os.path.join(entry or ".", name)
                print(
                    "warning: this project's 'datasets' package hides the installed distribution "
                    f"{name.rsplit('.', 1)[0]} ({where}); install keras-recipes in its own virtual "
                    "environment",
                    file=sys.stderr,
                )
                return


_check_datasets_package()
