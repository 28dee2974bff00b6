"""Replays a SavedModel's assets.extra/tf_serving_warmup_requests, as TensorFlow Serving does.

A version takes traffic only after its warmup requests ran, so that the first
client does not pay for XLA's compilation.
"""

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from local_server import inference
from local_server.servable import Servable
from serving import versions

MAX_RECORDS = 1000  # TensorFlow Serving's limit.
# PredictionLog kinds and how to replay them; TensorFlow Serving also has
# session_run logs, which only its TF1 SessionBundle takes.
_REPLAY = {
    "predict_log": lambda s, log: inference.predict(s, log.request),
    "classify_log": lambda s, log: inference.classify(s, log.request),
    "regress_log": lambda s, log: inference.regress(s, log.request),
    "multi_inference_log": lambda s, log: inference.multi_inference(s, log.request),
}


def warm_up(servable: Servable) -> int:
    """Replays the warmup requests through the whole request path; returns how many.

    The model's own requests: the clients' batch limit does not apply.
    """
    path = os.path.join(servable.path, versions.WARMUP_FILE)
    if not os.path.exists(path):
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        if kind not in _REPLAY:  # The version fails to load, as there.
            raise ValueError(f"Unsupported log_type for warmup: {kind}")
        count += 1
        if count > MAX_RECORDS:
            raise ValueError(
                f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
            )
        _REPLAY[kind](servable, getattr(log, kind))
    return count
