"""tools/exports.py: the version `make inspect` shows, and `make clean`, on fake exports."""

import json
import os
import sys

import pytest
from conftest import heavy_imports, run

from serving import versions
from tools import exports


def fake_export(version_dir, exported_by=versions.EXPORTED_BY) -> None:
    """A version as `make export` leaves it, as far as `make clean` looks."""
    (version_dir / "assets.extra").mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"")
    info = {"exported_by": exported_by} if exported_by else {}
    (version_dir / "assets.extra" / "export_info.json").write_text(json.dumps(info))


def test_clean_deletes_only_exports(tmp_path, capsys):
    models = tmp_path / "models"
    fake_export(models / "mnist_flax" / "3")
    fake_export(models / "mnist_flax" / "5", exported_by=None)  # Someone else's record.
    theirs = models / "mnist_flax" / "4"  # A SavedModel not written by `make export`.
    theirs.mkdir()
    (models / "mnist_flax" / "6").symlink_to(models / "mnist_flax" / "3")
    (models / "notes.txt").write_text("keep me")
    exports.clean(str(models))
    assert sorted(os.listdir(models / "mnist_flax")) == ["4", "5", "6"]
    assert (models / "notes.txt").exists()
    assert capsys.readouterr().out == f"rm -r {models}/mnist_flax/3\n"


def test_clean_removes_only_the_directories_it_emptied(tmp_path):
    models = tmp_path / "models"
    fake_export(models / "mnist_flax" / "1")
    (models / "empty_of_yours").mkdir()
    (models / "mnist_pure_jax").mkdir()  # Empty before `make clean`: not its own.
    exports.clean(str(models))
    assert sorted(os.listdir(models)) == ["empty_of_yours", "mnist_pure_jax"]
    # A MODEL_PATH that only held exports goes with them.
    only_exports = tmp_path / "only"
    fake_export(only_exports / "mnist_flax" / "1")
    exports.clean(str(only_exports))
    assert not only_exports.exists()
    # One that was empty stays.
    (tmp_path / "empty").mkdir()
    exports.clean(str(tmp_path / "empty"))
    assert (tmp_path / "empty").exists()


def test_clean_leaves_what_a_running_export_writes_and_removes_what_a_killed_one_left(
    tmp_path, capsys
):
    """A running export holds a lock on its staging directory (serving.versions); a killed
    one held it until it died."""
    model = tmp_path / "mnist_flax"
    fake_export(model / "1")
    killed = model / ".staging-killed"
    killed.mkdir()
    with versions.staging_directory(str(model)) as running:
        exports.clean(str(tmp_path))
        assert os.listdir(model) == [os.path.basename(running)]
    assert f"Left {running}: an export that is still running writes it." in capsys.readouterr().out


@pytest.mark.parametrize("path", ["/", "~", "", "/tmp/.."])
def test_clean_refuses_dangerous_paths(path):
    given = path.replace("~", os.path.expanduser("~"))
    with pytest.raises(SystemExit, match=f"refusing to clean MODEL_PATH='{given}'"):
        exports.clean(given)


def test_clean_of_a_missing_path_does_nothing(tmp_path, capsys):
    exports.clean(str(tmp_path / "gone"))
    assert capsys.readouterr().out == f"Nothing to clean: {tmp_path}/gone does not exist.\n"


@pytest.mark.parametrize(
    "names, version, shown",
    [
        pytest.param(["1", "2", "10"], None, "10", id="newest"),
        pytest.param(["1", "2", "10"], 2, "2", id="chosen"),
        pytest.param(["007", "3"], None, "007", id="leading-zeros"),
        pytest.param(["007"], 7, "007", id="chosen-leading-zeros"),
        pytest.param(["2", "12\n", "1a", ".staging-x", "-1", "٣"], None, "2", id="not-versions"),
    ],
)
def test_version_dir_is_the_version_serving_versions_finds(tmp_path, names, version, shown):
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / "50").write_text("a file is no version")
    assert exports.version_dir(str(tmp_path), version) == f"{tmp_path}/{shown}"


def test_version_dir_says_to_export(tmp_path):
    with pytest.raises(SystemExit, match=f"no version under {tmp_path}. Run 'make export' first"):
        exports.version_dir(str(tmp_path))
    with pytest.raises(SystemExit, match=f"no SavedModel at {tmp_path}/3. Run 'make export', or"):
        exports.version_dir(str(tmp_path), 3)


def test_command_line(tmp_path):
    (tmp_path / "2").mkdir()
    command = [sys.executable, "-m", "tools.exports", "version_dir"]
    command.append(f"--model_base_path={tmp_path}")
    result = run(command)
    assert (result.returncode, result.stdout) == (0, f"{tmp_path}/2\n")
    result = run([*command, "--version=0"])
    assert result.returncode == 2 and "'0' is not a positive integer" in result.stderr
    result = run([*command, "--version=3"])
    assert result.returncode == 1 and f"error: no SavedModel at {tmp_path}/3" in result.stderr


def test_imports_neither_tensorflow_nor_jax():
    """`make clean` and `make inspect` stay quick: what TensorFlow Serving reads needs neither."""
    assert heavy_imports("tools.exports") == []


def test_inspect_asks_for_the_exported_name_not_the_models_code(tmp_path):
    spec = "examples.regressor:MODEL"
    with pytest.raises(SystemExit, match=f"MODEL={spec} names a model's code.*: MODEL=NAME"):
        exports.version_dir(str(tmp_path / spec))
