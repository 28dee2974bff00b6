"""deploy/scan.py: checkov's Kubernetes checks find nothing unjustified in the rendered
manifests, and a finding, or a skip without a reason, put back into one is reported."""

import copy
import os

import pytest
from conftest import ROOT

from deploy import scan

CHECKOV = str(ROOT / ".venv-checkov" / "bin" / "checkov")
pytestmark = pytest.mark.skipif(
    not os.access(CHECKOV, os.X_OK), reason="no .venv-checkov: make setup makes it"
)


def deployments(docs):
    return [d for f, d in docs if d["kind"] == "Deployment"]


def test_checkov_finds_nothing_unjustified(rendered):
    assert scan.checkov_problems(rendered, CHECKOV) == []


def test_findings_and_skips_without_a_reason_are_reported(rendered):
    docs = copy.deepcopy(rendered)
    for deployment in deployments(docs):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container.pop("imagePullPolicy")  # CKV_K8S_15
        container["securityContext"]["readOnlyRootFilesystem"] = False  # CKV_K8S_22
        deployment["metadata"]["annotations"]["checkov.io/skip1"] = "CKV_K8S_43"
    found = scan.checkov_problems(docs, CHECKOV)
    for file in ("k8s-gcs.yaml", "k8s-pvc.yaml"):
        assert f"{file}: Deployment tf-serving: CKV_K8S_43 is skipped without a reason" in found
        assert any(p.startswith(f"{file}: Deployment tf-serving: CKV_K8S_15 ") for p in found)
        assert any(p.startswith(f"{file}: Deployment tf-serving: CKV_K8S_22 ") for p in found)


def test_without_checkov_it_says_how_to_get_it(rendered, tmp_path):
    with pytest.raises(scan.ScanError, match="`make setup` makes its virtualenv"):
        scan.checkov_problems(rendered, str(tmp_path / "checkov"))


def test_its_pins_are_exact_and_name_checkov():
    lines = (ROOT / "deploy" / "checkov-requirements.txt").read_text().splitlines()
    # A pin's first line (hashes, if any, follow on indented lines).
    pins = [line.split()[0] for line in lines if line[:1] not in ("", "#", " ")]
    assert pins and all("==" in p for p in pins), pins
    assert any(p.startswith("checkov==") for p in pins)
