#!/usr/bin/env python3
"""Structural check of deploy/compose/docker-compose.yml and the Grafana provisioning files
it mounts (no Docker engine or compose plugin is available here to run `compose config`).

Checks: images pinned to a tag; every bind-mounted host path exists; Prometheus is started
with the mounted config and the rules directory sits where prometheus.yml's rule_files
expect it; Grafana's provisioning mount holds a Prometheus data source whose URL matches
Prometheus' listen address, and the dashboard provider's path is the mounted dashboards
directory; the optional agent service has exactly the agent's capabilities.
Prints findings and one summary line; exits 1 on any finding.

usage: check_compose.py COMPOSE_FILE
"""

import pathlib
import sys

import yaml

AGENT_CAPS = {"BPF", "PERFMON", "NET_ADMIN"}


def bind_mounts(service, base):
    """(host path, container path) of the service's bind mounts (named volumes skipped)."""
    for volume in service.get("volumes") or []:
        host, _, rest = volume.partition(":")
        if host.startswith((".", "/")):
            yield (base / host).resolve(), rest.split(":")[0]


def main():
    path = pathlib.Path(sys.argv[1]).resolve()
    base = path.parent
    compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = compose.get("services") or {}
    findings = []

    for name, service in services.items():
        image = service.get("image", "")
        if ":" not in image.split("/")[-1] or image.endswith(":latest"):
            findings.append(f"{name}: image {image!r} is not pinned to a tag")
        for host, _ in bind_mounts(service, base):
            if not host.exists() and not str(host).startswith("/sys/"):
                findings.append(f"{name}: mounted path {host} does not exist")

    prom = services.get("prometheus") or {}
    mounts = {target: host for host, target in bind_mounts(prom, base)}
    config_flag = next((a.split("=", 1)[1] for a in prom.get("command") or [] if a.startswith("--config.file=")), None)
    listen = next((a.split("=", 1)[1] for a in prom.get("command") or [] if a.startswith("--web.listen-address=")), "0.0.0.0:9090")
    if config_flag not in mounts:
        findings.append(f"prometheus: --config.file={config_flag} is not a mounted file")
    else:
        config = yaml.safe_load(mounts[config_flag].read_text(encoding="utf-8"))
        config_dir = pathlib.PurePosixPath(config_flag).parent
        for rule_file in config.get("rule_files") or []:
            container_path = config_dir / rule_file
            if not any(str(container_path).startswith(target.rstrip("/") + "/") or str(container_path) == target for target in mounts):
                findings.append(f"prometheus: rule file {container_path} is not mounted")

    grafana = services.get("grafana") or {}
    gmounts = {target: host for host, target in bind_mounts(grafana, base)}
    provisioning = gmounts.get("/etc/grafana/provisioning")
    if provisioning is None:
        findings.append("grafana: /etc/grafana/provisioning is not mounted")
    else:
        ds = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
        sources = [d for d in ds.get("datasources") or [] if d.get("type") == "prometheus"]
        port = listen.rsplit(":", 1)[-1]
        if not sources:
            findings.append("grafana: no Prometheus data source provisioned")
        elif not sources[0].get("url", "").endswith(f":{port}"):
            findings.append(f"grafana: data source URL {sources[0].get('url')} does not reach Prometheus on :{port}")
        if prom.get("network_mode") != grafana.get("network_mode"):
            findings.append("grafana and prometheus must share the network mode the data source URL assumes")
        providers = yaml.safe_load((provisioning / "dashboards" / "apitap.yml").read_text(encoding="utf-8"))
        for provider in providers.get("providers") or []:
            target = provider.get("options", {}).get("path")
            if target not in gmounts:
                findings.append(f"grafana: dashboard provider path {target} is not mounted")
            elif not list(gmounts[target].glob("*.json")):
                findings.append(f"grafana: no dashboard JSON in {gmounts[target]}")

    agent = services.get("apitap")
    if agent:
        if set(agent.get("cap_add") or []) != AGENT_CAPS or agent.get("cap_drop") != ["ALL"]:
            findings.append(f"apitap: capabilities must be drop [ALL], add {sorted(AGENT_CAPS)}")
        if agent.get("network_mode") != "host":
            findings.append("apitap: needs network_mode host")
        if not agent.get("read_only"):
            findings.append("apitap: root filesystem must be read-only")

    for finding in findings:
        print(f"  - {finding}")
    status = "FAILED" if findings else "ok"
    print(f"{path.name}: {status}, services {', '.join(services)}; provisioning consistent" if not findings
          else f"{path.name}: {status}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
