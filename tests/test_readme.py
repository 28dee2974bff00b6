"""The README's promises name tests that exist."""

import re

from conftest import ROOT


def test_every_test_the_promises_name_exists():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Promises, and the tests that prove them", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`tests/(\w+\.py)::(\w+)`", section)
    assert len(named) >= 30, named
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not re.search(rf"^def {name}\(", (ROOT / "tests" / file).read_text(), re.MULTILINE)
    ]
    assert missing == []
