"""The image signature's interface, without TensorFlow: what the export writes, what clients send.

models/image_signature.py builds the signature; clients/image_client.py and web/ call it.
"""

SIGNATURE_NAME = "predict_images"
INPUT_NAME = "images"  # tf.string (B,): one encoded PNG or JPEG file per element.
CLASSES = "classes"  # int64 (B,): the predicted digit.
PROBABILITIES = "probabilities"  # float32 (B, 10): the digits' probabilities.
# The largest width and height accepted, read from the file's header before decoding, so
# that a huge image (or a small file that claims to be one) costs no memory.
MAX_SIDE = 2048
