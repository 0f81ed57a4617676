//! The field table: where IOCs live in Wazuh alerts, as data.
//!
//! Each entry maps a pattern to a [`Role`]. A pattern is either a dotted path from the alert
//! root (`data.http.url`; array indices are dropped) or `*.key`, which matches that key at any
//! depth. An exact path wins over a `*.key`. A `Skip` on an object skips the whole subtree.
//! Fields the table does not name are scanned generically as free text, so unknown alert
//! shapes still yield IPs, domains, URLs, e-mails and hashes.
//!
//! To support a new decoder, add its fields here; nothing else changes.

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
    /// Windows `system`: bookkeeping (provider, channel, ids, counters, the computer) and
    /// `message`, the event rendered as text from its `eventdata` fields. Skipped whole when
    /// the event has `eventdata`, whose fields are read with their own roles (the rendering
    /// would only repeat them, and the ones skipped on purpose such as `user` and
    /// `currentDirectory`); otherwise walked, and its message read as free text.
    EventSystem,
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
    ("data.win.system", Role::EventSystem),
    ("data.win.system.message", Role::FreeText),
    // The event's own bookkeeping: provider, channel, counters, levels (never a remote party).
    ("data.win.system.providerName", Role::Skip),
    ("data.win.system.channel", Role::Skip),
    ("data.win.system.keywords", Role::Skip),
    ("data.win.system.severityValue", Role::Skip),
    ("data.win.system.eventRecordID", Role::Skip),
    ("data.win.system.processID", Role::Skip),
    ("data.win.system.threadID", Role::Skip),
    // Sysmon's own fields: the rule that fired, versions, logon and session ids.
    ("*.ruleName", Role::Skip),
    ("*.fileVersion", Role::Skip),
    ("*.logonId", Role::Skip),
    ("*.terminalSessionId", Role::Skip),
    ("*.integrityLevel", Role::Skip),
    ("*.creationUtcTime", Role::Skip),
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

/// Everything the table says about one key name while it is being compiled.
#[derive(Debug, Default)]
struct KeyRules {
    /// Its exact-path, parent-key and trie-edge rules.
    rules: Vec<Rule>,
    /// The role of `*.key`.
    any: Option<Role>,
}

/// Where a walk over an alert is: the trie node of the current object's path (`NO_NODE` once
/// the path leaves every exact pattern) and the key id of the object's own key (`NO_KEY` when
/// the table does not know the key). Carried down the walk instead of comparing path strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    node: u16,
    key: u16,
}

impl Scope {
    /// The alert object itself.
    pub const ROOT: Scope = Scope {
        node: ROOT_NODE,
        key: NO_KEY,
    };
    /// Below a key the table does not know: only `*.key` patterns can apply.
    const UNKNOWN: Scope = Scope {
        node: NO_NODE,
        key: NO_KEY,
    };

    /// The same path, without the parent key (elements of a typed array that are objects).
    pub fn without_key(self) -> Scope {
        Scope {
            node: self.node,
            key: NO_KEY,
        }
    }
}

/// Top-level keys whose values the extractor records for later stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    Rule,
    Agent,
    Timestamp,
    Id,
    Misp,
    /// `threat` or `wazuh_misp`: the alert was enriched before.
    Threat,
}

const ENVELOPE: [(&str, Envelope); 7] = [
    ("rule", Envelope::Rule),
    ("agent", Envelope::Agent),
    ("timestamp", Envelope::Timestamp),
    ("id", Envelope::Id),
    ("misp", Envelope::Misp),
    ("threat", Envelope::Threat),
    ("wazuh_misp", Envelope::Threat),
];

const ROOT_NODE: u16 = 0;
const NO_NODE: u16 = u16::MAX;
const NO_KEY: u16 = u16::MAX;

/// The table compiled for lookups on the hot path, small enough to stay in cache: key names
/// in an open-addressing table probed by their length and first and last bytes (no
/// general-purpose hash, no `memcmp` for keys of up to 16 bytes), each slot pointing at a
/// short run of integer rules (exact paths as trie nodes, parent keys as key ids).
pub struct FieldTable {
    slots: Box<[Slot; KEY_SLOTS]>,
    /// Key names by key id (compared whole only for keys longer than 16 bytes).
    names: Vec<&'static str>,
    rules: Vec<Rule>,
    /// The [`ENVELOPE`] role of each key id, if any.
    envelope: Box<[Option<Envelope>]>,
}

/// Slots of the key table: a power of two, well above the number of key names.
const KEY_SLOTS: usize = 512;

/// One key name of the table, or an empty slot (`id == NO_KEY`).
#[derive(Clone, Copy)]
struct Slot {
    head: u64,
    tail: u64,
    len: u16,
    id: u16,
    /// The role of `*.key`.
    any: Option<Role>,
    /// `rules[first_rule..first_rule + n_rules]` are this key's.
    n_rules: u8,
    first_rule: u16,
}

const EMPTY_SLOT: Slot = Slot {
    head: 0,
    tail: 0,
    len: 0,
    id: NO_KEY,
    any: None,
    n_rules: 0,
    first_rule: 0,
};

/// One compiled rule of a key: applies when the walk is at `from` (a trie node for `Path`
/// and `Child`, a key id for `Parent`).
#[derive(Clone, Copy, Debug)]
struct Rule {
    from: u16,
    action: RuleAction,
}

#[derive(Clone, Copy, Debug)]
enum RuleAction {
    /// An exact path ends here with this role.
    Path(Role),
    /// `*.parent.key` with this role.
    Parent(Role),
    /// The key continues an exact path's prefix: the child's trie node.
    Child(u16),
}

/// A key's length, first 8 and last 8 bytes (zero-padded): equal words mean equal keys for
/// keys of up to 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct KeyWords {
    len: usize,
    head: u64,
    tail: u64,
}

impl KeyWords {
    #[inline]
    fn of(key: &str) -> Self {
        let bytes = key.as_bytes();
        let len = bytes.len();
        // Zero-padded little-endian loads without a loop: overlapping reads OR the same
        // byte values into the same positions.
        let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
            _ => match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
                (Some(first), Some(last)) => {
                    let first = u64::from(u32::from_le_bytes(*first));
                    let last = u64::from(u32::from_le_bytes(*last));
                    (first | (last << (8 * (len - 4))), 0)
                }
                _ if len > 0 => {
                    let byte = |idx: usize| u64::from(bytes[idx]) << (8 * idx);
                    (byte(0) | byte(len / 2) | byte(len - 1), 0)
                }
                _ => (0, 0),
            },
        };
        KeyWords { len, head, tail }
    }

    #[inline]
    fn slot(&self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> 55) as usize % KEY_SLOTS
    }
}

/// The id of key name `key` in `by_key`, added when new.
fn key_id(by_key: &mut Vec<(&'static str, KeyRules)>, key: &'static str) -> u16 {
    let pos = match by_key.iter().position(|(known, _)| *known == key) {
        Some(pos) => pos,
        None => {
            by_key.push((key, KeyRules::default()));
            by_key.len() - 1
        }
    };
    pos as u16
}

/// Adds `rule` to the rules of key name `key`.
fn add_rule(by_key: &mut Vec<(&'static str, KeyRules)>, key: &'static str, rule: Rule) {
    let id = key_id(by_key, key);
    by_key[usize::from(id)].1.rules.push(rule);
}

/// The trie node of `path` (a dotted prefix of exact patterns), added with its edges when new;
/// `nodes` counts the nodes made so far.
fn node_of(nodes: &mut u16, by_key: &mut Vec<(&'static str, KeyRules)>, path: &'static str) -> u16 {
    let mut node = ROOT_NODE;
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let id = key_id(by_key, part);
        let rules = &mut by_key[usize::from(id)].1.rules;
        let child = rules.iter().find_map(|rule| match rule.action {
            RuleAction::Child(child) if rule.from == node => Some(child),
            _ => None,
        });
        node = child.unwrap_or_else(|| {
            let child = *nodes;
            *nodes += 1;
            rules.push(Rule {
                from: node,
                action: RuleAction::Child(child),
            });
            child
        });
    }
    node
}

impl FieldTable {
    pub fn new(entries: &'static [(&'static str, Role)]) -> Self {
        let mut by_key: Vec<(&'static str, KeyRules)> = Vec::new();
        // Trie nodes made so far; node 0 is the alert root.
        let mut nodes: u16 = 1;
        for &(pattern, role) in entries {
            if let Some(rest) = pattern.strip_prefix("*.") {
                match rest.rsplit_once('.') {
                    Some((parent, key)) => {
                        assert!(!parent.contains('.'), "{pattern}: one parent key only");
                        let from = key_id(&mut by_key, parent);
                        let action = RuleAction::Parent(role);
                        add_rule(&mut by_key, key, Rule { from, action });
                    }
                    None => {
                        let id = key_id(&mut by_key, rest);
                        by_key[usize::from(id)].1.any = Some(role);
                    }
                }
            } else {
                let (parent, key) = pattern.rsplit_once('.').unwrap_or(("", pattern));
                let from = node_of(&mut nodes, &mut by_key, parent);
                add_rule(
                    &mut by_key,
                    key,
                    Rule {
                        from,
                        action: RuleAction::Path(role),
                    },
                );
            }
        }
        let envelope_ids = ENVELOPE.map(|(key, _)| key_id(&mut by_key, key));
        assert!(
            by_key.len() < KEY_SLOTS / 2 && nodes < NO_NODE,
            "the field table has too many key names"
        );
        let mut envelope = vec![None; by_key.len()].into_boxed_slice();
        for (id, (_, role)) in envelope_ids.into_iter().zip(ENVELOPE) {
            envelope[usize::from(id)] = Some(role);
        }
        let mut slots = Box::new([EMPTY_SLOT; KEY_SLOTS]);
        let mut names = Vec::with_capacity(by_key.len());
        let mut rules = Vec::new();
        for (id, (key, key_rules)) in by_key.into_iter().enumerate() {
            let words = KeyWords::of(key);
            let mut slot = words.slot();
            while slots[slot].id != NO_KEY {
                slot = (slot + 1) % KEY_SLOTS;
            }
            let first_rule = rules.len();
            rules.extend(key_rules.rules);
            slots[slot] = Slot {
                head: words.head,
                tail: words.tail,
                len: words.len as u16,
                id: id as u16,
                any: key_rules.any,
                n_rules: u8::try_from(rules.len() - first_rule).expect("few rules per key"),
                first_rule: u16::try_from(first_rule).expect("few rules"),
            };
            names.push(key);
        }
        FieldTable {
            slots,
            names,
            rules,
            envelope,
        }
    }

    /// The slot of key name `key`, if the table names it (as a key or on a pattern's path).
    #[inline]
    fn slot(&self, key: &str) -> Option<&Slot> {
        let words = KeyWords::of(key);
        let mut slot = words.slot();
        loop {
            let candidate = &self.slots[slot];
            if candidate.id == NO_KEY {
                return None;
            }
            if candidate.head == words.head
                && candidate.tail == words.tail
                && usize::from(candidate.len) == words.len
                && (key.len() <= 16 || self.names[usize::from(candidate.id)] == key)
            {
                return Some(candidate);
            }
            slot = (slot + 1) % KEY_SLOTS;
        }
    }

    /// Whether some pattern ends in key name `key`.
    #[cfg(test)]
    fn names_key(&self, key: &str) -> bool {
        self.slot(key).is_some_and(|slot| {
            slot.any.is_some()
                || self
                    .key_rules(slot)
                    .iter()
                    .any(|rule| matches!(rule.action, RuleAction::Path(_) | RuleAction::Parent(_)))
        })
    }

    #[inline]
    fn key_rules(&self, slot: &Slot) -> &[Rule] {
        let first = usize::from(slot.first_rule);
        self.rules
            .get(first..first + usize::from(slot.n_rules))
            .unwrap_or(&[])
    }

    /// The role of the field `key` of the object at `scope` (`None`: not in the table), and
    /// the scope of that field's value for walking into it.
    /// An exact path wins over `*.parent.key`, which wins over `*.key`.
    #[inline]
    pub fn lookup(&self, scope: Scope, key: &str) -> (Option<Role>, Scope) {
        let Some(slot) = self.slot(key) else {
            return (None, Scope::UNKNOWN);
        };
        let mut child = Scope {
            node: NO_NODE,
            key: slot.id,
        };
        let mut path_role = None;
        let mut parent_role = None;
        for rule in self.key_rules(slot) {
            match rule.action {
                RuleAction::Path(role) if rule.from == scope.node => path_role = Some(role),
                RuleAction::Parent(role) if rule.from == scope.key => parent_role = Some(role),
                RuleAction::Child(node) if rule.from == scope.node => child.node = node,
                _ => {}
            }
        }
        (path_role.or(parent_role).or(slot.any), child)
    }

    /// Which envelope key a top-level key is, from the scope [`FieldTable::lookup`] gave it.
    #[inline]
    pub fn envelope(&self, scope: Scope) -> Option<Envelope> {
        self.envelope.get(usize::from(scope.key)).copied().flatten()
    }

    /// The role of the field at dotted `path` from the alert root (array indices dropped).
    pub fn role_of_path(&self, path: &str) -> Option<Role> {
        let mut scope = Scope::ROOT;
        let mut role = None;
        for part in path.split('.') {
            (role, scope) = self.lookup(scope, part);
        }
        role
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
            // A parent-key pattern needs the key's own parent; an exact path its full path.
            ("data.columns.x.address", "address", None),
            ("x.data.http.url", "url", Some(Role::Url)),
            ("data.win.system.computer", "computer", Some(Role::Skip)),
            ("data.win.computer", "computer", None),
            ("data.http", "http", None),
        ];
        for (path, _, want) in cases {
            assert_eq!(table.role_of_path(path), *want, "{path}");
        }
    }

    #[test]
    fn every_key_name_is_found_and_near_misses_are_not() {
        let table = FieldTable::default();
        for (pattern, _) in FIELD_TABLE {
            let key = pattern.rsplit('.').next().unwrap_or(pattern);
            assert!(table.names_key(key), "{key}");
            for variant in [
                format!("{key}x"),
                format!("x{key}"),
                key[..key.len() - 1].to_string(),
                key.to_uppercase(),
            ] {
                let known = FIELD_TABLE
                    .iter()
                    .any(|(p, _)| p.rsplit('.').next() == Some(variant.as_str()));
                assert_eq!(table.names_key(&variant), known, "{variant}");
            }
        }
        for key in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
        ] {
            let words = KeyWords::of(key);
            let mut padded = [0u8; 16];
            padded[..key.len()].copy_from_slice(key.as_bytes());
            if key.len() < 8 {
                assert_eq!(
                    words.head,
                    u64::from_le_bytes(padded[..8].try_into().unwrap())
                );
                assert_eq!(words.tail, 0);
            }
        }
        // Long keys that share their first and last 8 bytes with a key of the table.
        assert!(!table.names_key("destinationXXHostname"));
        assert!(!table.names_key("destinatioXHostname"));
        assert!(table.names_key("destinationHostname"));
    }

    #[test]
    fn table_has_no_duplicate_patterns() {
        let mut seen = std::collections::HashSet::new();
        for (pattern, _) in FIELD_TABLE {
            assert!(seen.insert(pattern), "duplicate pattern {pattern}");
        }
    }
}
