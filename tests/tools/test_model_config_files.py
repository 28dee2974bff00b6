"""tools/model_config_files.py: the host's copy of MODEL_CONFIG, and `make reload`'s refusals.

`make reload` applying a config to a running server: tests/make/test_serving_config.py.
"""

import os
import sys

import pytest
from conftest import ROOT, run

from local_server.harness import free_port
from serving import model_config
from tools import model_config_files
from tools.server_process import Started

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


def test_a_missing_config_says_what_model_config_names(tmp_path):
    with pytest.raises(SystemExit) as missing:
        model_config_files.read(str(tmp_path / "nope.config"))
    assert str(missing.value) == (
        f"error: {tmp_path}/nope.config: no such file. MODEL_CONFIG names a model config, "
        "such as serving/models.config."
    )


def test_reload_needs_the_server_make_serve_started(tmp_path):
    out = str(tmp_path / "models.config")
    with pytest.raises(SystemExit, match="no server started by `make serve` runs"):
        model_config_files.reload(str(CONFIG), str(tmp_path), out, None)


def test_reload_refuses_a_model_path_without_the_models_before_sending(tmp_path):
    """Another MODEL_PATH than the server's would unload every model it serves."""
    out = tmp_path / "run" / "models.config"
    started = Started("local", 1)  # Never reached: the check comes before any connection.
    with pytest.raises(SystemExit) as refused:
        model_config_files.reload(str(CONFIG), str(tmp_path / "elsewhere"), str(out), started)
    assert str(refused.value) == (
        f"error: model mnist_flax's base_path is {tmp_path}/elsewhere/mnist_flax, which does "
        f"not exist: make reload puts MODEL_PATH={tmp_path}/elsewhere in place of /models. "
        "Reload with the MODEL_PATH that make serve used, or export the model first."
    )
    assert not out.exists()


def test_a_failed_reload_puts_back_the_copy_the_server_polls(tmp_path):
    for name in ("mnist_flax", "mnist_pure_jax"):
        (tmp_path / "models" / name).mkdir(parents=True)
    out = tmp_path / "models.config"
    out.write_text("the config the server runs\n")
    with pytest.raises(SystemExit, match="no gRPC answer from localhost:"):
        model_config_files.reload(
            str(CONFIG), str(tmp_path / "models"), str(out), Started("local", 1),
            grpc_port=free_port(), timeout=5,
        )  # fmt: skip
    assert out.read_text() == "the config the server runs\n"
    assert sorted(os.listdir(tmp_path)) == ["models", "models.config"]  # No temporary left.
    out.unlink()  # A server started without MODEL_CONFIG: make serve wrote no copy.
    with pytest.raises(SystemExit, match="no gRPC answer from localhost:"):
        model_config_files.reload(
            str(CONFIG), str(tmp_path / "models"), str(out), Started("local", 1),
            grpc_port=free_port(), timeout=5,
        )  # fmt: skip
    assert sorted(os.listdir(tmp_path)) == ["models"]  # The refused copy is not left behind.


def test_reload_asks_the_grpc_port_that_make_serve_was_given(tmp_path):
    (tmp_path / "models" / "mnist_flax").mkdir(parents=True)
    (tmp_path / "models" / "mnist_pure_jax").mkdir()
    given, asked = free_port(), free_port()
    with pytest.raises(SystemExit, match=f"no gRPC answer from localhost:{given}"):
        model_config_files.reload(
            str(CONFIG), str(tmp_path / "models"), str(tmp_path / "models.config"),
            Started("local", 1, ports=(given, free_port())), grpc_port=asked, timeout=2,
        )  # fmt: skip


def test_only_base_paths_under_models_are_checked_on_this_host(tmp_path):
    """Other paths are the server's own (a container's): nothing here can check them."""
    config = model_config.read(str(CONFIG))
    for entry in config.model_config_list.config:
        entry.base_path = entry.base_path.replace("/models/", "/in/the/container/")
    model_config_files.check_base_paths(config, str(tmp_path / "elsewhere"))  # No SystemExit.
