"""The image signature on the local server: b64 over REST, strings over gRPC, bad images, CORS."""

import base64
import re
import shutil

import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import local_server, request_cli

from clients import image_client, serving_client
from models import export_lib, image_spec, mnist_data

DATA = mnist_data.load("test", mock=True)
PNGS = list(export_lib.png_batch(DATA.images[:4]))


@pytest.fixture(scope="module")
def server(shared_export, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "mnist_pure_jax"
    shutil.copytree(shared_export(model="mnist_pure_jax"), base / "1")
    with local_server("mnist_pure_jax", base, "--rest_api_enable_cors_support") as server:
        yield server


def clients(server):
    grpc_client = serving_client.GrpcClient(server.grpc_address, server.model_name, 30)
    rest_address = f"localhost:{server.rest_port}"
    return [grpc_client, serving_client.RestClient(rest_address, server.model_name, 30)]


def expected(server, images: list[bytes]):
    """What the served SavedModel's image signature answers in this process."""
    path = f"{server.base_path}/1"
    signature = tf.saved_model.load(path).signatures[image_spec.SIGNATURE_NAME]
    outputs = signature(**{image_spec.INPUT_NAME: tf.constant(images)})
    return outputs[image_spec.CLASSES].numpy(), outputs[image_spec.PROBABILITIES].numpy()


def test_rest_b64_instances_answer_digits_and_probabilities(server):
    body = {
        "signature_name": image_spec.SIGNATURE_NAME,
        "instances": [{"b64": base64.b64encode(png).decode()} for png in PNGS],
    }
    response = requests.post(f"{server.rest_url}:predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    classes, probabilities = expected(server, PNGS)
    assert [p[image_spec.CLASSES] for p in predictions] == classes.tolist()
    np.testing.assert_allclose([p[image_spec.PROBABILITIES] for p in predictions], probabilities)


def test_both_clients_classify_files_alike(server):
    classes, probabilities = expected(server, PNGS)
    for client in clients(server):
        assert image_client.check_model(client) is None
        got_classes, got_probabilities = image_client.classify(client, PNGS)
        assert got_classes.tolist() == classes.tolist()
        np.testing.assert_allclose(got_probabilities, probabilities, atol=1e-6)


TRUNCATED = PNGS[0][: len(PNGS[0]) // 2]
HUGE = tf.io.encode_png(np.zeros((10, image_spec.MAX_SIDE + 1, 1), np.uint8)).numpy()


@pytest.mark.parametrize(
    "bad, words",
    [
        pytest.param(b"", "image 1 of the request is empty", id="empty"),
        pytest.param(b"GIF89a not supported", "image 1 of the request is neither PNG nor JPEG",
                     id="not an image"),
        pytest.param(TRUNCATED, "image 1 of the request is truncated", id="truncated PNG"),
        pytest.param(HUGE, f"image 1 of the request is {image_spec.MAX_SIDE + 1}x10 pixels, "
                     f"larger than the limit of {image_spec.MAX_SIDE}", id="huge"),
    ],
)  # fmt: skip
def test_a_bad_image_is_invalid_argument_named_and_the_server_goes_on(server, bad, words):
    grpc_client, rest_client = clients(server)
    with pytest.raises(serving_client.RequestError, match=r"HTTP 400: .*" + re.escape(words)):
        image_client.classify(rest_client, [PNGS[0], bad])
    with pytest.raises(
        serving_client.RequestError, match=r"INVALID_ARGUMENT: .*" + re.escape(words)
    ):
        image_client.classify(grpc_client, [PNGS[0], bad])
    classes, _ = image_client.classify(grpc_client, PNGS[:1])
    assert classes.tolist() == expected(server, PNGS[:1])[0].tolist()


def test_a_png_broken_inside_gets_the_decoders_own_message(server):
    """Whole at both ends, broken inside: the decoder's error, as TensorFlow Serving's."""
    broken = PNGS[0][:40] + b"\x00" * (len(PNGS[0]) - 52) + PNGS[0][-12:]
    _, rest_client = clients(server)
    with pytest.raises(serving_client.RequestError, match=r"HTTP 400: .*PNG"):
        image_client.classify(rest_client, [broken])


def test_cors_preflight_and_answers_carry_tensorflow_servings_headers(server):
    preflight = requests.options(
        f"{server.rest_url}:predict",
        headers={"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    no_origin = requests.options(f"{server.rest_url}:predict", timeout=10)
    assert no_origin.status_code == 400


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_request_script_prints_each_files_digit(server, tmp_path, protocol):
    for i, png in enumerate(PNGS):
        (tmp_path / f"{i}.png").write_bytes(png)
    port = server.grpc_port if protocol == "grpc" else server.rest_port
    result = request_cli(
        f"--model_spec_name={server.model_name}",
        "--use_grpc" if protocol == "grpc" else "--nouse_grpc",
        f"--prediction_service_addr=localhost:{port}",
        f"--images={tmp_path}/*.png {tmp_path}/none-*.jpg",
    )
    assert result.returncode == 0, result.stderr
    classes, probabilities = expected(server, PNGS)
    assert result.stdout.splitlines() == [
        f"{tmp_path}/{i}.png: {c} ({probabilities[i, c]:.1%})" for i, c in enumerate(classes)
    ]


def test_request_script_without_matching_files_says_what_to_do(server):
    result = request_cli(
        f"--prediction_service_addr={server.grpc_address}", "--images=/nonexistent/*.png"
    )
    assert result.returncode == 1 and "make digits" in result.stderr
