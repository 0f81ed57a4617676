#!/usr/bin/env python3
"""Create a known set of MISP events/attributes/tags over the REST API (stdlib only).

    python3 seed.py [BASE_URL] [KEY_FILE] [--out MANIFEST.json]

Defaults: http://127.0.0.1:${MMISP_PORT:-18080} and tests/mmisp/.state/api_key.

Idempotent: events and attributes carry fixed UUIDs; whatever already exists is reused, not
duplicated. Only calls that work on mmisp-api are used, in forms that real MISP also accepts
(bare JSON bodies, /events/addTag/{id}/{tag}/local:0 ...). Where the two differ (soft delete is
POST on MISP, DELETE on mmisp) both are tried.

mmisp-api quirk handled here: POST /attributes/add stores timestamp=0 unless the client sends
one, so every attribute is sent with "timestamp": <now>.

The manifest (--out) lists every event and attribute with id, uuid, type, value, to_ids,
deleted, so tests need not hard-code ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS = uuid.UUID("6d0c1f0e-3f55-4c53-9d8e-7a2b3c4d5e6f")  # namespace for the fixed UUIDs


def uid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


# real digests of a fixed payload, so tests can create a file with these bytes and hash it
PAYLOAD = b"wazuh-misp test payload\n"
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()

# (key, type, category, value, to_ids, deleted)
EVENTS = [
    {
        "key": "c2",
        "info": "wazuh-misp seed: malware C2 infrastructure",
        "threat_level_id": 1,
        "analysis": 2,
        "publish": True,
        "tags": ["tlp:white", "wazuh-misp:test"],
        "attributes": [
            ("c2-ip-dst", "ip-dst", "Network activity", "203.0.113.10", True, False),
            ("c2-ip-src", "ip-src", "Network activity", "203.0.113.20", True, False),
            ("c2-cidr", "ip-dst", "Network activity", "198.51.100.0/24", True, False),
            ("c2-domain", "domain", "Network activity", "evil.example.com", True, False),
            ("c2-hostname", "hostname", "Network activity", "c2.evil.example.com", True, False),
            ("c2-url", "url", "Network activity", "http://evil.example.com/payload.exe", True, False),
            ("c2-sha256", "sha256", "Payload delivery", SHA256, True, False),
            ("c2-md5", "md5", "Payload delivery", MD5, True, False),
            ("c2-sha1", "sha1", "Payload delivery", SHA1, True, False),
            ("c2-noids-ip", "ip-dst", "Network activity", "192.0.2.55", False, False),
            ("c2-noids-domain", "domain", "Network activity", "benign.example.org", False, False),
        ],
        "attribute_tags": {"c2-ip-dst": ["wazuh-misp:test"]},
    },
    {
        "key": "phish",
        "info": "wazuh-misp seed: phishing campaign",
        "threat_level_id": 2,
        "analysis": 1,
        "publish": False,
        "tags": [],
        "attributes": [
            ("ph-domain", "domain", "Network activity", "phish.example.net", True, False),
            ("ph-url", "url", "Network activity", "https://phish.example.net/login", True, False),
            ("ph-email", "email-src", "Payload delivery", "attacker@phish.example.net", True, False),
            ("ph-ip-deleted", "ip-dst", "Network activity", "203.0.113.99", True, True),
        ],
        "attribute_tags": {},
    },
]

TAG_COLOURS = {"tlp:white": "#ffffff", "wazuh-misp:test": "#0088cc"}


class Misp:
    def __init__(self, base: str, key: str) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": self.key, "Accept": "application/json", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, raw.decode(errors="replace")

    def must(self, method: str, path: str, body=None):
        s, b = self.call(method, path, body)
        if s >= 300:
            raise SystemExit(f"seed: {method} {path} -> {s} {json.dumps(b)[:500]}")
        return b


def main() -> None:
    argv = sys.argv[1:]
    out = None
    if "--out" in argv:
        i = argv.index("--out")
        out = argv[i + 1]
        del argv[i : i + 2]
    base = argv[0] if argv else f"http://127.0.0.1:{os.environ.get('MMISP_PORT', '18080')}"
    key_file = argv[1] if len(argv) > 1 else str(HERE / ".state" / "api_key")
    m = Misp(base, Path(key_file).read_text().strip())
    now = int(time.time())

    # tags: GET /tags -> {"Tag": [...]} on mmisp (MISP: {"Tag": [...]} too)
    _, tags_body = m.call("GET", "/tags")
    existing = {t["name"]: t["id"] for t in (tags_body or {}).get("Tag", [])} if isinstance(tags_body, dict) else {}
    tag_ids = {}
    for name, colour in TAG_COLOURS.items():
        if name not in existing:
            b = m.must("POST", "/tags/add", {"name": name, "colour": colour, "exportable": True})
            existing[name] = (b.get("Tag") or b)["id"]
        tag_ids[name] = int(existing[name])

    manifest = {"base_url": base, "seeded_at": now, "tags": tag_ids, "events": []}
    for ev in EVENTS:
        ev_uuid = uid("event:" + ev["key"])
        s, b = m.call("GET", f"/events/view/{ev_uuid}")
        if s == 200:
            event = b["Event"]
            created = False
        else:
            event = m.must(
                "POST",
                "/events/add",
                {
                    "uuid": ev_uuid,
                    "info": ev["info"],
                    "distribution": 0,
                    "threat_level_id": ev["threat_level_id"],
                    "analysis": ev["analysis"],
                    # no "date": mmisp-api on SQLite answers 500 for a string date
                    # ("SQLite Date type only accepts Python date objects"); it defaults to today
                },
            )["Event"]
            created = True
        eid = int(event["id"])
        have = {a["uuid"]: a for a in event.get("Attribute", [])}

        attrs = []
        for key, typ, cat, val, ids, deleted in ev["attributes"]:
            a_uuid = uid("attribute:" + key)
            if a_uuid in have:
                a = have[a_uuid]
            else:
                a = m.must(
                    "POST",
                    f"/attributes/add/{eid}",
                    {
                        "uuid": a_uuid,
                        "type": typ,
                        "category": cat,
                        "value": val,
                        "to_ids": ids,
                        "distribution": 5,
                        "comment": f"seed {key}",
                        "timestamp": now,
                    },
                )["Attribute"]
                if deleted:
                    s, b = m.call("POST", f"/attributes/delete/{a['id']}")  # MISP
                    if s == 405:
                        s, b = m.call("DELETE", f"/attributes/delete/{a['id']}")  # mmisp
                    if s >= 300:
                        raise SystemExit(f"seed: soft delete of {val} failed: {s} {b}")
                for t in ev["attribute_tags"].get(key, []):
                    m.must("POST", f"/attributes/addTag/{a['id']}/{tag_ids[t]}/local:0")
            attrs.append(
                {
                    "key": key,
                    "id": int(a["id"]),
                    "uuid": a_uuid,
                    "type": typ,
                    "category": cat,
                    "value": val,
                    "to_ids": ids,
                    "deleted": deleted,
                    "tags": ev["attribute_tags"].get(key, []),
                }
            )

        if created:
            for t in ev["tags"]:
                m.must("POST", f"/events/addTag/{eid}/{tag_ids[t]}/local:0")
            if ev["publish"]:
                m.must("POST", f"/events/publish/{eid}")
        manifest["events"].append(
            {
                "key": ev["key"],
                "id": eid,
                "uuid": ev_uuid,
                "info": ev["info"],
                "published": ev["publish"],
                "tags": ev["tags"],
                "attributes": attrs,
            }
        )
        print(f"seed: event {eid} {ev['info']!r}: {len(attrs)} attributes ({'created' if created else 'existing'})")

    if out:
        Path(out).write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"seed: manifest written to {out}")


if __name__ == "__main__":
    main()
