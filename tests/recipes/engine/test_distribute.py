"""`--distribute data-parallel` (engine.distribute, Keras' DataParallel): on JAX with two CPU devices
the same losses as on one, for a DCGAN step and a fit recipe; refused with one line elsewhere."""

import json
import os

import numpy as np
import pytest

from recipes import dcgan
from recipes.common import cli
from tests.conftest import BACKEND, run_module


@pytest.mark.skipif(BACKEND != "jax", reason="the distribution API runs on JAX only so far")
def test_two_devices_give_the_losses_of_one(tmp_path):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    proc = run_module("tests.recipes.engine.data_parallel_run", tmp_path, env={"XLA_FLAGS": flags},
                      timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2
    # The weights are replicated on both devices and a batch is split across them.
    assert result["dcgan_weight_devices"] == 2 and result["batch_devices"] == 2
    np.testing.assert_allclose(result["dcgan_two"], result["dcgan_one"], rtol=1e-5)
    assert result["fit_one_devices"] == 1 and result["fit_two_devices"] == 2
    np.testing.assert_allclose(result["fit_two"], result["fit_one"], rtol=1e-5)
    assert result["odd_batch"] == (
        "--distribute data-parallel: the batch size 33 must be a multiple of the 2 devices"
    )


@pytest.mark.skipif(BACKEND == "jax", reason="JAX supports it (the test above)")
def test_other_backends_refuse_with_one_line(capsys, tmp_path):
    argv = ["--quick", "--distribute", "data-parallel", "--out", str(tmp_path)]
    assert cli.run(dcgan.main, argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --distribute data-parallel runs on the JAX backend only so far, not {BACKEND}"
    )
