"""clients/inputs_client.py: the outputs of --inputs, named and typed from the signature."""

import numpy as np

from clients import inputs_client


def tensor(dtype: str, *dims: int) -> dict:
    """A TensorInfo as GetModelMetadata's JSON gives it (int64 sizes as strings)."""
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}}


SIGNATURE = {"outputs": {"output_0": tensor("DT_FLOAT", -1, 1)}}
INPUTS = {"numeric": np.zeros((2, 6), np.float32)}


def test_outputs_are_named_and_typed_from_the_signature():
    class Client:  # Both clients answer a single output's array unnamed.
        def predict(self, named):
            return np.array([[1.5], [2.5]])

    outputs = inputs_client.send(Client(), INPUTS, SIGNATURE)
    assert list(outputs) == ["output_0"] and outputs["output_0"].dtype == np.float32
    assert inputs_client.describe(outputs).splitlines()[0] == "output_0: float32 (2, 1)"


def test_several_outputs_keep_their_names_and_strings_come_as_they_are():
    class Client:  # Several outputs come by name; REST's JSON gives strings and float64.
        def predict(self, named):
            return {"scores": [[0.25, 0.75]], "label": ["seven"]}

    outputs = {"scores": tensor("DT_FLOAT", -1, 2), "label": tensor("DT_STRING", -1)}
    answer = inputs_client.send(Client(), INPUTS, {**SIGNATURE, "outputs": outputs})
    assert answer["scores"].dtype == np.float32 and answer["label"].tolist() == ["seven"]
    assert inputs_client.describe(answer).splitlines()[0] == "label: <U5 (1,)"
