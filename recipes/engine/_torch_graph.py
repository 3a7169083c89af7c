"""Keras functional models on torch, run node by node without `Layer.__call__` where it adds nothing.

A functional model's forward pass calls each of its layers through `Layer.__call__`, which on
torch runs on every step: argument binding, input conversion, the training and mask look-ups, the
name and autocast scopes, about 0.1-0.3 ms per layer on the CPU. `install(model)` gives a
`keras.Model` built from the functional API (and the functional models among its layers; a
`Sequential` model's graph) its own `call` that walks the same graph in the same order, calling
each layer as `engine.kernels.calls` does (the engine's torch kernel of a Dense, Conv2D,
Conv2DTranspose or BatchNormalization layer, else the layer's `call`), with the model's `training`
passed to the layers whose `call` takes it.

A node goes through `Layer.__call__` as before when that could change anything: an operation
that is not a built layer, another dtype policy than float32, an activity regularizer, a layer
that makes masks (its own `compute_mask`), inputs that are not float32 (or integer) tensors or
carry a Keras mask. The model's own `__call__` is unchanged (its call context gives nested
sub-layers their `training`, losses are collected as before), and so is everything when the
model is called without a `training` value, with a mask or extra arguments: then it is Keras'
`Functional.call`. The class, config, weights and saved files stay Keras'.
`RECIPES_FAST_CALLS=0` in the environment leaves every model as Keras made it.
"""

import os

import keras
import torch
from keras.src.models.functional import Functional, unpack_singleton
from keras.src.models.functional import operation_fn as keras_operation_fn
from keras.src.utils.python_utils import is_default

from recipes.engine import kernels

_INSTALLED = "_recipes_direct_graph"


def enabled():
    return os.environ.get("RECIPES_FAST_CALLS", "1") != "0"


def install(model):
    """Gives `model` (a functional or Sequential Keras model; anything else is left alone) and
    the functional models among its layers the direct graph call. Idempotent; returns `model`."""
    graph = model._functional if isinstance(model, keras.Sequential) else model
    if not enabled() or not isinstance(graph, Functional):
        return model
    for layer in graph._flatten_layers(include_self=False):
        install(layer)
    if getattr(graph, _INSTALLED, False):
        return model
    keras_call = graph.call

    def call(inputs, training=None, mask=None, **kwargs):
        if training is None or mask is not None or kwargs:
            return keras_call(inputs, training=training, mask=mask, **kwargs)
        outputs = graph._run_through_graph(
            graph._standardize_inputs(inputs), operation_fn=lambda op: _node(op, training)
        )
        return unpack_singleton(outputs)

    graph.call = call
    setattr(graph, _INSTALLED, True)
    return model


def _direct(op):
    return (
        isinstance(op, keras.layers.Layer)
        and op.built
        and op.dtype_policy.name == "float32"
        and op.activity_regularizer is None
        and getattr(op, "quantization_mode", None) is None
        and not getattr(op, "_remat_mode", False)
        and is_default(op.compute_mask)
    )


def _plain(x):
    """A float32 (or non-float) tensor without a Keras mask, or a Python constant."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return True
    if isinstance(x, (list, tuple)):
        return all(_plain(item) for item in x)
    if not keras.ops.is_tensor(x) or getattr(x, "_keras_mask", None) is not None:
        return False
    return not x.is_floating_point() or x.dtype == torch.float32


def _node(op, training):
    """The callable that runs `op`'s node in this forward pass."""
    keras_fn = keras_operation_fn(op, training=training)
    if not _direct(op):
        return keras_fn
    fn = kernels.calls(op)[0]  # made once per pass: kernels read the variables when made
    takes_training = op._call_has_training_arg

    def run(*args, **kwargs):
        if not (_plain(args) and all(_plain(v) for v in kwargs.values())):
            return keras_fn(*args, **kwargs)
        if takes_training:
            kwargs["training"] = training
        return fn(*args, **kwargs)

    return run
