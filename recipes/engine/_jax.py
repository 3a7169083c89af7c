"""JAX: gradients with `jax.value_and_grad` over Keras code run inside a stateless scope."""

import jax
import keras
from keras.src.backend.common.stateless_scope import StatelessScope, get_stateless_scope

from recipes.engine import EngineError


class _Scope(StatelessScope):
    """A `StatelessScope` that starts from a given id->value mapping and records what was updated.

    Keras' own scope keys its mapping by `id(variable)` and forgets the variable objects, and a scope
    opened inside another does not see the outer one's values. This one copies the enclosing mapping,
    remembers the updated variables so their new values can be handed back out, and in `strict` mode
    (inside a compiled step) refuses to read a variable it was not given, which `jax.jit` would
    otherwise bake in as a constant.
    """

    def __init__(self, mapping, strict):
        super().__init__()
        self.state_mapping = dict(mapping)
        self.strict = strict
        self.updated = {}

    def add_update(self, update):
        variable, value = update
        self.state_mapping[id(variable)] = value
        self.updated[id(variable)] = variable

    def get_current_value(self, variable):
        value = self.state_mapping.get(id(variable))
        if value is None and self.strict:
            raise EngineError(
                f"variable {variable.path} is read inside a compiled step but is not part of its "
                "state: add the model, optimizer or SeedGenerator that owns it to `state`"
            )
        return value


def value_and_grad(fn, wrt, has_aux):
    outer = get_stateless_scope()
    base = dict(outer.state_mapping) if outer is not None else {}
    strict = getattr(outer, "strict", False)
    is_variable = [isinstance(w, keras.Variable) for w in wrt]
    initial = [w.value if var else jax.numpy.asarray(w) for w, var in zip(wrt, is_variable)]
    updated = {}

    def pure(values):
        mapping, args = dict(base), []
        for w, var, value in zip(wrt, is_variable, values):
            if var:
                mapping[id(w)] = value
            else:
                args.append(value)
        with _Scope(mapping, strict) as scope:
            out = fn(*args)
        value, aux = out if has_aux else (out, None)
        updated.update(scope.updated)
        return value, (aux, {key: scope.state_mapping[key] for key in scope.updated})

    (value, (aux, new_values)), grads = jax.value_and_grad(pure, has_aux=True)(initial)
    for key, new_value in new_values.items():
        updated[key].assign(new_value)
    return ((value, aux) if has_aux else value), list(grads)


def _shard_batches(tree, distribution):
    """Arrays split along their first axis as `distribution` lays out data (`engine.distribute`);
    scalars, and arrays whose first axis the devices do not divide, stay as they are."""
    devices = distribution.device_mesh.devices.size

    def put(x):
        shape = getattr(x, "shape", None)
        if not shape or shape[0] % devices:
            return x
        return keras.distribution.distribute_tensor(x, distribution.get_data_layout(shape))

    return keras.tree.map_structure(put, tree)


def function(fn, variables):
    ids = {id(v) for v in variables}

    def pure(values, args, kwargs):
        with _Scope({id(v): x for v, x in zip(variables, values)}, strict=True) as scope:
            out = fn(*args, **kwargs)
        stray = [v.path for key, v in scope.updated.items() if key not in ids]
        if stray:
            raise EngineError(
                f"the compiled step updates {', '.join(stray)}, which is not part of its state"
            )
        return out, [scope.state_mapping[id(v)] for v in variables]

    compiled = jax.jit(pure, donate_argnums=0)

    def step(*args, **kwargs):
        distribution = keras.distribution.distribution()
        if distribution is not None:
            args, kwargs = _shard_batches((args, kwargs), distribution)
        out, new_values = compiled([v.value for v in variables], args, kwargs)
        for variable, value in zip(variables, new_values):
            variable.assign(value)
        return out

    return step
