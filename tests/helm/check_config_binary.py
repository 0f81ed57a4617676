#!/usr/bin/env python3
"""Cross-check the rendered config against the real binary: `wazuh-misp check-config`.

usage: check_config_binary.py WAZUH_MISP_BIN RENDERED.yaml

For every config in the rendered ConfigMap (config.toml, sync.toml), the files the pod
would have mounted (secret files, CA bundle, feed files, warning lists, snapshot dir)
are created as dummies under a temporary root and the config's paths are rewritten to
point there; env vars the Deployment injects from Secrets (WAZUH_MISP__MISP__API_KEY)
get dummy values. The binary must then accept the config (exit 0): this catches
unknown keys, type errors and cross-field problems, i.e. chart/binary drift.
"""
import os
import subprocess
import sys
import tempfile
import tomllib

import yaml

PREFIXES = ("/run/secrets/", "/srv/", "/var/lib/wazuh-misp/", "/etc/wazuh-misp/", "/opt/", "/data/")


def main():
    binary, rendered = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    secret_env = set()
    for dep in deployments:
        for c in dep["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env") or []:
                if e["name"].startswith("WAZUH_MISP__") and "valueFrom" in e:
                    secret_env.add(e["name"])
    failures = 0
    checked = 0
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            if not key.endswith(".toml"):
                continue
            with tempfile.TemporaryDirectory() as root:
                for p in PREFIXES:
                    text = text.replace(f'"{p}', f'"{root}{p}')
                cfg = tomllib.loads(text)
                files = [cfg.get("misp", {}).get("api_key_file"), cfg.get("misp", {}).get("ca_file"),
                         cfg.get("kafka", {}).get("sasl_password_file"),
                         cfg.get("kafka", {}).get("librdkafka", {}).get("ssl.ca.location")]
                files += cfg.get("intel", {}).get("files", [])
                for f in filter(None, files):
                    if f.startswith(root):
                        os.makedirs(os.path.dirname(f), exist_ok=True)
                        with open(f, "w") as fh:
                            fh.write("dummy\n")
                for d in filter(None, [cfg.get("intel", {}).get("warninglists_dir"),
                                       os.path.dirname(cfg.get("intel", {}).get("snapshot_path") or "")]):
                    if d.startswith(root):
                        os.makedirs(d, exist_ok=True)
                path = os.path.join(root, key)
                with open(path, "w") as fh:
                    fh.write(text)
                env = {k: v for k, v in os.environ.items() if not k.startswith("WAZUH_MISP__")}
                env.update({k: "dummy-secret" for k in secret_env})
                r = subprocess.run([binary, "check-config", "--config", path], env=env,
                                   capture_output=True, text=True, timeout=60)
                checked += 1
                where = f"ConfigMap/{cm['metadata']['name']} {key}"
                if r.returncode != 0:
                    failures += 1
                    print(f"  FAIL {where}: exit {r.returncode}")
                    for line in (r.stderr + r.stdout).strip().splitlines()[:15]:
                        print(f"       {line}")
                else:
                    print(f"  ok   {where}: {(r.stdout + r.stderr).strip().splitlines()[-1:] or ''}")
    if checked == 0:
        print("  no config found in the rendered manifests")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
