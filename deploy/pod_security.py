"""Kubernetes' restricted Pod Security Standard, rule by rule, on a rendered pod.

    problems = pod_problems(pod_spec, containers)  # [] when every rule holds

The rules are those of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(baseline and restricted), as the admission controller of a namespace labelled
`pod-security.kubernetes.io/enforce: restricted` applies them, plus two of the
project's: a read-only root file system and no service-account token.
"""

# Baseline: the sysctls a pod may set; restricted: the volume types it may use.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}


def pod_problems(pod: dict, containers: list[dict], annotations: dict | None = None) -> list[str]:
    """What breaks the restricted standard in a pod spec and its containers (all kinds)."""
    problems = []
    pod_context = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"host namespaces: {field} must not be true")
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctls: {sysctl.get('name')} is not a safe sysctl")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= VOLUME_TYPES:
            problems.append(
                f"volume types: volume {volume.get('name')} is {', '.join(sorted(kinds))}, "
                f"not one of {', '.join(sorted(VOLUME_TYPES))}"
            )
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and (
            value == "unconfined"
        ):
            problems.append(f"AppArmor: annotation {key} must not be unconfined")
    problems += _context_problems("the pod", pod_context)
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(
            "service-account token: automountServiceAccountToken must be false (the server "
            "calls no Kubernetes API)"
        )
    for container in containers:
        name = f"container {container.get('name', 'model')}"
        context = container.get("securityContext") or {}
        problems += [f"{p} ({name})" for p in _context_problems(name, context)]
        problems += [f"{p} ({name})" for p in _container_problems(context, pod_context)]
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"host ports: hostPort {port['hostPort']} ({name})")
    return problems


def _context_problems(what: str, context: dict) -> list[str]:
    """The rules a pod's and a container's securityContext share."""
    problems = []
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        problems.append(f"HostProcess: {what} must not set windowsOptions.hostProcess")
    if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append(f"AppArmor: {what}'s appArmorProfile must not be Unconfined")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        problems.append(f"SELinux: {what}'s seLinuxOptions may set only a container type")
    if (context.get("seccompProfile") or {}).get("type") == "Unconfined":
        problems.append(f"seccomp: {what}'s seccompProfile must not be Unconfined")
    if context.get("runAsNonRoot") is False:
        problems.append(f"running as non-root: {what} sets runAsNonRoot: false")
    if context.get("runAsUser") == 0:
        problems.append(f"running as non-root user: {what} sets runAsUser: 0")
    return problems


def _container_problems(context: dict, pod_context: dict) -> list[str]:
    """The rules a container must meet itself, or through its pod's securityContext."""
    problems = []
    if context.get("privileged"):
        problems.append("privileged containers: privileged must not be true")
    if context.get("procMount", "Default") != "Default":
        problems.append("/proc mount type: procMount must be Default")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("privilege escalation: allowPrivilegeEscalation must be false")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities: must drop ALL")
    added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"capabilities: may add only NET_BIND_SERVICE, adds {sorted(added)}")
    if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
        problems.append("running as non-root: runAsNonRoot must be true (pod or container)")
    group = context.get("runAsGroup", pod_context.get("runAsGroup"))
    if not group:
        problems.append("non-root group: runAsGroup must be set, and not 0 (pod or container)")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in SECCOMP_TYPES:
        problems.append("seccomp: seccompProfile must be RuntimeDefault or Localhost")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("read-only root file system: readOnlyRootFilesystem must be true")
    return problems
