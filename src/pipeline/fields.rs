//! The field table: where IOCs live in Wazuh alerts, as data.
//!
//! Each entry maps a pattern to a [`Role`]. A pattern is either a dotted path from the alert
//! root (`data.http.url`; array indices are dropped) or `*.key`, which matches that key at any
//! depth. An exact path wins over a `*.key`. A `Skip` on an object skips the whole subtree.
//! Fields the table does not name are scanned generically as free text, so unknown alert
//! shapes still yield IPs, domains, URLs, e-mails and hashes.
//!
//! To support a new decoder, add its fields here; nothing else changes.

use hashbrown::HashMap;

/// How the value of a field is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not an IOC (or the monitored host itself): skipped, with its subtree.
    Skip,
    /// An IP address, possibly with a port (`a.b.c.d:port`, `[v6]:port`).
    Ip,
    /// A host or domain name (or an IP in a host field).
    Host,
    /// A full URL; a value starting with `/` is a URL path (matched against MISP `uri`).
    Url,
    /// The path of an HTTP request whose host is in a sibling `hostname` field (Suricata).
    HttpPath,
    /// The host of an HTTP request (Suricata `http.hostname`): a host, and the URL's host.
    HttpHost,
    Email,
    /// A single hash (md5, sha1, sha256, sha512, imphash, TLS fingerprints).
    Hash,
    /// Sysmon `hashes`: `SHA1=..,MD5=..,SHA256=..,IMPHASH=..`.
    HashList,
    /// A file path or name: its basename is a file-name observable.
    FilePath,
    /// A file path that may be a Windows registry key (`syscheck.path`).
    PathOrRegKey,
    /// Sysmon `queryResults`: `type:  5 cname;1.2.3.4;::ffff:5.6.7.8;`.
    DnsResults,
    /// Free text: command lines, log lines, messages.
    FreeText,
    /// An exact string indicator (user-agent, registry key, mutex, pipe).
    ExactText,
}

/// The table itself. Order does not matter; see the module docs for pattern syntax.
pub static FIELD_TABLE: &[(&str, Role)] = &[
    // --- envelope: never IOCs of a remote party ---
    ("rule", Role::Skip),
    ("agent", Role::Skip),
    ("manager", Role::Skip),
    ("cluster", Role::Skip),
    ("decoder", Role::Skip),
    ("predecoder", Role::Skip),
    ("timestamp", Role::Skip),
    ("id", Role::Skip),
    ("location", Role::Skip),
    ("GeoLocation", Role::Skip),
    ("input", Role::Skip),
    // shipper fields (Filebeat, Logstash, Fluent Bit)
    ("@timestamp", Role::Skip),
    ("@version", Role::Skip),
    ("host", Role::Skip),
    ("log", Role::Skip),
    ("ecs", Role::Skip),
    ("fields", Role::Skip),
    ("beat", Role::Skip),
    // our own output, if an enriched alert is fed back in
    ("threat", Role::Skip),
    ("wazuh_misp", Role::Skip),
    ("misp", Role::Skip),
    // --- static decoder fields (all regex decoders) ---
    ("*.srcip", Role::Ip),
    ("*.srcip2", Role::Ip),
    ("*.dstip", Role::Ip),
    ("*.srcport", Role::Skip),
    ("*.dstport", Role::Skip),
    ("*.srcuser", Role::Skip),
    ("*.dstuser", Role::Skip),
    ("data.url", Role::Url),
    ("data.id", Role::Skip),
    ("data.protocol", Role::Skip),
    ("data.action", Role::Skip),
    ("data.status", Role::Skip),
    // --- Suricata eve.json ---
    ("*.src_ip", Role::Ip),
    ("*.dest_ip", Role::Ip),
    ("*.src_port", Role::Skip),
    ("*.dest_port", Role::Skip),
    ("*.flow_id", Role::Skip),
    ("data.http.hostname", Role::HttpHost),
    ("data.http.url", Role::HttpPath),
    ("*.http_user_agent", Role::ExactText),
    ("*.http_refer", Role::Url),
    ("*.rrname", Role::Host),
    ("*.sni", Role::Host),
    ("*.fingerprint", Role::Hash),
    ("data.tls.ja3.hash", Role::Hash),
    ("data.tls.ja3s.hash", Role::Hash),
    ("data.alert.signature", Role::FreeText),
    ("data.alert.signature_id", Role::Skip),
    ("data.fileinfo.filename", Role::FilePath),
    // --- Windows eventchannel and Sysmon ---
    ("data.win.system.computer", Role::Skip),
    ("data.win.system.providerGuid", Role::Skip),
    ("data.win.system.systemTime", Role::Skip),
    ("data.win.system.message", Role::FreeText),
    ("*.ipAddress", Role::Ip),
    ("*.ipPort", Role::Skip),
    ("*.workstationName", Role::Skip),
    ("*.targetUserName", Role::Skip),
    ("*.subjectUserName", Role::Skip),
    ("*.sourceIp", Role::Ip),
    ("*.destinationIp", Role::Ip),
    ("*.sourcePort", Role::Skip),
    ("*.destinationPort", Role::Skip),
    ("*.sourceHostname", Role::Skip),
    ("*.destinationHostname", Role::Host),
    ("*.queryName", Role::Host),
    ("*.queryResults", Role::DnsResults),
    ("*.image", Role::FilePath),
    ("*.parentImage", Role::FilePath),
    ("*.imageLoaded", Role::FilePath),
    ("*.targetFilename", Role::FilePath),
    ("*.originalFileName", Role::FilePath),
    ("*.sourceImage", Role::FilePath),
    ("*.targetImage", Role::FilePath),
    ("*.commandLine", Role::FreeText),
    ("*.parentCommandLine", Role::FreeText),
    ("*.hashes", Role::HashList),
    ("*.hash", Role::Hash),
    ("*.targetObject", Role::ExactText),
    ("*.pipeName", Role::ExactText),
    ("*.processGuid", Role::Skip),
    ("*.parentProcessGuid", Role::Skip),
    ("*.logonGuid", Role::Skip),
    ("*.utcTime", Role::Skip),
    ("*.currentDirectory", Role::Skip),
    ("*.user", Role::Skip),
    // --- FIM / syscheck ---
    ("syscheck.path", Role::PathOrRegKey),
    ("syscheck.md5_after", Role::Hash),
    ("syscheck.sha1_after", Role::Hash),
    ("syscheck.sha256_after", Role::Hash),
    ("syscheck.md5_before", Role::Hash),
    ("syscheck.sha1_before", Role::Hash),
    ("syscheck.sha256_before", Role::Hash),
    ("syscheck.diff", Role::FreeText),
    ("syscheck.audit.process.name", Role::FilePath),
    ("syscheck.audit.process.cwd", Role::Skip),
    ("syscheck.uname_after", Role::Skip),
    ("syscheck.gname_after", Role::Skip),
    ("syscheck.perm_after", Role::Skip),
    ("syscheck.mtime_after", Role::Skip),
    // --- VirusTotal integration ---
    ("data.virustotal.source.file", Role::FilePath),
    ("data.virustotal.source.md5", Role::Hash),
    ("data.virustotal.source.sha1", Role::Hash),
    ("data.virustotal.sha1", Role::Hash),
    ("data.virustotal.permalink", Role::Skip),
    ("data.virustotal.source.alert_id", Role::Skip),
    // --- audit (auditd) ---
    ("data.audit.exe", Role::FilePath),
    ("data.audit.file.name", Role::FilePath),
    ("data.audit.command", Role::FilePath),
    ("data.audit.cwd", Role::Skip),
    ("data.audit.directory.name", Role::Skip),
    // --- Office 365, Graph, AWS, GCP, GitHub ---
    ("*.ClientIP", Role::Ip),
    ("*.ActorIpAddress", Role::Ip),
    ("*.UserId", Role::Email),
    ("*.SourceFileName", Role::FilePath),
    ("*.SiteUrl", Role::Url),
    ("*.MessageURLs", Role::Url),
    ("*.sourceIPAddress", Role::Ip),
    ("*.ipAddressV4", Role::Ip),
    ("*.client_ip", Role::Ip),
    ("*.clientIp", Role::Ip),
    ("*.srcaddr", Role::Ip),
    ("*.dstaddr", Role::Ip),
    ("*.publicIp", Role::Ip),
    ("*.privateIpAddress", Role::Skip),
    ("*.sourceIP", Role::Ip),
    ("*.actor_ip", Role::Ip),
    ("*.callerIp", Role::Ip),
    ("*.remote_ip", Role::Ip),
    ("*.remote_address", Role::Ip),
    ("*.source_address", Role::Ip),
    ("*.destination_address", Role::Ip),
    ("*.nat_source_ip", Role::Ip),
    ("*.LocalIp", Role::Ip),
    ("*.IPAddress", Role::Ip),
    ("*.ip_address", Role::Ip),
    (
        "data.aws.service.action.dnsRequestAction.domain",
        Role::Host,
    ),
    // --- osquery (nested `osquery.columns` and the older flat `columns`) ---
    ("*.columns.address", Role::Ip),
    ("*.columns.remote_address", Role::Ip),
    ("*.columns.local_address", Role::Skip),
    ("*.columns.path", Role::FilePath),
    ("*.columns.md5", Role::Hash),
    ("*.columns.sha1", Role::Hash),
    ("*.columns.sha256", Role::Hash),
    ("*.columns.cmdline", Role::FreeText),
    ("*.calendarTime", Role::Skip),
    ("*.unixTime", Role::Skip),
    // --- generic key names ---
    ("*.md5", Role::Hash),
    ("*.sha1", Role::Hash),
    ("*.sha256", Role::Hash),
    ("*.sha512", Role::Hash),
    ("*.imphash", Role::Hash),
    ("*.filename", Role::FilePath),
    ("*.file_name", Role::FilePath),
    ("*.url", Role::Url),
    ("*.hostname", Role::Host),
    ("*.domain", Role::Host),
    ("*.email", Role::Email),
    ("*.userAgent", Role::ExactText),
    ("*.user_agent", Role::ExactText),
    ("full_log", Role::FreeText),
    ("previous_output", Role::FreeText),
];

/// Everything the table says about one key name.
#[derive(Debug, Default)]
struct KeyRules {
    /// Full paths ending in this key, with their role (`data.http.url`).
    paths: Vec<(&'static str, Role)>,
    /// Parent key → role, for `*.parent.key` patterns (`*.columns.address`).
    parents: Vec<(&'static str, Role)>,
    /// The role of `*.key`.
    any: Option<Role>,
}

/// The table compiled for lookups on the hot path: one hash of the key name per field, then a
/// few string comparisons only for keys that have path-specific rules.
pub struct FieldTable {
    by_key: HashMap<&'static str, KeyRules, foldhash::fast::FixedState>,
    /// One bit per (key length, first byte) that some key of the table has: most keys of an
    /// alert are not in the table, and this answers them without hashing.
    present: Box<[[u64; 4]; 64]>,
}

/// The `present` bit of a key: its length (capped) and first byte.
#[inline]
fn present_bit(key: &str) -> (usize, usize, u64) {
    let bytes = key.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    (
        bytes.len().min(63),
        usize::from(first >> 6),
        1u64 << (first & 63),
    )
}

impl FieldTable {
    pub fn new(entries: &'static [(&'static str, Role)]) -> Self {
        let mut by_key: HashMap<&'static str, KeyRules, foldhash::fast::FixedState> =
            HashMap::default();
        for &(pattern, role) in entries {
            if let Some(rest) = pattern.strip_prefix("*.") {
                match rest.rsplit_once('.') {
                    Some((parent, key)) => {
                        by_key.entry(key).or_default().parents.push((parent, role))
                    }
                    None => by_key.entry(rest).or_default().any = Some(role),
                }
            } else {
                let key = pattern.rsplit('.').next().unwrap_or(pattern);
                by_key.entry(key).or_default().paths.push((pattern, role));
            }
        }
        let mut present = Box::new([[0u64; 4]; 64]);
        for key in by_key.keys() {
            let (len, word, bit) = present_bit(key);
            present[len][word] |= bit;
        }
        FieldTable { by_key, present }
    }

    /// The role of the field at `path` whose last key is `key`. `None`: not in the table.
    /// An exact path wins over `*.parent.key`, which wins over `*.key`.
    #[inline]
    pub fn role(&self, path: &str, parent_key: &str, key: &str) -> Option<Role> {
        let (len, word, bit) = present_bit(key);
        if self.present[len][word] & bit == 0 {
            return None;
        }
        let rules = self.by_key.get(key)?;
        for (full, role) in &rules.paths {
            if *full == path {
                return Some(*role);
            }
        }
        if !rules.parents.is_empty() {
            for (parent, role) in &rules.parents {
                if *parent == parent_key {
                    return Some(*role);
                }
            }
        }
        rules.any
    }
}

impl Default for FieldTable {
    fn default() -> Self {
        FieldTable::new(FIELD_TABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let table = FieldTable::default();
        let cases: &[(&str, &str, Option<Role>)] = &[
            ("rule", "rule", Some(Role::Skip)),
            ("data.srcip", "srcip", Some(Role::Ip)),
            ("data.url", "url", Some(Role::Url)),
            ("data.http.url", "url", Some(Role::HttpPath)),
            ("data.something.url", "url", Some(Role::Url)),
            ("data.osquery.columns.address", "address", Some(Role::Ip)),
            ("data.columns.address", "address", Some(Role::Ip)),
            ("data.address", "address", None),
            ("data.win.eventdata.hashes", "hashes", Some(Role::HashList)),
            ("data.srcuser", "srcuser", Some(Role::Skip)),
            ("data.unknown_field", "unknown_field", None),
        ];
        for (path, key, want) in cases {
            let parent = path.rsplit('.').nth(1).unwrap_or("");
            assert_eq!(table.role(path, parent, key), *want, "{path}");
        }
    }

    #[test]
    fn table_has_no_duplicate_patterns() {
        let mut seen = std::collections::HashSet::new();
        for (pattern, _) in FIELD_TABLE {
            assert!(seen.insert(pattern), "duplicate pattern {pattern}");
        }
    }
}
