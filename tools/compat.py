"""Which TensorFlow Serving releases can serve an exported model: run it with each one's TensorFlow.

    python -m tools.compat --model_path=/tmp/jax2tf/saved_models --model=mnist_flax \
        --versions=2.16,2.17,2.18,2.19,2.20,2.21

`make compat` runs this command. TensorFlow Serving X.Y runs TensorFlow X.Y,
so each release gets a virtualenv of its own (VENV_DIR/tf-X.Y, holding only
that `tensorflow-cpu` wheel) where check_savedmodel.py runs the model as the
server would: proof, without Docker, of what the release table predicts. It
prints a Markdown table and exits 1 if a release that must serve the model
(every checked one at or above the export's target) cannot.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys

from absl import app, flags

from serving import releases, versions
from serving.releases import release_key, release_of
from tools import formats

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_savedmodel.py")
ROOT = os.path.dirname(HERE)

_MODEL_PATH = flags.DEFINE_string(
    "model_path", "/tmp/jax2tf/saved_models", "Directory of the exported models."
)
_MODEL = flags.DEFINE_string("model", "mnist_flax", "The model to check, under MODEL_PATH.")
_MODEL_VERSION = flags.DEFINE_integer(
    "model_version", None, "The version to check. Default: the newest.", lower_bound=1
)
_VERSIONS = flags.DEFINE_list(
    "versions",
    list(releases.RELEASES),
    "TensorFlow Serving releases to check, each with its own TensorFlow.",
)


def _are_releases(versions: list[str]) -> bool:
    try:
        return all(release_of(v) for v in versions) and bool(versions)
    except releases.ReleaseError:
        return False


flags.register_validator(
    "versions",
    _are_releases,
    "--versions (make compat COMPAT_VERSIONS='2.16 2.21') takes TensorFlow Serving releases "
    "such as 2.16 or 2.19.1",
)
_TF_SERVING_VERSION = flags.DEFINE_string(
    "tf_serving_version",
    "",
    "The oldest release that must serve the model: this one and every newer one checked "
    "must pass, or the exit status is 1. Default: what the export was made for; "
    f"{releases.NIGHTLY} (JAX's newest format): the TensorFlow that exported it.",
)
_VENV_DIR = flags.DEFINE_string(
    "venv_dir", os.path.join(ROOT, ".compat"), "Where the virtualenvs of the releases live."
)
_RUN = flags.DEFINE_boolean(
    "run",
    True,
    "Run the model with each release. --norun only prints what its XlaCallModule ops need "
    "(make inspect).",
)
_TIMEOUT = flags.DEFINE_integer(
    "timeout_seconds", 600, "Limit for one install or one check.", lower_bound=1
)


class CompatError(Exception):
    """The check cannot run; the message says why and what to do."""


def tf_package() -> str:
    # tensorflow-cpu has no wheels for ARM; there the plain package is CPU-only.
    return "tensorflow-cpu" if platform.machine().lower() in ("x86_64", "amd64") else "tensorflow"


def release_python(venv_dir: str, release: str, timeout: int) -> str:
    """The Python of the virtualenv that holds TensorFlow `release`, installed on first use."""
    venv = os.path.join(venv_dir, f"tf-{release}")
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".installed")
    if os.path.exists(stamp):
        return python
    requirement = f"{tf_package()}=={release}.*"
    print(f"Installing {requirement} into {venv} (first use; about a minute)...", flush=True)
    # No stamp: a new release, or an install that was interrupted; start afresh. The
    # virtualenv gets no pip of its own: this one's installs into it (--python).
    shutil.rmtree(venv, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    for command in (
        [sys.executable, "-m", "venv", "--without-pip", venv],
        [*pip, "install", "--quiet", requirement],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise CompatError(
                f"could not install {requirement}: {_last_line(done.stderr)}. Check that pip "
                "reaches the package index, or leave this release out (COMPAT_VERSIONS)."
            )
    with open(stamp, "w") as f:
        f.write(requirement + "\n")
    return python


def check_release(python: str, release: str, saved_model_dir: str, timeout: int) -> dict:
    """Runs check_savedmodel.py with `python`; its findings, with `error` set on any failure."""
    from tools import check_savedmodel

    try:
        done = subprocess.run(
            [python, CHECKER, f"--saved_model_dir={saved_model_dir}"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return check_savedmodel.empty_result(f"no answer within {timeout} s")
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return check_savedmodel.empty_result(
            f"check_savedmodel.py failed: {_last_line(done.stderr)}"
        )
    if not result["tensorflow"].startswith(release + "."):
        result["matches"] = False
        result["error"] = (
            f"{python} runs TensorFlow {result['tensorflow']}, not {release}: delete "
            f"{os.path.dirname(os.path.dirname(python))} and run again"
        )
    elif result["error"]:
        # TensorFlow's exception says "Cannot deserialize computation"; MLIR
        # wrote the reason to stderr, as `loc(...): error: <reason>`.
        reasons = re.findall(r"^loc\(.*?\): error: (.*)$", done.stderr, re.MULTILINE)
        if reasons:
            result["error"] += f" ({reasons[0]})"
    return result


def target_release(saved_model_dir: str, given: str) -> tuple[str, str]:
    """The oldest release that must serve the model, and why that one.

    nightly (given or recorded, as is a record without a release: JAX's newest format)
    names no release: then the TensorFlow that exported the model must run it.
    """
    if given and given.strip() != releases.NIGHTLY:
        return release_of(given), "--tf_serving_version"
    info = versions.read_export_info(saved_model_dir)
    recorded = info.get("tf_serving_version") or releases.NIGHTLY
    if not given and recorded != releases.NIGHTLY:
        return release_of(recorded), "the export's TF_SERVING_VERSION"
    if info.get("tensorflow"):
        return release_of(info["tensorflow"]), "nightly: the TensorFlow that exported it"
    raise CompatError(
        f"{saved_model_dir} does not say which release it was made for; give one: "
        "make compat TF_SERVING_VERSION=2.19"
    )


def format_table(results: dict[str, dict]) -> str:
    """The findings as a Markdown table, a row per release."""
    rows = [
        "| TF Serving | TensorFlow | loads | runs | max abs diff vs JAX | predict_images | error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for release, r in results.items():
        diff = "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.2g}"
        error = (r["error"] or "").replace("|", "\\|")
        rows.append(
            f"| {release} | {r['tensorflow'] or ''} | {_yes(r['loads'])} | {_yes(r['runs'])} "
            f"| {diff} | {_images(r.get('images'))} | {error} |"
        )
    return "\n".join(rows)


def _images(matches: bool | None) -> str:
    """The image signature's column: yes, no, or empty where the export has none."""
    return "" if matches is None else _yes(matches)


def main(argv: list[str]) -> None:
    del argv
    try:
        sys.exit(run())
    except (CompatError, releases.ReleaseError) as e:
        sys.exit(f"error: {e}")


def run() -> int:
    if problem := versions.served_name_problem(_MODEL.value):
        raise CompatError(problem)
    base_dir = os.path.join(_MODEL_PATH.value, _MODEL.value)
    try:
        version, saved_model_dir = versions.find_version(base_dir, _MODEL_VERSION.value)
    except LookupError as e:
        raise CompatError(f"{e}: export one first (make export).") from e
    # TensorFlow and JAX load only now, so that a bad flag or a missing export is told at once.
    import saved_model_lib
    from tools import check_savedmodel

    print(f"{_MODEL.value} version {version} ({saved_model_dir}):")
    print(formats.describe(saved_model_lib.xla_call_modules(saved_model_dir)), flush=True)
    if not _RUN.value:
        return 0
    checked = sorted({release_of(v) for v in _VERSIONS.value}, key=release_key)
    target, why = target_release(saved_model_dir, _TF_SERVING_VERSION.value)
    # A release without a server (2.21) is a TensorFlow runtime alone: say so, and advise an
    # export for a release that has a server.
    known = releases.RELEASES.get(target)
    served = bool(known and known.image_tag)
    export_for = target if served else releases.newest_with_image().release
    runtime = "TensorFlow Serving" if served else "TensorFlow"
    print(f"Must serve it: {runtime} {target} and newer ({why}).", flush=True)
    results = {}
    for release in checked:
        try:
            python = release_python(_VENV_DIR.value, release, _TIMEOUT.value)
        except (CompatError, subprocess.TimeoutExpired) as e:
            results[release] = check_savedmodel.empty_result(str(e))
            continue
        results[release] = check_release(python, release, saved_model_dir, _TIMEOUT.value)
    print(format_table(results))
    passed = sum(r["matches"] for r in results.values())
    print(f"{passed}/{len(results)} releases run {_MODEL.value} version {version} as JAX does.")
    required = [r for r in checked if release_key(r) >= release_key(target)]
    if not required:
        print(f"No checked release is {target} or newer: add one to COMPAT_VERSIONS.")
    failed = [r for r in required if not results[r]["matches"]]
    if failed:
        print(
            f"FAILED: TensorFlow Serving {', '.join(failed)} must serve it and cannot. Export for "
            f"the oldest release you serve with (make export TF_SERVING_VERSION={export_for}), "
            "or serve with a release that passes."
        )
        return 1
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


if __name__ == "__main__":
    app.run(main)
