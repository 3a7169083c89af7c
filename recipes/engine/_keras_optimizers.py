"""What the engines' optimizer updates (_torch_optimizers.py, _tensorflow_optimizers.py) compute as
Keras' optimizers do, in `keras.ops`."""

from keras import ops


def adam_step_size(optimizer, learning_rate, dtype):
    """Adam's step size this iteration, lr sqrt(1 - beta_2^t) / (1 - beta_1^t), with Keras' casts
    and in Keras' order (keras/src/optimizers/adam.py and its torch version)."""
    lr = ops.cast(learning_rate, dtype)
    local_step = ops.cast(optimizer.iterations + 1, dtype)
    beta_1_power = ops.power(ops.cast(optimizer.beta_1, dtype), local_step)
    beta_2_power = ops.power(ops.cast(optimizer.beta_2, dtype), local_step)
    return lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
