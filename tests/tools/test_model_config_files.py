"""tools/model_config_files.py: the host's copy of MODEL_CONFIG, and `make reload`'s refusals.

`make reload` applying a config to a running server: tests/make/test_serving_config.py.
"""

import sys

import pytest
from conftest import ROOT, run

from serving import model_config
from tools import model_config_files

CONFIG = ROOT / "serving" / "models.config"


def test_host_copy_points_at_model_path_and_says_where_it_comes_from(tmp_path):
    out = tmp_path / "run" / "models.config"
    result = run(
        [sys.executable, "-m", "tools.model_config_files", "host_copy",
         f"--model_config_file={CONFIG}", f"--exports_path={tmp_path}/models", f"--out={out}"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith(
        f"# Generated from {CONFIG} for MODEL_PATH={tmp_path}/models by `make serve` and "
        "`make reload`: edit that file, not this one.\n"
    )
    copy = model_config.read(str(out))
    assert [m.base_path for m in copy.model_config_list.config] == [
        f"{tmp_path}/models/mnist_flax",
        f"{tmp_path}/models/mnist_pure_jax",
    ]
    assert model_config_files.model_names(str(out)) == ["mnist_flax", "mnist_pure_jax"]


def test_describe_names_the_models_and_their_labels():
    config = model_config.read(str(CONFIG))
    assert model_config_files.describe(config) == (
        "models mnist_flax, mnist_pure_jax; labels mnist_flax: canary=2, stable=1"
    )


def test_a_config_that_does_not_parse_says_what_to_fix(tmp_path):
    bad = tmp_path / "models.config"
    bad.write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(SystemExit, match=r"Fix the file \(TensorFlow Serving's ModelServerConfig"):
        model_config_files.read(str(bad))


def test_reload_needs_the_server_make_serve_started(tmp_path):
    out = str(tmp_path / "models.config")
    with pytest.raises(SystemExit, match="no server started by `make serve` runs"):
        model_config_files.reload(str(CONFIG), str(tmp_path), out, None)
