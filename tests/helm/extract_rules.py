#!/usr/bin/env python3
"""Extract the spec.groups of every PrometheusRule in a rendered manifest into a plain
Prometheus rules file (what `promtool check rules` / `promtool test rules` read).

usage: extract_rules.py RENDERED.yaml OUT.yaml
Exits 1 when the manifest holds no PrometheusRule.
"""
import sys

import yaml


def main():
    src, out = sys.argv[1], sys.argv[2]
    groups = []
    with open(src) as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "PrometheusRule":
                groups.extend(doc["spec"]["groups"])
    if not groups:
        print(f"no PrometheusRule in {src}", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False, width=1000)
    print(f"  {sum(len(g['rules']) for g in groups)} rules in {len(groups)} group(s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
