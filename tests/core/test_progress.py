"""models.progress, and the request loop that draws it."""

import io

import numpy as np

import serving_client
from models import mnist_data, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_drawn_on_a_terminal_and_ends_its_line(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    progress.bar("requests", 1, 4)
    progress.bar("requests", 4, 4)
    text = terminal.getvalue()
    assert "\rrequests [" + "=" * 7 + " " * 23 + "] 1/4" in text
    assert text.endswith("\rrequests [" + "=" * 30 + "] 4/4\n")


def test_no_bar_in_logs_or_pipes(monkeypatch):
    pipe = io.StringIO()  # isatty() is False
    monkeypatch.setattr("sys.stdout", pipe)
    progress.bar("requests", 1, 4)
    assert pipe.getvalue() == ""


class EchoClient:
    """Answers digit 0 for every image: right, since every label here is 0."""

    def predict(self, input_name, images):
        return np.eye(10, dtype=np.float32)[np.zeros(len(images), int)]


def test_the_request_loop_reports_progress_per_batch_and_at_the_end():
    data = mnist_data.Split(np.zeros((8, 28, 28, 1), np.uint8), np.zeros(8, np.int64))
    calls = []
    summary = serving_client.run(
        EchoClient(),
        "inputs",
        data,
        2,
        1,
        log=lambda _: None,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert summary["requests"] == 4 and summary["accuracy"] == 1.0
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
