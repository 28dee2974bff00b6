"""local_server.tf_example: TensorFlow Serving's checks on classify and regress outputs.

The messages of its classifier.cc and regressor.cc (PostProcess*Result) and
util.cc (InputToSerializedExampleTensor); pure, no model.
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import input_pb2

from local_server import tf_example
from serving.status import ServingError


def test_context_features_merge_into_each_example_and_examples_win():
    request_input = input_pb2.Input()
    context = request_input.example_list_with_context.context.features.feature
    context["x"].float_list.value.append(1.0)
    context["c"].int64_list.value.append(7)
    request_input.example_list_with_context.examples.add()
    own = request_input.example_list_with_context.examples.add().features.feature
    own["x"].float_list.value.append(5.0)
    parsed = tf.io.parse_example(
        tf_example.serialized_examples(request_input),
        {"x": tf.io.FixedLenFeature([1], tf.float32), "c": tf.io.FixedLenFeature([1], tf.int64)},
    )
    np.testing.assert_array_equal(parsed["x"].numpy(), [[1.0], [5.0]])
    np.testing.assert_array_equal(parsed["c"].numpy(), [[7], [7]])


def test_an_empty_input_is_refused():
    with pytest.raises(ServingError, match=r"^Input is empty\.$"):
        tf_example.serialized_examples(input_pb2.Input())


def test_classification_result_takes_classes_and_scores():
    result = tf_example.classification_result(
        {
            "classes": np.array([[b"a", b"b"], [b"c", b"d"]], object),
            "scores": np.array([[0.1, 0.9], [0.8, 0.2]], np.float32),
        },
        2,
    )
    rows = [[(c.label, round(c.score, 3)) for c in e.classes] for e in result.classifications]
    assert rows == [[("a", 0.1), ("b", 0.9)], [("c", 0.8), ("d", 0.2)]]


@pytest.mark.parametrize(
    "outputs, message",
    [
        pytest.param(
            {"scores": np.zeros(3, np.float32)},
            "Expected Tensor shape: [batch_size num_classes] but got [3]",
            id="rank",
        ),
        pytest.param(
            {"scores": np.zeros((3, 1), np.float64)},
            "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE",
            id="scores dtype",
        ),
        pytest.param(
            {"classes": np.zeros((3, 1), np.int64)},
            "Expected classes Tensor of DT_STRING. Got: DT_INT64",
            id="classes dtype",
        ),
        pytest.param(
            {"scores": np.zeros((2, 1), np.float32)},
            "Expected scores output batch size of 3. Got: 2",
            id="batch",
        ),
        pytest.param(
            {"classes": np.full((3, 2), b"a", object), "scores": np.zeros((3, 1), np.float32)},
            "Tensors class and score should match in dim_size(1). Got 2 vs. 1",
            id="classes vs scores",
        ),
    ],
)
def test_classification_output_errors(outputs, message):
    with pytest.raises(ServingError) as error:
        tf_example.classification_result(outputs, 3)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "output, message",
    [
        pytest.param(
            np.zeros((3, 2), np.float32),
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            "[3,2]",
            id="shape",
        ),
        pytest.param(
            np.zeros(2, np.float32),
            "Input batch size did not match output batch size: 3 vs. 2",
            id="batch",
        ),
        pytest.param(
            np.zeros(3, np.int32), "Expected output Tensor of DT_FLOAT.  Got: DT_INT32", id="dtype"
        ),
    ],
)
def test_regression_output_errors(output, message):
    with pytest.raises(ServingError) as error:
        tf_example.regression_result({"outputs": output}, 3)
    assert str(error.value) == message


def test_regression_takes_batch_or_batch_by_one():
    for output in (np.array([1.5, 2.5], np.float32), np.array([[1.5], [2.5]], np.float32)):
        result = tf_example.regression_result({"outputs": output}, 2)
        assert [r.value for r in result.regressions] == [1.5, 2.5]
