"""The `predict_images` signature: encoded PNG or JPEG images in, digits and probabilities out.

    extra = image_signature.extra_signatures(batch_size=None)  # for convert_and_save_model
    signatures = extra(float_fn)  # {"predict_images": concrete function}

TensorFlow decodes, converts to grayscale, resizes to 28x28, scales and inverts in
front of the jax2tf function (image decoding has no XLA kernel, so it stays out of the
jit-compiled part), in the SavedModel itself: every client sends plain image files,
and the preprocessing is the one the model was trained with. It uses only ops that
TensorFlow Serving 2.16 already has (DecodePng, DecodeJpeg, ExtractJpegShape,
ResizeArea, Assert, string and math ops; `make compat` runs it on each release).
Its names and limits are models/image_spec.py's.
"""

from collections.abc import Callable

import tensorflow as tf

from models.image_spec import CLASSES, MAX_SIDE, PROBABILITIES, SIGNATURE_NAME
from models.mnist_data import INPUT_SHAPE

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # The IEND chunk's type and CRC: the last 8 bytes of a PNG.
_PNG_MIN_BYTES = 45  # Signature, IHDR and IEND chunks.
_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"  # End-of-image marker.
_HEIGHT, _WIDTH, _ = INPUT_SHAPE


def applies_to(input_shape: tuple[int, ...], classifier: bool) -> bool:
    """Whether a model gets the image signature: a classifier of 28x28x1 images."""
    return tuple(input_shape) == INPUT_SHAPE and classifier


def extra_signatures(
    batch_size: int | None,
) -> Callable[[tf.types.experimental.GenericFunction], dict]:
    """For convert_and_save_model: float function -> {SIGNATURE_NAME: concrete function}.

    batch_size: None takes any number of images; a fixed-batch export gets a
    fixed-batch image signature.
    """

    def signatures(float_fn) -> dict:
        @tf.function(autograph=False, input_signature=[tf.TensorSpec([batch_size], tf.string)])
        def predict_images(images):  # The argument's name is the input's: INPUT_NAME.
            """Classifies encoded images (PNG or JPEG, any size, grayscale or colour).

            Each image is decoded, composited over white where it has transparency,
            converted to 8-bit grayscale, resized to 28x28 (area averaging), and
            scaled to [0, 1] as in training. MNIST digits are light on a dark
            background: an image whose border (the outermost pixels of the 28x28)
            averages lighter than mid-grey is dark ink on light paper and is
            inverted. A bad image (empty, neither PNG nor JPEG, truncated, or wider
            or taller than MAX_SIDE pixels) fails the whole request with
            INVALID_ARGUMENT naming it by its index in the batch.
            """
            pixels = tf.map_fn(
                _preprocess,
                (images, tf.range(tf.size(images, out_type=tf.int64))),
                fn_output_signature=tf.TensorSpec(INPUT_SHAPE, tf.float32),
            )
            log_probabilities = float_fn(pixels)
            return {
                CLASSES: tf.argmax(log_probabilities, axis=1, output_type=tf.int64),
                PROBABILITIES: tf.nn.softmax(log_probabilities),
            }

        return {SIGNATURE_NAME: predict_images.get_concrete_function()}

    return signatures


def _preprocess(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
    """One encoded image -> float32 (28, 28, 1) in [0, 1], light digit on dark."""
    data, index = args
    checks = _checks(data, index)
    with tf.control_dependencies(checks):
        is_png = tf.strings.substr(data, 0, len(_PNG_MAGIC)) == _PNG_MAGIC
        rgba = tf.cond(
            is_png,
            lambda: tf.io.decode_png(data, channels=4),
            lambda: _opaque(tf.io.decode_jpeg(data, channels=3)),
        )
    rgba = tf.cast(rgba, tf.float32)
    alpha = rgba[..., 3:] / 255.0
    gray = tf.image.rgb_to_grayscale(rgba[..., :3]) * alpha + 255.0 * (1.0 - alpha)
    # rgb_to_grayscale's weights sum to 0.9999: rounding gives back a grey image's own pixels.
    gray = tf.round(gray)
    small = tf.image.resize(gray, (_HEIGHT, _WIDTH), method="area")
    # The 28x28's outermost pixels: light means dark ink on light paper.
    border = tf.concat([small[0], small[-1], small[1:-1, 0], small[1:-1, -1]], axis=0)
    small = tf.cond(tf.reduce_mean(border) > 127.5, lambda: 255.0 - small, lambda: small)
    return tf.ensure_shape(small / 255.0, INPUT_SHAPE)


def _opaque(rgb: tf.Tensor) -> tf.Tensor:
    """RGB -> RGBA, fully opaque."""
    alpha = tf.fill(tf.concat([tf.shape(rgb)[:2], [1]], axis=0), tf.constant(255, tf.uint8))
    return tf.concat([rgb, alpha], axis=-1)


def _checks(data: tf.Tensor, index: tf.Tensor) -> list[tf.Operation]:
    """Asserts that name the bad image, before the decoder's own errors (which do not)."""
    length = tf.strings.length(data)
    is_png = tf.strings.substr(data, 0, len(_PNG_MAGIC)) == _PNG_MAGIC
    is_jpeg = tf.strings.substr(data, 0, len(_JPEG_MAGIC)) == _JPEG_MAGIC
    ends = tf.where(
        is_png,
        tf.strings.substr(data, tf.maximum(length - len(_PNG_END), 0), len(_PNG_END)) == _PNG_END,
        tf.strings.substr(data, tf.maximum(length - len(_JPEG_END), 0), len(_JPEG_END))
        == _JPEG_END,
    )
    complete = ends & (is_jpeg | (length >= _PNG_MIN_BYTES))
    checks = []
    for ok, problem in [
        (length > 0, "is empty (0 bytes)"),
        (is_png | is_jpeg, "is neither PNG nor JPEG"),
        (complete, "is truncated (it does not end as a whole PNG or JPEG does)"),
    ]:
        # Chained: the first problem found is the one reported.
        with tf.control_dependencies(checks[-1:]):
            message = tf.strings.format("image {} of the request " + problem, index)
            checks.append(tf.debugging.Assert(ok, [message]))
    with tf.control_dependencies(checks):
        size = tf.cond(is_png, lambda: _png_size(data), lambda: _jpeg_size(data))
        message = tf.strings.format(
            "image {} of the request is {}x{} pixels, larger than the limit of "
            f"{MAX_SIDE}x{MAX_SIDE}: make it smaller",
            (index, size[1], size[0]),
        )
        checks.append(tf.debugging.Assert(tf.reduce_all(size <= MAX_SIDE), [message]))
    return checks


def _png_size(data: tf.Tensor) -> tf.Tensor:
    """(height, width) from the PNG's IHDR chunk: big-endian uint32s at bytes 16 and 20."""
    header = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 16, 8), tf.uint8), tf.int64)
    width = tf.reduce_sum(header[:4] * [1 << 24, 1 << 16, 1 << 8, 1])
    height = tf.reduce_sum(header[4:] * [1 << 24, 1 << 16, 1 << 8, 1])
    return tf.stack([height, width])


def _jpeg_size(data: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)
