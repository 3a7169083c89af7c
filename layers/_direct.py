"""Direct sub-layer calls on torch: `layer.call` where Keras' `Layer.__call__` adds only its cost.

On the torch backend every step runs eagerly, so each `Layer.__call__` costs its Python on every
step (about a third of a millisecond on the CPU: argument binding, input conversion, the training
and mask look-ups, name and autocast scopes); a Transformer block makes about ten sub-layer calls
per forward pass. TensorFlow and JAX trace the calls once, so there `direct` always gives the
layer itself. (`recipes.engine.kernels` goes further for the translation models: their layers as
torch kernels, with this as the fallback.)
"""

import keras

ENABLED = True  # False: every sub-layer call goes through Keras' __call__ (the tests compare both)


def _plain(x):
    """A float32 (or non-float) backend tensor without a Keras mask: nothing for __call__ to do."""
    if x is None or isinstance(x, (bool, int, float)):
        return True
    if not keras.ops.is_tensor(x) or getattr(x, "_keras_mask", None) is not None:
        return False
    dtype = keras.backend.standardize_dtype(x.dtype)
    return dtype == "float32" or not keras.backend.is_float_dtype(dtype)


def direct(layer, *inputs):
    """`layer.call` when calling `layer` through `Layer.__call__` would change nothing, else `layer`.

    That holds on torch for a built layer with the float32 policy (no autocasting; inside a float32
    caller any open autocast scope is float32 too) and without an activity regularizer, called on
    float32 tensors that carry no Keras mask (so no `*_mask` argument would be filled in). The caller
    passes `training` and every mask explicitly, as `Layer.__call__` would have filled them from its
    own call.
    """
    if (
        ENABLED
        and keras.backend.backend() == "torch"
        and layer.built
        and layer.dtype_policy.name == "float32"
        and layer.activity_regularizer is None
        and all(_plain(x) for x in inputs)
    ):
        return layer.call
    return layer
