"""tensor_basics (B I.2.2, C): the notes' tensors and every manipulation, in keras.ops."""

import json

import numpy as np
import pytest

from recipes import tensor_basics
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("tensor_basics")
    assert tensor_basics.main(["--out", str(out), "--seed", "3"]) == 0
    assert (out / "tensors.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_the_slides_matrix_is_the_first_24_digits_of_pi():
    digits = tensor_basics.pi_digits(30)
    assert "".join(map(str, digits)) == "314159265358979323846264338327"
    assert np.ravel(tensor_basics.PI_MATRIX).tolist() == digits[:24]


def test_the_slides_three_tensors(summary):
    slide = summary["slide"]
    assert slide["vector_shape"] == [6] and slide["vector_decoded"] == "tens0r"
    assert slide["matrix_shape"] == [6, 4] and slide["matrix_sum"] == 115
    assert slide["matrix_flat"] == slide["pi_digits"]
    assert slide["cube_shape"] == [4, 4, 2]
    cube = np.asarray(slide["cube"])
    assert cube.min() >= 0 and cube.max() <= 9 and len(np.unique(cube)) > 3  # seeded digits
    assert slide["image_batch_shape"] == [8, 28, 28, 1] and slide["text_batch_shape"] == [8, 10, 16]


# B I.2.2's examples with the values the inventory derives (t = [[1, 2, 3], [4, 5, 6]]).
EXPECTED = {
    "t[0]": [1, 2, 3],
    "t[t > 4]": [5, 6],
    "t[:, [0, 2]]": [[1, 3], [4, 6]],
    "t[1, 2]": 6,
    "t[:, 1:3]": [[2, 3], [5, 6]],
    "t[:, ::2]": [[1, 3], [4, 6]],
    "[1, 2] + 3": [4, 5],
    "(1, 2) + (2, 1)": [[3, 4], [4, 5]],
    "mul": [[2, 4], [3, 6]],
    "matmul": [[8]],
    "mean": 2.5,
    "mean(dim=1)": [1.5, 3.5],
    "sum": 10,
    "sum(dim=1)": [3, 7],
    "max(dim=1) values": [2, 4],
    "max(dim=1) indices": [1, 1],
    "argmax()": 3,
    "view([-1, 3])": [[1, 2, 2], [3, 4, 2], [3, 1, 1], [2, 3, 5]],
    "float().long()": [1, 2, 3, 4],
    "cat dim 0": [[1, 2], [3, 4], [5, 6], [7, 8]],
    "cat dim 1": [[1, 2, 5, 6], [3, 4, 7, 8]],
    "stack dim 0": [[1, 4], [2, 5], [3, 6]],
    "stack dim 1": [[1, 2, 3], [4, 5, 6]],
    "cat of unsqueeze(1)": [[1, 2, 3], [4, 5, 6]],
    "mul_ (in place)": [[5, 12], [21, 32]],
    # The notes' printed [[1., 2., 3.], [5., 6., 4.]]: row 1 puts 4 at column 2, 5 at 0, 6 at 1.
    "scatter_(1, index, src)": [[1, 2, 3], [5, 6, 4]],
}
SHAPES = {
    "view([-1, 3])": [4, 3],  # the notes: (2, 2, 3) -> (4, 3)
    "squeeze()": [2, 3],
    "squeeze(dim=0)": [2, 3],
    "squeeze(dim=2)": [1, 2, 3],  # torch leaves an axis of size 3 alone
    "unsqueeze(1)": [2, 1, 3],  # the notes: (2, 3) -> (2, 1, 3)
    "zeros": [2, 3, 4],
    "eye": [4, 4],
    "arange": [10],
}


def test_every_manipulation_equals_numpy(summary):
    results = summary["manipulations"]
    assert {name for name, r in results.items() if not r["equals_numpy"]} == set()
    assert len(results) >= 38


def test_manipulations_give_the_notes_values(summary):
    results = summary["manipulations"]
    for name, expected in EXPECTED.items():
        np.testing.assert_allclose(results[name]["value"], expected, err_msg=name)
    for name, shape in SHAPES.items():
        assert results[name]["shape"] == shape, name
    assert results["ndim"]["value"] == 2
    assert results["float()"]["dtype"] == "float32" and results["float().long()"]["dtype"] == "int32"
    assert results["max(dim=1) indices"]["dtype"].startswith("int")
