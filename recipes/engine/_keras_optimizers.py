"""What the engines' optimizer updates (_torch_optimizers.py, _tensorflow_optimizers.py) share:
how they replace one optimizer's update hook (each module's `HOOK`, with its `updates()` per Keras
class), how they hand a call back to Keras, and Adam's step size as Keras computes it."""

import types

from keras import ops


def install(optimizer, hook, updates):
    """Binds `updates[type(optimizer)]` (the exact class: a subclass may change the update) to
    `optimizer` as its method `hook`; other optimizers are left alone. Idempotent; returns
    `optimizer`. Bound to the object, so that a deep copy updates the copy."""
    update = updates.get(type(optimizer))
    if update is not None and hook not in vars(optimizer):
        setattr(optimizer, hook, types.MethodType(update, optimizer))
    return optimizer


def keras_update(optimizer, hook, *args):
    """Keras' own update, for a call the engine's does not cover."""
    return getattr(type(optimizer), hook)(optimizer, *args)


def adam_step_size(optimizer, learning_rate, dtype):
    """Adam's step size this iteration, lr sqrt(1 - beta_2^t) / (1 - beta_1^t), with Keras' casts
    and in Keras' order (keras/src/optimizers/adam.py and its torch version)."""
    lr = ops.cast(learning_rate, dtype)
    local_step = ops.cast(optimizer.iterations + 1, dtype)
    beta_1_power = ops.power(ops.cast(optimizer.beta_1, dtype), local_step)
    beta_2_power = ops.power(ops.cast(optimizer.beta_2, dtype), local_step)
    return lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
