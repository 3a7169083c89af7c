"""Keras' Adam and AdamW updates on TensorFlow as one XLA program: the same arithmetic, faster.

In a graph-mode step (`engine.function` on TensorFlow is a plain `tf.function`, see _tensorflow.py)
Keras' update runs each elementwise operation as its own kernel over the whole variable: Adam reads
and writes the model about ten times per step. Measured for the DCGAN's G and D together
(10,697,980 parameters, 2 CPU cores): 50.9 ms per Adam update in graph mode, 18.2 ms as one XLA
program, whose fused loops touch each element once; the DCGAN step against its native TensorFlow
version went from 0.96 to 1.07 in back-to-back runs (benchmarks/native_compare.py). Only the update
is compiled, not the step: the step's random numbers stay TensorFlow's (XLA draws other ones).
`fit()` keeps Keras' update: it compiles its whole step with XLA already
(`engine.fast_updates(..., fit=True)`).

The step size is computed as Keras computes it, in graph mode; the elementwise operations are Keras'
in Keras' order. Unoptimised XLA (as the tests run it) gives Keras' numbers bit for bit; optimised,
LLVM contracts a multiply and an add into one fused multiply-add, which rounds once instead of twice,
so the weights drift from Keras' by a rounding error per step (at most 2.4e-7 after 5 Adam updates of
weights of order 1: tests/recipes/engine/test_fast_optimizers.py).

The engine replaces `_backend_update_step` of one optimizer object (Keras' TensorFlow
optimizers call it with all gradients at once, after clipping, weight decay and loss-scale
unscaling, and before constraints, EMA and the iteration count): its class, config, variables and
checkpoints stay Keras'. A call it does not cover (a `tf.distribute` strategy, a sparse gradient,
variables other than one float32/float64 dtype) runs Keras' own update.

RMSprop keeps Keras' update: XLA rewrites its `g / sqrt(d)` as `g * rsqrt(d)`, which rounds
differently even unoptimised, and the WGAN, whose graph-mode steps use it, is already fastest on
TensorFlow (README, the cross-backend table).
"""

import tensorflow as tf

from recipes.engine._keras_optimizers import adam_step_size, keras_update

# The method of Keras' tensorflow optimizers that the engine replaces (`_keras_optimizers.install`).
HOOK = "_backend_update_step"
_CLASSES = {}


def updates():
    """The engine's update per Keras optimizer class."""
    if not _CLASSES:
        from keras.src.optimizers import adam, adamw

        _CLASSES.update({adam.Adam: _adam, adamw.AdamW: _adam})
    return _CLASSES


def _covered(grads, variables):
    dtype = variables[0].dtype
    return (
        dtype in ("float32", "float64")
        and all(v.dtype == dtype for v in variables)
        and not any(isinstance(g, tf.IndexedSlices) for g in grads)
        and not tf.distribute.has_strategy()
    )


def _slots(optimizer, slots, variables):
    return [slots[optimizer._get_variable_index(v)].value for v in variables]


def _adam(optimizer, grads, variables, learning_rate):
    if not _covered(grads, variables):
        return keras_update(optimizer, HOOK, grads, variables, learning_rate)
    dtype = variables[0].dtype
    _adam_update(
        [v.value for v in variables],
        [tf.cast(g, dtype) for g in grads],
        _slots(optimizer, optimizer._momentums, variables),
        _slots(optimizer, optimizer._velocities, variables),
        _slots(optimizer, optimizer._velocity_hats, variables) if optimizer.amsgrad else [],
        adam_step_size(optimizer, learning_rate, dtype),  # in graph mode, as Keras'
        # Python floats, rounded to the dtype as Keras' `ops.multiply(tensor, 1 - beta_1)` does.
        *(tf.constant(c, dtype) for c in (1 - optimizer.beta_1, 1 - optimizer.beta_2)),
        tf.constant(optimizer.epsilon, dtype),
    )


@tf.function(jit_compile=True, autograph=False)
def _adam_update(values, grads, momentums, velocities, velocity_hats, alpha, c1, c2, epsilon):
    for i, (value, grad, m, v) in enumerate(zip(values, grads, momentums, velocities)):
        m = m.assign_add((grad - m) * c1)  # m = m + (g - m)(1 - beta_1)
        v = v.assign_add((tf.square(grad) - v) * c2)  # v = v + (g^2 - v)(1 - beta_2)
        if velocity_hats:
            v = velocity_hats[i].assign(tf.maximum(velocity_hats[i], v))
        value.assign_sub((m * alpha) / (tf.sqrt(v) + epsilon))
