"""TensorFlow Serving's REST JSON formats, as pure functions: JSON in, arrays and protos out.

A port of TensorFlow Serving's util/json_tensor.cc, messages included, so that
a request this server refuses is refused there with the same words. Decoding is
done twice over, for speed: numpy converts a well-formed batch in one call, and
only what numpy cannot take, or might take more liberally than TensorFlow
Serving, is walked value by value to accept it, or to find its exact error.
The commonest request, a batch of numbers for one float input, takes a third
path, simdjson's, straight from the bytes to an array (see fast_predict).
"""

import base64
import functools
import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

import grpc
import numpy as np
import orjson
import simdjson
import tensorflow as tf
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from serving.status import ServingError, invalid

_DEBUG_STRING_BYTES = 256  # kMaxJsonDebugStringBytes
_INT_RANGE = {
    tf.int8: (-(2**31), 2**31 - 1),  # TensorFlow Serving reads all of these as IsInt().
    tf.int16: (-(2**31), 2**31 - 1),
    tf.int32: (-(2**31), 2**31 - 1),
    tf.uint8: (-(2**31), 2**31 - 1),
    tf.int64: (-(2**63), 2**63 - 1),
    tf.uint32: (0, 2**32 - 1),
    tf.uint64: (0, 2**64 - 1),
}
# DataTypeString's names where they differ from tf.DType.name.
_TF_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}

# Python's json messages, and rapidjson's (GetParseError_En) for the same fault.
_PARSE_ERRORS = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
    "Invalid control character at": "Invalid encoding in string.",
}


# ---- Parsing ----------------------------------------------------------------------


def parse(body: bytes) -> dict:
    """The request's top-level JSON object (ParseJson)."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)  # Fast, and strict: what it refuses, json decides.
    except orjson.JSONDecodeError:
        doc = _parse_slowly(body)
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def _parse_slowly(body: bytes):
    """json, with rapidjson's leniency (NaN, Infinity, anything after the value) and words."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid(
            f"JSON Parse error: Invalid encoding in string. at offset: {e.start}"
        ) from None
    start = len(text) - len(text.lstrip(" \t\n\r"))
    if start == len(text):
        raise invalid(f"JSON Parse error: The document is empty. at offset: {start}")
    try:
        return json.JSONDecoder().raw_decode(text, start)[0]
    except json.JSONDecodeError as e:
        if e.msg == "Expecting ',' delimiter":
            message = (
                "Missing a comma or '}' after an object member."
                if _innermost(text, e.pos) == "{"
                else "Missing a comma or ']' after an array element."
            )
        else:
            message = _PARSE_ERRORS.get(e.msg, e.msg)
        raise invalid(f"JSON Parse error: {message} at offset: {e.pos}") from None
    except RecursionError:
        return _parse_deep(text, start)


_BLANKS = re.compile(r"[ \t\n\r]*")
_WORDS = {
    "true": True,
    "false": False,
    "null": None,
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def _parse_deep(text: str, pos: int):
    """A document nested deeper than json's recursion allows, parsed with a stack.

    rapidjson, parsing iteratively, has no depth limit; TensorFlow Serving's
    tests send arrays 500,000 levels deep. Only such documents come here.
    """

    def fail(message: str, at: int):
        raise invalid(f"JSON Parse error: {message} at offset: {at}")

    def key_at(at: int) -> tuple[str, int]:
        at = _BLANKS.match(text, at).end()
        if not text.startswith('"', at):
            fail("Missing a name for object member.", at)
        key, at = json.decoder.scanstring(text, at + 1)
        at = _BLANKS.match(text, at).end()
        if not text.startswith(":", at):
            fail("Missing a colon after a name of object member.", at)
        return key, at + 1

    stack: list[list] = []  # Open containers: [list, None] or [dict, pending key].
    while True:
        pos = _BLANKS.match(text, pos).end()
        opener = text[pos : pos + 1]
        if opener in ("[", "{"):
            empty = _BLANKS.match(text, pos + 1).end()
            if text.startswith("]" if opener == "[" else "}", empty):
                value, pos = ([] if opener == "[" else {}), empty + 1
            elif opener == "[":
                stack.append([[], None])
                pos += 1
                continue
            else:
                key, pos = key_at(pos + 1)
                stack.append([{}, key])
                continue
        elif opener == '"':
            value, pos = json.decoder.scanstring(text, pos + 1)
        else:
            number = json.scanner.NUMBER_RE.match(text, pos)
            word = next((w for w in _WORDS if text.startswith(w, pos)), None)
            if number and not (word and word.startswith("-")):
                integer, fraction, exponent = number.groups()
                value = float(number.group()) if fraction or exponent else int(integer)
                pos = number.end()
            elif word:
                value, pos = _WORDS[word], pos + len(word)
            else:
                fail("Invalid value.", pos)
        while True:  # Put the value in its container; close what it completes.
            if not stack:
                return value
            container, key = stack[-1]
            if key is None:
                container.append(value)
            else:
                container[key] = value
            pos = _BLANKS.match(text, pos).end()
            closer = "]" if key is None else "}"
            if text.startswith(",", pos):
                if key is None:
                    pos += 1
                else:
                    stack[-1][1], pos = key_at(pos + 1)
                break
            if not text.startswith(closer, pos):
                fail(
                    "Missing a comma or ']' after an array element."
                    if key is None
                    else "Missing a comma or '}' after an object member.",
                    pos,
                )
            value, pos = container, pos + 1
            stack.pop()


def _innermost(text: str, end: int) -> str:
    """The innermost bracket open at `end` ("{" or "["), strings skipped."""
    stack, in_string, escaped = [], False, False
    for char in text[:end]:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def signature_name(doc: dict) -> str:
    """The optional "signature_name" (FillSignature)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


# ---- Predict ----------------------------------------------------------------------


def predict_inputs(
    doc: dict, body: bytes, inputs: Mapping[str, meta_graph_pb2.TensorInfo], signature: str
) -> tuple[dict[str, np.ndarray], bool]:
    """The input arrays of a predict request, and whether it used the row format.

    FillPredictRequestFromJson. `body` tells whether a true/false/null is
    anywhere in it, which numpy would silently turn into a number.
    """
    if not inputs:
        raise invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    # A plain substring test: a regular expression over a batch of images costs
    # as much as parsing it. A word inside a string only costs the slow path.
    literals = b"true" in body or b"false" in body or b"null" in body
    if "instances" in doc:
        if "inputs" in doc:
            raise invalid(
                f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only "
                "one of 'inputs' or 'instances' keys to exist "
            )
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(
                f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        return _from_instances(instances, inputs, literals), True
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], inputs, literals), False
    raise invalid("Missing 'inputs' or 'instances' key")


class FastPredict(NamedTuple):
    signature_name: str
    row_format: bool
    values: np.ndarray  # float64, the request's shape


_PARSERS = threading.local()  # A simdjson parser holds one document at a time.
_SKIPPED = b"0123456789.eE+- \t\n\r"  # Number characters and JSON's blanks.


def fast_predict(body: bytes) -> FastPredict | None:
    """The commonest predict request, decoded without Python objects per value.

    For a body {"signature_name": "...", "instances" or "inputs": <a regular,
    non-empty nested list of numbers>}, which is what clients send for one
    float input, simdjson parses the bytes and copies the numbers out in C,
    without building and converting Python lists
    (bench/README.md, "The local server's fast paths"). Anything else, valid or
    not, returns None and takes the general path, which has TensorFlow Serving's
    answers for every case.
    """
    parser = getattr(_PARSERS, "parser", None) or simdjson.Parser()
    _PARSERS.parser = None  # Held by this call until it returns.
    try:
        return _fast_predict(parser, body)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError):
        return None  # Not JSON simdjson takes (NaN, Infinity, big integers), or not numbers.
    finally:
        _PARSERS.parser = parser


def _fast_predict(parser, body: bytes) -> FastPredict | None:
    doc = parser.parse(body)
    if not isinstance(doc, simdjson.Object):
        return None
    keys = list(doc.keys())
    key = "instances" if "instances" in keys else "inputs"
    if set(keys) - {"signature_name"} != {key}:
        return None
    signature_name = doc.get("signature_name", "")
    values = doc[key]
    if not isinstance(signature_name, str) or not isinstance(values, simdjson.Array):
        return None
    shape, probe = [], values
    while isinstance(probe, simdjson.Array):
        if not len(probe):
            return None
        shape.append(len(probe))
        probe = probe[0]
    # Numbers only (as_buffer refuses anything else), and regular: without the
    # numbers and blanks, the body is the brackets and commas of this shape
    # where the values are, and the rest as the keys and name spell it. A body
    # that is written differently (escapes, say) merely takes the general path.
    array = np.frombuffer(values.as_buffer(of_type="d"), np.float64)
    if array.size != math.prod(shape):
        return None
    parts = [
        json.dumps(k).encode()
        + b":"
        + (_skeleton(tuple(shape)) if k == key else json.dumps(signature_name).encode())
        for k in keys
    ]
    expected = b"{" + b",".join(parts) + b"}"
    if body.translate(None, _SKIPPED) != expected.translate(None, _SKIPPED):
        return None
    return FastPredict(signature_name, key == "instances", array.reshape(shape))


@functools.lru_cache(maxsize=64)
def _skeleton(shape: tuple[int, ...]) -> bytes:
    text = b""
    for size in reversed(shape):
        text = b"[" + b",".join([text] * size) + b"]"
    return text


def fast_inputs(
    fast: FastPredict, inputs: Mapping[str, meta_graph_pb2.TensorInfo]
) -> dict[str, np.ndarray] | None:
    """fast_predict's numbers as the signature's one float input, or None."""
    if len(inputs) != 1:
        return None
    ((name, info),) = inputs.items()
    dtype = tf.as_dtype(info.dtype)
    if dtype not in (tf.float32, tf.float64):
        return None
    with np.errstate(over="ignore"):  # Too large for float32: infinity, as there.
        return {name: fast.values.astype(dtype.as_numpy_dtype)}


def _is_base64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value) -> bool:
    return isinstance(value, dict) and not _is_base64(value)


def _from_instances(instances: list, inputs, literals: bool) -> dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList: each element is one row of every input."""
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    named = _is_object(instances[0])
    if not named:
        name = next(iter(inputs))
        array = _fast_array(instances, tf.as_dtype(inputs[name].dtype), literals)
        if array is not None:
            return {name: array}
    elif all(_is_object(e) and e.keys() == inputs.keys() for e in instances):
        arrays = {
            name: _fast_array([e[name] for e in instances], tf.as_dtype(info.dtype), literals)
            for name, info in inputs.items()
        }
        if all(array is not None for array in arrays.values()):
            return arrays
    return _instances_slowly(instances, inputs, named)


def _instances_slowly(instances: list, inputs, named: bool) -> dict[str, np.ndarray]:
    """Element by element, in TensorFlow Serving's order, so that the first fault is its."""
    shapes: dict[str, list[int]] = {}
    values: dict[str, list] = {}
    for i, element in enumerate(instances):
        if named and not _is_object(element):
            raise invalid(f"Expecting object but got list at item {i} of input list")
        if not named and _is_object(element):
            raise invalid(f"Expecting value/list but got object at item {i} of input list")
        items = element.items() if named else [(next(iter(inputs)), element)]
        for key, value in items:
            try:
                if key not in inputs:
                    raise invalid(f"JSON object: does not have named input: {key}")
                shape, flat = _walk(value, tf.as_dtype(inputs[key].dtype))
                first = shapes.setdefault(key, shape)
                if math.prod(shape) != math.prod(first):
                    raise invalid(
                        f"Expecting tensor size: {math.prod(first)} but got: {math.prod(shape)}"
                    )
                if shape != first:
                    raise invalid(f"Expecting shape {_shape(first)} but got: {_shape(shape)}")
            except ServingError as e:
                where = f"{i} key: {key}" if named else str(i)
                raise invalid(
                    f"Failed to process element: {where} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: {e}"
                ) from None
            values.setdefault(key, []).extend(flat)
        if named and set(element) != set(inputs):
            raise invalid(
                f"Failed to process element: {i} of 'instances' list. JSON object: "
                f"{debug_string(element)} keys must be equal to: {','.join(sorted(inputs))}"
            )
    return {
        key: _array(flat, tf.as_dtype(inputs[key].dtype), [len(instances), *shapes[key]])
        for key, flat in values.items()
    }


def _from_inputs(value, inputs, literals: bool) -> dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap: one value per input, or one value for the only input."""
    if not isinstance(value, dict) or _is_base64(value):
        if len(inputs) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        (name,) = inputs
        value = {name: value}
    arrays = {}
    for name, info in inputs.items():
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        dtype = tf.as_dtype(info.dtype)
        array = _fast_array(value[name], dtype, literals)
        if array is None:
            shape, values = _walk(value[name], dtype)
            array = _array(values, dtype, shape)
        arrays[name] = array
    return arrays


def _fast_array(value, dtype: tf.DType, literals: bool) -> np.ndarray | None:
    """numpy's conversion, where it takes exactly what TensorFlow Serving takes; else None."""
    if dtype == tf.string or (literals and not dtype.is_bool):
        return None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # Ragged, or deeper than numpy goes.
        return None
    kind = array.dtype.kind
    if (dtype in (tf.float32, tf.float64) and kind in "if") or (dtype.is_bool and kind == "b"):
        pass
    elif dtype in _INT_RANGE and kind in "iu":
        low, high = _INT_RANGE[dtype]
        if array.size and (array.min() < low or array.max() > high):
            return None
    else:
        return None
    with np.errstate(over="ignore"):  # Too large for float32: infinity, as there.
        return array.astype(dtype.as_numpy_dtype, copy=False)


def _walk(value, dtype: tf.DType) -> tuple[list[int], list]:
    """(shape, flat values) of a JSON value, checked as FillTensorProto checks it."""
    shape, probe = [], value
    while isinstance(probe, list):  # GetDenseTensorShape: follows the first elements.
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    values: list = []
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, list):
            if level != len(shape):
                raise invalid(
                    f"JSON Value: {debug_string(item)} found at incorrect level: {level + 1} "
                    f"in the JSON DOM. Expected at level: {len(shape)}"
                )
            values.append(_scalar(item, dtype))
            continue
        if level >= len(shape):
            raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        if len(item) != shape[level]:
            raise invalid(
                f"Encountered list at unexpected size: {len(item)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        stack.extend((element, level + 1) for element in reversed(item))
    return shape, values


def _scalar(value, dtype: tf.DType):
    """One value, or TensorFlow Serving's error (AddValueToTensor)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict):
            if not _is_base64(value):
                raise invalid(
                    f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
                )
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise invalid("Unable to base64 decode") from None
    elif isinstance(value, dict):
        pass  # An object where a number or bool belongs.
    elif dtype.is_bool:
        if isinstance(value, bool):
            return value
    elif dtype in (tf.float32, tf.float64):
        if number:
            return value
    elif dtype in _INT_RANGE:
        low, high = _INT_RANGE[dtype]
        if number and isinstance(value, int) and low <= value <= high:
            return value
    else:
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {debug_string(value)} to type: {type_name(dtype)}",
        )
    raise invalid(
        f"JSON Value: {debug_string(value)} Type: {json_type(value)} is not of expected type: "
        f"{type_name(dtype)}"
    )


def _array(values: list, dtype: tf.DType, shape: list[int]) -> np.ndarray:
    numpy_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    try:
        with np.errstate(over="ignore"):
            return np.array(values, dtype=numpy_dtype).reshape(shape)
    except ValueError as e:  # More dimensions than numpy's 64 (TensorFlow takes 254).
        raise invalid(f"Cannot make a tensor of shape {_shape(shape)}: {e}") from None


def _shape(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def type_name(dtype: tf.DType) -> str:
    return _TF_TYPE_NAMES.get(dtype.name, dtype.name)


def json_type(value) -> str:
    """rapidjson's type names (JsonTypeString)."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def debug_string(value) -> str:
    """A JSON value as TensorFlow Serving quotes it in errors: arrays on one
    line, objects indented, cut after about 256 bytes (JsonValueToDebugString)."""
    out: list[str] = []
    size = 0

    def emit(text: str) -> bool:
        nonlocal size
        if size >= _DEBUG_STRING_BYTES:
            return False
        out.append(text)
        size += len(text)
        return True

    def write(item, indent: int) -> bool:
        if isinstance(item, list):
            if not emit("["):
                return False
            for i, element in enumerate(item):
                if (i and not emit(", ")) or not write(element, indent):
                    return False
            return emit("]")
        if isinstance(item, dict):
            if not emit("{"):
                return False
            if not item:
                return emit("}")
            pad = " " * (indent + 4)
            for i, (key, element) in enumerate(item.items()):
                if not emit(("," if i else "") + "\n" + pad + json.dumps(key) + ": "):
                    return False
                if not write(element, indent + 4):
                    return False
            return emit("\n" + " " * indent + "}")
        if isinstance(item, float) and not math.isfinite(item):
            return False  # rapidjson's writer stops at NaN and Infinity.
        return emit(json.dumps(item))

    write(value, 0)
    return "".join(out)


# ---- Predict answers ------------------------------------------------------------


def predict_outputs(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """{"predictions": ...} or {"outputs": ...} (MakeJsonFromTensors)."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    values = {name: _json_array(name, array) for name, array in outputs.items()}
    if not row_format:
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}
        return {"outputs": values}
    batch = None
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(batch)]}


def _json_array(name: str, array: np.ndarray):
    """An output as JSON-ready values: numbers stay numpy (orjson writes float32
    as TensorFlow Serving does, shortest form); strings become text, or
    {"b64": ...} for outputs named *_bytes."""
    if array.dtype != object:
        return array
    if name.endswith("_bytes"):
        encode = lambda b: {"b64": base64.b64encode(b).decode()}  # noqa: E731
    else:
        encode = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else []


# ---- Classify and Regress -------------------------------------------------------


def examples_input(doc: dict) -> input_pb2.Input:
    """The tf.Examples of a classify or regress request (FillClassifyRegressRequestFromJson)."""
    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], request_input.example_list_with_context.context)
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is "
            "expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise invalid(
            f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array"
        )
    if not examples:
        raise invalid(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
    target = (
        request_input.example_list_with_context.examples
        if has_context
        else request_input.example_list.examples
    )
    for value in examples:
        _example(value, target.add())
    return request_input


def _example(value, example: example_pb2.Example) -> None:
    """MakeExampleFromJsonObject: a feature per key; a value or a list of them."""
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {json_type(value)}")
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_to_feature(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _add_to_feature(value, name: str, feature: feature_pb2.Feature) -> None:
    """AddValueToFeature: strings and b64 are bytes, floats float, ints and bools int64."""
    if (
        value is None
        or isinstance(value, list)
        or (isinstance(value, dict) and not _is_base64(value))
    ):
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    if isinstance(value, (str, dict)):
        kind = "bytes_list"
        item = value.encode() if isinstance(value, str) else None
        if item is None:
            try:
                item = base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise invalid("Unable to base64 decode") from None
    elif isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 2**64
    ):
        kind, item = "float_list", float(value)
    else:
        kind, item = "int64_list", int(value)
        if item >= 2**63:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise invalid(
            f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}"
        )
    getattr(feature, kind).value.append(item)


def classification_results(result: classification_pb2.ClassificationResult) -> dict:
    """{"results": [[[label, score], ...], ...]} (MakeJsonFromClassificationResult)."""
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    return {
        "results": [
            [[c.label, np.float32(c.score)] for c in entry.classes]
            for entry in result.classifications
        ]
    }


def regression_results(result: regression_pb2.RegressionResult) -> dict:
    """{"results": [value, ...]} (MakeJsonFromRegressionResult)."""
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    return {"results": np.array([r.value for r in result.regressions], np.float32)}


# ---- Writing ----------------------------------------------------------------------


def dumps(payload: Any) -> bytes:
    """orjson, which writes numpy arrays directly; json where a value is not finite.

    orjson writes NaN and Infinity as null; TensorFlow Serving writes NaN,
    Infinity and -Infinity, as json does.
    """
    data = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
    if b"null" not in data:
        return data
    return json.dumps(_plain(payload)).encode()


def _plain(payload):
    if isinstance(payload, dict):
        return {k: _plain(v) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [_plain(v) for v in payload]
    if isinstance(payload, (np.ndarray, np.generic)):
        return payload.tolist()
    return payload
