"""local_server.rest_codec against TensorFlow Serving's util/json_tensor_test.cc.

Each case is one of that file's, with its input, and the array, proto or
message fragment it expects; fast, in process, no model.
"""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from local_server import rest_codec
from serving.status import ServingError


def infomap(**dtypes) -> dict[str, meta_graph_pb2.TensorInfo]:
    return {
        name: meta_graph_pb2.TensorInfo(dtype=tf.as_dtype(dtype).as_datatype_enum)
        for name, dtype in dtypes.items()
    }


def fill_predict(body: str, inputs):
    data = body.encode()
    doc = rest_codec.parse(data)
    rest_codec.signature_name(doc)
    return rest_codec.predict_inputs(doc, data, inputs, "")


def error_of(call) -> ServingError:
    with pytest.raises(ServingError) as error:
        call()
    return error.value


@pytest.mark.parametrize(
    "body, dtypes, expected, row",
    [
        pytest.param(
            '{"instances": [[1,2],[3,4],[5,6]]}',
            {"default": tf.int32},
            {"default": np.array([[1, 2], [3, 4], [5, 6]], np.int32)},
            True,
            id="SingleUnnamedTensor",
        ),
        pytest.param(
            '{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}',
            {"default": tf.float32},
            {"default": np.array([1, 2, 3, 4, 5.003, 0.007, 0], np.float32)},
            True,
            id="MixedInputForFloatTensor",
        ),
        pytest.param(
            '{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}',
            {"default": tf.float64},
            {"default": np.array([1, 2, 3, 4, 0.662, 0, 0], np.float64)},
            True,
            id="MixedInputForDoubleTensor",
        ),
        pytest.param(
            '{"instances": [1435774380]}',
            {"default": tf.float32},
            {"default": np.array([1435774380], np.float32)},
            True,
            id="FloatTensorWithPrecisionLoss",
        ),
        pytest.param(
            '{"instances": [3.5e38, -3.5e38]}',
            {"default": tf.float32},
            {"default": np.array([np.inf, -np.inf], np.float32)},
            True,
            id="FloatTensorThatExceedsMaxReturnsInf",
        ),
        pytest.param(
            '{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}',
            {"default": tf.string},
            {"default": np.array([b"hello", b"world"], object)},
            True,
            id="SingleUnnamedTensorBase64Scalars",
        ),
        pytest.param(
            '{"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}',
            {"default": tf.string},
            {"default": np.array([[b"hello"], [b"world"]], object)},
            True,
            id="SingleUnnamedTensorBase64Lists",
        ),
        pytest.param(
            '{"instances": [{"int_tensor": [[1,2],[3,4]], "str_tensor": ["foo", "bar"]},'
            ' {"int_tensor": [[5,6],[7,8]], "str_tensor": ["baz", "bat"]}]}',
            {"int_tensor": tf.int32, "str_tensor": tf.string},
            {
                "int_tensor": np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], np.int32),
                "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], object),
            },
            True,
            id="MultipleNamedTensor",
        ),
        pytest.param(
            '{"inputs": [[1,2],[3,4],[5,6]]}',
            {"default": tf.int32},
            {"default": np.array([[1, 2], [3, 4], [5, 6]], np.int32)},
            False,
            id="SingleUnnamedTensorColumnarFormat",
        ),
        pytest.param(
            '{"inputs": {"int_tensor": [[1,2],[3,4]], "str_tensor": ["foo", "bar"], "ignored": 1}}',
            {"int_tensor": tf.int32, "str_tensor": tf.string},
            {
                "int_tensor": np.array([[1, 2], [3, 4]], np.int32),
                "str_tensor": np.array([b"foo", b"bar"], object),
            },
            False,
            id="MultipleNamedTensorColumnarFormat",
        ),
        pytest.param(
            '{"inputs": 7}',
            {"default": tf.int64},
            {"default": np.array(7, np.int64)},
            False,
            id="ColumnarScalar",
        ),
        pytest.param(
            '{"instances": [true, false]}',
            {"default": tf.bool},
            {"default": np.array([True, False])},
            True,
            id="BoolTensor",
        ),
        pytest.param(
            '{"instances": [NaN, Infinity, -Infinity]} trailing text is ignored',
            {"default": tf.float32},
            {"default": np.array([np.nan, np.inf, -np.inf], np.float32)},
            True,
            id="NonFiniteAndStopWhenDone",
        ),
    ],
)
def test_predict_request_from_json(body, dtypes, expected, row):
    arrays, row_format = fill_predict(body, infomap(**dtypes))
    assert row_format == row
    assert arrays.keys() == expected.keys()
    for name, array in expected.items():
        assert arrays[name].dtype == array.dtype, name
        assert arrays[name].shape == array.shape, name
        np.testing.assert_array_equal(arrays[name], array)


NAMED = {"int_tensor": tf.int32, "str_tensor": tf.string}


@pytest.mark.parametrize(
    "body, dtypes, message",
    [
        pytest.param("", {"default": tf.int32}, "document is empty", id="EmptyDocument"),
        pytest.param(
            '{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}',
            {"default": tf.int32},
            "must be a string value",
            id="SignatureNotString",
        ),
        pytest.param(
            '{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}',
            {"default": tf.int32},
            "Not formatted correctly",
            id="BothInstancesAndInputs",
        ),
        pytest.param(
            '{"instances": [[1,2],[3,4],[5,6,7]]}',
            {"default": tf.int32},
            "Expecting tensor size",
            id="SizeDiffers",
        ),
        pytest.param(
            '{"instances": [[1,2],[3,4],[[5,6]]]}',
            {"default": tf.int32},
            "Expecting shape",
            id="ShapeDiffers",
        ),
        pytest.param(
            '{"instances": [1, [1]]}', {"default": tf.int32}, "Expecting shape", id="ScalarThenList"
        ),
        pytest.param(
            '{"instances": [[1,2],["a", "b"]]}',
            {"default": tf.int32},
            "not of expected type",
            id="StringsForInts",
        ),
        pytest.param(
            '{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]},'
            ' {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}',
            NAMED,
            "Expecting shape",
            id="NamedShapeDiffers",
        ),
        pytest.param(
            '{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo",'
            ' "bar"]}, {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}',
            NAMED,
            "Expecting tensor size",
            id="NamedSizeDiffers",
        ),
        pytest.param(
            '{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]},'
            ' [1, 20, 30], {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}',
            NAMED,
            "Expecting object but got list",
            id="ObjectThenList",
        ),
        pytest.param(
            '{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}',
            {"str_tensor": tf.string},
            "Expecting value/list but got object",
            id="ListThenObject",
        ),
        pytest.param(
            "instances = [1, 2]",
            {"default": tf.float32},
            "JSON Parse error: Invalid value",
            id="NotJson",
        ),
        pytest.param(
            '{"instances": ["x", "y"]}',
            {"default": tf.float32},
            "not of expected type: float",
            id="StringsForFloats",
        ),
        pytest.param(
            '{"instances": [1, true]}',
            {"default": tf.float32},
            "JSON Value: true Type: True is not of expected type: float",
            id="BoolForFloat",
        ),
        pytest.param(
            '{"instances": [1.5]}',
            {"default": tf.int32},
            "JSON Value: 1.5 Type: Number is not of expected type: int32",
            id="FloatForInt",
        ),
        pytest.param(
            '{"instances": [2147483648]}',
            {"default": tf.int32},
            "is not of expected type: int32",
            id="IntOutOfRange",
        ),
        pytest.param(
            '{"instances": [[1], [[2]]]}',
            {"default": tf.int32},
            "Expecting shape [1] but got: [1,1]",
            id="DeeperElement",
        ),
        pytest.param(
            '{"inputs": [[1, 2], [3]]}',
            {"default": tf.int32},
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
            id="ColumnarRagged",
        ),
        pytest.param(
            '{"inputs": {"int_tensor": [1]}}',
            NAMED,
            "Missing named input: str_tensor",
            id="ColumnarMissingInput",
        ),
        pytest.param(
            '{"inputs": [1]}',
            NAMED,
            "inputs is a plain value/list, but expecting an object",
            id="ColumnarPlainForTwoInputs",
        ),
        pytest.param(
            '{"instances": [1]}',
            NAMED,
            "instances is a plain list, but expecting list of objects",
            id="PlainListForTwoInputs",
        ),
        pytest.param(
            '{"instances": [{"int_tensor": 1}]}',
            NAMED,
            "keys must be equal to: int_tensor,str_tensor",
            id="ObjectMissingKey",
        ),
        pytest.param(
            '{"instances": "abc"}', {"default": tf.int32}, "to be an list/array", id="NotAList"
        ),
        pytest.param('{"instances": []}', {"default": tf.int32}, "No values in", id="EmptyList"),
        pytest.param(
            "{}", {"default": tf.int32}, "Missing 'inputs' or 'instances' key", id="NoKey"
        ),
        pytest.param("[1, 2]", {"default": tf.int32}, "Is not object", id="NotAnObject"),
        pytest.param(
            '{"instances": [{"b64": "!!"}]}',
            {"default": tf.string},
            "Unable to base64 decode",
            id="BadBase64",
        ),
    ],
)
def test_predict_request_errors(body, dtypes, message):
    error = error_of(lambda: fill_predict(body, infomap(**dtypes)))
    assert error.code.name == "INVALID_ARGUMENT"
    assert message in str(error), str(error)


@pytest.mark.parametrize(
    "body, message",
    [
        pytest.param("{", "Missing a name for object member. at offset: 1", id="OpenObject"),
        pytest.param('{"a" 1}', "Missing a colon after a name of object member.", id="NoColon"),
        pytest.param(
            '{"a": 1 "b": 2}', "Missing a comma or '}' after an object member.", id="ObjComma"
        ),
        pytest.param(
            '{"a": [1 2]}', "Missing a comma or ']' after an array element.", id="ArrComma"
        ),
        pytest.param('{"a": "b', "Missing a closing quotation mark in string.", id="OpenString"),
        pytest.param("   ", "The document is empty. at offset: 3", id="OnlySpaces"),
    ],
)
def test_parse_errors_use_rapidjsons_words(body, message):
    error = error_of(lambda: rest_codec.parse(body.encode()))
    assert str(error) == f"JSON Parse error: {message}" or message in str(error), str(error)


def test_debug_string_quotes_objects_indented_and_cuts_long_values():
    assert (
        rest_codec.debug_string({"a": [1, 2], "b": "x"}) == '{\n    "a": [1, 2],\n    "b": "x"\n}'
    )
    long = rest_codec.debug_string(list(range(1000)))
    assert 256 <= len(long) < 300 and long.startswith("[0, 1, 2")


def test_predict_outputs_in_row_and_columnar_formats():
    one = {"y": np.array([[2.5], [3.0]], np.float32)}
    assert json.loads(rest_codec.dumps(rest_codec.predict_outputs(one, True))) == {
        "predictions": [[2.5], [3.0]]
    }
    assert json.loads(rest_codec.dumps(rest_codec.predict_outputs(one, False))) == {
        "outputs": [[2.5], [3.0]]
    }
    two = {"a": np.array([1, 2], np.int64), "s_bytes": np.array([b"\x00", b"z"], object)}
    assert json.loads(rest_codec.dumps(rest_codec.predict_outputs(two, True))) == {
        "predictions": [{"a": 1, "s_bytes": {"b64": "AA=="}}, {"a": 2, "s_bytes": {"b64": "eg=="}}]
    }
    uneven = {"a": np.zeros(2), "b": np.zeros(3)}
    assert "inconsistent batch size: 3 expecting: 2" in str(
        error_of(lambda: rest_codec.predict_outputs(uneven, True))
    )
    scalar = {"a": np.float32(1.0) * np.ones(())}
    assert "has no shape information" in str(
        error_of(lambda: rest_codec.predict_outputs(scalar, True))
    )


def test_float32_outputs_are_written_shortest_as_tensorflow_serving_writes_them():
    data = rest_codec.dumps({"outputs": np.array([0.1, 12.0, np.float32(1 / 3)], np.float32)})
    assert data == b'{"outputs":[0.1,12.0,0.33333334]}'
    nonfinite = rest_codec.dumps({"outputs": np.array([np.nan, -np.inf], np.float32)})
    assert nonfinite == b'{"outputs": [NaN, -Infinity]}'


def examples(body: str) -> input_pb2.Input:
    doc = rest_codec.parse(body.encode())
    rest_codec.signature_name(doc)
    return rest_codec.examples_input(doc)


def test_classify_regress_request_no_context():
    expected = text_format.Parse(
        """example_list {
          examples { features {
            feature { key: "names" value { bytes_list { value: "foo" value: "bar" } } }
            feature { key: "ratings" value { float_list { value: 8.0 value: 9.0 } } }
            feature { key: "age" value { int64_list { value: 20 } } } } }
          examples { features {
            feature { key: "names" value { bytes_list { value: "baz" } } }
            feature { key: "ratings" value { float_list { value: 6.0 } } } } } }""",
        input_pb2.Input(),
    )
    got = examples(
        '{"examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},'
        ' {"names": ["baz"], "ratings": 6.0}]}'
    )
    assert got == expected


def test_classify_regress_request_with_context():
    got = examples(
        '{"signature_name": "custom_signture", "context": {"query": "pizza", "location": ["sfo"]},'
        ' "examples": [{"names": ["foo", "bar"], "ratings": [8.0, 9.0, NaN, Infinity], "age": 20},'
        ' {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, true, false]},'
        ' {"names": "bar", "ratings": -Infinity}]}'
    )
    with_context = got.example_list_with_context
    context = with_context.context.features.feature
    assert context["query"].bytes_list.value == [b"pizza"]
    assert context["location"].bytes_list.value == [b"sfo"]
    first, second, third = (e.features.feature for e in with_context.examples)
    ratings = first["ratings"].float_list.value
    assert ratings[:2] == [8.0, 9.0] and math.isnan(ratings[2]) and ratings[3] == math.inf
    assert second["names"].bytes_list.value == [b"baz", b"hello"]
    assert second["intboolmix"].int64_list.value == [1, 1, 0]
    assert third["ratings"].float_list.value == [-math.inf]


@pytest.mark.parametrize(
    "body, message",
    [
        pytest.param(
            '{"signature_name": ["hello"], "examples": [{"names": ["foo", "bar"]}]}',
            "'signature_name' key must be a string",
            id="SignatureNotString",
        ),
        pytest.param(
            '{"context": [{"names": ["foo", "bar"]}]}', "Example must be JSON object", id="Context"
        ),
        pytest.param('{"examples": {"names": ["foo", "bar"]}}', "list/array", id="NotAList"),
        pytest.param(
            '{"examples": [[{"names": ["foo", "bar"]}]]}',
            "Example must be JSON object",
            id="Nested",
        ),
        pytest.param(
            '{"examples": [{"names": [10, null]}]}',
            "names has element with unexpected JSON type: Null",
            id="Null",
        ),
        pytest.param(
            '{"examples": [{"names": [10, 10.0]}]}',
            "feature: names expecting type: int64",
            id="IntThenFloat",
        ),
        pytest.param(
            '{"examples": [{"names": [10, {"test": 10}]}]}',
            "names has element with unexpected JSON type: Object",
            id="Object",
        ),
        pytest.param(
            '{"examples": [{"names": [[10], 20]}]}',
            "names has element with unexpected JSON type: Array",
            id="Array",
        ),
        pytest.param(
            '{"examples": [{"names": [20, 18446744073709551603]}]}',
            "Only int64_t is supported",
            id="Uint64",
        ),
        pytest.param("{}", "key 'examples' is expected and was not found", id="NoExamples"),
        pytest.param('{"examples": []}', "'examples' value is an empty array", id="Empty"),
    ],
)
def test_classify_regress_request_errors(body, message):
    error = error_of(lambda: examples(body))
    assert message in str(error), str(error)


def test_classification_and_regression_results_as_json():
    result = text_format.Parse(
        """classifications { classes { label: "car" score: 0.2 }
                             classes { label: "bike" score: 0.7 } }
           classifications { classes { label: "car" score: 0.7 }
                             classes { label: "bike" score: 0.1 } }""",
        classification_pb2.ClassificationResult(),
    )
    assert json.loads(rest_codec.dumps(rest_codec.classification_results(result))) == {
        "results": [[["car", 0.2], ["bike", 0.7]], [["car", 0.7], ["bike", 0.1]]]
    }
    regression = text_format.Parse(
        "regressions { value: 0.2 } regressions { value: 0.9 } regressions { value: 1.0 }",
        regression_pb2.RegressionResult(),
    )
    assert (
        rest_codec.dumps(rest_codec.regression_results(regression)) == b'{"results":[0.2,0.9,1.0]}'
    )
    nonfinite = text_format.Parse(
        "regressions { value: inf } regressions { value: nan }", regression_pb2.RegressionResult()
    )
    assert rest_codec.dumps(rest_codec.regression_results(nonfinite)) == (
        b'{"results": [Infinity, NaN]}'
    )
    assert "empty ClassificationResults" in str(
        error_of(
            lambda: rest_codec.classification_results(classification_pb2.ClassificationResult())
        )
    )
    assert "empty RegressionResults" in str(
        error_of(lambda: rest_codec.regression_results(regression_pb2.RegressionResult()))
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"instances": [[1,2],[3,4,5],[6]]}', id="ragged, same count"),
        pytest.param('{"instances": [[1,2],[3,[4]]]}', id="deeper element"),
        pytest.param('{"instances": [1, true]}', id="bool"),
        pytest.param('{"instances": [1, "2"]}', id="string"),
        pytest.param('{"instances": [NaN]}', id="NaN"),
        pytest.param('{"instances": []}', id="empty"),
        pytest.param('{"instances": [[]]}', id="empty inner"),
        pytest.param('{"instances": [1], "inputs": [1]}', id="both keys"),
        pytest.param('{"instances": [1], "other": 1}', id="other key"),
        pytest.param('{"signature_name": 5, "instances": [1]}', id="signature not a string"),
        pytest.param('{"inputs": 7}', id="scalar"),
        pytest.param("[1, 2]", id="not an object"),
        pytest.param('{"instances": [1, 2]} trailing', id="trailing text"),
    ],
)
def test_the_fast_path_leaves_every_other_request_to_the_general_one(body):
    assert rest_codec.fast_predict(body.encode()) is None


def test_the_fast_path_decodes_what_the_general_one_does():
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    inputs = infomap(inputs=tf.float32)
    for key, row in (("instances", True), ("inputs", False)):
        body = rest_codec.dumps({"signature_name": "serving_default", key: images})
        fast = rest_codec.fast_predict(body)
        assert fast is not None and fast.signature_name == "serving_default"
        assert fast.row_format == row
        decoded = rest_codec.fast_inputs(fast, inputs)
        general, row_format = rest_codec.predict_inputs(rest_codec.parse(body), body, inputs, "")
        assert row_format == row and decoded["inputs"].dtype == np.float32
        np.testing.assert_array_equal(decoded["inputs"], general["inputs"])
        np.testing.assert_array_equal(decoded["inputs"], images)
    fast = rest_codec.fast_predict(b'{"instances": [1, 2.5]}')
    assert rest_codec.fast_inputs(fast, infomap(x=tf.int32)) is None  # Ints: the general path.
    assert rest_codec.fast_inputs(fast, infomap(a=tf.float32, b=tf.float32)) is None


nested_numbers = st.recursive(
    st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.lists(inner, min_size=0, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    values=nested_numbers,
    key=st.sampled_from(["instances", "inputs"]),
    indent=st.sampled_from([None, 1]),
    name=st.sampled_from([None, "serving_default", "e-1.5 [x]"]),
)
def test_the_fast_path_never_accepts_what_the_general_one_decodes_otherwise(
    values, key, indent, name
):
    doc = {key: values} if name is None else {"signature_name": name, key: values}
    body = json.dumps(doc, indent=indent).encode()
    fast = rest_codec.fast_predict(body)
    if fast is None:
        return
    inputs = infomap(x=tf.float32)
    general, row_format = rest_codec.predict_inputs(rest_codec.parse(body), body, inputs, "")
    assert fast.signature_name == (name or "") and fast.row_format == row_format
    np.testing.assert_array_equal(rest_codec.fast_inputs(fast, inputs)["x"], general["x"])


def test_deeply_nested_well_formed():
    """DeeplyNestedWellFormed: 500,000 levels, in a key predict does not read."""
    body = '{"instances":[1], "nested":' + "[" * 500_000 + "]" * 500_000 + "}"
    arrays, _ = fill_predict(body, infomap(default=tf.int32))
    np.testing.assert_array_equal(arrays["default"], np.array([1], np.int32))


def test_deeply_nested_malformed():
    """DeeplyNestedMalformed: the same depth where a string belongs."""
    body = '{"signature_name":' + "[" * 500_000 + "]" * 500_000 + "}"
    error = error_of(lambda: fill_predict(body, infomap(default=tf.int32)))
    assert "key must be a string value" in str(error)


json_documents = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(doc=json_documents, indent=st.sampled_from([None, 2]))
def test_the_deep_parser_reads_what_json_reads(doc, indent):
    text = json.dumps(doc, indent=indent)
    assert rest_codec._parse_deep(text, 0) == json.loads(text)
