"""serving/signatures.py: --inputs' .npy and .npz files matched against a signature's names,
dtypes and shapes, each mismatch one line."""

import numpy as np
import pytest

from serving import signatures
from serving.signatures import InputsError


def tensor(dtype: str, *dims: int) -> dict:
    """A TensorInfo as GetModelMetadata's JSON gives it (int64 sizes as strings)."""
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}}


SIGNATURE = {
    "inputs": {"numeric": tensor("DT_FLOAT", -1, 6), "onehot": tensor("DT_FLOAT", -1, 3)},
    "outputs": {"output_0": tensor("DT_FLOAT", -1, 1)},
}
ONE_INPUT = {"inputs": {"inputs": tensor("DT_INT32", 2, 4)}, "outputs": SIGNATURE["outputs"]}


def good() -> dict[str, np.ndarray]:
    return {"numeric": np.zeros((5, 6), np.float32), "onehot": np.ones((5, 3), np.float32)}


def test_npy_and_npz_files_load_and_match(tmp_path):
    np.savez(tmp_path / "two.npz", **good())
    named = signatures.match_signature(signatures.load(str(tmp_path / "two.npz")), SIGNATURE)
    assert {k: v.shape for k, v in named.items()} == {"numeric": (5, 6), "onehot": (5, 3)}
    np.save(tmp_path / "one.npy", np.arange(8, dtype=np.int32).reshape(2, 4))
    named = signatures.match_signature(signatures.load(str(tmp_path / "one.npy")), ONE_INPUT)
    assert named["inputs"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


@pytest.mark.parametrize(
    "arrays, signature, expected",
    [
        pytest.param({**good(), "numeric": np.zeros((5, 6))}, SIGNATURE,
                     "input 'numeric' is float64 (5, 6), the signature takes float32 (-1, 6)",
                     id="dtype"),
        pytest.param({**good(), "onehot": np.zeros((5, 4), np.float32)}, SIGNATURE,
                     "input 'onehot' is float32 (5, 4), the signature takes float32 (-1, 3)",
                     id="shape"),
        pytest.param({**good(), "onehot": np.zeros((5,), np.float32)}, SIGNATURE,
                     "input 'onehot' is float32 (5,)", id="rank"),
        pytest.param(np.zeros((3, 4), np.int32), ONE_INPUT,
                     "input 'inputs' is int32 (3, 4), the signature takes int32 (2, 4)",
                     id="fixed batch"),
        pytest.param({"numeric": np.zeros((5, 6), np.float32)}, SIGNATURE,
                     "arrays numeric, but the signature's inputs are numeric, onehot: save them "
                     "by those names, np.savez(path, NAME=array, ...)",
                     id="missing name"),
        pytest.param(np.zeros((5, 6), np.float32), SIGNATURE,
                     "one array, but the signature has 2 inputs (numeric, onehot)",
                     id="npy for two"),
        pytest.param(np.zeros((5, 6), np.float32), {},
                     "the model has no 'serving_default' signature with inputs",
                     id="no signature"),
        pytest.param(np.zeros((2,), np.float32), {"inputs": {"text": tensor("DT_STRING", -1)}},
                     "input 'text' takes DT_STRING, but --inputs sends numbers and booleans only",
                     id="strings"),
    ],
)  # fmt: skip
def test_a_mismatch_with_the_signature_is_one_line(arrays, signature, expected):
    with pytest.raises(InputsError) as error:
        signatures.match_signature(arrays, signature)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_files_that_are_not_arrays_are_refused(tmp_path):
    (tmp_path / "rows.csv").write_text("1,2\n")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    for name, expected in [
        ("rows.csv", "a .npy (one input) or .npz (named inputs) is needed"),
        ("missing.npz", "no such file"),
        ("broken.npy", "numpy cannot read it ("),
    ]:
        with pytest.raises(InputsError) as error:
            signatures.load(str(tmp_path / name))
        assert str(error.value).startswith(f"--inputs={tmp_path / name}: {expected}")
