"""Every flag in a recipe's --help is read by that recipe (issue 16: "every flag works, or the
recipe does not offer it"). Walks every recipe of the catalogue, builds its parser from the config
class it hands to `cli.parse`, and checks that each shown flag's field is read in the recipe's own
source or in the `recipes/common` modules it imports. Source-only: runs once."""

import argparse
import ast
import importlib
from pathlib import Path

import pytest

from recipes.__main__ import catalog
from recipes.common import cli
from tests.conftest import BACKEND, ROOT

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="source inspection only; runs once")

RECIPES = ROOT / "recipes"
COMMON = RECIPES / "common"

# Read by `cli.parse` and `cli.run` for every recipe, whatever the recipe's source says:
# --quick selects the recipe's QUICK overrides inside `cli.parse`, and --distribute sets Keras'
# distribution there (engine.distribute) before any model is built.
GENERIC = {"quick", "distribute"}


def _files(name):
    package = RECIPES / name
    return sorted(package.rglob("*.py")) if package.is_dir() else [RECIPES / f"{name}.py"]


def _trees(files):
    return {path: ast.parse(path.read_text()) for path in files}


def _parse_call(trees):
    """(module name, config class name) of the `cli.parse(Config, ...)` call in the recipe."""
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "parse"
                and getattr(node.func.value, "id", None) == "cli"
                and node.args
                and isinstance(node.args[0], ast.Name)
            ):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                return module.removesuffix(".__init__"), node.args[0].id
    return None


def _common_modules(trees):
    """The recipes/common modules a recipe imports, and those they import in turn."""
    found, todo = set(), list(trees.values())
    while todo:
        tree = todo.pop()
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "recipes.common":
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recipes.common."):
                names = [node.module.split(".")[2]]
            elif isinstance(node, ast.Import):
                names = [
                    a.name.split(".")[2] for a in node.names if a.name.startswith("recipes.common.")
                ]
            for name in names:
                path = COMMON / f"{name}.py"
                if path.exists() and path not in found:
                    found.add(path)
                    todo.append(ast.parse(path.read_text()))
    return sorted(found - {COMMON / "cli.py"})  # cli parses every field: that is not a use.


def _is_config(node):
    """`config` or `<anything>.config`: the name every recipe and shared module gives the parsed
    flags (checked by test_the_walk_finds_the_recipes_and_their_parsers)."""
    return getattr(node, "id", None) == "config" or getattr(node, "attr", None) == "config"


def _reads(trees):
    """Every field read as `config.NAME`, `self.config.NAME` or `getattr(config, "NAME")`, or
    as `self.NAME` in a property (a config's derived setting, e.g. wgan's `use_batchnorm`).
    A read in `__post_init__` alone is a validation, not a use: it does not count."""
    names = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                getattr(d, "id", None) == "property" for d in node.decorator_list
            ):
                names |= {
                    n.attr
                    for n in ast.walk(node)
                    if isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == "self"
                }
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                if _is_config(node.value):
                    names.add(node.attr)
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "getattr"
                and len(node.args) >= 2
                and _is_config(node.args[0])
                and isinstance(node.args[1], ast.Constant)
            ):
                names.add(node.args[1].value)
    return names


def _shown_fields(config_class):
    """The fields whose flags the recipe's parser shows in --help (built as `cli.parse` builds
    it), less those with a single choice: `--dataset lab` where "lab" is the only value names the
    data in --help and cannot change anything, so it needs no reader."""
    parser = cli._parser(config_class, "recipe", "", False)
    shown = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if action.choices is not None and len(action.choices) == 1:
            continue
        shown.append(action.dest)
    return shown


def _recipes():
    return [name for name, _, _ in catalog()]


def test_the_walk_finds_the_recipes_and_their_parsers():
    names = _recipes()
    assert {"dcgan", "wgan", "nmt_attention", "char_rnn", "vgg_estimator"} <= set(names)
    parsed = [name for name in names if _parse_call(_trees(_files(name)))]
    assert len(parsed) >= 20, parsed
    # The check itself: dcgan reads config.latent_dim; a field no source reads is not found.
    reads = _reads(_trees(_files("dcgan")))
    assert "latent_dim" in reads and "no_such_field_anywhere" not in reads
    # What --help shows: cifar_cnn hides --data-dir; text_lstm's one-choice --dataset needs no
    # reader; --overwrite is shown where --resume is.
    from recipes import cifar_cnn, rnn_basics, text_lstm

    shown = _shown_fields(cifar_cnn.Config)
    assert {"batch_norm", "resume", "overwrite"} <= set(shown) and "data_dir" not in shown
    assert "dataset" not in _shown_fields(text_lstm.Config)
    assert not {"resume", "overwrite", "epochs"} & set(_shown_fields(rnn_basics.Config))


@pytest.mark.parametrize("name", _recipes())
def test_every_shown_flag_is_read_by_the_recipe(name):
    trees = _trees(_files(name))
    call = _parse_call(trees)
    if call is None:
        pytest.skip(f"{name} has no cli.parse call (takes no flags)")
    module_name, class_name = call
    config_class = getattr(importlib.import_module(module_name), class_name)
    reads = _reads(trees) | _reads(_trees(_common_modules(trees)))
    unread = []
    for field in _shown_fields(config_class):
        if field in GENERIC:
            continue
        if field not in reads:
            unread.append("--" + field.replace("_", "-"))
    assert not unread, (
        f"{name} shows {', '.join(unread)} in --help but never reads it: wire it, or hide it "
        f"(cli.HIDDEN) and refuse it (cli.reject_unused)"
    )


def test_the_recipe_sources_exist():
    for name in _recipes():
        assert all(Path(path).exists() for path in _files(name)), name
