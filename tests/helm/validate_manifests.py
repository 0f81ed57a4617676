#!/usr/bin/env python3
"""Offline validation of manifests rendered by `helm template`.

usage: validate_manifests.py RENDERED.yaml [-k 1.30.0 -k 1.37.0]

1. Built-in kinds: kubernetes-validate's bundled JSON schemas, strict mode (unknown
   fields are errors), for every -k version. A kind without a schema is an error.
2. CRDs (ServiceMonitor, PrometheusRule: monitoring.coreos.com/v1; ScaledObject:
   keda.sh/v1alpha1): kubernetes-validate has no schemas for them, so they are checked
   against the minimal structural schemas in crd-schemas/ (written for these tests:
   required fields, types, no unknown spec fields for what the chart renders).
3. Chart policy: no Secret objects; hardened securityContext; probes on
   /healthz and /readyz; snapshot emptyDir; rendered TOML parses, keeps integers as
   integers, holds no secret values, and secret file paths point at mounted volumes;
   sync topology (processors read intel from the topic); dashboard ConfigMap JSON.

Runs with the kubernetes-validate venv's python (it has PyYAML, jsonschema).
"""
import argparse
import json
import os
import sys
import tomllib

import jsonschema
import yaml
from kubernetes_validate import utils as kv

HERE = os.path.dirname(os.path.abspath(__file__))
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
}
# The TOML tree the binary reads (section -> keys; src/config.rs). Catches chart/binary
# drift even without the binary (run.sh also runs `wazuh-misp check-config` when built).
CONFIG_TREE = {
    "kafka": {"brokers", "group_id", "exactly_once", "transactional_id", "sasl_password",
              "sasl_password_file", "compression", "linger_ms", "librdkafka"},
    "topics": {"input", "enriched", "iocs", "dlq", "indicators"},
    "input": {"nested_keys", "max_message_bytes"},
    "pipeline": {"workers", "max_in_flight", "drain_timeout_ms", "commit_interval_ms"},
    "intel": {"files", "warninglists_dir", "include_non_ids", "source", "snapshot_path", "min_indicators",
              "reload_interval_secs"},
    "output": {"pass_through"},
    "misp": {"url", "api_key", "api_key_file", "ca_file", "verify_tls", "timeout_secs", "sync_interval_secs",
             "full_sync_interval_secs", "page_size"},
    "sightings": {"enabled", "source"},
    "sharing": {"enabled", "min_rule_level", "push_to_misp", "dedup_ttl_secs"},
    "server": {"listen", "enabled"},
    "log": {"level", "format"},
}
INT_KEYS = {
    ("kafka", "linger_ms"), ("input", "max_message_bytes"),
    ("pipeline", "workers"), ("pipeline", "max_in_flight"), ("pipeline", "drain_timeout_ms"),
    ("pipeline", "commit_interval_ms"), ("intel", "min_indicators"), ("intel", "reload_interval_secs"),
    ("misp", "timeout_secs"), ("misp", "sync_interval_secs"), ("misp", "full_sync_interval_secs"),
    ("misp", "page_size"), ("sharing", "min_rule_level"), ("sharing", "dedup_ttl_secs"),
}
SECRET_KEYS = {("misp", "api_key"), ("kafka", "sasl_password")}
SECRET_LIBRDKAFKA = {"sasl.password", "ssl.key.password", "ssl.keystore.password",
                     "sasl.oauthbearer.client.secret"}


class Checker:
    def __init__(self):
        self.errors = []
        self.count = 0

    def check(self, cond, what):
        self.count += 1
        if not cond:
            self.errors.append(what)
        return cond


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def validate_schemas(docs, versions, c):
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        name = f'{d.get("kind")}/{d.get("metadata", {}).get("name")}'
        if key in CRD_SCHEMAS:
            with open(os.path.join(HERE, "crd-schemas", CRD_SCHEMAS[key])) as f:
                schema = json.load(f)
            errs = sorted(jsonschema.Draft7Validator(schema).iter_errors(d), key=lambda e: list(e.path))
            c.check(not errs, f"{name}: CRD structural schema: " +
                    "; ".join(f'{"/".join(map(str, e.path))}: {e.message}' for e in errs[:5]))
            continue
        for v in versions:
            try:
                kv.validate(d, v, strict=True)
                c.check(True, "")
            except kv.SchemaNotFoundError as e:
                c.check(False, f"{name}: no schema in kubernetes-validate {v}: {e}")
            except kv.ValidationError as e:
                path = "/".join(map(str, e.path))
                c.check(False, f"{name}: kubernetes {v} strict: {path}: {e.message}")


def container_env_names(container):
    return {e.get("name") for e in container.get("env") or []}


def check_pods(docs, c):
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    c.check(deployments, "no Deployment rendered")
    roles = {}
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        role = dep["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        roles[role] = dep
        psc = pod.get("securityContext") or {}
        c.check(psc.get("runAsNonRoot") is True, f"{name}: pod securityContext.runAsNonRoot")
        c.check(pod.get("automountServiceAccountToken") is False, f"{name}: automountServiceAccountToken false")
        vols = {v["name"]: v for v in pod.get("volumes") or []}
        for ctr in pod["containers"]:
            cn = f"{name}/{ctr['name']}"
            sc = ctr.get("securityContext") or {}
            c.check(sc.get("runAsNonRoot") is True, f"{cn}: runAsNonRoot")
            c.check(sc.get("runAsUser") == 65532, f"{cn}: runAsUser 65532")
            c.check(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem")
            c.check(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation false")
            c.check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cn}: capabilities drop ALL")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            c.check(seccomp == "RuntimeDefault", f"{cn}: seccompProfile RuntimeDefault")
            args = ctr.get("args") or []
            want = "sync" if role == "sync" else "run"
            c.check(args[:3] == [want, "--config", "/etc/wazuh-misp/config.toml"],
                    f"{cn}: args start with {want} --config /etc/wazuh-misp/config.toml (got {args})")
            ports = {p.get("name"): p for p in ctr.get("ports") or []}
            c.check("http-metrics" in ports, f"{cn}: container port named http-metrics")
            lp = ((ctr.get("livenessProbe") or {}).get("httpGet") or {})
            rp = ((ctr.get("readinessProbe") or {}).get("httpGet") or {})
            c.check(lp.get("path") == "/healthz" and lp.get("port") == "http-metrics", f"{cn}: liveness GET /healthz")
            c.check(rp.get("path") == "/readyz" and rp.get("port") == "http-metrics", f"{cn}: readiness GET /readyz")
            res = ctr.get("resources") or {}
            c.check(res.get("requests") and (res.get("limits") or {}).get("memory"),
                    f"{cn}: resources requests and memory limit")
            mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts") or []}
            # nothing may be mounted below a ConfigMap/Secret mount (read-only: the
            # runtime cannot create the mount point)
            for mp, m in mounts.items():
                v = vols.get(m["name"], {})
                c.check(m["name"] in vols, f"{cn}: volumeMount {m['name']} has a volume")
                if "configMap" in v or "secret" in v or "projected" in v:
                    nested = [p for p in mounts if p != mp and p.startswith(mp.rstrip("/") + "/")]
                    c.check(not nested, f"{cn}: {nested} mounted below read-only volume at {mp}")
            data = mounts.get("/var/lib/wazuh-misp")
            c.check(data and "emptyDir" in vols.get(data["name"], {}), f"{cn}: emptyDir at /var/lib/wazuh-misp")
            cfg_mount = mounts.get("/etc/wazuh-misp")
            c.check(cfg_mount and "configMap" in vols.get(cfg_mount["name"], {}),
                    f"{cn}: ConfigMap mounted at /etc/wazuh-misp")
            if not cfg_mount:
                continue
            cm_vol = vols[cfg_mount["name"]]["configMap"]
            cm = configmaps.get(cm_vol["name"])
            if not c.check(cm is not None, f"{cn}: ConfigMap {cm_vol['name']} rendered"):
                continue
            items = {i["path"]: i["key"] for i in cm_vol.get("items") or []}
            key = items.get("config.toml", "config.toml")
            if not c.check(key in cm.get("data", {}), f"{cn}: ConfigMap has key {key}"):
                continue
            try:
                cfg = tomllib.loads(cm["data"][key])
            except tomllib.TOMLDecodeError as e:
                c.check(False, f"{cn}: {key} is not valid TOML: {e}")
                continue
            check_config(cfg, f"{cn} ({key})", c)
            # the listen port is the container port
            port = int(str(cfg["server"]["listen"]).rsplit(":", 1)[1])
            c.check(ports.get("http-metrics", {}).get("containerPort") == port,
                    f"{cn}: containerPort matches server.listen ({port})")
            # secret file paths must be inside a mounted volume
            for sec, k in (("misp", "api_key_file"), ("kafka", "sasl_password_file"), ("misp", "ca_file")):
                p = cfg.get(sec, {}).get(k)
                if p:
                    c.check(any(p.startswith(mp.rstrip("/") + "/") for mp in mounts),
                            f"{cn}: {sec}.{k}={p} is under a volumeMount")
            rd_ca = cfg.get("kafka", {}).get("librdkafka", {}).get("ssl.ca.location")
            if rd_ca:
                c.check(any(rd_ca.startswith(mp.rstrip("/") + "/") for mp in mounts),
                        f"{cn}: ssl.ca.location={rd_ca} is under a volumeMount")
            if role == "sync":
                c.check(cfg["intel"].get("source") == "local", f"{cn}: sync role has intel.source=local")
            elif "sync" in {d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
                            for d in deployments}:
                c.check(cfg["intel"].get("source") == "topic",
                        f"{cn}: processors read intel.source=topic when the sync role is deployed")
    return roles


def check_config(cfg, where, c):
    for section, body in cfg.items():
        if not c.check(section in CONFIG_TREE, f"{where}: unknown section [{section}]"):
            continue
        c.check(isinstance(body, dict), f"{where}: [{section}] is a table")
        for k, v in body.items():
            c.check(k in CONFIG_TREE[section], f"{where}: unknown key {section}.{k}")
            c.check((section, k) not in SECRET_KEYS, f"{where}: secret {section}.{k} in the ConfigMap")
            if (section, k) in INT_KEYS:
                c.check(isinstance(v, int) and not isinstance(v, bool),
                        f"{where}: {section}.{k} must be an integer, got {v!r}")
    rd = cfg.get("kafka", {}).get("librdkafka", {})
    for k, v in rd.items():
        c.check(k.lower() not in SECRET_LIBRDKAFKA, f"{where}: secret librdkafka property {k} in the ConfigMap")
        c.check(isinstance(v, str), f"{where}: librdkafka.{k} must be a string, got {v!r}")
    snap = cfg.get("intel", {}).get("snapshot_path", "")
    c.check(snap.startswith("/var/lib/wazuh-misp/"), f"{where}: intel.snapshot_path under /var/lib/wazuh-misp")


def check_misc(docs, roles, c):
    kinds = [d["kind"] for d in docs]
    c.check("Secret" not in kinds, "the chart must not render Secret objects")
    services = [d for d in docs if d["kind"] == "Service"]
    for s in services:
        c.check(any(p.get("name") == "http-metrics" and p.get("targetPort") == "http-metrics"
                    for p in s["spec"]["ports"]), f"Service/{s['metadata']['name']}: port http-metrics")
    for sm in (d for d in docs if d["kind"] == "ServiceMonitor"):
        sel = sm["spec"]["selector"].get("matchLabels", {})
        matched = [s for s in services if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        c.check(len(matched) == len(services) and matched,
                f"ServiceMonitor/{sm['metadata']['name']} selects every Service ({len(matched)}/{len(services)})")
        c.check(all(e.get("port") == "http-metrics" for e in sm["spec"]["endpoints"]),
                "ServiceMonitor endpoints use port http-metrics")
    for hpa in (d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")):
        ref = hpa["spec"]["scaleTargetRef"]["name"]
        proc = roles.get("processor")
        c.check(proc is not None and ref == proc["metadata"]["name"], f"{hpa['kind']} targets the processor Deployment")
        if proc is not None:
            c.check("replicas" not in proc["spec"], "Deployment leaves replicas to the autoscaler")
    for so in (d for d in docs if d["kind"] == "ScaledObject"):
        t = so["spec"]["triggers"][0]
        c.check(t["type"] == "kafka", "ScaledObject trigger type kafka")
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        for k, v in (cm.get("data") or {}).items():
            if k.endswith(".json"):
                try:
                    json.loads(v)
                    c.check(True, "")
                except ValueError as e:
                    c.check(False, f"ConfigMap/{cm['metadata']['name']}: {k} is not JSON: {e}")
                c.check(cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1",
                        f"ConfigMap/{cm['metadata']['name']}: label grafana_dashboard=\"1\"")
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for p in pdbs:
        c.check(("minAvailable" in p["spec"]) != ("maxUnavailable" in p["spec"]), "PDB sets exactly one of min/max")
    for np in (d for d in docs if d["kind"] == "NetworkPolicy"):
        c.check(set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "NetworkPolicy covers ingress and egress")
        dns = [r for r in np["spec"].get("egress", []) if any(p.get("port") == 53 for p in r.get("ports", []))]
        c.check(dns, "NetworkPolicy allows DNS egress")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered")
    ap.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    args = ap.parse_args()
    versions = args.versions or ["1.30.0", kv.latest_version()]
    docs = load_docs(args.rendered)
    c = Checker()
    validate_schemas(docs, versions, c)
    roles = check_pods(docs, c)
    check_misc(docs, roles, c)
    kinds = sorted({f'{d["kind"]}' for d in docs})
    if c.errors:
        for e in c.errors:
            print(f"  FAIL {e}")
        print(f"  {len(c.errors)} of {c.count} checks failed ({len(docs)} objects: {', '.join(kinds)})")
        return 1
    print(f"  {c.count} checks ok on {len(docs)} objects ({', '.join(kinds)}); k8s {', '.join(versions)} strict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
