"""Full-batch gradient descent as the notes' PyTorch loops write it, on every backend.

The regression sections of notes B train with

    for epoch in range(nb_epochs + 1):
        cost = F.mse_loss(model(x_train), y_train)
        optimizer.zero_grad(); cost.backward(); optimizer.step()

and print `cost`, the cost *before* that iteration's update. `descend` runs that loop with the
engine's gradient and a Keras optimizer in one compiled step (`engine.function`), and returns the
costs the loop would print, so a recipe can compare them with the notes' printed numbers.
`model.fit(x, y, batch_size=len(x), shuffle=False)` performs the same updates (its
`history["loss"][k]` is the same cost), at a few milliseconds of per-epoch overhead that a
thousand one-step epochs cannot afford.

Several independent models can descend together in one step: `cost` returns one cost per model,
the step differentiates their sum, and as no model's cost depends on another's variables, each
model receives exactly its own gradient (one compiled step instead of several, on every backend).
"""

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")


def descend(cost, variables, optimizer, updates, *, state=(), jit=True):
    """`updates` steps of `optimizer` on the scalar `cost()`; returns the costs, float64.

    Args:
        cost: a function of no arguments returning the scalar cost, or a list of the costs of
            independent models; it reads `variables` (and the data it closes over).
        variables: the Keras variables to train.
        optimizer: a Keras optimizer; built here for `variables`.
        updates: the number of updates.
        state: the models and extra variables `cost` reads (the optimizer is added), for the JAX
            compiled step.
        jit: `False` runs the eager step, for comparing with the compiled one.

    Returns:
        An array of `updates + 1` costs (`(updates + 1, models)` for a list): entry k is the cost
        after k updates (the value the notes' loop prints at its iteration k, before updating),
        the last one after all of them.
    """
    variables = list(variables)
    optimizer.build(variables)

    def costs():
        values = cost()
        return keras.ops.stack(values) if isinstance(values, (list, tuple)) else values

    def total():
        values = costs()
        return keras.ops.sum(values), values

    def step():
        (_, values), grads = engine.value_and_grad(total, variables, has_aux=True)
        optimizer.apply(grads, variables)
        return values

    compiled = engine.function(step, [*state, *variables, optimizer], jit=jit)
    history = [keras.ops.convert_to_numpy(compiled()) for _ in range(updates)]
    history.append(keras.ops.convert_to_numpy(costs()))
    return np.asarray(history, dtype="float64")
