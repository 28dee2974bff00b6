"""examples/README.md as a reader follows it: from the example's training script to the
served model's answers, on a MODEL_PATH and ports of its own, offline."""

import pytest
from markdown_blocks import ROOT, Session, run_page


@pytest.mark.slow
def test_the_examples_readme_runs_as_written(tmp_path):
    session = Session(tmp_path)
    try:
        run_page(session, ROOT / "examples" / "README.md")
    finally:
        session.close()
        print("\n".join(session.log))  # each block's time, shown with -s or on failure
