"""`make deploy-check`: validates what `make manifests` rendered, without a cluster.

    python -m deploy check --out=deploy/out [--tf_serving_version=2.19] [--overlay=gcs]

Two kinds of check, each printing what is wrong and where:

- Schemas, in strict mode (an unknown field is an error, as `kubectl apply
  --validate=strict` makes it): Kubernetes' own objects against the schemas
  kubernetes-validate bundles, InferenceServices against the part of KServe's
  CRD that deploy/schemas vendors.
- The policies a working deployment of a jax2tf model needs: the XLA flag; the
  ports; startup and readiness probes on a served model's status path; a
  liveness probe; CPU and memory requests equal to limits, with TensorFlow's
  thread pools sized to the CPU; an image pinned to a release that reads the
  export's format; names that match serving/models.config and are DNS labels;
  a storageUri at a model's folder, not at one of its versions.
- Security: Kubernetes' restricted Pod Security Standard, rule by rule
  (deploy/pod_security.py), on every pod (Deployments and InferenceServices),
  and a NetworkPolicy that admits to the serving ports only the client label's
  pods (CLIENT_LABEL) and Prometheus to the REST port.
"""

import functools
import glob
import os
import re

import jsonschema
import kubernetes_validate
import yaml
from google.protobuf import text_format

from deploy import pod_security
from deploy.render import PLACEHOLDER_BUCKET, kustomize, split_image
from serving import model_config, releases
from serving.env import DEFAULTS

HERE = os.path.dirname(os.path.abspath(__file__))
# The Kubernetes release whose schemas the objects must pass.
KUBERNETES_VERSION = "1.32"
XLA_FLAG = "--xla_cpu_compilation_enabled=true"
PORTS = {"grpc": int(DEFAULTS["GRPC_PORT"]), "http": int(DEFAULTS["REST_PORT"])}
ISVC_SCHEMA = os.path.join(HERE, "schemas", "inferenceservice-v1beta1.yaml")
# The label a pod needs to call the servers (deploy/k8s/base/networkpolicy.yaml), and Prometheus'.
CLIENT_LABEL = {"tf-serving-client": "true"}
PROMETHEUS_LABEL = {"app.kubernetes.io/name": "prometheus"}


def load_applied(folder: str, kubectl: str) -> list[tuple[str, dict]]:
    """(file name, object) for every object of folder that a cluster would be sent, named as
    in folder/rendered: each overlay as `kubectl kustomize` renders it now, then kserve/.

    Rendered now, not read from rendered/, so that what is checked is what `kubectl apply
    -k` applies, edits to folder included.
    """
    docs = []
    overlays = os.path.join(folder, "k8s", "overlays")
    for overlay in sorted(os.listdir(overlays)):
        text = kustomize(os.path.join(overlays, overlay), kubectl)
        docs += [(f"k8s-{overlay}.yaml", d) for d in yaml.safe_load_all(text) if d]
    for path in sorted(glob.glob(os.path.join(folder, "kserve", "*.yaml"))):
        with open(path) as f:
            docs += [(f"kserve-{os.path.basename(path)}", d) for d in yaml.safe_load_all(f) if d]
    return docs


def where(file: str, doc: dict) -> str:
    return f"{file}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"


# ---- Schemas ---------------------------------------------------------------------


def schema_problems(docs: list[tuple[str, dict]]) -> list[str]:
    problems = []
    for file, doc in docs:
        try:
            if doc.get("kind") == "InferenceService":
                _isvc_validator().validate(doc)
            else:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
            path = "/".join(str(p) for p in e.path)
            problems.append(f"{where(file, doc)}: {e.message} (at {path or 'the top'})")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{where(file, doc)}: no schema for {doc.get('apiVersion')}")
    return problems


@functools.cache
def _isvc_validator() -> jsonschema.Draft7Validator:
    with open(ISVC_SCHEMA) as f:
        return jsonschema.Draft7Validator(_strict(yaml.safe_load(f)))


def _strict(schema):
    """A CRD schema in strict mode: an object's fields are only those it lists."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        if schema.get("x-kubernetes-int-or-string"):
            schema = {k: v for k, v in schema.items() if k != "type"}
            schema["type"] = ["integer", "string"]
    elif isinstance(schema, list):
        schema = [_strict(s) for s in schema]
    return schema


# ---- Policies ----------------------------------------------------------------------


def overlay_problem(docs: list[tuple[str, dict]], overlay: str) -> str | None:
    """Why `make deploy` must not apply the overlay, if it must not."""
    objects = [doc for file, doc in docs if file == f"k8s-{overlay}.yaml"]
    if not objects:
        files = {file for file, _ in docs if file.startswith("k8s-")}
        names = sorted(f.removeprefix("k8s-").removesuffix(".yaml") for f in files)
        return f"no overlay {overlay!r} to apply: OVERLAY={'|'.join(names)}"
    if PLACEHOLDER_BUCKET in yaml.safe_dump_all(objects):
        return (
            f"the {overlay} overlay reads the models from {PLACEHOLDER_BUCKET}, a placeholder, "
            "so its pods would find no model. Render it for your bucket, then deploy: "
            f"make manifests MODELS_URI=gs://your-bucket/models && make deploy OVERLAY={overlay}"
        )
    return None


def oldest_release(tf_serving_version: str) -> str:
    """The oldest TensorFlow Serving release that reads the export.

    An export for a release names it (empty: the default release); JAX's newest
    format (nightly) is read by the releases of the newest calling convention, by
    serving/releases.tsv. Raises ReleaseError for a release without a server (2.21).
    """
    release = releases.target(tf_serving_version)
    if release:
        return release.release
    table = releases.RELEASES.values()
    newest = max(r.calling_convention_version for r in table)
    return min(
        (r.release for r in table if r.calling_convention_version == newest),
        key=releases.release_key,
    )


def tag_problem(tag: str, oldest: str) -> str | None:
    """Why an image tag or runtimeVersion cannot be trusted to serve the export, if it cannot."""
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(-gpu)?", tag or "")
    if not match:
        return f"image tag {tag!r} is not pinned to a release (2.20.0): nightly and latest move"
    release = f"{match[1]}.{match[2]}"
    if releases.release_key(release) < releases.release_key(oldest):
        return (
            f"TensorFlow Serving {tag} cannot read the export, which needs {oldest} or newer "
            "(re-export with TF_SERVING_VERSION, or pin a newer image)"
        )
    return None


def policy_problems(docs: list[tuple[str, dict]], oldest: str) -> list[str]:
    problems = []
    configs = [
        (file, doc)
        for file, doc in docs
        if doc.get("kind") == "ConfigMap" and "models.config" in doc.get("data", {})
    ]
    for file, doc in docs:
        kind = doc.get("kind")
        if kind == "Deployment":
            problems += _deployment(file, doc, oldest, configs)
        elif kind == "Service":
            problems += _service(file, doc)
        elif kind == "InferenceService":
            problems += _inference_service(file, doc, oldest)
    for manifest in sorted({file for file, _ in docs if file.startswith("k8s-")}):
        kinds = {doc.get("kind") for file, doc in docs if file == manifest}
        for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            if kind not in kinds:
                problems.append(f"{manifest}: no {kind}")
        objects = [doc for file, doc in docs if file == manifest]
        problems += network_policy_problems(objects, manifest)
        namespaces = {
            d.get("metadata", {}).get("namespace") for d in objects if d.get("kind") != "Namespace"
        }
        if len(namespaces) != 1 or None in namespaces:
            problems.append(
                f"{manifest}: the objects must share one namespace (kustomization's namespace:, "
                f"in the overlay too); they are in {sorted(map(str, namespaces))}"
            )
    return problems


def _models(configs, file: str) -> list[str]:
    names = []
    for config_file, doc in configs:
        if config_file == file:
            config = text_format.Parse(
                doc["data"]["models.config"], model_config.ModelServerConfig()
            )
            names += [m.name for m in config.model_config_list.config]
    return names


def _deployment(file: str, doc: dict, oldest: str, configs) -> list[str]:
    problems, here = [], where(file, doc)
    pod = doc["spec"]["template"]["spec"]
    containers = pod["containers"]
    every = containers + pod.get("initContainers", []) + pod.get("ephemeralContainers", [])
    annotations = doc["spec"]["template"].get("metadata", {}).get("annotations")
    problems += [
        f"{here}: restricted: {p}" for p in pod_security.pod_problems(pod, every, annotations)
    ]
    (container,) = [c for c in containers if "serving" in c.get("image", "")] or [containers[0]]
    args = container.get("args", [])
    if XLA_FLAG not in args:
        problems.append(f"{here}: args lack {XLA_FLAG}: a jax2tf model fails its first request")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    if ports != PORTS:
        problems.append(f"{here}: container ports {ports}, expected {PORTS} (named)")
    image = container.get("image", "")
    problem = tag_problem(split_image(image)[1], oldest)
    if problem:
        problems.append(f"{here}: {problem}")
    models = _models(configs, file)
    for probe in ("startupProbe", "readinessProbe"):
        path = container.get(probe, {}).get("httpGet", {}).get("path", "")
        port = container.get(probe, {}).get("httpGet", {}).get("port")
        match = re.fullmatch(r"/v1/models/([^/]+)(/metadata)?", path)
        if not match or match[1] not in models or port not in ("http", PORTS["http"]):
            problems.append(
                f"{here}: {probe} must get /v1/models/<model>[/metadata] on the REST port for a "
                f"model of models.config ({', '.join(models) or 'none found'}); it gets "
                f"{path or 'nothing'} on {port}"
            )
    if "livenessProbe" not in container:
        problems.append(f"{here}: no livenessProbe: a hung server would never be restarted")
    resources = container.get("resources", {})
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    for resource in ("cpu", "memory"):
        if resource not in limits or requests.get(resource) != limits.get(resource):
            problems.append(
                f"{here}: {resource} requests ({requests.get(resource)}) must equal limits "
                f"({limits.get(resource)}), so that the pod's CPUs are its own"
            )
    cpus = _cpus(limits.get("cpu"))
    for pool in ("intra", "inter"):
        flag = f"--tensorflow_{pool}_op_parallelism="
        values = [a.removeprefix(flag) for a in args if a.startswith(flag)]
        if cpus and values != [str(cpus)]:
            problems.append(
                f"{here}: {flag}{cpus} matches the CPU limit; it has {values or 'none'} "
                "(TensorFlow would size its threads to the node's cores)"
            )
    return problems


def _cpus(value) -> int | None:
    if value is None:
        return None
    text = str(value)
    return max(1, int(text[:-1]) // 1000) if text.endswith("m") else max(1, int(float(text)))


def _service(file: str, doc: dict) -> list[str]:
    ports = {p.get("name"): p.get("port") for p in doc["spec"].get("ports", [])}
    here = where(file, doc)
    if "grpc" in ports:
        if doc["spec"].get("clusterIP") != "None":
            return [f"{here}: the gRPC Service must be headless (clusterIP: None), or each client "
                    "sticks to one pod"]  # fmt: skip
        if ports["grpc"] != PORTS["grpc"]:
            return [f"{here}: gRPC on port {ports['grpc']}, expected {PORTS['grpc']}"]
    if "http" in ports and ports["http"] != PORTS["http"]:
        return [f"{here}: REST on port {ports['http']}, expected {PORTS['http']}"]
    return []


def _inference_service(file: str, doc: dict, oldest: str) -> list[str]:
    problems, here = [], where(file, doc)
    name = doc["metadata"]["name"]
    predictor = doc["spec"]["predictor"]
    problems += [
        f"{here}: restricted: {p}"
        for p in pod_security.pod_problems(predictor, [predictor.get("model", {})])
    ]
    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
        problems.append(f"{here}: the name must be a DNS label (mnist-flax, not mnist_flax)")
    model = doc["spec"]["predictor"].get("model", {})
    if model.get("modelFormat", {}).get("name") != "tensorflow":
        problems.append(f"{here}: modelFormat must be tensorflow (KServe's TensorFlow Serving)")
    problem = tag_problem(model.get("runtimeVersion", ""), oldest)
    if problem:
        problems.append(f"{here}: runtimeVersion: {problem}")
    if XLA_FLAG not in model.get("args", []):
        problems.append(f"{here}: args lack {XLA_FLAG}: a jax2tf model fails its first request")
    uri = model.get("storageUri", "")
    if re.search(r"/\d+/?$", uri):
        problems.append(
            f"{here}: storageUri {uri} is a version folder; give the model's folder, which holds "
            "the versions"
        )
    predictor = doc["spec"]["predictor"]
    for field in ("minReplicas", "maxReplicas", "scaleTarget"):
        if field not in predictor:
            problems.append(f"{here}: predictor.{field} is missing")
    return problems


def network_policy_problems(objects: list[dict], manifest: str) -> list[str]:
    """Why the manifest's NetworkPolicies do not limit its Deployment's pods to the
    client label's pods (gRPC and REST) and Prometheus (REST, for the metrics page)."""
    pods = [
        d["spec"]["template"].get("metadata", {}).get("labels", {})
        for d in objects
        if d.get("kind") == "Deployment"
    ]
    policies = [
        d
        for d in objects
        if d.get("kind") == "NetworkPolicy"
        and "Ingress" in d["spec"].get("policyTypes", ["Ingress"])
        and all(_selects(d["spec"].get("podSelector", {}), labels) for labels in pods)
    ]
    if not policies:
        return [f"{manifest}: no NetworkPolicy limits who reaches the servers' pods"]
    problems = []
    admitted = {"client": set(), "prometheus": set()}
    for policy in policies:
        here = where(manifest, policy)
        for rule in policy["spec"].get("ingress", []):
            ports = {str(p.get("port")) for p in rule.get("ports", [])}
            if not rule.get("from") or not ports or not ports <= _serving_ports():
                problems.append(
                    f"{here}: an ingress rule must name its sources (from) and only serving "
                    f"ports ({', '.join(sorted(_serving_ports()))}); it has from="
                    f"{rule.get('from')}, ports={sorted(ports) or 'all'}"
                )
                continue
            for peer in rule["from"]:
                selector = peer.get("podSelector")
                if selector is None or "ipBlock" in peer:
                    problems.append(f"{here}: a source without a podSelector admits too much")
                elif _selects(selector, CLIENT_LABEL) and "namespaceSelector" not in peer:
                    admitted["client"] |= ports
                elif _selects(selector, PROMETHEUS_LABEL) and "namespaceSelector" in peer:
                    admitted["prometheus"] |= ports
    for who, label, ports in (
        ("client", CLIENT_LABEL, {"grpc", "http"}),
        ("prometheus", PROMETHEUS_LABEL, {"http"}),
    ):
        if not ports <= admitted[who] | {_names().get(p, p) for p in admitted[who]}:
            problems.append(
                f"{manifest}: the NetworkPolicy must admit pods labelled {label} to "
                f"{', '.join(sorted(ports))} (admits {sorted(admitted[who]) or 'none'})"
            )
    return problems


def _serving_ports() -> set[str]:
    return set(PORTS) | {str(p) for p in PORTS.values()}


def _names() -> dict[str, str]:
    return {str(number): name for name, number in PORTS.items()}


def _selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects pods with `labels`."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, values = expression.get("key"), expression.get("values", [])
        operator = expression.get("operator")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
