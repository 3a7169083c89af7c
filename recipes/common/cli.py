"""Command-line conventions shared by every recipe. Imports no backend, so `--help` is instant.

A recipe declares its options as a dataclass that extends `RunConfig`; `parse` turns the fields into
flags (`batch_size` -> `--batch-size`, help text from `field(metadata={"help": ...})`), applies the
recipe's `--quick` overrides to the flags the user did not give, and `run` turns the project's
expected failures into one line on stderr and an exit code.
"""

import argparse
import dataclasses
import importlib.util
import sys
import typing

from datasets import DatasetUnavailable
from recipes import engine
from recipes.engine import CheckpointError, OutputError, TrainingDiverged

EXIT_USAGE = 2  # bad input, data set not available, unreadable checkpoint
EXIT_DIVERGED = 3  # a loss became NaN
# Keras keeps seeds as int32 on torch and recipes derive seeds `seed + k` (k < 1000): 2**30 leaves room.
MAX_SEED = 2**30 - 1


def lazy_import(name):
    """The module `name`, loaded on first attribute access (keeps `--help` free of keras)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def option(default, help, **kwargs):
    """A config field with its help text (and argparse extras such as `choices`)."""
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


# --dtype-policy: Keras' global dtype policies (keras.config.set_dtype_policy).
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def dtype_policy_option():
    """The `--dtype-policy` field, for the recipes whose custom training step honours it: the
    models compute in float16 or bfloat16 (weights stay float32, outputs and losses float32), and
    mixed_float16 scales the losses (`keras.optimizers.LossScaleOptimizer`)."""
    return option(
        "float32",
        "compute in float16 or bfloat16 (weights float32); mixed_float16 adds loss scaling",
        choices=DTYPE_POLICIES,
    )


def distribute_option():
    """The `--distribute` field, for the recipes that train with `fit` or the engine's compiled
    steps: "data-parallel" splits every batch across all local devices (`engine.distribute`; JAX
    only so far, refused with one line elsewhere)."""
    return option("none", "data-parallel: split each batch across all local devices (JAX)",
                  choices=engine.DISTRIBUTIONS)  # fmt: skip


@dataclasses.dataclass
class RunConfig:
    """Flags every recipe takes."""

    epochs: int = option(10, "number of training epochs")
    batch_size: int = option(64, "examples per training step")
    seed: int = option(0, "seed for weights, noise and data order; a run is reproducible")
    dataset: str = option("digits", "data set to train on")
    data_dir: str = option(None, "a folder of images to train on instead (e.g. CelebA)")
    out: str = option(None, "output folder (default runs/RECIPE)")
    resume: bool = option(False, "continue from the newest checkpoint in --out")
    # Shown exactly where --resume is (see _parser): a new run never deletes a previous one unasked.
    overwrite: bool = option(False, "start over in an --out that holds a previous run (deletes it)")
    quick: bool = option(False, "a run of seconds on tiny data and models (used by the tests)")


class UsageError(ValueError):
    """Input the recipe cannot use (wrong shapes, incompatible flags); shown as one line."""


# The help text of a RunConfig flag that a recipe does not use: the flag is hidden from --help.
HIDDEN = argparse.SUPPRESS


def reject_unused(config, names, recipe, reason="trains nothing"):
    """UsageError (one line) when one of the hidden flags `names` differs from its default: a
    recipe that trains nothing refuses --epochs and the like instead of ignoring them, one that
    keeps no checkpoints (`reason="keeps no checkpoints"`) refuses --resume and --overwrite."""
    defaults = type(config)()
    if "resume" in names and hasattr(config, "overwrite"):  # hidden together (see _parser)
        names = (*names, "overwrite")
    for name in names:
        if getattr(config, name) != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{recipe} {reason}: {flag} is not used")


def _parser(config_class, prog, description, suppress_defaults):
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(config_class)
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    for field in fields.values():
        flag = "--" + field.name.replace("_", "-")
        extra = {k: v for k, v in field.metadata.items() if k != "help"}
        default = argparse.SUPPRESS if suppress_defaults else field.default
        help_text = field.metadata.get("help", "")
        if field.name == "overwrite" and "resume" in fields:  # Offered where --resume is.
            help_text = help_text if fields["resume"].metadata.get("help") != HIDDEN else HIDDEN
        if hints[field.name] is bool:
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=default, help=help_text)
        else:
            kind = hints[field.name]
            parser.add_argument(flag, type=kind, default=default, help=help_text, **extra)
    return parser


def parse(config_class, argv=None, *, prog, description, quick=None):
    """Parses `argv` into `config_class`, applying `quick` overrides when `--quick` is given.

    A flag the user gives always wins over the `--quick` override of the same option.
    """
    parser = _parser(config_class, prog, description, False)
    namespace = parser.parse_args(argv)
    given = vars(_parser(config_class, prog, description, True).parse_args(argv))
    if namespace.batch_size < 1 or namespace.epochs < 0:
        parser.error("--batch-size must be at least 1 and --epochs at least 0")
    if not 0 <= namespace.seed <= MAX_SEED:
        parser.error(f"--seed must be between 0 and {MAX_SEED}, got {namespace.seed}")
    config = config_class(**vars(namespace))
    if config.quick:
        for name, value in (quick or {}).items():
            if name not in given:
                setattr(config, name, value)
    if hasattr(config, "distribute"):  # before any model is built
        try:
            devices = engine.distribute(config.distribute, config.batch_size)
        except engine.EngineError as error:
            raise UsageError(str(error)) from None
        if getattr(config, "samples", 0) % devices:  # a GAN's scored samples are batches too
            raise UsageError(f"--samples must be a multiple of the {devices} data-parallel devices")
    return config


def run(main, argv=None):
    """Calls `main(argv)`; expected failures become one line on stderr and a non-zero exit code."""
    engine.configure()
    try:
        return main(argv) or 0
    except (DatasetUnavailable, CheckpointError, OutputError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print("\ninterrupted: run again with --resume to continue from the last epoch")
        return 130
