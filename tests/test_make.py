"""The Makefile and env.sh: defaults, overrides, the walkthrough's commands, clean."""

import os
import shlex

import pytest
from absl import flags
from conftest import run

import saved_model_main  # noqa: F401  (defines the export's flags)


def make(*args: str, env: dict | None = None) -> str:
    result = run(["make", "--no-print-directory", *args], env=env or {})
    assert result.returncode == 0, result.stderr
    return result.stdout


def dry_run(*args: str, env: dict | None = None) -> list[str]:
    """The commands `make -n` would run, continuation lines joined."""
    return make("-n", *args, env=env).replace("\\\n", " ").splitlines()


def make_env(*args: str, env: dict | None = None) -> dict[str, str]:
    return dict(line.split("=", 1) for line in make("env", *args, env=env).splitlines())


def env_sh(script: str = "", env: dict | None = None) -> dict[str, str]:
    """The variables that `make env` lists, as `. ./env.sh` sets them in bash."""
    printer = "; ".join(f'echo "{v}=${v}"' for v in make_env())
    result = run(["bash", "-c", f". ./env.sh; {script} {printer}"], env=env or {})
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_env_sh_and_make_env_agree(tmp_path):
    fresh = {"MODEL_PATH": str(tmp_path)}
    assert env_sh(env=fresh) == make_env(env=fresh)
    assert make_env(env=fresh)["MODEL_VERSION"] == "1"
    (tmp_path / "mnist_flax" / "00000041").mkdir(parents=True)
    (tmp_path / "mnist_flax" / "not-a-version").mkdir()
    assert env_sh(env=fresh)["MODEL_VERSION"] == make_env(env=fresh)["MODEL_VERSION"] == "42"


def test_overrides_win_from_command_line_and_environment(tmp_path):
    from_cli = make_env("MODEL=mnist_pure_jax", f"MODEL_PATH={tmp_path}", "GRPC_PORT=9000")
    from_env = make_env(
        env={"MODEL": "mnist_pure_jax", "MODEL_PATH": str(tmp_path), "GRPC_PORT": "9000"}
    )
    assert from_cli == from_env
    assert from_cli["MODEL"] == "mnist_pure_jax" and from_cli["GRPC_PORT"] == "9000"
    sourced = env_sh(
        env={"MODEL": "mnist_pure_jax", "MODEL_PATH": str(tmp_path), "GRPC_PORT": "9000"}
    )
    assert sourced == from_cli


def test_resourcing_env_sh_recomputes_its_own_version_but_keeps_yours(tmp_path):
    script = f"mkdir -p {tmp_path}/mnist_flax/1; . ./env.sh;"
    assert env_sh(script, env={"MODEL_PATH": str(tmp_path)})["MODEL_VERSION"] == "2"
    mine = env_sh(f"MODEL_VERSION=7; {script}", env={"MODEL_PATH": str(tmp_path)})
    assert mine["MODEL_VERSION"] == "7"


def test_make_n_export_shows_the_walkthrough_command(tmp_path):
    (command,) = [
        c
        for c in dry_run(
            "export", "MODEL=mnist_pure_jax", "SERVING_BATCH_SIZE_SAVE=16", f"MODEL_PATH={tmp_path}"
        )
        if "saved_model_main.py" in c
    ]
    args = shlex.split(command)
    assert args[0].endswith(".venv/bin/python") and args[1] == "saved_model_main.py"
    assert args[2:] == [
        "--model=mnist_pure_jax",
        f"--model_path={tmp_path}",
        "--model_version=1",
        "--serving_batch_size=16",
        "--compile_model",
        "--noshow_model",
    ]


def test_make_n_export_passes_the_options():
    (command,) = [
        c
        for c in dry_run(
            "export",
            "MOCK_DATA=1",
            "NUM_EPOCHS=1",
            "DATA_DIR=/data",
            "OVERWRITE=1",
            "PLATFORMS=cpu,cuda",
            "MODEL_VERSION=5",
        )
        if "saved_model_main.py" in c
    ]
    for flag in (
        "--mock_data",
        "--num_epochs=1",
        "--data_dir=/data",
        "--overwrite",
        "--platforms=cpu,cuda",
        "--model_version=5",
    ):
        assert flag in shlex.split(command)


def test_python_flag_defaults_mirror_env_sh():
    defaults = env_sh()
    assert flags.FLAGS["model"].default == defaults["MODEL"]
    assert flags.FLAGS["model_path"].default == defaults["MODEL_PATH"]
    assert str(flags.FLAGS["serving_batch_size"].default) == defaults["SERVING_BATCH_SIZE_SAVE"]


def test_unknown_model_lists_the_valid_ones():
    result = run([".venv/bin/python", "saved_model_main.py", "--model=mnist_resnet"])
    assert result.returncode != 0
    assert "mnist_pure_jax" in result.stderr and "mnist_flax" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-2"])
def test_invalid_serving_batch_size_is_refused(value):
    result = run([".venv/bin/python", "saved_model_main.py", f"--serving_batch_size={value}"])
    assert result.returncode != 0 and "must be -1 (any batch size) or > 0" in result.stderr


def test_clean_deletes_only_exports(tmp_path):
    models = tmp_path / "models"
    ours = models / "mnist_flax" / "3"
    (ours / "assets.extra").mkdir(parents=True)
    (ours / "assets.extra" / "export_info.json").write_text("{}")
    staging = models / "mnist_flax" / ".staging-abc"
    staging.mkdir()
    theirs = models / "mnist_flax" / "4"  # A SavedModel not written by `make export`.
    theirs.mkdir()
    (models / "notes.txt").write_text("keep me")
    make("clean", f"MODEL_PATH={models}")
    assert not ours.exists() and not staging.exists()
    assert theirs.exists() and (models / "notes.txt").exists()
    theirs.rmdir()
    make("clean", f"MODEL_PATH={models}")
    assert not (models / "mnist_flax").exists()  # Emptied directories go.
    assert models.exists()  # It holds notes.txt.


@pytest.mark.parametrize("path", ["/", "~", "", "/tmp/.."])
def test_clean_refuses_dangerous_paths(path):
    home = os.path.expanduser("~")
    result = run(["make", "clean", f"MODEL_PATH={path.replace('~', home)}"])
    assert result.returncode != 0 and "refusing" in result.stderr
