"""The README's promises name tests that exist."""

import re

from conftest import ROOT


def test_every_test_the_promises_name_exists():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Promises, and the tests that prove them", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`tests/([\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 30, named
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not re.search(rf"^def {name}\(", (ROOT / "tests" / file).read_text(), re.MULTILINE)
    ]
    assert missing == []


def test_the_half_plus_two_curl_examples_answer_what_the_readme_says(tmp_path):
    """Each `curl -d BODY localhost:8601/PATH  # ANSWER` line, sent to a rebuild of the model."""
    import json

    from half_plus_two import write_tf1

    from local_server import rest_api
    from local_server.api import ModelServer
    from serving import model_config

    base = tmp_path / "half_plus_two"
    write_tf1(base / "123")
    server = ModelServer(model_config.single_model("half_plus_two", str(base)))
    server.poll()
    examples = re.findall(
        r"^curl -d '(.+)' localhost:8601(/v1/\S+)  # (.+)$",
        (ROOT / "README.md").read_text(),
        re.MULTILINE,
    )
    assert len(examples) >= 4
    for body, path, answer in examples:
        status, data = rest_api.handle(server, "POST", path, body.encode())
        assert (status, json.loads(data)) == (200, json.loads(answer)), (path, body)
