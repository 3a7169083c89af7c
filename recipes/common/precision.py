"""Mixed precision for the recipes with their own training step (`--dtype-policy`, issue 16).

`cli.dtype_policy_option()` is the flag (float32, mixed_float16, mixed_bfloat16). The recipes build
their networks inside `dtype_policy(config)`, so the layers compute in float16 or bfloat16 with
float32 weights, and keep their outputs and losses float32. Under mixed_float16 the optimizer is
wrapped by `loss_scaled(config, optimizer)` in `keras.optimizers.LossScaleOptimizer`, and the step
takes gradients with `engine.value_and_grad(..., loss_scale=optimizer)` and applies them with
`engine.apply(optimizer, grads, variables)`: a step whose gradients overflow is skipped and the
scale halved. Used by the GAN recipes (`gan_training`), char_rnn and the style-transfer family.
"""

import contextlib

from recipes.common import cli

keras = cli.lazy_import("keras")


@contextlib.contextmanager
def dtype_policy(config):
    """Layers created inside compute under `config.dtype_policy` (float32, mixed_float16 or
    mixed_bfloat16: float32 weights, float16/bfloat16 computation); the global policy is restored
    on exit, so that other models (a quality score's classifier) stay float32. A layer given
    `dtype="float32"` keeps float32: the recipes give it to their last layer. `config` may also be
    the policy's name.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(_name(config))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def loss_scaled(config, optimizer, initial_scale=2.0**15):
    """`optimizer` in a `keras.optimizers.LossScaleOptimizer` under mixed_float16 (its loss scale
    is an optimizer variable, so checkpoints carry it); unchanged otherwise. `config` may also be
    the policy's name."""
    if _name(config) == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=initial_scale)
    return optimizer


def _name(config):
    return config if isinstance(config, str) else config.dtype_policy
