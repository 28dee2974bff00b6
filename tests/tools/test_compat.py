"""Exports for a TensorFlow Serving release: the format table, the export, and `make compat`."""

import contextlib
import json
import os
import sys

import numpy as np
import pytest
from conftest import compat_cli, heavy_imports, run, script

import saved_model_lib
from saved_model_lib import ExportFormatError
from serving import releases, versions
from serving.releases import ReleaseError
from tools import check_savedmodel

# ---- The export ------------------------------------------------------------------


@pytest.mark.parametrize("release", ["2.16", "2.19"])
def test_export_for_a_release_writes_its_format(shared_export, release):
    path = shared_export(model="mnist_pure_jax", tf_serving_version=release, num_epochs=0)
    runtime = releases.RELEASES[release]
    modules = saved_model_lib.xla_call_modules(path)
    assert modules, "a jax2tf export holds XlaCallModule ops"
    for module in modules:
        assert module.calling_convention_version == 9
        assert releases.release_key(module.stablehlo_version) <= releases.release_key(
            runtime.stablehlo_version
        )
        assert module.platforms == ("CPU",)
    with open(os.path.join(path, "assets.extra", "export_info.json")) as f:
        info = json.load(f)
    assert info["tf_serving_version"] == release
    assert info["xla_call_modules"] == [
        {"calling_convention_version": 9, "platforms": ["CPU"], "stablehlo_version": "0.17.7"}
        if release == "2.16"
        else {"calling_convention_version": 9, "platforms": ["CPU"], "stablehlo_version": "1.9.1"}
    ]


def test_default_export_is_for_the_newest_release_with_an_image(untrained_mlp):
    """2.20's format, recorded as made for 2.20: make compat requires 2.20 and newer."""
    modules = saved_model_lib.xla_call_modules(untrained_mlp)
    assert set(modules) == {saved_model_lib.XlaCallModuleInfo(10, ("CPU",), "1.12.1")}
    assert saved_model_lib.format_problems(modules, releases.RELEASES["2.20"]) == []
    assert saved_model_lib.format_problems(modules, releases.RELEASES["2.19"]) != []
    # What make inspect says of it: README.md's step 3, run by tests/docs/test_readme.py.
    assert versions.read_export_info(untrained_mlp)["tf_serving_version"] == "2.20"


def test_nightly_export_writes_jax_newest_format(shared_export):
    import jax

    path = shared_export(model="mnist_pure_jax", num_epochs=0, tf_serving_version="nightly")
    (module,) = set(saved_model_lib.xla_call_modules(path))
    assert module.calling_convention_version == jax.config.jax_export_calling_convention_version
    # Newer than the newest TensorFlow's, here: only tensorflow/serving:nightly is made for it.
    assert releases.release_key(module.stablehlo_version) > releases.release_key(
        releases.newest().stablehlo_version
    )
    assert versions.read_export_info(path)["tf_serving_version"] == "nightly"


def test_export_refuses_a_release_without_a_server_before_training(export, tmp_path):
    with pytest.raises(ReleaseError) as error:
        export(model="mnist_pure_jax", tf_serving_version="2.21")
    assert str(error.value).startswith(
        "TF_SERVING_VERSION=2.21: no TensorFlow Serving 2.21 release exists yet"
    )
    assert "use TF_SERVING_VERSION=2.20 (the default" in str(error.value)
    assert not (tmp_path / "mnist_pure_jax").exists()


def test_export_refuses_a_release_before_training(export, tmp_path):
    with pytest.raises(ReleaseError, match=r"Serve with TensorFlow Serving 2\.16 or newer"):
        export(model="mnist_pure_jax", tf_serving_version="2.15")
    assert not (tmp_path / "mnist_pure_jax").exists()


def test_make_export_says_why_an_old_release_cannot_serve(tmp_path):
    result = run(
        ["make", "export", "MOCK_DATA=1", f"MODEL_PATH={tmp_path}", "TF_SERVING_VERSION=2.14"]
    )
    assert result.returncode != 0
    assert "error: TensorFlow Serving 2.14 cannot run this export" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mnist_flax").exists()


def test_export_never_claims_a_release_it_does_not_fit(export, tmp_path, monkeypatch):
    # As if a JAX upgrade stopped honouring writing_format: the newest format is written.
    monkeypatch.setattr(saved_model_lib, "writing_format", lambda fmt: contextlib.nullcontext())
    with pytest.raises(ExportFormatError, match="writing_format no longer controls JAX's format"):
        export(model="mnist_pure_jax", num_epochs=0, tf_serving_version="2.19")
    assert versions.versions(str(tmp_path / "mnist_pure_jax")) == []


# ---- check_savedmodel.py, with this venv's TensorFlow ------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export for TensorFlow Serving 2.16, shared by the checks below."""
    from conftest import export_model

    return export_model(
        tmp_path_factory.mktemp("models"), model="mnist_pure_jax", tf_serving_version="2.16"
    )


def test_validation_batch_holds_the_jax_answers(exported):
    batch = np.load(os.path.join(exported, saved_model_lib.VALIDATION_FILE))
    assert batch["inputs"].shape == (8, 28, 28, 1) and batch["outputs"].shape == (8, 10)
    assert float(batch["atol"]) == 1e-5 and float(batch["rtol"]) == 1e-5


def test_check_savedmodel_loads_runs_and_matches(exported):
    result = check_savedmodel.check(exported, "serving_default")
    assert result["loads"] and result["runs"] and result["matches"], result
    assert result["max_abs_diff"] < 1e-5 and result["error"] is None


def test_check_savedmodel_reports_a_mismatch_and_a_missing_batch(exported, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    batch_file = copy / saved_model_lib.VALIDATION_FILE
    batch = dict(np.load(batch_file))
    batch["outputs"] = batch["outputs"] + 0.5
    np.savez(batch_file, **batch)
    result = check_savedmodel.check(str(copy), "serving_default")
    assert result["runs"] and not result["matches"]
    assert result["max_abs_diff"] == pytest.approx(0.5, abs=1e-4)
    assert "outputs differ from JAX's by up to 0.5" in result["error"]

    os.remove(batch_file)
    result = check_savedmodel.check(str(copy), "serving_default")
    assert not result["matches"] and "no validation batch" in result["error"]


def test_check_savedmodel_prints_one_json_line_and_its_exit_status(exported):
    result = run(script("tools/check_savedmodel.py", f"--saved_model_dir={exported}"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["matches"] is True


# ---- compat.py, offline: "virtualenvs" that are this venv's Python ---------------


def fake_venvs(root, *releases: str) -> str:
    """A --venv_dir where each release's Python is this one (TensorFlow 2.21), installed."""
    for release in releases:
        # A wrapper, not a link: a link outside a venv would not find the venv's packages.
        fake_python(root, release, f'exec {sys.executable} "$@"')
    return str(root)


def stand_in_venvs(root, found: dict[str, dict]) -> str:
    """A --venv_dir where each release of `found` answers its check with those fields."""
    for release, fields in found.items():
        result = {**check_savedmodel.empty_result(), **fields}
        fake_python(root, release, f"echo '{json.dumps(result)}'")
    return str(root)


def fake_python(root, release: str, body: str) -> None:
    python = root / f"tf-{release}" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    (root / f"tf-{release}" / ".installed").write_text("fake\n")


RUNS = dict(loads=True, runs=True, max_abs_diff=0.0, matches=True)


def run_compat(exported, *args: str) -> "subprocess.CompletedProcess":  # noqa: F821
    model_path, model = os.path.split(os.path.dirname(exported))
    return compat_cli(f"--model_path={model_path}", f"--model={model}", *args)


@pytest.mark.slow
def test_compat_table_and_failing_when_a_required_release_fails(exported, tmp_path):
    # The release that runs the model checks it for real; a "2.16" virtualenv that holds
    # another TensorFlow cannot vouch for 2.16.
    fake_venvs(tmp_path / "venvs", "2.21")
    venvs = stand_in_venvs(tmp_path / "venvs", {"2.16": dict(RUNS, tensorflow="2.21.0")})
    result = run_compat(exported, "--versions=2.16,2.21", f"--venv_dir={venvs}")
    assert result.returncode == 1
    assert "Must serve it: TensorFlow Serving 2.16 and newer (the export's TF_SERVING_VERSION)" in (
        result.stdout
    )
    assert "runs TensorFlow 2.21.0, not 2.16" in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("| 2.21 ")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["2.21", "2.21.0", "yes", "yes"] and cells[5:] == ["yes", ""]
    assert float(cells[4]) < 1e-5
    assert "FAILED: TensorFlow Serving 2.16 must serve it and cannot." in result.stdout
    # Not required when the target is newer: a table with a failure, exit status 0.
    venvs = stand_in_venvs(
        tmp_path / "answers",
        {
            "2.16": dict(tensorflow="2.16.2", error="Cannot deserialize computation"),
            "2.21": dict(RUNS, tensorflow="2.21.0"),
        },
    )
    result = run_compat(
        exported, "--versions=2.16,2.21", f"--venv_dir={venvs}", "--tf_serving_version=2.20"
    )
    assert result.returncode == 0, result.stdout
    assert "| 2.16 | 2.16.2 | no | no |" in result.stdout
    assert "1/2 releases run" in result.stdout


def test_compat_reports_an_install_that_fails(exported, tmp_path):
    result = compat_cli(
        f"--model_path={os.path.dirname(os.path.dirname(exported))}",
        "--model=mnist_pure_jax",
        "--versions=2.17",
        f"--venv_dir={tmp_path}",
        env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""},
    )
    assert result.returncode == 1
    assert "could not install tensorflow-cpu==2.17.*" in result.stdout
    assert not (tmp_path / "tf-2.17" / ".installed").exists()


def test_compat_without_a_version_says_to_export(tmp_path):
    result = compat_cli(f"--model_path={tmp_path}", "--norun")
    assert result.returncode == 1
    assert f"error: no version under {tmp_path}/mnist_flax: export one first" in result.stderr
    result = compat_cli(f"--model_path={tmp_path}", "--norun", "--model=examples.regressor:MODEL")
    assert result.returncode == 1
    assert "names a model's code, which only make export takes" in result.stderr


def test_compat_of_a_nightly_export_requires_the_tensorflow_that_exported_it(
    shared_export, tmp_path
):
    """No release is promised for JAX's newest format. A stand-in 2.21 check: the target."""
    path = shared_export(model="mnist_pure_jax", num_epochs=0, tf_serving_version="nightly")
    stand_in_venvs(tmp_path, {"2.21": dict(RUNS, tensorflow="2.21.0")})
    result = run_compat(path, "--versions=2.21", f"--venv_dir={tmp_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calling convention 10" in result.stdout
    assert "The format table promises no release up to 2.21 for it" in result.stdout
    assert (
        "Must serve it: TensorFlow 2.21 and newer (nightly: the TensorFlow that exported it)."
    ) in result.stdout
    assert "1/1 releases run" in result.stdout


def test_make_distclean_deletes_the_virtualenvs_make_compat_makes(tmp_path):
    compat = run(["make", "-n", "compat", f"MODEL_PATH={tmp_path}", "COMPAT_DIR=my-venvs"])
    assert "--venv_dir=my-venvs" in compat.stdout.split()
    distclean = run(["make", "-n", "distclean", "COMPAT_DIR=my-venvs"])
    assert "rm -rf .venv .venv-checkov my-venvs" in distclean.stdout.splitlines()


def test_compat_imports_neither_tensorflow_nor_jax_before_it_reads_an_export():
    """A bad flag or a missing export is told at once, not after TensorFlow's import."""
    assert heavy_imports("tools.compat") == []


def test_compat_names_the_variable_of_a_bad_release(tmp_path):
    result = compat_cli(f"--model_path={tmp_path}", "--versions=2.16,foo")
    assert result.returncode == 1
    assert "--versions (make compat COMPAT_VERSIONS='2.16 2.21') takes TensorFlow Serving" in (
        result.stderr
    )
    assert "TF_SERVING_VERSION" not in result.stderr


def test_check_savedmodel_runs_the_image_signature_too(exported, tmp_path):
    import shutil

    result = check_savedmodel.check(exported, "serving_default")
    assert result["images"] is True, result
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    batch_file = copy / saved_model_lib.VALIDATION_FILE
    batch = dict(np.load(batch_file))
    batch["image_probabilities"] = batch["image_probabilities"][:, ::-1]
    np.savez(batch_file, **batch)
    result = check_savedmodel.check(str(copy), "serving_default")
    assert result["runs"] and result["images"] is False and not result["matches"]
    assert result["error"].startswith("predict_images: probabilities differ from JAX's")
