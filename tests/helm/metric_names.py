#!/usr/bin/env python3
"""Check that every metric the dashboard and the alert rules query is exported.

usage: metric_names.py METRICS_FILE [--dashboard FILE] [--rules FILE] [--ignore-prefix P]...
       metric_names.py --self-test   (checks the PromQL name extractor itself)

METRICS_FILE is a Prometheus text exposition (e.g. `curl -s localhost:9108/metrics`
from a running wazuh-misp). Metric names are extracted from
  - every "expr" and templating query in the Grafana dashboard JSON
    (default: helm/wazuh-misp/dashboards/wazuh-misp.json), and
  - every rule expr of the chart's PrometheusRule (--rules: a Prometheus rules file,
    e.g. the one tests/helm/run.sh extracts; default: rendered here with
    `helm template --set prometheusRule.enabled=true`, helm from PATH or
    ~/.cache/wazuh-misp/bin).
Names with an ignored prefix are not checked: by default kube_ (the pod-restart alert
uses kube_pod_container_status_restarts_total from kube-state-metrics, which
wazuh-misp does not export).
Histogram series (_bucket/_sum/_count) are reported with their base name, but the
exact series name must have at least one sample line in METRICS_FILE (a `# TYPE`
declaration alone does not count).
Exit status: 0 all present, 1 some missing (listed), 2 usage/setup error.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "helm", "wazuh-misp")
DEFAULT_DASHBOARD = os.path.join(CHART, "dashboards", "wazuh-misp.json")
VENV_PY = os.path.expanduser("~/.cache/wazuh-misp/venv-k8s/bin/python")

try:
    import yaml
except ImportError:  # re-run with the tools venv, which has PyYAML
    if os.path.exists(VENV_PY) and os.path.realpath(sys.executable) != os.path.realpath(VENV_PY):
        os.execv(VENV_PY, [VENV_PY] + sys.argv)
    print("metric_names.py needs PyYAML: run .ci/install-tools.sh first", file=sys.stderr)
    sys.exit(2)

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "start", "end",
}
AGGREGATORS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
HIST_SUFFIXES = ("_bucket", "_sum", "_count")
IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(expr):
    """Metric names referenced by a PromQL expression (also Grafana-templated)."""
    s = expr
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', s)  # string literals
    s = re.sub(r"\$\{[^}]*\}|\$\w+", "", s)                                    # Grafana variables
    s = re.sub(r"\{[^}]*\}", " ", s)                                           # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                                          # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", s)
    names = set()
    for m in IDENT.finditer(s):
        name = m.group(1)
        rest = s[m.end():].lstrip()
        if name in KEYWORDS or name in AGGREGATORS or rest.startswith("("):
            continue
        names.add(name)
    return names


def grafana_queries(dashboard):
    """(where, promql) pairs from panel targets and templating variables."""
    out = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title") or where
            if isinstance(node.get("expr"), str):
                out.append((f"dashboard: {title}", node["expr"]))
            for k, v in node.items():
                if k != "templating":
                    walk(v, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    walk(dashboard, "dashboard")
    for var in (dashboard.get("templating") or {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", q)
        if m:
            out.append((f"dashboard variable ${var.get('name')}", m.group(1)))
        elif re.match(r"^\s*(label_values|label_names|metrics)\(", q):
            continue
        elif re.match(r"^\s*query_result\((.*)\)\s*$", q):
            out.append((f"dashboard variable ${var.get('name')}", re.match(r"^\s*query_result\((.*)\)\s*$", q).group(1)))
        elif q:
            out.append((f"dashboard variable ${var.get('name')}", q))
    return out


def find_helm():
    for cand in (shutil.which("helm"), os.path.expanduser("~/.cache/wazuh-misp/bin/helm")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def rule_queries(rules_file):
    if rules_file is None:
        helm = find_helm()
        if not helm:
            print("no --rules given and helm not found (run .ci/install-tools.sh)", file=sys.stderr)
            sys.exit(2)
        rendered = subprocess.run(
            [helm, "template", "wazuh-misp", CHART, "--namespace", "wazuh", "--kube-version", "1.30.0",
             "--set", "prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml"],
            check=True, capture_output=True, text=True).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        groups = [g for d in docs if d.get("kind") == "PrometheusRule" for g in d["spec"]["groups"]]
    else:
        with open(rules_file) as f:
            data = yaml.safe_load(f)
        groups = data.get("groups", [])
    out = []
    for g in groups:
        for r in g.get("rules", []):
            out.append((f"rule {r.get('alert') or r.get('record')}", str(r["expr"])))
    return out


def exposition(path):
    """(names with at least one sample line, {name: type} from # TYPE lines)."""
    samples, types = set(), {}
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)")
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    types[parts[2]] = parts[3]
                continue
            m = line_re.match(line)
            if m:
                samples.add(m.group(1))
    return samples, types


SELF_TEST = [
    ('sum by (le, stage) (rate(a_bucket{job=~"$job", x="sum(b)"}[$__rate_interval]))', {"a_bucket"}),
    ('histogram_quantile(0.99, sum without (pod) (rate(a_bucket[5m] offset 1h)))', {"a_bucket"}),
    ("a / ignoring (reason) group_left sum by (namespace) (rate(b[5m])) > 1e-9", {"a", "b"}),
    ("time() - max(c) or absent(d{topic='x'}) unless on(pod) e", {"c", "d", "e"}),
    ("clamp_min(sum(rate(f[1m:10s])), 1) and bool g", {"f", "g"}),
    ("label_replace(h, \"dst\", \"$1\", \"src\", \"(.*)\")", {"h"}),
    ("topk(5, i:recorded:rate5m)", {"i:recorded:rate5m"}),
]


def self_test():
    bad = [(q, metric_names(q), want) for q, want in SELF_TEST if metric_names(q) != want]
    for q, got, want in bad:
        print(f"self-test FAIL: {q!r}: got {sorted(got)}, want {sorted(want)}")
    print(f"metric_names self-test: {len(SELF_TEST) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("metrics_file")
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD)
    ap.add_argument("--rules", default=None)
    ap.add_argument("--ignore-prefix", action="append", default=None,
                    help="metric name prefixes not exported by wazuh-misp (default: kube_)")
    args = ap.parse_args()
    ignore = tuple(args.ignore_prefix or ["kube_"])
    if not os.path.exists(args.metrics_file):
        print(f"{args.metrics_file}: not found", file=sys.stderr)
        return 2
    with open(args.dashboard) as f:
        dashboard = json.load(f)

    refs = {}  # name -> set of places
    for where, q in grafana_queries(dashboard) + rule_queries(args.rules):
        for n in metric_names(q):
            refs.setdefault(n, set()).add(where)
    if not refs:
        print("no metric names found in the dashboard or the rules", file=sys.stderr)
        return 2
    present, types = exposition(args.metrics_file)

    missing, checked, skipped = [], 0, []
    for name in sorted(refs):
        if name.startswith(ignore):
            skipped.append(name)
            continue
        checked += 1
        base = next((name[: -len(sfx)] for sfx in HIST_SUFFIXES if name.endswith(sfx)), None)
        is_hist = base is not None and (types.get(base) in ("histogram", "summary") or base + "_bucket" in refs)
        label = f"{name} (histogram {base})" if is_hist else name
        if name in present:
            print(f"ok      {label}")
        if name not in present:
            missing.append((label, sorted(refs[name])))
    for name in skipped:
        print(f"skip    {name} (ignored prefix; not exported by wazuh-misp)")
    if missing:
        for label, where in missing:
            print(f"missing {label}: used by {'; '.join(where[:3])}{' ...' if len(where) > 3 else ''}")
        print(f"metric names: {checked - len(missing)} present, {len(missing)} missing in {args.metrics_file}")
        return 1
    print(f"metric names: {checked} present, 0 missing in {args.metrics_file} ({len(skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
