"""deploy/pod_security.py and the NetworkPolicy check: the rendered pods meet the
restricted Pod Security Standard, and each rule broken in a rendered manifest (the
Deployment of k8s-pvc.yaml, an InferenceService) is caught by `make deploy-check`."""

import copy

import pytest

from deploy import check

OLDEST = check.oldest_release("")


def problems(docs) -> list[str]:
    """What make deploy-check's rules find (its schema check: test_deploy.py)."""
    return check.policy_problems(docs, OLDEST)


def first(docs, kind, file="k8s-pvc.yaml"):
    return next(
        d for f, d in docs if d["kind"] == kind and (kind == "InferenceService" or f == file)
    )


def pod(doc):
    return doc["spec"]["template"]["spec"]


def container(doc):
    return pod(doc)["containers"][0]


def context(doc):
    return container(doc)["securityContext"]


# (what to break in the Deployment's pod, the rule's words in the report)
RULES = [
    (lambda d: pod(d).update(hostNetwork=True), "host namespaces: hostNetwork"),
    (lambda d: pod(d).update(hostPID=True), "host namespaces: hostPID"),
    (lambda d: context(d).update(privileged=True), "privileged containers"),
    (lambda d: context(d)["capabilities"].update(drop=[]), "capabilities: must drop ALL"),
    (lambda d: context(d)["capabilities"].update(add=["SYS_ADMIN"]), "may add only NET_BIND"),
    (
        lambda d: pod(d)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "volume types: volume h is hostPath",
    ),
    (lambda d: container(d)["ports"][0].update(hostPort=8500), "host ports: hostPort 8500"),
    (
        lambda d: context(d).update(appArmorProfile={"type": "Unconfined"}),
        "AppArmor: container tf-serving's appArmorProfile",
    ),
    (
        lambda d: context(d).update(seLinuxOptions={"type": "spc_t"}),
        "SELinux: container tf-serving's seLinuxOptions",
    ),
    (lambda d: context(d).update(procMount="Unmasked"), "/proc mount type"),
    (
        lambda d: pod(d)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "seccomp: the pod's seccompProfile must not be Unconfined",
    ),
    (
        lambda d: pod(d)["securityContext"].pop("seccompProfile"),
        "seccomp: seccompProfile must be RuntimeDefault or Localhost",
    ),
    (
        lambda d: pod(d)["securityContext"].update(
            sysctls=[{"name": "kernel.msgmax", "value": "1"}]
        ),
        "sysctls: kernel.msgmax",
    ),
    (
        lambda d: context(d).update(windowsOptions={"hostProcess": True}),
        "HostProcess",
    ),
    (lambda d: context(d).pop("allowPrivilegeEscalation"), "privilege escalation"),
    (lambda d: pod(d)["securityContext"].pop("runAsNonRoot"), "runAsNonRoot must be true"),
    (lambda d: context(d).update(runAsUser=0), "running as non-root user: container tf-serving"),
    (lambda d: pod(d)["securityContext"].pop("runAsGroup"), "non-root group"),
    (lambda d: context(d).update(readOnlyRootFilesystem=False), "read-only root file system"),
    (lambda d: pod(d).pop("automountServiceAccountToken"), "service-account token"),
    (
        lambda d: pod(d).update(initContainers=[{"name": "init", "image": "busybox:1.37"}]),
        "privilege escalation: allowPrivilegeEscalation must be false (container init)",
    ),
]


def test_the_rendered_pods_meet_the_restricted_standard(rendered):
    for file, doc in rendered:
        if doc["kind"] == "Deployment":
            assert check.pod_security.pod_problems(pod(doc), pod(doc)["containers"]) == [], file
        if doc["kind"] == "InferenceService":
            predictor = doc["spec"]["predictor"]
            assert check.pod_security.pod_problems(predictor, [predictor["model"]]) == [], file
    assert check.schema_problems(rendered) + problems(rendered) == []


@pytest.mark.parametrize("change, message", RULES, ids=[m for _, m in RULES])
def test_each_broken_rule_is_caught(rendered, change, message):
    docs = copy.deepcopy(rendered)
    change(first(docs, "Deployment"))
    found = [p for p in problems(docs) if p.startswith("k8s-pvc.yaml: Deployment")]
    assert any(message in p for p in found), found


ISVC_RULES = [
    (lambda p: p["model"]["securityContext"].update(allowPrivilegeEscalation=True), "escalation"),
    (lambda p: p["securityContext"].pop("runAsNonRoot"), "runAsNonRoot must be true"),
    (lambda p: p["securityContext"].pop("seccompProfile"), "seccomp"),
    (lambda p: p["model"]["securityContext"]["capabilities"].pop("drop"), "must drop ALL"),
    (lambda p: p.pop("automountServiceAccountToken"), "service-account token"),
]


@pytest.mark.parametrize("change, message", ISVC_RULES, ids=[m for _, m in ISVC_RULES])
def test_each_broken_rule_is_caught_in_kserve(rendered, change, message):
    docs = copy.deepcopy(rendered)
    change(first(docs, "InferenceService")["spec"]["predictor"])
    assert any("InferenceService" in p and message in p for p in problems(docs))


def policy(docs):
    return first(docs, "NetworkPolicy")["spec"]


NETWORK_MISTAKES = [
    (lambda d: d.remove(next(x for x in d if x[1]["kind"] == "NetworkPolicy")), "no NetworkPolicy"),
    (lambda d: policy(d).update(ingress=[{}]), "an ingress rule must name its sources"),
    (lambda d: policy(d)["ingress"][0].pop("ports"), "an ingress rule must name its sources"),
    (
        lambda d: policy(d)["ingress"][0]["from"][0]["podSelector"].update(
            matchLabels={"app.kubernetes.io/name": "tf-serving"}
        ),
        "must admit pods labelled {'tf-serving-client': 'true'}",
    ),
    (lambda d: policy(d)["ingress"].pop(1), "must admit pods labelled {'app.kubernetes.io/name'"),
    (
        lambda d: policy(d)["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
        "a source without a podSelector",
    ),
    (lambda d: policy(d).update(podSelector={"matchLabels": {"app": "x"}}), "no NetworkPolicy"),
]


@pytest.mark.parametrize("change, message", NETWORK_MISTAKES, ids=[m for _, m in NETWORK_MISTAKES])
def test_each_network_policy_mistake_is_caught(rendered, change, message):
    docs = copy.deepcopy(rendered)
    change(docs)
    assert any(p.startswith("k8s-") and message in p for p in problems(docs)), problems(docs)


def test_the_network_policy_admits_the_client_label_and_prometheus(rendered):
    (spec,) = [
        d["spec"] for f, d in rendered if f == "k8s-pvc.yaml" and d["kind"] == "NetworkPolicy"
    ]
    client, prometheus = spec["ingress"]
    assert check._selects(client["from"][0]["podSelector"], check.CLIENT_LABEL)
    assert not check._selects(client["from"][0]["podSelector"], {"app": "other"})
    assert {p["port"] for p in client["ports"]} == {"grpc", "http"}
    assert check._selects(prometheus["from"][0]["podSelector"], check.PROMETHEUS_LABEL)
    assert [p["port"] for p in prometheus["ports"]] == ["http"]
