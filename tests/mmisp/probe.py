#!/usr/bin/env python3
"""Probe which MISP REST endpoints a running mmisp-api answers like MISP does.

Stdlib only. Usage:
    python3 probe.py [BASE_URL] [KEY_FILE] [--json OUT] [--verbose]
Defaults: http://127.0.0.1:${MMISP_PORT:-18080}, tests/mmisp/.state/api_key.

It creates its own throw-away event ("probe ...") and prints one line per check:
    OK|FAIL  METHOD PATH  status  note
Exit code is 0 even when checks fail: this is a survey, not a test.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Client:
    def __init__(self, base: str, key: str) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Authorization": self.key, "Accept": "application/json", "Content-Type": "application/json"}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verbose = "--verbose" in sys.argv
    json_out = None
    if "--json" in sys.argv:
        json_out = sys.argv[sys.argv.index("--json") + 1]
        args = [a for a in args if a != json_out]
    base = args[0] if args else f"http://127.0.0.1:{os.environ.get('MMISP_PORT', '18080')}"
    key_file = args[1] if len(args) > 1 else str(HERE / ".state" / "api_key")
    c = Client(base, Path(key_file).read_text().strip())
    results = []

    def check(name, method, path, body=None, ok=lambda s, b: s < 300, note=lambda s, b: "", headers=None):
        s, b = c.call(method, path, body, headers)
        try:
            good = bool(ok(s, b))
        except Exception:  # noqa: BLE001 — shape mismatch counts as failure
            good = False
        try:
            n = note(s, b)
        except Exception:  # noqa: BLE001
            n = ""
        if not good and not n:
            n = json.dumps(b)[:300]
        results.append({"check": name, "method": method, "path": path, "status": s, "ok": good, "note": n, "body": b})
        print(f"{'OK  ' if good else 'FAIL'}  {method:6} {path:45} {s}  {name}: {n}")
        if verbose:
            print("      request:", json.dumps(body)[:500])
            print("      response:", json.dumps(b)[:1500])
        return s, b

    def attrs(b):
        return b["response"]["Attribute"]

    t0 = int(time.time())
    tag = f"probe-{t0}"

    check("getVersion", "GET", "/servers/getVersion", note=lambda s, b: f"version={b.get('version')}")
    check(
        "describeTypes",
        "GET",
        "/attributes/describeTypes",
        ok=lambda s, b: s == 200 and "sane_defaults" in b["result"],
        note=lambda s, b: f"keys={sorted(b.get('result', b).keys())}",
    )
    check(
        "events/add wrapped {Event:{...}}",
        "POST",
        "/events/add",
        {"Event": {"info": f"{tag} wrapped", "distribution": 0}},
        ok=lambda s, b: s == 200 and b["Event"]["id"],
    )
    s, b = check(
        "events/add bare {...} with inline Attribute[]",
        "POST",
        "/events/add",
        {
            "info": f"{tag} bare",
            "distribution": 0,
            "threat_level_id": 2,
            "analysis": 1,
            "Attribute": [{"type": "ip-dst", "category": "Network activity", "value": "192.0.2.250", "to_ids": True}],
        },
        ok=lambda s, b: s == 200 and b["Event"]["id"],
        note=lambda s, b: f"id={b['Event']['id']} inline Attribute kept: {len(b['Event']['Attribute'])}",
    )
    if s != 200:
        print("cannot create an event; stopping")
        sys.exit(1)
    eid = int(b["Event"]["id"])
    check("POST /events (new-style)", "POST", "/events", {"info": f"{tag} new-style"}, note=lambda s, b: "")

    def add_attr(path, body, name):
        return check(
            name,
            "POST",
            path,
            body,
            ok=lambda s, b: s == 200 and b["Attribute"]["id"],
            note=lambda s, b: f"id={b['Attribute']['id']} to_ids={b['Attribute']['to_ids']}",
        )

    a_ids = {}
    specs = [
        ("ip-dst", "Network activity", "198.51.100.77", True),
        ("domain", "Network activity", "probe.example.org", True),
        ("sha256", "Payload delivery", "a" * 64, True),
        ("url", "Network activity", "http://probe.example.org/x?y=1", True),
        ("ip-dst", "Network activity", "198.51.100.0/24", True),
        ("ip-src", "Network activity", "192.0.2.99", False),
    ]
    for typ, cat, val, ids in specs:
        s, b = add_attr(
            f"/attributes/add/{eid}",
            {"type": typ, "category": cat, "value": val, "to_ids": ids},
            f"attributes/add {typ} {val} to_ids={ids}",
        )
        if s == 200:
            a_ids[val] = int(b["Attribute"]["id"])
    add_attr(
        f"/attributes/add/{eid}",
        {"Attribute": {"type": "ip-dst", "value": "192.0.2.251"}},
        "attributes/add wrapped {Attribute:{...}}",
    )
    s, b = add_attr(f"/attributes/{eid}", {"type": "domain", "value": "new-style.example.org"}, "POST /attributes/{eid}")
    check(
        "attributes/add bad type",
        "POST",
        f"/attributes/add/{eid}",
        {"type": "no-such-type", "value": "x"},
        ok=lambda s, b: s >= 400,
        note=lambda s, b: "rejected (expected)" if s >= 400 else "accepted?!",
    )

    rs = "/attributes/restSearch"
    check(
        "restSearch all",
        "POST",
        rs,
        {"returnFormat": "json"},
        ok=lambda s, b: s == 200 and isinstance(attrs(b), list),
        note=lambda s, b: f"n={len(attrs(b))} first keys={sorted(attrs(b)[0].keys()) if attrs(b) else []}",
    )
    check(
        "restSearch limit=2 page=1",
        "POST",
        rs,
        {"returnFormat": "json", "limit": 2, "page": 1},
        ok=lambda s, b: s == 200 and len(attrs(b)) == 2,
        note=lambda s, b: f"ids={[a['id'] for a in attrs(b)]}",
    )
    check(
        "restSearch limit=2 page=2",
        "POST",
        rs,
        {"returnFormat": "json", "limit": 2, "page": 2},
        ok=lambda s, b: s == 200 and len(attrs(b)) == 2,
        note=lambda s, b: f"ids={[a['id'] for a in attrs(b)]}",
    )
    check(
        "restSearch limit as string '2'",
        "POST",
        rs,
        {"returnFormat": "json", "limit": "2", "page": "1"},
        ok=lambda s, b: s == 200 and len(attrs(b)) == 2,
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch page past end",
        "POST",
        rs,
        {"returnFormat": "json", "limit": 1000, "page": 99},
        ok=lambda s, b: s == 200 and attrs(b) == [],
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch to_ids=1",
        "POST",
        rs,
        {"returnFormat": "json", "to_ids": 1, "eventid": eid},
        ok=lambda s, b: s == 200 and attrs(b) and all(a["to_ids"] for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))} all to_ids={all(a['to_ids'] for a in attrs(b))}",
    )
    check(
        "restSearch to_ids=true",
        "POST",
        rs,
        {"returnFormat": "json", "to_ids": True, "eventid": eid},
        ok=lambda s, b: s == 200 and attrs(b) and all(a["to_ids"] for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    future = int(time.time()) + 3600
    check(
        "restSearch timestamp=<now+1h> (expect 0 hits)",
        "POST",
        rs,
        {"returnFormat": "json", "timestamp": future},
        ok=lambda s, b: s == 200 and len(attrs(b)) == 0,
        note=lambda s, b: f"n={len(attrs(b))} (filter {'applied' if not attrs(b) else 'IGNORED'})",
    )
    check(
        "restSearch attribute_timestamp=<now+1h>",
        "POST",
        rs,
        {"returnFormat": "json", "attribute_timestamp": future},
        ok=lambda s, b: s == 200 and len(attrs(b)) == 0,
        note=lambda s, b: f"n={len(attrs(b))} (filter {'applied' if not attrs(b) else 'IGNORED'})",
    )
    check(
        "restSearch last='1d'",
        "POST",
        rs,
        {"returnFormat": "json", "last": "1d"},
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch type='ip-dst'",
        "POST",
        rs,
        {"returnFormat": "json", "type": "ip-dst", "eventid": eid},
        ok=lambda s, b: s == 200 and attrs(b) and all(a["type"] == "ip-dst" for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch type=['ip-dst','domain'] (list)",
        "POST",
        rs,
        {"returnFormat": "json", "type": ["ip-dst", "domain"], "eventid": eid},
        ok=lambda s, b: s == 200 and {a["type"] for a in attrs(b)} == {"ip-dst", "domain"},
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch value='198.51.100.77'",
        "POST",
        rs,
        {"returnFormat": "json", "value": "198.51.100.77"},
        ok=lambda s, b: s == 200 and len(attrs(b)) >= 1,
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch tags=[...]",
        "POST",
        rs,
        {"returnFormat": "json", "tags": ["tlp:white"]},
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch published=1",
        "POST",
        rs,
        {"returnFormat": "json", "published": 1},
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch returnFormat=csv",
        "POST",
        rs,
        {"returnFormat": "csv"},
        note=lambda s, b: "",
    )
    check(
        "restSearch includeEventTags+includeContext+includeEventUuid",
        "POST",
        rs,
        {"returnFormat": "json", "eventid": eid, "includeEventTags": 1, "includeContext": 1, "includeEventUuid": 1},
        ok=lambda s, b: s == 200,
        note=lambda s, b: f"first={json.dumps(attrs(b)[0])[:400]}",
    )

    # tags
    s, b = check(
        "tags/add",
        "POST",
        "/tags/add",
        {"name": f"wazuh-misp:{tag}", "colour": "#ff0000", "exportable": True},
        note=lambda s, b: f"id={b['Tag']['id']}",
    )
    tag_id = b["Tag"]["id"] if s < 300 and isinstance(b, dict) and "Tag" in b else None
    check("tags/add MISP-style {Tag:{name}}", "POST", "/tags/add", {"Tag": {"name": f"x:{tag}"}})
    if tag_id is not None:
        first = a_ids.get("198.51.100.77")
        check("events/addTag/{eid}/{tid}/local:0 (mmisp path form)", "POST", f"/events/addTag/{eid}/{tag_id}/local:0")
        check("events/addTag MISP body form", "POST", "/events/addTag", {"event": eid, "tag": tag_id})
        check(
            "attributes/addTag/{aid}/{tid}/local:0 (mmisp path form)",
            "POST",
            f"/attributes/addTag/{first}/{tag_id}/local:0",
        )
        check("attributes/addTag MISP body form", "POST", "/attributes/addTag", {"attribute": first, "tag": tag_id})
        check(
            "restSearch shows Tag on tagged attribute",
            "POST",
            rs,
            {"returnFormat": "json", "value": "198.51.100.77", "includeEventTags": 1},
            ok=lambda s, b: s == 200 and attrs(b)[0].get("Tag"),
            note=lambda s, b: f"Tag={attrs(b)[0].get('Tag')} Event.Tag={attrs(b)[0].get('Event', {}).get('Tag')}",
        )

    check("events/publish/{id}", "POST", f"/events/publish/{eid}")
    check(
        "events/view/{id} published?",
        "GET",
        f"/events/view/{eid}",
        ok=lambda s, b: s == 200 and b["Event"]["published"],
        note=lambda s, b: f"published={b['Event']['published']} attrs={len(b['Event']['Attribute'])}",
    )
    check("GET /events/{id}", "GET", f"/events/{eid}", note=lambda s, b: "")
    check(
        "events/restSearch",
        "POST",
        "/events/restSearch",
        {"returnFormat": "json", "limit": 5, "page": 1},
        note=lambda s, b: f"shape={list(b.keys()) if isinstance(b, dict) else type(b).__name__} "
        f"n={len(b['response']) if isinstance(b, dict) else len(b)}",
    )
    check(
        "events/restSearch eventid",
        "POST",
        "/events/restSearch",
        {"returnFormat": "json", "eventid": eid},
        note=lambda s, b: "",
    )

    # sightings
    check(
        "sightings/add {values,source}",
        "POST",
        "/sightings/add",
        {"values": ["198.51.100.77"], "source": "wazuh"},
        note=lambda s, b: f"n={len(b)}",
    )
    check(
        "sightings/add unknown value",
        "POST",
        "/sightings/add",
        {"values": ["203.0.113.254"], "source": "wazuh"},
        note=lambda s, b: "",
    )
    check(
        "sightings/add/{attribute_id}",
        "POST",
        f"/sightings/add/{a_ids.get('probe.example.org')}",
        {},
        note=lambda s, b: "",
    )
    check("sightings/index/{eid}", "GET", f"/sightings/index/{eid}", note=lambda s, b: f"n={len(b)}")

    # deletes
    soft = a_ids.get("192.0.2.99")
    check("attributes/delete/{id} via POST (MISP)", "POST", f"/attributes/delete/{a_ids.get(specs[2][2])}")
    check("attributes/delete/{id} via DELETE", "DELETE", f"/attributes/delete/{soft}")
    check(
        "restSearch default hides soft-deleted?",
        "POST",
        rs,
        {"returnFormat": "json", "eventid": eid},
        ok=lambda s, b: s == 200 and not any(a["deleted"] for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))} deleted_in_result={sum(a['deleted'] for a in attrs(b))}",
    )
    check(
        "restSearch deleted=1",
        "POST",
        rs,
        {"returnFormat": "json", "eventid": eid, "deleted": 1},
        ok=lambda s, b: s == 200 and attrs(b) and all(a["deleted"] for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch deleted=[0,1]",
        "POST",
        rs,
        {"returnFormat": "json", "eventid": eid, "deleted": [0, 1]},
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch deleted=0",
        "POST",
        rs,
        {"returnFormat": "json", "eventid": eid, "deleted": 0},
        ok=lambda s, b: s == 200 and not any(a["deleted"] for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "POST /sightings {values,source} (mmisp new-style path)",
        "POST",
        "/sightings",
        {"values": ["198.51.100.77"], "source": "wazuh"},
        note=lambda s, b: f"n={len(b)} source={b[0]['source']}",
    )
    check(
        "POST /sightings unknown value",
        "POST",
        "/sightings",
        {"values": ["203.0.113.254"], "source": "wazuh"},
        ok=lambda s, b: True,
        note=lambda s, b: json.dumps(b),
    )
    check(
        "events/add with date 'YYYY-MM-DD'",
        "POST",
        "/events/add",
        {"info": f"{tag} dated", "date": time.strftime("%Y-%m-%d")},
    )
    check(
        "restSearch to_ids='1' (string)",
        "POST",
        rs,
        {"returnFormat": "json", "to_ids": "1", "eventid": eid},
        ok=lambda s, b: s == 200 and attrs(b) and all(a["to_ids"] for a in attrs(b)),
        note=lambda s, b: f"n={len(attrs(b))}",
    )
    check(
        "restSearch Content-Type form-urlencoded",
        "POST",
        rs,
        {"returnFormat": "json", "limit": 1},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        note=lambda s, b: "",
    )
    check(
        "Authorization: Bearer <key>",
        "GET",
        "/servers/getVersion",
        headers={"Authorization": "Bearer " + c.key},
    )

    # concurrency on SQLite: parallel reads + writes
    import concurrent.futures as cf

    def one(i):
        if i % 3 == 0:
            return c.call("POST", f"/attributes/add/{eid}", {"type": "ip-dst", "value": f"192.0.2.{i}", "to_ids": True})[0]
        return c.call("POST", rs, {"returnFormat": "json", "limit": 50, "page": 1})[0]

    t1 = time.time()
    with cf.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(one, range(48)))
    summary = {k: codes.count(k) for k in sorted(set(codes))}
    good = set(codes) == {200}
    results.append({"check": "48 concurrent requests (16 writes), 8 threads", "method": "MIX", "path": rs,
                    "status": summary, "ok": good, "note": f"{time.time() - t1:.1f}s", "body": None})
    print(f"{'OK  ' if good else 'FAIL'}  MIX    concurrency                                   {summary}  "
          f"48 requests/8 threads in {time.time() - t1:.1f}s")

    check("auth: wrong key -> 401/403", "GET", "/servers/getVersion", headers={"Authorization": "x" * 40},
          ok=lambda s, b: s in (401, 403), note=lambda s, b: json.dumps(b))

    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=1, default=str))
    bad = sum(not r["ok"] for r in results)
    print(f"\nprobe: {len(results) - bad} ok, {bad} fail (of {len(results)})")


if __name__ == "__main__":
    main()
