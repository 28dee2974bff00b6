"""docs/*.md: every page's command blocks in order, each page in a session of its own, and
what the pages promise of the tests and of each other."""

import re

import pytest
from markdown_blocks import ROOT, Session, run_page

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# The topics the README links to, each a page of its own.
TOPICS = [
    "compatibility",
    "images",
    "production",
    "local_server",
    "scaling_out",
    "security",
    "performance",
    "testing",
    "troubleshooting",
    "upstream",
]


def test_every_topic_has_its_page():
    assert [page.stem for page in PAGES] == sorted(TOPICS)


# Each page a work unit of its own (conftest.OWN_UNITS): the pages share nothing.
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_page_runs_as_written(tmp_path, page):
    session = Session(tmp_path, num_epochs=1)  # The pages elide what training prints.
    try:
        run_page(session, page)
    finally:
        session.close()
        print("\n".join(session.log))  # each block's time, shown with -s or on failure


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_each_page_starts_with_what_a_reader_can_do_with_it(page):
    title, first = page.read_text().split("\n\n", 2)[:2]
    assert title.startswith("# ")
    assert first.startswith("With this page you can "), first


def test_every_test_the_promises_name_exists():
    text = (DOCS / "testing.md").read_text()
    section = text.split("## Promises, and the tests that prove them", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`tests/([\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 30, named
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not (ROOT / "tests" / file).exists()
        or not re.search(rf"^def {name}\(", (ROOT / "tests" / file).read_text(), re.MULTILINE)
    ]
    assert missing == []


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda page: page.name)
def test_relative_links_point_at_files_and_sections_that_exist(page):
    text = page.read_text()
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https://...
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (
            anchor and linked.suffix == ".md" and anchor not in anchors(linked)
        ):
            broken.append(target)
    assert broken == []


def anchors(page) -> set[str]:
    """The anchors GitHub gives the headings of a page."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
