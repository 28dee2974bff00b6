"""tools/sample_digits.py (make digits): MNIST as it is and as ink on paper, 4 times larger,
and the image signature answers both as the float signature does."""

import numpy as np
import tensorflow as tf
from conftest import heavy_imports, module, run

from models import export_lib, image_spec, mnist_data


def test_samples_are_both_inks_and_get_the_float_signatures_answer(shared_export, tmp_path):
    done = run(module("tools.sample_digits", "--mock_data", "--count=4", f"--out={tmp_path}"))
    assert done.returncode == 0, done.stderr
    assert f"Wrote 4 test digits to {tmp_path}/" in done.stdout
    data = mnist_data.load("test", mock=True)
    files = sorted(tmp_path.glob("*.png"))
    assert [f.name for f in files] == [f"{i:04d}_label-{data.labels[i]}.png" for i in range(4)]
    images = [tf.io.decode_png(f.read_bytes()).numpy() for f in files]
    assert [image.shape for image in images] == [(28, 28, 1), (112, 112, 1)] * 2
    np.testing.assert_array_equal(images[0], data.images[0])
    np.testing.assert_array_equal(images[1][::4, ::4], 255 - data.images[1])  # Ink on paper.

    path = shared_export(model="mnist_pure_jax")
    signature = tf.saved_model.load(path).signatures[image_spec.SIGNATURE_NAME]
    outputs = signature(**{image_spec.INPUT_NAME: tf.constant([f.read_bytes() for f in files])})
    log_probabilities = export_lib.predict(
        export_lib.serving_signature(path), export_lib.test_batch(data, 4)
    )
    np.testing.assert_allclose(
        outputs[image_spec.PROBABILITIES], tf.nn.softmax(log_probabilities), rtol=0, atol=1e-6
    )


def test_imports_neither_tensorflow_nor_jax():
    """`make digits` answers at once: Pillow writes the PNG files."""
    assert heavy_imports("tools.sample_digits") == []
