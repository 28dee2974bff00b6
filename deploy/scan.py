"""checkov's Kubernetes checks on the objects `make deploy-check` validates, offline.

    problems = checkov_problems(docs, ".venv-checkov/bin/checkov")  # [] when none

checkov runs in its own virtualenv (deploy/checkov-requirements.txt says why),
so this runs its command on the objects as rendered now, and reads its JSON
report. A finding is fixed in the manifest, or skipped there with a reason: a
`checkov.io/skip<N>: CKV_K8S_<id>=<why>` annotation; a skip without a reason
is a problem too. checkov does not see InferenceServices (it has no checks for
KServe's kinds): deploy/pod_security.py checks their pods.
"""

import collections
import json
import os
import subprocess
import tempfile

import yaml

# Offline: no download of the platform's configs (--skip-download), no fetch of
# the checks' guideline links (BC_SKIP_MAPPING).
FLAGS = ["--framework", "kubernetes", "--skip-download", "--output", "json"]
ENVIRONMENT = {"BC_SKIP_MAPPING": "TRUE"}


class ScanError(Exception):
    """checkov could not run, or said something this cannot read."""


def checkov_problems(docs: list[tuple[str, dict]], checkov: str) -> list[str]:
    """Every failed check, and every skip without a reason, as `file: Kind name: CKV...`."""
    if not os.access(checkov, os.X_OK):
        raise ScanError(
            f"checkov not found at {checkov}: `make setup` makes its virtualenv "
            "(deploy/checkov-requirements.txt), or pass CHECKOV=/path/to/checkov"
        )
    by_file = collections.defaultdict(list)
    for file, doc in docs:
        by_file[file].append(doc)
    with tempfile.TemporaryDirectory() as folder:
        for file, objects in by_file.items():
            with open(os.path.join(folder, file), "w") as f:
                yaml.safe_dump_all(objects, f)
        result = subprocess.run(
            [os.path.abspath(checkov), "--directory", folder, *FLAGS],
            capture_output=True,
            text=True,
            env={**os.environ, **ENVIRONMENT},
            cwd=folder,  # Where checkov puts its scratch files.
        )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise ScanError(f"checkov failed: {result.stderr.strip()[-2000:]}") from None
    results = report.get("results", {}) if isinstance(report, dict) else {}
    problems = []
    for check in results.get("failed_checks", []):
        problems.append(f"{_where(check)}: {check['check_id']} {check['check_name']}")
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        if not reason.strip() or reason == "No comment provided":
            problems.append(f"{_where(check)}: {check['check_id']} is skipped without a reason")
    return problems


def _where(check: dict) -> str:
    kind, _, name = check.get("resource", "").partition(".")
    return f"{check.get('file_path', '').lstrip('/')}: {kind} {name.partition('.')[2] or name}"
