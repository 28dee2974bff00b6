"""README.md as a reader follows it: every command block in order, on a MODEL_PATH and
ports of its own, offline, and what it prints against what the README quotes."""

import re
import subprocess

import pytest
from markdown_blocks import ROOT, Session, run_page

README = ROOT / "README.md"


@pytest.fixture
def session(tmp_path):
    session = Session(tmp_path)
    yield session
    session.close()
    print("\n".join(session.log))  # each block's time, shown with -s or on failure


@pytest.mark.slow
def test_the_readme_runs_as_written(session):
    run_page(session, README)


def test_the_readme_is_a_walkthrough_of_at_most_300_lines():
    assert len(README.read_text().splitlines()) <= 300


def test_what_is_where_names_every_top_level_file():
    section = README.read_text().split("## What is where", 1)[1].split("\n## ", 1)[0]
    named = {
        name.rstrip("/")
        for row in section.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([^`]+)`", row.split(" | ")[0])
    }
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    top_level = {path.split("/")[0] for path in tracked}
    missing = [
        entry
        for entry in sorted(top_level)
        if not any(n == entry or n.startswith(entry + "/") for n in named)
    ]
    assert missing == []
