"""models/image_signature.py in every export: same answer as the float signature, both ink
colours, any size, fixed batch, bad images named, and the assets it adds (validation, warmup)."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import saved_model_lib
from models import export_lib, image_signature, image_spec, mnist_data

DATA = mnist_data.load("test", mock=True)


def run(path: str, images: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    signature = tf.saved_model.load(path).signatures[image_spec.SIGNATURE_NAME]
    outputs = signature(**{image_spec.INPUT_NAME: tf.constant(images)})
    return outputs[image_spec.CLASSES].numpy(), outputs[image_spec.PROBABILITIES].numpy()


def float_softmax(path: str, count: int) -> np.ndarray:
    serve = export_lib.serving_signature(path)
    log_probabilities = export_lib.predict(serve, export_lib.test_batch(DATA, count))
    return tf.nn.softmax(log_probabilities).numpy()


def png(pixels: np.ndarray) -> bytes:
    return tf.io.encode_png(pixels).numpy()


@pytest.mark.parametrize("model", ["mnist_pure_jax", "mnist_flax"])
def test_a_test_digit_as_png_gets_the_float_signatures_answer(shared_export, model):
    path = shared_export(model=model)
    classes, probabilities = run(path, list(export_lib.png_batch(DATA.images[:8])))
    expected = float_softmax(path, 8)
    assert classes.dtype == np.int64 and probabilities.dtype == np.float32
    np.testing.assert_array_equal(classes, np.argmax(expected, axis=1))
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)


def test_dark_ink_on_light_and_a_colour_jpeg_get_the_same_digit(shared_export):
    path = shared_export(model="mnist_pure_jax")
    classes, probabilities = run(path, [png(DATA.images[0]), png(255 - DATA.images[0])])
    np.testing.assert_allclose(probabilities[1], probabilities[0], rtol=0, atol=1e-6)
    colour = np.repeat(255 - DATA.images[0], 3, axis=-1)
    jpeg = tf.io.encode_jpeg(colour, quality=100).numpy()
    assert run(path, [jpeg])[0][0] == classes[0]


def test_transparent_background_counts_as_white(shared_export):
    """A canvas's default: dark ink on transparent pixels."""
    path = shared_export(model="mnist_pure_jax")
    ink = 255 - DATA.images[0]  # Dark on light.
    rgba = np.concatenate([np.zeros_like(ink).repeat(3, -1), 255 - ink], axis=-1)
    opaque = np.concatenate([ink.repeat(3, -1), np.full_like(ink, 255)], axis=-1)
    np.testing.assert_allclose(run(path, [png(rgba)])[1], run(path, [png(opaque)])[1], atol=1e-6)


def test_a_fixed_batch_export_gets_a_fixed_batch_image_signature(shared_export):
    path = shared_export(model="mnist_pure_jax", serving_batch_size=4)
    signature = tf.saved_model.load(path).signatures[image_spec.SIGNATURE_NAME]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.shape.as_list() == [4] and spec.name == image_spec.INPUT_NAME
    assert run(path, list(export_lib.png_batch(DATA.images[:4])))[1].shape == (4, 10)


def test_only_classifiers_of_28x28x1_images_get_it(shared_export):
    assert image_signature.applies_to((28, 28, 1), classifier=True)
    assert not image_signature.applies_to((28, 28, 1), classifier=False)
    assert not image_signature.applies_to((32, 32, 3), classifier=True)
    path = shared_export(model="mnist_pure_jax", model_classifier_layer=False)
    assert list(tf.saved_model.load(path).signatures) == ["serving_default"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"", "image 1 of the request is empty"),
        (png(DATA.images[0])[:30], "image 1 of the request is truncated"),
        (b"BM a bitmap", "image 1 of the request is neither PNG nor JPEG"),
        (
            tf.io.encode_jpeg(np.zeros((image_spec.MAX_SIDE + 1, 8, 3), np.uint8)).numpy(),
            f"image 1 of the request is 8x{image_spec.MAX_SIDE + 1} pixels",
        ),
    ],
)
def test_a_bad_image_is_an_invalid_argument_naming_it(shared_export, bad, message):
    path = shared_export(model="mnist_pure_jax")
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run(path, [png(DATA.images[0]), bad])


def test_a_png_broken_inside_gets_tensorflows_own_decoder_message(shared_export):
    """What TensorFlow Serving answers too: the DecodePng op's message."""
    path = shared_export(model="mnist_pure_jax")
    good = png(DATA.images[0])
    broken = good[:40] + b"\x00" * (len(good) - 52) + good[-12:]
    with pytest.raises(tf.errors.InvalidArgumentError, match="PNG"):
        run(path, [broken])


def test_validation_batch_and_warmup_include_images(shared_export):
    path = shared_export(model="mnist_pure_jax")
    batch = np.load(os.path.join(path, saved_model_lib.VALIDATION_FILE))
    assert len(batch["images"]) == len(batch["inputs"])
    np.testing.assert_allclose(batch["image_probabilities"].sum(axis=1), 1, atol=1e-5)
    signatures = []
    for record in tf.data.TFRecordDataset(os.path.join(path, saved_model_lib.WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        signatures.append(log.predict_log.request.model_spec.signature_name)
    assert signatures == ["serving_default", image_spec.SIGNATURE_NAME]
