"""TensorFlow: gradients with `tf.GradientTape`, steps compiled with `tf.function`."""

import keras
import tensorflow as tf


def value_and_grad(fn, wrt, has_aux):
    tensors = [tf.convert_to_tensor(w) for w in wrt if not isinstance(w, keras.Variable)]
    sources, position = [], 0
    for w in wrt:
        if isinstance(w, keras.Variable):
            sources.append(w.value)  # The tf.Variable; the tape cannot make zeros for the wrapper.
        else:
            sources.append(tensors[position])
            position += 1
    # Nested tapes record each other: the gradient computed by an inner call is itself
    # differentiable by an outer one (gradient penalty).
    with tf.GradientTape() as tape:
        for tensor in tensors:
            tape.watch(tensor)
        out = fn(*tensors)
        value = out[0] if has_aux else out
    grads = tape.gradient(value, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    # An embedding lookup's gradient is an IndexedSlices with a row per occurrence; summed here, so
    # that the optimizers see the dense gradient of torch and JAX (see dense_gradients).
    return out, [_dense(g) for g in grads]


def _dense(grad):
    # `tf.convert_to_tensor` sums the rows of an IndexedSlices that share an index.
    return tf.convert_to_tensor(grad) if isinstance(grad, tf.IndexedSlices) else grad


def function(fn, variables):
    # Plain graph mode, not XLA: XLA draws stateless random numbers with another algorithm than
    # TensorFlow's CPU kernels, so a step that samples noise would no longer give the eager step's
    # numbers (same distribution, other values), and `jit=False` debugging would see another run.
    # Measured for the DCGAN step (batch 64, 2 CPU cores): XLA 4.74 steps/s, graph 4.24, eager 1.68;
    # the 12% is not worth losing compiled == eager. The Adam update, where most of it lies, is one
    # XLA program of its own (_tensorflow_optimizers.py; it draws nothing). Steps are plain Python
    # over Keras ops, so autograph would only slow tracing down.
    return tf.function(fn, reduce_retracing=True, autograph=False)


def dense_gradients(optimizer):
    apply = optimizer.apply

    def apply_dense(grads, trainable_variables=None):
        return apply([_dense(g) for g in grads], trainable_variables)

    optimizer.apply = apply_dense
    return optimizer
