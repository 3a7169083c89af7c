"""Keras' Adam, AdamW and RMSprop updates on torch (CPU), done in place: the same numbers, faster.

Keras' torch optimizers update all variables with grouped `torch._foreach_*` ops, and every
intermediate (g*g, m*alpha, sqrt(v), sqrt(v) + epsilon, the quotient) is a fresh tensor the size
of the model; on CPU each is fresh memory from the operating system. Measured for the DCGAN's G and
D together (10,715,024 parameters; one thread, medians of 7 interleaved repeats, 2 busy CPU cores):
317-350 ms per Adam step of both, against 206-244 ms for `torch.optim.Adam` (foreach) and 84-95 ms
here.

Here the same operations run in the same order, variable by variable, with one scratch buffer the
size of the largest variable (Adam's variables of at most `_GROUPED` elements together, in grouped
`_foreach_*` calls: many small variables cost more Python than arithmetic), and the final
multiply, divide and add are one `addcdiv_`, whose kernel rounds `self + (value * t1) / t2` as
Keras' separate ops round `self - (t1 * value) / t2`. The results are Keras' bit for bit here
(tests/recipes/engine/test_fast_optimizers.py; a DCGAN
trained either way ends with identical weights and slots).

The engine replaces the update hook of one optimizer object (`_parallel_update_step`,
which Keras' torch optimizers call with all gradients at once, after clipping, weight decay and
loss-scale unscaling, and before constraints, EMA and the iteration count): its class, config,
variables and checkpoints stay Keras'. A call it does not cover (another device than the CPU,
a dtype other than float32/float64) runs Keras' own update. (`engine.fast_updates` installs it;
`RECIPES_FAST_OPTIMIZERS=0` in the environment leaves every optimizer as Keras made it.)
"""

import torch
from keras import ops

from recipes.engine._keras_optimizers import adam_step_size, keras_update
from recipes.engine.kernels import reader

# The method of Keras' torch optimizers that the engine replaces (`_keras_optimizers.install`).
HOOK = "_parallel_update_step"
# Keras' torch optimizer classes: the instances that `keras.optimizers.Adam(...)` etc. create.
_CLASSES = {}
# Flat scratch tensors per (device, dtype, slot), grown to the largest variable updated.
_scratch = {}
# Adam updates variables of at most this many elements together (`_grouped_adam`).
_GROUPED = 1 << 16


def updates():
    """The engine's update per Keras optimizer class."""
    if not _CLASSES:
        from keras.src.backend.torch.optimizers import torch_adam, torch_adamw, torch_rmsprop

        _CLASSES.update(
            {torch_adam.Adam: _adam, torch_adamw.AdamW: _adam, torch_rmsprop.RMSprop: _rmsprop}
        )
    return _CLASSES


def _tensors(variables):
    """`[v.value for v in variables]`, without the scope look-ups of `value` where they change
    nothing (`kernels.reader`: a Transformer's update reads 264 of them)."""
    read = reader()
    return [read(v) for v in variables]


def _covered(grads, values):
    dtype = values[0].dtype
    if dtype not in (torch.float32, torch.float64) or values[0].device.type != "cpu":
        return False
    return all(
        g.dtype == dtype and v.dtype == dtype and g.device == v.device for g, v in zip(grads, values)
    )


def _buffer(value, slot=0):
    """A scratch tensor shaped like `value` (contents undefined), shared by all updates."""
    key = (value.device, value.dtype, slot)
    flat = _scratch.get(key)
    if flat is None or flat.numel() < value.numel():
        flat = _scratch[key] = torch.empty(value.numel(), dtype=value.dtype, device=value.device)
    return flat[: value.numel()].view(value.shape)


def _adam(optimizer, grads, variables, learning_rate):
    values = _tensors(variables)
    if not _covered(grads, values):
        return keras_update(optimizer, HOOK, grads, variables, learning_rate)
    alpha = float(adam_step_size(optimizer, learning_rate, values[0].dtype))
    beta_1, beta_2, epsilon = optimizer.beta_1, optimizer.beta_2, optimizer.epsilon
    small = [i for i, value in enumerate(values) if value.numel() <= _GROUPED]
    if small:
        _grouped_adam(optimizer, *([x[i] for i in small] for x in (grads, variables, values)), alpha)
    small = set(small)
    for i, (variable, value, grad) in enumerate(zip(variables, values, grads)):
        if i in small:
            continue
        index = optimizer._get_variable_index(variable)
        m = optimizer._momentums[index].value
        v = optimizer._velocities[index].value
        scratch = _buffer(value)
        m.mul_(beta_1).add_(grad, alpha=1 - beta_1)  # m = beta_1 m + (1 - beta_1) g
        torch.mul(grad, grad, out=scratch)
        v.mul_(beta_2).add_(scratch, alpha=1 - beta_2)  # v = beta_2 v + (1 - beta_2) g^2
        if optimizer.amsgrad:
            v_hat = optimizer._velocity_hats[index].value
            torch.maximum(v_hat, v, out=v_hat)
            v = v_hat
        torch.sqrt(v, out=scratch)
        scratch.add_(epsilon)
        value.addcdiv_(m, scratch, value=-alpha)  # w = w - alpha m / (sqrt(v) + epsilon)


def _grouped_adam(optimizer, grads, variables, values, alpha):
    """The same update for small variables, each step one grouped `torch._foreach_*` call over
    all of them (on the CPU a loop over the same per-tensor kernels, so the same numbers): for a
    model of many small variables the Python of a per-variable loop costs more than the arithmetic.
    Its temporaries are fresh tensors, small by `_GROUPED`."""
    indices = [optimizer._get_variable_index(variable) for variable in variables]
    m = _tensors([optimizer._momentums[i] for i in indices])
    v = _tensors([optimizer._velocities[i] for i in indices])
    torch._foreach_mul_(m, optimizer.beta_1)
    torch._foreach_add_(m, grads, alpha=1 - optimizer.beta_1)
    torch._foreach_mul_(v, optimizer.beta_2)
    torch._foreach_add_(v, torch._foreach_mul(grads, grads), alpha=1 - optimizer.beta_2)
    if optimizer.amsgrad:
        v_hat = [optimizer._velocity_hats[i].value for i in indices]
        torch._foreach_maximum_(v_hat, v)
        v = v_hat
    denominator = torch._foreach_sqrt(v)
    torch._foreach_add_(denominator, optimizer.epsilon)
    torch._foreach_addcdiv_(values, m, denominator, value=-alpha)


def _rmsprop(optimizer, grads, variables, learning_rate):
    values = [v.value for v in variables]
    if not _covered(grads, values):
        return keras_update(optimizer, HOOK, grads, variables, learning_rate)
    # (keras/src/backend/torch/optimizers/torch_rmsprop.py)
    lr = float(ops.cast(learning_rate, values[0].dtype))
    rho, epsilon, momentum = optimizer.rho, optimizer.epsilon, optimizer.momentum
    for variable, value, grad in zip(variables, values, grads):
        index = optimizer._get_variable_index(variable)
        velocity = optimizer._velocities[index].value
        scratch = _buffer(value)
        torch.mul(grad, grad, out=scratch)
        velocity.mul_(rho).add_(scratch, alpha=1 - rho)  # v = rho v + (1 - rho) g^2
        torch.add(velocity, epsilon, out=scratch)
        if optimizer.centered:  # minus the square of the running mean gradient
            average = optimizer._average_gradients[index].value
            average.mul_(rho).add_(grad, alpha=1 - rho)
            square = torch.mul(average, average, out=_buffer(value, slot=1))
            scratch.add_(square, alpha=-1)
        scratch.sqrt_()  # sqrt(v + epsilon - mean^2)
        if momentum > 0:
            mom = optimizer._momentums[index].value
            mom.mul_(momentum).addcdiv_(grad, scratch, value=lr)  # mom = momentum mom + lr g / d
            value.add_(mom, alpha=-1)
        else:
            value.addcdiv_(grad, scratch, value=-lr)  # w = w - lr g / d
