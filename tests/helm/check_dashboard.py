#!/usr/bin/env python3
"""Structural checks of the Grafana dashboard shipped by the chart.

usage: check_dashboard.py [DASHBOARD.json]

- parses as JSON; has a uid, a title and schemaVersion
- datasource is a template variable (`datasource`, type datasource, prometheus) and
  every panel and target uses {"uid": "${datasource}"}
- unique panel ids, every non-row panel has targets with a non-empty expr
- the panels the chart promises exist (matched on the metric they query)
- histogram quantiles are computed from _bucket series by le
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "..", "helm", "wazuh-misp", "dashboards", "wazuh-misp.json")

REQUIRED = {
    "throughput (consumed)": "wazuh_misp_alerts_consumed_total",
    "throughput (processed by outcome)": "wazuh_misp_alerts_processed_total",
    "consumer lag per partition": "wazuh_misp_kafka_consumer_lag",
    "match rate by kind": "wazuh_misp_intel_hits_total",
    "DLQ rate": "wazuh_misp_dlq_records_total",
    "stage latency percentiles": "wazuh_misp_stage_duration_seconds_bucket",
    "end-to-end latency": "wazuh_misp_end_to_end_latency_seconds_bucket",
    "intel sync age": "wazuh_misp_intel_sync_age_seconds",
    "indicator counts by kind": "wazuh_misp_intel_indicators",
    "lookup cache hits": "wazuh_misp_lookup_cache_hits_total",
    "lookup cache misses": "wazuh_misp_lookup_cache_misses_total",
    "sightings": "wazuh_misp_sightings_sent_total",
    "shared IOCs": "wazuh_misp_iocs_shared_total",
}


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    with open(path) as f:
        d = json.load(f)
    errors = []
    for k in ("uid", "title", "schemaVersion", "panels"):
        if not d.get(k):
            errors.append(f"missing {k}")
    tvars = {v.get("name"): v for v in (d.get("templating") or {}).get("list", [])}
    ds = tvars.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("no `datasource` variable of type datasource/prometheus")
    ids, exprs = set(), []
    for p in d["panels"]:
        if p.get("id") in ids:
            errors.append(f"duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        title = p.get("title", "?")
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            errors.append(f"panel {title!r}: datasource is not ${{datasource}}")
        if not p.get("targets"):
            errors.append(f"panel {title!r}: no targets")
        for t in p.get("targets", []):
            if (t.get("datasource") or {}).get("uid") != "${datasource}":
                errors.append(f"panel {title!r} target {t.get('refId')}: datasource is not ${{datasource}}")
            if not (t.get("expr") or "").strip():
                errors.append(f"panel {title!r} target {t.get('refId')}: empty expr")
            exprs.append(t.get("expr", ""))
            e = t.get("expr", "")
            if "histogram_quantile" in e and ("_bucket" not in e or "le" not in e):
                errors.append(f"panel {title!r}: histogram_quantile without _bucket/le")
    for what, metric in REQUIRED.items():
        if not any(metric in e for e in exprs):
            errors.append(f"no panel for {what} ({metric})")
    for e in errors:
        print(f"  FAIL {e}")
    panels = sum(1 for p in d["panels"] if p.get("type") != "row")
    print(f"  dashboard {d.get('uid')}: {panels} panels, {len(exprs)} queries, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
