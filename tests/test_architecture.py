"""The dependency rule of the layout (README, "Architecture"), read from the source with `ast`.

recipe -> recipes.common -> recipes.engine, layers, datasets: no recipe imports another recipe,
shared code imports no recipe, layers and datasets import no recipe, no import cycles, and only
recipes/engine/ imports tensorflow, torch or jax. Pure source analysis: it runs on one backend.
"""

import ast
import functools
import sys

import pytest

from tests.conftest import BACKEND, ROOT

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="reads source files only: once, not once per backend"
)
# benchmarks/ is not scanned: it is no package, and its native comparisons import torch, jax, tensorflow.
PACKAGES = ("recipes", "layers", "datasets")
BACKEND_MODULES = ("tensorflow", "torch", "jax", "jaxlib")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources():
    """{module name: path} of every module of the three packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


SOURCES = _sources()


def _imports(path):
    """Absolute module names imported anywhere in a file (`from a import b` gives a.b if that is a
    module, else a)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if f"{node.module}.{alias.name}" in SOURCES
            )
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "lazy_import":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
    return names


def _recipe_of(module):
    """The recipe a module belongs to (recipes.dcgan, recipes.pix2pix.model -> recipes.pix2pix), or
    None for shared code and the packages outside recipes/."""
    parts = module.split(".")
    if parts[0] != "recipes" or len(parts) < 2 or parts[1] in ("common", "engine", "__main__"):
        return None
    return ".".join(parts[:2])


def _internal(module):
    """The module (or package) of ours that an import names, or None for third-party code."""
    while module and module not in SOURCES:
        module = module.rpartition(".")[0]
    return module or None


def _related(a, b):
    """A package and its own submodules may import each other (re-exports, lazy helpers)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


GRAPH = {
    name: {dep for dep in map(_internal, _imports(path)) if dep and not _related(dep, name)}
    for name, path in SOURCES.items()
}


def test_the_layout_is_what_the_readme_says():
    recipes_dir = ROOT / "recipes"
    shared = {p.stem for p in recipes_dir.glob("*.py")} - {"__init__", "__main__"}
    for name in shared:
        assert "SECTION" in (recipes_dir / f"{name}.py").read_text(), (
            f"recipes/{name}.py is not a recipe (no SECTION): shared code belongs in recipes/common/"
        )
    for package in recipes_dir.iterdir():
        if package.is_dir() and package.name not in ("common", "engine", "__pycache__"):
            assert (package / "__main__.py").exists(), f"recipes/{package.name}/ has no __main__.py"
    assert not list((recipes_dir / "common").glob("__main__.py"))


def test_no_recipe_imports_another_recipe():
    offences = [
        f"{name} imports {dep}"
        for name, deps in GRAPH.items()
        for dep in deps
        if _recipe_of(dep) and _recipe_of(dep) != _recipe_of(name) and name != "recipes.__main__"
    ]
    assert not offences, offences


def test_shared_code_layers_and_datasets_import_no_recipe():
    offences = [
        f"{name} imports {dep}"
        for name, deps in GRAPH.items()
        if _recipe_of(name) is None and name != "recipes.__main__"
        for dep in deps
        if _recipe_of(dep)
    ]
    assert not offences, offences
    for name, deps in GRAPH.items():
        if name.startswith(("layers", "datasets")):
            assert not {d for d in deps if d.startswith("recipes")}, f"{name} imports {deps}"


def test_no_import_cycles():
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in GRAPH[node]:
            if state.get(dep) == "open":
                pytest.fail("import cycle: " + " -> ".join([*stack, node, dep]))
            if dep not in state:
                visit(dep, [*stack, node])
        state[node] = "done"

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in GRAPH:
        if node not in state:
            visit(node, [])


def test_only_the_engine_imports_a_backend():
    offences = [
        f"{name} imports {module}"
        for name, path in SOURCES.items()
        if not name.startswith("recipes.engine")
        for module in _imports(path)
        if module.split(".")[0] in BACKEND_MODULES
    ]
    assert not offences, offences


def test_the_rule_is_checked_for_real():
    # The graph sees the imports it must: a recipe -> common, common -> engine, a recipe -> layers.
    assert "recipes.common.gan_training" in GRAPH["recipes.dcgan"]
    assert "recipes.engine" in GRAPH["recipes.common.gan_training"]
    assert _recipe_of("recipes.pix2pix.model") == "recipes.pix2pix"
    assert _recipe_of("recipes.common.cli") is None


def test_no_path_to_a_file_the_project_does_not_ship():
    # One citation scheme ("A 9.7"); the notes' file names are not part of the project.
    offences = [
        str(path.relative_to(ROOT))
        for path in [*ROOT.glob("*.md"), *SOURCES.values(), *(ROOT / "tests").rglob("*.py")]
        if "seeds/00" in path.read_text() and path.name != "test_architecture.py"
    ]
    assert not offences, offences


@functools.cache
def _tree(path):
    return ast.parse(path.read_text())


def _keras_src_uses(path):
    """Line numbers where a file imports or reads Keras' private modules (`keras.src`)."""
    lines = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Attribute) and node.attr == "src":
            names = ["keras.src"] if getattr(node.value, "id", None) == "keras" else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]  # importlib.import_module("keras.src..."), lazy_import(...)
        else:
            continue
        if any(name == "keras.src" or name.startswith("keras.src.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_engine_uses_private_keras_apis():
    # Private Keras (keras.src) can change in any release: pyproject.toml pins the tested minor
    # version, and the engine's tests exercise every private API it uses.
    offences = [
        f"{path.relative_to(ROOT)}:{line} uses keras.src"
        for name, path in SOURCES.items()
        if not name.startswith("recipes.engine")
        for line in _keras_src_uses(path)
    ]
    assert not offences, offences
    # The check sees the uses it must: the engine's own.
    assert _keras_src_uses(ROOT / "recipes" / "engine" / "_jax.py")
    assert _keras_src_uses(ROOT / "recipes" / "engine" / "__init__.py")


def test_the_keras_in_use_is_in_the_declared_range():
    # The range in pyproject.toml is the one the suite runs with (keras depends on `packaging`).
    import re

    import keras
    from packaging.requirements import Requirement

    found = re.findall(r'^\s*"(keras[<>=!~ ].*)",', (ROOT / "pyproject.toml").read_text(), re.M)
    assert len(found) == 1, found
    declared = Requirement(found[0])
    assert declared.specifier.contains(keras.__version__), (keras.__version__, str(declared))
    assert any(spec.operator == "<" for spec in declared.specifier), "no upper bound for keras"


def _called_names(node):
    """The names of the functions called anywhere under `node` (`a.b.f(...)` gives "f")."""
    return {
        getattr(call.func, "attr", None) or getattr(call.func, "id", None)
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
    }


def test_the_readme_names_exactly_the_recipes_that_write_tensorboard_events():
    # Event files come from engine.Loop: a recipe writes them when it builds a Loop itself or calls
    # a shared function that does (gan_training.train_image_gan, ...).
    import re

    trees = {name: _tree(path) for name, path in SOURCES.items()}
    builders = {"Loop"} | {
        function.name
        for name, tree in trees.items()
        if name.startswith("recipes.common")
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and "Loop" in _called_names(function)
    }
    writers = {
        _recipe_of(name).split(".")[1]
        for name, tree in trees.items()
        if _recipe_of(name) and _called_names(tree) & builders
    }
    readme = (ROOT / "README.md").read_text()
    paragraph = next(p for p in readme.split("\n\n") if p.startswith("TensorBoard event files"))
    named = set(re.findall(r"`([a-z0-9_]+)`", paragraph)) - {"tensorboard"}
    assert named == writers, f"README names {sorted(named)}; engine.Loop trains {sorted(writers)}"
    assert {"dcgan", "gan_1d"} <= writers  # The check sees a shared builder and a direct Loop.
