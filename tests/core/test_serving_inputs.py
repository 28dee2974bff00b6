"""--inputs (serving_inputs.py): .npy and .npz files matched against a signature's names,
dtypes and shapes, each mismatch one line; the export's --inputs checked the same way."""

import numpy as np
import pytest
from conftest import export_options

import saved_model_main
import serving_inputs
from serving_inputs import InputsError


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
    named = serving_inputs.match_signature(
        serving_inputs.load(str(tmp_path / "two.npz")), SIGNATURE
    )
    assert {k: v.shape for k, v in named.items()} == {"numeric": (5, 6), "onehot": (5, 3)}
    np.save(tmp_path / "one.npy", np.arange(8, dtype=np.int32).reshape(2, 4))
    named = serving_inputs.match_signature(
        serving_inputs.load(str(tmp_path / "one.npy")), ONE_INPUT
    )
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
                     "arrays numeric, but the signature's inputs are numeric, onehot",
                     id="missing name"),
        pytest.param(np.zeros((5, 6), np.float32), SIGNATURE,
                     "one array, but the signature has 2 inputs (numeric, onehot)",
                     id="npy for two"),
    ],
)  # fmt: skip
def test_a_mismatch_with_the_signature_is_one_line(arrays, signature, expected):
    with pytest.raises(InputsError) as error:
        serving_inputs.match_signature(arrays, signature)
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
            serving_inputs.load(str(tmp_path / name))
        assert str(error.value).startswith(f"--inputs={tmp_path / name}: {expected}")


def test_outputs_are_named_and_typed_from_the_signature():
    class Client:  # Both clients answer a single output's array unnamed.
        def predict(self, named):
            return np.array([[1.5], [2.5]])

    outputs = serving_inputs.send(Client(), good(), SIGNATURE)
    assert list(outputs) == ["output_0"] and outputs["output_0"].dtype == np.float32
    assert serving_inputs.describe(outputs).splitlines()[0] == "output_0: float32 (2, 1)"


def test_several_outputs_keep_their_names_and_strings_come_as_they_are():
    class Client:  # Several outputs come by name; REST's JSON gives strings and float64.
        def predict(self, named):
            return {"scores": [[0.25, 0.75]], "label": ["seven"]}

    outputs = {"scores": tensor("DT_FLOAT", -1, 2), "label": tensor("DT_STRING", -1)}
    answer = serving_inputs.send(Client(), good(), {**SIGNATURE, "outputs": outputs})
    assert answer["scores"].dtype == np.float32 and answer["label"].tolist() == ["seven"]
    assert serving_inputs.describe(answer).splitlines()[0] == "label: <U5 (1,)"


def test_the_exports_inputs_are_checked_against_the_models_specs(tmp_path):
    np.savez(tmp_path / "bad.npz", numeric=np.zeros((2, 6), np.float32))
    options = export_options(
        tmp_path / "models",
        model="examples.regressor:MODEL",
        checkpoint=str(tmp_path / "unused"),
        inputs=str(tmp_path / "bad.npz"),
    )
    with pytest.raises(
        InputsError, match="arrays numeric, but the signature's inputs are numeric, onehot"
    ):
        saved_model_main.train_and_export(options)
    assert not (tmp_path / "models").exists()
