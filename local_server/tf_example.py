"""Classify, Regress and MultiInference: tf.Example inputs in, results out.

TensorFlow Serving feeds a batch of serialized tf.Examples to a signature's one
string input ("inputs") and reads "classes"/"scores" or "outputs" back
(servables/tensorflow/{util,classifier,regressor,multi_inference}.cc). The
checks and messages here are those files', so that a model that works here
works there, and fails there as it fails here.
"""

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    regression_pb2,
)

from local_server.servable import DEFAULT_SIGNATURE, Servable
from serving.status import ServingError, invalid

CLASSIFY = tf.saved_model.CLASSIFY_METHOD_NAME
REGRESS = tf.saved_model.REGRESS_METHOD_NAME


def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """The Input as a [batch] string tensor, each example prefixed with the context.

    Concatenated serialized protos merge: an example's features override the
    context's, as in TensorFlow Serving's InputToSerializedExampleTensor.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in with_context.examples]
    else:
        examples = []
    if not examples:
        raise invalid("Input is empty.")
    return np.array(examples, dtype=object)


def _signature(servable: Servable, name: str) -> meta_graph_pb2.SignatureDef:
    name = name or DEFAULT_SIGNATURE
    if name not in servable.signature_defs:
        raise invalid(f"No signature was found with the name: {name}")
    return servable.signature_defs[name]


def classification_tensors(signature: meta_graph_pb2.SignatureDef) -> tuple[str, dict[str, str]]:
    """(input tensor, {"classes"/"scores": output tensor}): PreProcessClassification."""
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if "inputs" not in signature.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {signature}")
    outputs = {
        k: signature.outputs[k].name for k in ("classes", "scores") if k in signature.outputs
    }
    if not outputs:
        raise invalid(
            'Expected classification signature outputs to contain at least one of "classes" '
            f'or "scores". Signature was: {signature}'
        )
    return signature.inputs["inputs"].name, outputs


def regression_tensors(signature: meta_graph_pb2.SignatureDef) -> tuple[str, dict[str, str]]:
    """(input tensor, {"outputs": output tensor}): PreProcessRegression."""
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if "inputs" not in signature.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {signature}")
    if "outputs" not in signature.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {signature}")
    return signature.inputs["inputs"].name, {"outputs": signature.outputs["outputs"].name}


def _shape(array: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def classification_result(
    outputs: dict[str, np.ndarray], num_examples: int
) -> classification_pb2.ClassificationResult:
    """PostProcessClassificationResult: [batch, classes] labels and/or scores."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    for name, array, dtype, dtype_name in (
        ("classes", classes, object, "DT_STRING"),
        ("scores", scores, np.float32, "DT_FLOAT"),
    ):
        if array is None:
            continue
        if array.ndim != 2:
            raise invalid(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape(array)}"
            )
        if array.dtype != dtype:
            raise invalid(f"Expected {name} Tensor of {dtype_name}. Got: {_dtype_name(array)}")
        if array.shape[0] != num_examples:
            raise invalid(
                f"Expected {name} output batch size of {num_examples}. Got: {array.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    num_classes = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for i in range(num_examples):
        entry = result.classifications.add()
        for c in range(num_classes):
            cls = entry.classes.add()
            if classes is not None:
                cls.label = classes[i, c].decode("utf-8", "replace")
            if scores is not None:
                cls.score = float(scores[i, c])
    return result


def regression_result(
    outputs: dict[str, np.ndarray], num_examples: int
) -> regression_pb2.RegressionResult:
    """PostProcessRegressionResult: [batch] or [batch, 1] floats."""
    array = outputs["outputs"]
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{_shape(array)}"
        )
    if array.shape[0] != num_examples:
        raise invalid(
            f"Input batch size did not match output batch size: {num_examples} vs. {array.shape[0]}"
        )
    if array.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(array)}")
    result = regression_pb2.RegressionResult()
    for value in array.reshape(-1):
        result.regressions.add(value=float(value))
    return result


def _dtype_name(array: np.ndarray) -> str:
    return types_pb2.DataType.Name(tf.as_dtype(array.dtype).as_datatype_enum)


def classify(
    servable: Servable, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResult:
    return _run(servable, request, classification_tensors, classification_result)


def regress(
    servable: Servable, request: regression_pb2.RegressionRequest
) -> regression_pb2.RegressionResult:
    return _run(servable, request, regression_tensors, regression_result)


def _run(servable: Servable, request, tensors, result):
    """One signature on the request's examples: TensorFlow Serving's Run{Classify,Regress}."""
    signature = _signature(servable, request.model_spec.signature_name)
    input_name, fetches = tensors(signature)
    examples = serialized_examples(request.input)
    return result(servable.run({input_name: examples}, fetches), len(examples))


def multi_inference(
    servable: Servable, request: inference_pb2.MultiInferenceRequest
) -> list[tuple[str, object]]:
    """Runs every task's signature in one Session run, as TensorFlow Serving does.

    Returns (task's signature name, ClassificationResult or RegressionResult) per task.
    """
    model_name, seen, input_names, fetches, plans = "", set(), set(), {}, []
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid("Found ModelSpec with an empty model name.")
        if model_name and task.model_spec.name != model_name:
            raise invalid(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        model_name = task.model_spec.name
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            raise invalid(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid(f"Requested signature not found in model graph: {name}")
        if task.method_name == CLASSIFY:
            input_name, outputs = classification_tensors(signature)
        elif task.method_name == REGRESS:
            input_name, outputs = regression_tensors(signature)
        else:
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"Unsupported signature method_name: {task.method_name}",
            )
        input_names.add(input_name)
        # One fetch per tensor, even where two tasks read the same one.
        fetches.update({tensor: tensor for tensor in outputs.values()})
        plans.append((task, outputs))
    examples = serialized_examples(request.input)
    values = servable.run({name: examples for name in input_names}, fetches)
    results = []
    for task, outputs in plans:
        by_alias = {alias: values[tensor] for alias, tensor in outputs.items()}
        if task.method_name == CLASSIFY:
            results.append((task, classification_result(by_alias, len(examples))))
        else:
            results.append((task, regression_result(by_alias, len(examples))))
    return results
