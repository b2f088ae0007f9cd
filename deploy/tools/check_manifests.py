#!/usr/bin/env python3
"""Asserts what the apitap DaemonSet must be, on a rendered manifest stream.

Reads one multi-document YAML stream (the output of `kubectl kustomize deploy/kubernetes` or
`helm template deploy/helm/apitap`) and checks the properties the agent depends on and the
hardening it promises: host network and PID namespace, exactly the needed capabilities,
read-only root and host paths, a read-only ClusterRole (pods, ReplicaSets, Jobs) bound to the
agent's account, NODE_NAME from the downward API, the config file mounted, probes, port,
scrape annotations, resources, tolerations, token from a Secret, service and monitor
selectors that match the pods. Prints one summary line; every violation on its own line
after it; exits 1 on any violation.

usage: check_manifests.py LABEL FILE [--podmonitor] [--namespace] [--token-secret]
                          [--allow-cap SYS_RESOURCE] [--allow-cap SYS_ADMIN]
"""

import argparse
import re
import sys

import yaml

PORT = 9464
REQUIRED_CAPS = {"BPF", "PERFMON", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
# What discovery may read of the API: these resources, these verbs, nothing else.
RBAC = {"": {"pods"}, "apps": {"replicasets"}, "batch": {"jobs"}}
READ_VERBS = {"get", "list", "watch"}
UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value):
    """Kubernetes resource quantity ("100m", "64Mi", 2) as a float."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    if not match or match.group(2) not in UNITS:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


class Checker:
    def __init__(self):
        self.failures = []
        self.count = 0

    def expect(self, condition, message):
        self.count += 1
        if not condition:
            self.failures.append(message)
        return bool(condition)


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_container(c, container, allowed_extra_caps, token_secret):
    sc = container.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    added = set(caps.get("add") or [])
    c.expect(REQUIRED_CAPS <= added, f"capabilities.add lacks {sorted(REQUIRED_CAPS - added)}")
    c.expect(
        added <= REQUIRED_CAPS | allowed_extra_caps,
        f"capabilities.add has more than needed: {sorted(added - REQUIRED_CAPS)}",
    )
    c.expect(caps.get("drop") == ["ALL"], "capabilities.drop must be [ALL]")
    c.expect(sc.get("privileged") is False, "privileged must be false")
    c.expect(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    c.expect(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")

    ports = container.get("ports") or []
    metrics = [p for p in ports if p.get("name") == "metrics"]
    c.expect(
        metrics and metrics[0].get("containerPort") == PORT,
        f"container port {PORT} named metrics is missing",
    )
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = ((container.get(probe) or {}).get("httpGet")) or {}
        c.expect(get.get("path") == path, f"{probe} must GET {path}")
        c.expect(get.get("port") in ("metrics", PORT), f"{probe} must use the metrics port")

    resources = container.get("resources") or {}
    for kind in ("cpu", "memory"):
        req = (resources.get("requests") or {}).get(kind)
        lim = (resources.get("limits") or {}).get(kind)
        if c.expect(req is not None and lim is not None, f"resources need {kind} request and limit"):
            c.expect(quantity(req) <= quantity(lim), f"{kind} request {req} exceeds limit {lim}")

    args = [str(a) for a in container.get("args") or []]
    c.expect(args[:1] == ["run"], f"args must start with the run subcommand, got {args[:1]}")
    joined = " ".join(args)
    c.expect(f"--listen 0.0.0.0:{PORT}" in joined, f"args need --listen 0.0.0.0:{PORT}")
    c.expect("--data-dir " in joined, "args need --data-dir")
    c.expect("--config /etc/apitap/apitap.toml" in joined, "args need --config /etc/apitap/apitap.toml")
    if "--attach-mode" in args:
        i = args.index("--attach-mode")
        mode = args[i + 1] if i + 1 < len(args) else None
        c.expect(mode in ("auto", "tcx", "netlink"), f"--attach-mode must be auto, tcx or netlink, got {mode}")

    env = {e.get("name"): e for e in container.get("env") or []}
    if token_secret:
        ref = ((env.get("APITAP_API_TOKEN") or {}).get("valueFrom") or {}).get("secretKeyRef")
        c.expect(ref and ref.get("name") and ref.get("key"), "APITAP_API_TOKEN must come from a Secret")
    c.expect(
        "value" not in (env.get("APITAP_API_TOKEN") or {}),
        "APITAP_API_TOKEN must never be a plain value",
    )
    node = ((env.get("NODE_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
    c.expect(node.get("fieldPath") == "spec.nodeName", "NODE_NAME must come from the downward API (spec.nodeName)")

    mounts = {m.get("mountPath"): m for m in container.get("volumeMounts") or []}
    c.expect(mounts.get("/sys/kernel/btf", {}).get("readOnly") is True, "/sys/kernel/btf must be mounted read-only")
    c.expect(mounts.get("/sys/fs/bpf", {}).get("readOnly") is True, "/sys/fs/bpf must be mounted read-only")
    c.expect(not any(p == "/proc" or p.startswith("/proc/") for p in mounts), "/proc must not be mounted (hostPID shows the node's processes)")
    for path in ("/var/log/pods", "/host/sys/fs/cgroup", "/etc/apitap"):
        c.expect(mounts.get(path, {}).get("readOnly") is True, f"{path} must be mounted read-only")


def check_daemonset(c, docs, args):
    sets = by_kind(docs, "DaemonSet")
    if not c.expect(len(sets) == 1, f"expected one DaemonSet, found {len(sets)}"):
        return None
    ds = sets[0]
    template = ds["spec"]["template"]
    pod = template["spec"]
    pod_labels = template["metadata"].get("labels") or {}
    c.expect(labels_match(ds["spec"]["selector"]["matchLabels"], pod_labels), "DaemonSet selector does not match its pod labels")
    c.expect(pod.get("hostNetwork") is True, "hostNetwork must be true")
    c.expect(pod.get("dnsPolicy") == "ClusterFirstWithHostNet", "dnsPolicy must be ClusterFirstWithHostNet")
    c.expect(pod.get("hostPID") is True, "hostPID must be true (servers in every pod's network namespace)")
    c.expect(not pod.get("hostIPC"), "hostIPC must not be set")
    c.expect((pod.get("securityContext") or {}).get("runAsUser") == 0, "pod runAsUser must be 0")
    c.expect(pod.get("automountServiceAccountToken") is True, "the pod must mount its API token (read-only RBAC)")
    c.expect(
        any(t.get("operator") == "Exists" and not t.get("key") for t in pod.get("tolerations") or []),
        "tolerations must include {operator: Exists} (every taint)",
    )
    annotations = template["metadata"].get("annotations") or {}
    c.expect(annotations.get("prometheus.io/scrape") == "true", "pod annotation prometheus.io/scrape must be \"true\"")
    c.expect(annotations.get("prometheus.io/port") == str(PORT), f"pod annotation prometheus.io/port must be \"{PORT}\"")
    c.expect(annotations.get("prometheus.io/path") == "/metrics", "pod annotation prometheus.io/path must be /metrics")

    accounts = {d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")}
    c.expect(pod.get("serviceAccountName") in accounts, f"serviceAccountName {pod.get('serviceAccountName')} is not defined")

    containers = pod.get("containers") or []
    if c.expect(len(containers) == 1, "expected one container"):
        extra = set(args.allow_cap or [])
        check_container(c, containers[0], extra, args.token_secret)

    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for mount in containers[0].get("volumeMounts") or [] if containers else []:
        c.expect(mount["name"] in volumes, f"volumeMount {mount['name']} has no volume")
    check_rbac(c, docs, pod.get("serviceAccountName"))
    check_config(c, docs, pod)
    return pod_labels


def check_rbac(c, docs, account):
    roles = by_kind(docs, "ClusterRole")
    if not c.expect(len(roles) == 1, f"expected one ClusterRole, found {len(roles)}"):
        return
    role = roles[0]
    granted = {}
    for rule in role.get("rules") or []:
        verbs = set(rule.get("verbs") or [])
        c.expect(verbs <= READ_VERBS, f"ClusterRole grants more than read: {sorted(verbs - READ_VERBS)}")
        for group in rule.get("apiGroups") or []:
            granted.setdefault(group, set()).update(rule.get("resources") or [])
    c.expect(granted == RBAC, f"ClusterRole resources must be exactly {RBAC}, got {granted}")
    bindings = by_kind(docs, "ClusterRoleBinding")
    if not c.expect(len(bindings) == 1, f"expected one ClusterRoleBinding, found {len(bindings)}"):
        return
    b = bindings[0]
    c.expect(b.get("roleRef", {}).get("name") == role["metadata"]["name"], "the binding does not reference the ClusterRole")
    subjects = b.get("subjects") or []
    c.expect(
        any(s.get("kind") == "ServiceAccount" and s.get("name") == account for s in subjects),
        f"the binding's subjects do not include ServiceAccount {account}",
    )


def check_config(c, docs, pod):
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    maps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    refs = [v["configMap"]["name"] for v in volumes.values() if "configMap" in v]
    config = [maps[n] for n in refs if n in maps and "apitap.toml" in (maps[n].get("data") or {})]
    if c.expect(len(config) == 1, "a ConfigMap with apitap.toml must be mounted"):
        text = config[0]["data"]["apitap.toml"]
        c.expect("[discovery]" in text and 'pod_logs_root = "/var/log/pods"' in text, "apitap.toml must set the discovery host paths")


def check_service(c, docs, pod_labels):
    services = by_kind(docs, "Service")
    if not c.expect(len(services) == 1, f"expected one Service, found {len(services)}"):
        return
    spec = services[0]["spec"]
    c.expect(spec.get("clusterIP") == "None", "the Service must be headless (clusterIP: None)")
    c.expect(labels_match(spec.get("selector"), pod_labels), "the Service selector does not match the pods")
    ports = spec.get("ports") or []
    c.expect(
        any(p.get("port") == PORT and p.get("name") == "metrics" for p in ports),
        f"the Service needs port {PORT} named metrics",
    )


def check_podmonitor(c, docs, pod_labels):
    monitors = by_kind(docs, "PodMonitor")
    if not c.expect(len(monitors) == 1, f"expected one PodMonitor, found {len(monitors)}"):
        return
    m = monitors[0]
    c.expect(m.get("apiVersion") == "monitoring.coreos.com/v1", "PodMonitor apiVersion must be monitoring.coreos.com/v1")
    c.expect(labels_match(m["spec"]["selector"].get("matchLabels"), pod_labels), "the PodMonitor selector does not match the pods")
    c.expect(
        m["spec"].get("jobLabel") == "app.kubernetes.io/name" and pod_labels.get("app.kubernetes.io/name") == "apitap",
        "the PodMonitor must take job=\"apitap\" from the pod label app.kubernetes.io/name (the rules match job=\"apitap\")",
    )
    endpoints = m["spec"].get("podMetricsEndpoints") or []
    c.expect(
        any(e.get("port") == "metrics" and e.get("path") == "/metrics" for e in endpoints),
        "the PodMonitor must scrape port metrics at /metrics",
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("label")
    parser.add_argument("file")
    parser.add_argument("--podmonitor", action="store_true", help="a PodMonitor is expected")
    parser.add_argument("--namespace", action="store_true", help="a Namespace is expected")
    parser.add_argument("--token-secret", action="store_true", help="the token must come from a Secret")
    parser.add_argument("--allow-cap", action="append", help="an extra capability that may be added")
    args = parser.parse_args()

    with open(args.file, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    c = Checker()
    for d in docs:
        c.expect(d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"), f"document without apiVersion/kind/name: {d}")
    pod_labels = check_daemonset(c, docs, args)
    if pod_labels is not None:
        check_service(c, docs, pod_labels)
        if args.podmonitor:
            check_podmonitor(c, docs, pod_labels)
        else:
            c.expect(not by_kind(docs, "PodMonitor"), "no PodMonitor expected")
    if args.namespace:
        ns = by_kind(docs, "Namespace")
        if c.expect(len(ns) == 1, "expected one Namespace"):
            labels = ns[0]["metadata"].get("labels") or {}
            c.expect(labels.get("pod-security.kubernetes.io/enforce") == "privileged", "the Namespace must enforce the privileged Pod Security level")
        cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
        namespaces = {d["metadata"].get("namespace") for d in docs if d.get("kind") not in cluster_scoped}
        c.expect(namespaces == {ns[0]["metadata"]["name"]} if ns else False, f"objects are spread over namespaces {namespaces}")

    kinds = ", ".join(sorted(d["kind"] for d in docs))
    if c.failures:
        print(f"{args.label}: {len(c.failures)} of {c.count} assertions failed ({kinds})")
        for failure in c.failures:
            print(f"  - {failure}")
        return 1
    print(f"{args.label}: {c.count} assertions hold ({kinds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
