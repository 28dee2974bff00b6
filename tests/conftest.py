"""Shared fixtures: the repository on sys.path, absl flags parsed, small exports."""

import os
import pathlib
import sys

import pytest
from absl import flags

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The scripts define their flags at import; import them once so that tests can
# set those flags with absl's flagsaver.
import saved_model_main  # noqa: E402

flags.FLAGS.mark_as_parsed()


@pytest.fixture
def export(tmp_path):
    """export(**flags) trains on mock data and exports; returns the version path."""
    from absl.testing import flagsaver

    def _export(**overrides) -> str:
        settings = dict(mock_data=True, num_epochs=1, model_path=str(tmp_path), show_model=False)
        settings.update(overrides)
        with flagsaver.flagsaver(**settings):
            return saved_model_main.train_and_export()

    return _export


def run(cmd: list[str], **kwargs):
    """Runs a command in the repository with the venv's Python first on PATH."""
    import subprocess

    env = dict(os.environ, **kwargs.pop("env", {}))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)
