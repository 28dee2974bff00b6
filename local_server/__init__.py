"""TensorFlow Serving's inference API in Python: the modules behind local_model_server.py.

One job a module, transports apart from the API (the layout of KServe's Python
model server):

- `options`: the server's settings, read from flags by local_model_server.main only.
- `errors`: ServingError, and how its codes map to HTTP statuses, in one place.
- `servable`: one loaded version; runs signatures in a TF1 Session by tensor
  name, as TensorFlow Serving's SavedModelBundle does.
- `tf_example`: Classify and Regress on tf.Example inputs (request and result protos).
- `versions`: which versions are on disk, loaded, and served.
- `api`: Predict, Classify, Regress, MultiInference, GetModelMetadata,
  GetModelStatus on the protos of tensorflow-serving-api.
- `grpc_service`, `rest_api` (routing, no sockets), `rest_codec` (the JSON
  formats, pure functions), `rest_server` (the asyncio HTTP transport).
"""
