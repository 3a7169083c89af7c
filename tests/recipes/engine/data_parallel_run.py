"""Run by test_distribute.py in a subprocess whose XLA_FLAGS give JAX two CPU devices (set before
JAX is imported): one device against `--distribute data-parallel` over two, for a DCGAN step
and a fit recipe. Prints one JSON line of results."""

import json
import sys

import numpy as np


def dcgan_losses(distributed, steps=3):
    import keras

    from recipes import dcgan, engine

    config = dcgan.Config(**dcgan.QUICK)
    engine.distribute("data-parallel" if distributed else "none", config.batch_size)
    gan = dcgan.DCGAN(config)  # seeded: the same weights both times
    step = engine.function(gan.step, list(gan.state.values()))
    real = np.random.default_rng(0).uniform(-1, 1, (config.batch_size, 28, 28, 1)).astype("float32")
    losses = []
    for _ in range(steps):
        out = step(real)
        losses.append([float(keras.ops.convert_to_numpy(out[k])) for k in ("d_loss", "g_loss")])
    weight = gan.generator.trainable_variables[0].value
    return losses, len(weight.sharding.device_set)


def fit_losses(folder, distributed):
    import keras

    from recipes import engine, mnist_mlp

    flags = ["--distribute", "data-parallel"] if distributed else []
    argv = ["--quick", "--model", "mlp", "--limit", "128", "--test-limit", "64", "--epochs", "1"]
    argv += ["--out", folder]
    assert mnist_mlp.main([*argv, *flags]) == 0
    devices = 1 if keras.distribution.distribution() is None else 2
    row = engine.read_metrics(f"{folder}/metrics.csv")[-1]
    return [row["loss"], row["val_loss"]], devices


def main(folder):
    import keras

    from recipes import engine
    from recipes.engine import _jax

    result = {"devices": len(keras.distribution.list_devices())}
    result["dcgan_one"], _ = dcgan_losses(False)
    result["dcgan_two"], result["dcgan_weight_devices"] = dcgan_losses(True)
    batch = _jax._shard_batches([np.zeros((4, 3), "float32")], keras.distribution.distribution())[0]
    result["batch_devices"] = len(batch.sharding.device_set)
    result["fit_one"], result["fit_one_devices"] = fit_losses(f"{folder}/one", False)
    result["fit_two"], result["fit_two_devices"] = fit_losses(f"{folder}/two", True)
    try:
        engine.distribute("data-parallel", 33)
    except engine.EngineError as error:
        result["odd_batch"] = str(error)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
