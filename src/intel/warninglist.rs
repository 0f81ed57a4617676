//! MISP warninglists: values that must never match (public resolvers, top sites, RFC 1918,
//! empty-file hashes, ...). All five list types: string, substring, hostname, cidr, regex.
//!
//! Semantics follow MISP's `Warninglist.php`: a list applies to the attribute types in its
//! `matching_attributes` (all types when absent or `ALL`); composite values are tested part by
//! part by the caller; `hostname` tests the host and every parent domain; `cidr` entries
//! without a prefix are /32 or /128; `regex` entries are PCRE with delimiters and flags.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use hashbrown::HashSet;
use serde::Deserialize;

use super::index::PrefixMap;
use crate::pipeline::normalize;

#[derive(Debug, thiserror::Error)]
pub enum WarninglistError {
    #[error("cannot read warninglist {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid warninglist {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
struct ListFile {
    name: String,
    #[serde(rename = "type")]
    list_type: String,
    list: Vec<String>,
    #[serde(default)]
    matching_attributes: Vec<String>,
}

enum Matcher {
    Exact(HashSet<String>),
    Substring(AhoCorasick),
    Hostname(HashSet<String>),
    Cidr(PrefixMap<()>),
    Regex(regex::RegexSet),
}

pub struct Warninglist {
    pub name: String,
    matcher: Matcher,
    /// `None`: applies to every attribute type.
    types: Option<HashSet<String>>,
    pub entries: usize,
}

/// Every loaded list.
#[derive(Default)]
pub struct Warninglists {
    lists: Vec<Warninglist>,
    /// Entries that could not be used (e.g. a regex the engine rejects), with the reason.
    pub skipped: Vec<String>,
}

impl Warninglist {
    fn applies_to(&self, misp_type: &str) -> bool {
        match &self.types {
            None => true,
            Some(types) => types.contains(misp_type),
        }
    }

    fn hits(&self, value: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(set) => {
                set.contains(value) || set.contains(value.to_lowercase().as_str())
            }
            Matcher::Substring(automaton) => automaton.is_match(value),
            Matcher::Hostname(set) => {
                let host = normalize::host_of(value)
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                set.contains(host.as_str())
                    || normalize::parent_domains(&host).any(|parent| set.contains(parent))
            }
            Matcher::Cidr(prefixes) => {
                let host = normalize::host_of(value);
                match normalize::parse_ip(value).or_else(|| normalize::parse_ip(host)) {
                    Some(ip) => prefixes.contains(ip),
                    None => {
                        normalize::parse_cidr(value).is_some_and(|(ip, _)| prefixes.contains(ip))
                    }
                }
            }
            Matcher::Regex(set) => set.is_match(value),
        }
    }
}

impl Warninglists {
    /// Loads every `*.json` warninglist under `dir` (recursively; MISP's repository layout is
    /// `lists/<name>/list.json`). Any unreadable or invalid list is an error naming its path.
    pub fn load_dir(dir: &Path) -> Result<Self, WarninglistError> {
        let mut files = Vec::new();
        collect_json(dir, &mut files).map_err(|source| WarninglistError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        files.sort();
        let mut lists = Warninglists::default();
        for path in files {
            if path.file_name().and_then(|n| n.to_str()) == Some("schema.json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|source| WarninglistError::Io {
                path: path.clone(),
                source,
            })?;
            lists
                .add_json(&bytes)
                .map_err(|reason| WarninglistError::Invalid {
                    path: path.clone(),
                    reason,
                })?;
        }
        Ok(lists)
    }

    /// Adds one list from its `list.json` bytes.
    pub fn add_json(&mut self, bytes: &[u8]) -> Result<(), String> {
        let file: ListFile = serde_json::from_slice(bytes).map_err(|err| err.to_string())?;
        let entries = file.list.len();
        let matcher = match file.list_type.as_str() {
            "string" => Matcher::Exact(
                file.list
                    .iter()
                    .flat_map(|e| [e.clone(), e.to_lowercase()])
                    .collect(),
            ),
            "hostname" => Matcher::Hostname(
                file.list
                    .iter()
                    .map(|e| e.trim().trim_matches('.').to_ascii_lowercase())
                    .collect(),
            ),
            "substring" => Matcher::Substring(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(file.list.iter().filter(|e| !e.is_empty()))
                    .map_err(|err| err.to_string())?,
            ),
            "cidr" => {
                let mut prefixes = PrefixMap::default();
                for entry in &file.list {
                    match normalize::parse_cidr(entry) {
                        Some((network, len)) => {
                            prefixes.slot(network, len, || ());
                        }
                        None => self
                            .skipped
                            .push(format!("{}: not a cidr: {entry}", file.name)),
                    }
                }
                Matcher::Cidr(prefixes)
            }
            "regex" => {
                let mut patterns = Vec::new();
                for entry in &file.list {
                    match pcre_to_rust(entry) {
                        Some(pattern) if regex::Regex::new(&pattern).is_ok() => {
                            patterns.push(pattern)
                        }
                        _ => self
                            .skipped
                            .push(format!("{}: unsupported regex: {entry}", file.name)),
                    }
                }
                Matcher::Regex(regex::RegexSet::new(patterns).map_err(|err| err.to_string())?)
            }
            other => return Err(format!("unknown list type {other:?}")),
        };
        let types = if file.matching_attributes.is_empty()
            || file.matching_attributes.iter().any(|t| t == "ALL")
        {
            None
        } else {
            Some(file.matching_attributes.into_iter().collect())
        };
        self.lists.push(Warninglist {
            name: file.name,
            matcher,
            types,
            entries,
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn lists(&self) -> &[Warninglist] {
        &self.lists
    }

    /// The name of the first list that holds `value` for attribute type `misp_type`.
    pub fn check(&self, value: &str, misp_type: &str) -> Option<&str> {
        self.lists
            .iter()
            .find(|list| list.applies_to(misp_type) && list.hits(value))
            .map(|list| list.name.as_str())
    }

    /// True when the address is on any cidr list that applies to `misp_type`.
    pub fn check_ip(&self, ip: IpAddr, misp_type: &str) -> bool {
        self.lists.iter().any(|list| {
            list.applies_to(misp_type)
                && matches!(&list.matcher, Matcher::Cidr(prefixes) if prefixes.contains(ip))
        })
    }
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// `/^(a|b)\@x$/i` → `(?i)^(a|b)\@x$`. `None` when the delimiters do not pair up.
pub fn pcre_to_rust(entry: &str) -> Option<String> {
    let entry = entry.trim();
    let delimiter = entry.chars().next()?;
    if delimiter.is_alphanumeric() || delimiter == '\\' || delimiter.is_whitespace() {
        return None;
    }
    let closing = match delimiter {
        '(' => ')',
        '{' => '}',
        '[' => ']',
        '<' => '>',
        other => other,
    };
    let end = entry.rfind(closing)?;
    if end == 0 {
        return None;
    }
    let body = &entry[delimiter.len_utf8()..end];
    let mut flags = String::new();
    for flag in entry[end + closing.len_utf8()..].chars() {
        match flag {
            'i' | 'm' | 's' | 'x' => flags.push(flag),
            'u' | 'D' | 'U' => {}
            _ => return None,
        }
    }
    Some(if flags.is_empty() {
        body.to_string()
    } else {
        format!("(?{flags}){body}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> Warninglists {
        let mut lists = Warninglists::default();
        for json in [
            r#"{"name":"rfc1918","type":"cidr","list":["10.0.0.0/8","192.168.0.0/16"],"matching_attributes":["ip-src","ip-dst","ip-dst|port","domain|ip"],"description":"d","version":1}"#,
            r#"{"name":"dns","type":"cidr","list":["8.8.8.8","2001:4860:4860::8888"],"description":"d","version":1}"#,
            r#"{"name":"empty","type":"string","list":["d41d8cd98f00b204e9800998ecf8427e"],"matching_attributes":["md5"],"description":"d","version":1}"#,
            r#"{"name":"top","type":"hostname","list":["google.com."],"description":"d","version":1}"#,
            r#"{"name":"sim","type":"substring","list":["attack-sim"],"description":"d","version":1}"#,
            r#"{"name":"contacts","type":"regex","list":["/^(security|abuse)\\@.*\\..*$/i"],"matching_attributes":["email-src"],"description":"d","version":1}"#,
        ] {
            lists.add_json(json.as_bytes()).unwrap();
        }
        lists
    }

    #[test]
    fn every_list_type() {
        let lists = lists();
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("10.2.3.4", "ip-dst", Some("rfc1918")),
            ("10.2.3.4", "domain", None),
            ("11.2.3.4", "ip-dst", None),
            ("8.8.8.8", "ip-src", Some("dns")),
            ("8.8.8.9", "ip-src", None),
            ("2001:4860:4860::8888", "ip-dst", Some("dns")),
            ("d41d8cd98f00b204e9800998ecf8427e", "md5", Some("empty")),
            ("d41d8cd98f00b204e9800998ecf8427e", "sha1", None),
            ("google.com", "domain", Some("top")),
            ("mail.google.com", "hostname", Some("top")),
            ("https://www.google.com/x", "url", Some("top")),
            ("notgoogle.com", "domain", None),
            ("www.attack-sim.example", "domain", Some("sim")),
            ("Security@corp.example", "email-src", Some("contacts")),
            ("mallory@corp.example", "email-src", None),
        ];
        for (value, misp_type, want) in cases {
            assert_eq!(
                lists.check(value, misp_type),
                *want,
                "{value} as {misp_type}"
            );
        }
    }

    #[test]
    fn pcre_conversion() {
        assert_eq!(pcre_to_rust("/^a$/i").as_deref(), Some("(?i)^a$"));
        assert_eq!(pcre_to_rust("#x/y#").as_deref(), Some("x/y"));
        assert_eq!(pcre_to_rust("noslash"), None);
        assert_eq!(pcre_to_rust("/a/q"), None);
    }
}
