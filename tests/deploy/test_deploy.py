"""deploy/: `make manifests` renders, `make deploy-check` validates, and each mistake it
must catch is caught (a rendered manifest, mutated one mistake at a time)."""

import copy
import os

import pytest
from conftest import ROOT, run

from deploy import check, render
from serving import releases

IMAGE = "tensorflow/serving:2.20.0"
OLDEST = check.oldest_release("")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("deploy") / "out")
    render.render(
        out,
        str(ROOT / "serving" / "models.config"),
        str(ROOT / "serving"),
        IMAGE,
        "gs://bucket/models",
    )
    return check.load(out)


def problems(docs) -> list[str]:
    return check.schema_problems(docs) + check.policy_problems(docs, OLDEST)


def test_the_rendered_manifests_pass(rendered):
    kinds = sorted({doc["kind"] for _, doc in rendered})
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "InferenceService",
        "PersistentVolumeClaim", "PodDisruptionBudget", "Service",
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


def test_render_says_what_to_install_without_kubectl(monkeypatch, tmp_path):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    with pytest.raises(render.RenderError, match="kubectl is not installed"):
        render.kustomize(str(tmp_path))


@pytest.mark.parametrize("name, label", [("mnist_flax", "mnist-flax"), ("ResNet_50", "resnet-50")])
def test_dns_label(name, label):
    assert render.dns_label(name) == label


def test_make_deploy_check_and_the_deploy_command(tmp_path):
    out = tmp_path / "out"
    result = run(["make", "--no-print-directory", "deploy-check", f"DEPLOY_OUT={out}"])
    assert result.returncode == 0, result.stderr
    assert "objects valid (Kubernetes 1.32, strict)" in result.stdout
    assert os.path.isdir(out / "k8s" / "overlays" / "gcs")
    result = run(
        ["make", "-n", "--no-print-directory", "deploy", f"DEPLOY_OUT={out}", "OVERLAY=gcs"]
    )
    assert result.stdout.splitlines()[-1] == f"kubectl apply -k {out}/k8s/overlays/gcs"


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
