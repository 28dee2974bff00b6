"""One loaded version of a model: its SignatureDefs, and a TF1 Session that runs them.

TensorFlow Serving loads the "serve" MetaGraph of a SavedModel into a Session
(a SavedModelBundle) and runs a signature by its tensors' names. This does the
same, so that what it accepts and answers follows TensorFlow Serving, not
TensorFlow's Python function-calling rules.
"""

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from local_server.batching import BatchScheduler
from local_server.errors import grpc_code
from serving.status import ServingError, first_line, invalid

DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
PREDICT_METHODS = (
    tf.saved_model.PREDICT_METHOD_NAME,
    tf.saved_model.CLASSIFY_METHOD_NAME,
    tf.saved_model.REGRESS_METHOD_NAME,
)


class Servable:
    """One version of a model, loaded and ready to run."""

    def __init__(self, path: str, version: int, batching: BatchScheduler | None = None):
        self.path, self.version = path, version
        self._batching = batching
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._session = tf.compat.v1.Session(graph=self._graph)
            meta_graph = tf.compat.v1.saved_model.loader.load(
                self._session, [tf.saved_model.SERVING], path
            )
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
        self._tensors: dict[str, tf.Tensor] = {}

    def close(self) -> None:
        self._session.close()

    def unloaded(self) -> None:
        """No new requests will come: the batch queues can go once they are empty."""
        if self._batching is not None:
            self._batching.forget(self)

    def run(self, feeds: dict[str, np.ndarray], fetches: dict[str, str]) -> dict[str, np.ndarray]:
        """Runs the graph: feeds and fetches by tensor name, as Session::Run in C++.

        Python's Session.run refuses a feed whose shape differs from the graph's
        static shape; TensorFlow Serving's C++ Session::Run leaves that to the
        ops (its half_plus_two test feeds [2] values to a [None, 1] tensor), so
        this calls the Session's run without Python's feed checks.
        """
        aliases = list(fetches)
        tensor_names = tuple(fetches[alias] for alias in aliases)
        if self._batching is not None:  # --enable_batching: merged with concurrent runs.
            results = self._batching.run(self, self._session_run, feeds, tensor_names)
        else:
            results = self._session_run(feeds, tensor_names)
        return dict(zip(aliases, results, strict=True))

    def _session_run(self, feeds: dict[str, np.ndarray], names: tuple[str, ...]) -> list:
        feed_outputs = {self._tensor(name)._as_tf_output(): value for name, value in feeds.items()}
        fetch_outputs = [self._tensor(name)._as_tf_output() for name in names]
        try:
            return self._session._call_tf_sessionrun(None, feed_outputs, fetch_outputs, [], None)
        except tf.errors.OpError as e:
            raise ServingError(grpc_code(e.error_code), e.message) from e

    def _tensor(self, name: str) -> tf.Tensor:
        tensor = self._tensors.get(name)
        if tensor is None:  # Looked up once; the graph never changes.
            tensor = self._tensors[name] = self._graph.get_tensor_by_name(name)
        return tensor

    # ---- Predict (TensorFlow Serving's predict_util.cc) ----------------------------

    def predict_signature(self, name: str) -> meta_graph_pb2.SignatureDef:
        name = name or DEFAULT_SIGNATURE
        signature = self.signature_defs.get(name)
        if signature is None:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
            )
        if signature.method_name not in PREDICT_METHODS:
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                f"Expected prediction signature method_name to be one of "
                f"{{{', '.join(PREDICT_METHODS)}}}. Was: {signature.method_name}",
            )
        return signature

    def predict(
        self,
        signature_name: str,
        inputs: dict[str, np.ndarray],
        output_filter: tuple[str, ...] = (),
        max_batch_size: int = 0,
    ) -> dict[str, np.ndarray]:
        """Runs a signature on numpy inputs; checks names, dtypes and batch size.

        max_batch_size: refuse larger batches (0: no limit).
        """
        signature = self.predict_signature(signature_name)
        expected = set(signature.inputs)
        if set(inputs) != expected:
            raise invalid(
                f"input size does not match signature: {len(inputs)}!={len(expected)} "
                f"len({names(inputs)}) != len({names(expected)}). "
                f"Sent extra: {names(set(inputs) - expected)}. "
                f"Missing but required: {names(expected - set(inputs))}."
            )
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {names(signature.outputs)}."
                )
        if len(set(output_filter)) != len(output_filter):
            raise invalid(f"duplicate output tensor alias in output_filter: {list(output_filter)}")
        feeds = {}
        for name, array in inputs.items():
            info = signature.inputs[name]
            want = tf.as_dtype(info.dtype)
            if array.dtype != want.as_numpy_dtype:
                raise invalid(
                    f"input '{name}' has dtype {array.dtype}, the signature takes {want.name}"
                )
            if max_batch_size and array.ndim and array.shape[0] > max_batch_size:
                raise invalid(
                    f"input '{name}' has batch size {array.shape[0]}; this server takes at "
                    f"most {max_batch_size} (--max_batch_size)"
                )
            feeds[info.name] = array
        wanted = output_filter or tuple(signature.outputs)
        try:
            return self.run(feeds, {alias: signature.outputs[alias].name for alias in wanted})
        except ServingError as e:
            if e.code == grpc.StatusCode.INVALID_ARGUMENT:
                mismatch = _shape_mismatch(signature, inputs)
                if mismatch:
                    raise invalid(f"{first_line(e)} ({mismatch})") from e
            raise


def _shape_mismatch(signature, inputs: dict[str, np.ndarray]) -> str | None:
    """What is wrong, in the signature's terms, when an input's shape cannot fit it."""
    for name, array in inputs.items():
        spec = tf.TensorShape(signature.inputs[name].tensor_shape)
        if not spec.is_compatible_with(array.shape):
            return (
                f"input '{name}' has shape {list(array.shape)}, the signature takes "
                f"{[-1 if d is None else d for d in spec.as_list()]} (-1: any size)"
            )
    return None


def names(items) -> str:
    return "{" + ", ".join(sorted(items)) + "}"
