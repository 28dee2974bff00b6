"""web/'s page in a real headless Chromium, on its own origin, against a local server with CORS.

Playwright's Python package drives Debian's chromium (Playwright's own browser download is
not needed). Without Chromium the tests skip and say so, except in CI (CI set), where they fail.
"""

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, local_server

from clients import image_client, serving_client
from local_server.harness import free_port
from models import export_lib, mnist_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DATA = mnist_data.load("test", mock=True)
MODEL = "mnist_pure_jax"


@pytest.fixture(scope="module")
def browser():
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "no playwright package in this virtualenv: pip install playwright"
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test")
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(shared_export, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    shutil.copytree(shared_export(model=MODEL), base / "1")
    with local_server(MODEL, base, "--rest_api_enable_cors_support") as server:
        yield server


@pytest.fixture(scope="module")
def web_url():
    """make web's command, on a free port: the page's origin is not the REST API's."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            "web",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Returns once `process` accepts connections on `port` (a busy machine starts slowly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the page's server exited with {process.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"the page's server does not listen on {port} after {timeout} s")


def open_page(browser, web_url: str, rest_address: str):
    page = browser.new_page()
    page.goto(f"{web_url}?rest={rest_address}&model={MODEL}")
    page.wait_for_selector(".bar[data-digit='9']")
    return page


def paint(page, pixels: np.ndarray) -> None:
    """Paints 28x28 grey pixels onto the 280x280 canvas, each a 10x10 block."""
    page.evaluate(
        """pixels => {
          const context = document.getElementById("canvas").getContext("2d");
          pixels.forEach((row, y) => row.forEach((v, x) => {
            context.fillStyle = `rgb(${v},${v},${v})`;
            context.fillRect(x * 10, y * 10, 10, 10);
          }));
        }""",
        pixels[..., 0].tolist(),
    )


def shown(page) -> tuple[int, np.ndarray]:
    """The page's digit and its ten probabilities, as it shows them."""
    page.wait_for_function("document.getElementById('digit').textContent !== ''")
    probabilities = page.eval_on_selector_all(
        ".bar", "rows => rows.map(row => Number(row.dataset.probability))"
    )
    return int(page.inner_text("#digit")), np.array(probabilities)


def sent_png(request) -> bytes:
    body = json.loads(request.post_data)
    assert body["signature_name"] == "predict_images"
    (instance,) = body["instances"]
    return base64.b64decode(instance["b64"])


def test_a_painted_test_digit_shows_the_models_answer(browser, server, web_url, tmp_path):
    page = open_page(browser, web_url, f"localhost:{server.rest_port}")
    paint(page, 255 - DATA.images[0])  # Dark ink on white, as drawn.
    with page.expect_request(lambda r: r.url.endswith(":predict") and r.method == "POST") as sent:
        page.click("#classify")
    digit, probabilities = shown(page)
    page.screenshot(path=tmp_path / "page.png")
    client = serving_client.GrpcClient(server.grpc_address, MODEL, 30)
    classes, expected = image_client.classify(client, [sent_png(sent.value)])
    assert digit == classes[0]
    np.testing.assert_allclose(probabilities, expected[0], rtol=0, atol=1e-6)
    # The page's PNG holds the test digit's own pixels: the float signature's answer.
    serve = export_lib.serving_signature(f"{server.base_path}/1")
    log_probabilities = export_lib.predict(serve, export_lib.test_batch(DATA, 1))
    np.testing.assert_allclose(probabilities, tf.nn.softmax(log_probabilities)[0], atol=1e-5)
    assert page.inner_text("#message") == ""


def test_a_mouse_stroke_is_sent_when_it_ends(browser, server, web_url):
    page = open_page(browser, web_url, f"localhost:{server.rest_port}")
    box = page.locator("#canvas").bounding_box()
    with page.expect_response(lambda r: r.url.endswith(":predict")) as answer:
        page.mouse.move(box["x"] + 140, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + 140, box["y"] + 240, steps=10)
        page.mouse.up()
    assert answer.value.status == 200
    assert answer.value.headers["access-control-allow-origin"] == "*"
    digit, probabilities = shown(page)
    assert 0 <= digit <= 9 and probabilities.sum() == pytest.approx(1, abs=1e-4)


def test_the_page_says_what_to_do_when_no_server_answers(browser, web_url):
    page = open_page(browser, web_url, f"localhost:{free_port()}")
    page.click("#classify")
    page.wait_for_function("document.getElementById('message').textContent !== ''")
    message = page.inner_text("#message")
    assert "No answer from" in message and "make serve CORS=1" in message
    assert page.inner_text("#digit") == ""


def test_the_page_says_what_to_do_when_the_server_refuses_its_origin(
    browser, shared_export, tmp_path, web_url
):
    """A server without --rest_api_enable_cors_support: the browser refuses its answer."""
    base = tmp_path / MODEL
    shutil.copytree(shared_export(model=MODEL), base / "1")
    with local_server(MODEL, base) as server:
        page = open_page(browser, web_url, f"localhost:{server.rest_port}")
        page.click("#classify")
        page.wait_for_function("document.getElementById('message').textContent !== ''")
    assert "restart it with CORS on (make serve CORS=1" in page.inner_text("#message")
