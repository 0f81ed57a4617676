//! Extract: a decoded alert → every observable in it, with the field it came from.
//!
//! One pass over the simd-json tape. Each string leaf is looked up in the [`FieldTable`] by
//! its dotted path; typed fields are parsed by their role, everything else is scanned as free
//! text. Never fails and never panics: odd values are simply not observables.
//! The [`Extraction`] is reused between alerts, so the steady state does not allocate.

use std::net::IpAddr;

use simd_json::{Node, StaticNode};

use super::fields::{Envelope, FieldTable, Role, Scope};
use super::normalize::{self, NormalizedUrl};
use super::text::TextScanner;
use crate::intel::IntelSnapshot;
use crate::model::observable::{IocKind, Observable};

/// Upper bound of observables kept per alert; the rest are counted in `truncated`.
pub const MAX_OBSERVABLES: usize = 1024;
/// Upper bound of nesting followed; deeper values are not scanned.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Item {
    kind: IocKind,
    value: (u32, u32),
    /// The field's path in the arena, once written (see [`Extraction::resolve_fields`]).
    field: (u32, u32),
    /// Where the field's path comes from, until it is written.
    source: Option<FieldRef>,
    free_text: bool,
    ip: Option<IpAddr>,
    /// The value's `key_hash` when the prefetch computed it, else 0.
    hash: u64,
}

/// A free text kept for the automaton scan.
#[derive(Clone, Copy, Debug)]
struct Text {
    /// Its field's path in the arena, once written.
    field: (u32, u32),
    /// Where the field's path comes from, until it is written.
    source: Option<FieldRef>,
    /// The text, lower-cased.
    text: (u32, u32),
}

/// The observables of one alert.
#[derive(Default)]
pub struct Extraction {
    arena: String,
    items: Vec<Item>,
    /// Free-text values (lower-cased) and their field, kept for the Aho-Corasick scan: the
    /// field's path once written, else where it comes from.
    texts: Vec<Text>,
    /// Observables dropped because the alert had more than [`MAX_OBSERVABLES`].
    pub truncated: usize,
    /// `rule.level` of the alert, when present (used for the risk score and IOC sharing).
    pub rule_level: Option<u8>,
    /// `agent.id` of the alert (the output record key).
    agent_id: Option<(u32, u32)>,
    /// `agent.name`, `rule.id`, `rule.description`, `timestamp`, `id` (for shared IOCs).
    meta: [Option<(u32, u32)>; 5],
    /// Whether the alert object already has a top-level `misp` key (the block is then not added).
    pub has_misp_key: bool,
    /// Whether the alert object already has a top-level `threat` or `wazuh_misp` key.
    pub has_threat_key: bool,
}

impl Extraction {
    pub fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
        self.texts.clear();
        self.truncated = 0;
        self.rule_level = None;
        self.agent_id = None;
        self.meta = [None; 5];
        self.has_misp_key = false;
        self.has_threat_key = false;
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The `idx`-th observable. Its `field` is empty until [`Extraction::resolve_fields`] has
    /// written the paths ([`Extractor::extract`] does; the `Processor` does for matched
    /// alerts, or for all with `describe_unmatched`).
    pub fn get(&self, idx: usize) -> Observable<'_> {
        let item = &self.items[idx];
        Observable {
            kind: item.kind,
            value: &self.arena[item.value.0 as usize..item.value.1 as usize],
            field: &self.arena[item.field.0 as usize..item.field.1 as usize],
            free_text: item.free_text,
            ip: item.ip,
        }
    }

    /// What matching reads of the `idx`-th observable: kind, value, address, and the value's
    /// `key_hash` when extraction computed it (to prefetch for it), so that matching need not
    /// hash the value again.
    pub fn for_matching(&self, idx: usize) -> (IocKind, &str, Option<IpAddr>, Option<u64>) {
        let item = &self.items[idx];
        (
            item.kind,
            &self.arena[item.value.0 as usize..item.value.1 as usize],
            item.ip,
            (item.hash != 0).then_some(item.hash),
        )
    }

    /// `agent.id`, when the alert has one.
    pub fn agent_id(&self) -> Option<&str> {
        self.agent_id.map(|range| self.slice(range))
    }

    /// Envelope facts of the alert, for shared IOCs.
    pub fn meta(&self) -> AlertMeta<'_> {
        let get = |idx: usize| self.meta[idx].map(|range| self.slice(range));
        AlertMeta {
            agent_name: get(0),
            rule_id: get(1),
            rule_description: get(2),
            timestamp: get(3),
            alert_id: get(4),
        }
    }

    fn set_meta(&mut self, idx: usize, text: Option<&str>) {
        if let Some(text) = text {
            let start = self.arena.len() as u32;
            self.arena.push_str(text);
            self.meta[idx] = Some((start, self.arena.len() as u32));
        }
    }

    fn slice(&self, range: (u32, u32)) -> &str {
        &self.arena[range.0 as usize..range.1 as usize]
    }

    /// Free-text values kept for the automaton scan, lower-cased.
    pub fn free_texts(&self) -> impl Iterator<Item = &str> {
        self.texts.iter().map(|text| self.slice(text.text))
    }

    /// The field of the `idx`-th free text (written by [`Extraction::resolve_fields`]).
    pub fn free_text_field(&self, idx: usize) -> &str {
        self.texts
            .get(idx)
            .map_or("", |text| self.slice(text.field))
    }

    fn push_text(&mut self, field: FieldRef, text: &str) {
        let start = self.arena.len() as u32;
        for ch in text.chars() {
            self.arena.extend(ch.to_lowercase());
        }
        self.texts.push(Text {
            field: (0, 0),
            source: Some(field),
            text: (start, self.arena.len() as u32),
        });
    }

    /// Writes out the field paths of the observables and free texts of the alert whose tape
    /// nodes are `nodes` (the ones it was extracted from). Extraction notes only where a
    /// field is: its path costs a walk down the tape, paid for the alerts whose fields are
    /// read (matched ones, for the enrichment). Writing them twice is harmless.
    pub fn resolve_fields(&mut self, nodes: &[Node<'_>]) {
        let mut last: Option<(FieldRef, (u32, u32))> = None;
        let mut resolve = |arena: &mut String, source: FieldRef| match last {
            Some((done, range)) if done == source => range,
            _ => {
                let start = arena.len() as u32;
                match source {
                    FieldRef::Node(node) => write_path(nodes, node as usize, arena),
                    FieldRef::Named(name) => arena.push_str(name),
                }
                let range = (start, arena.len() as u32);
                last = Some((source, range));
                range
            }
        };
        for item in &mut self.items {
            if let Some(source) = item.source.take() {
                item.field = resolve(&mut self.arena, source);
            }
        }
        for text in &mut self.texts {
            if let Some(source) = text.source.take() {
                text.field = resolve(&mut self.arena, source);
            }
        }
    }

    /// The kind of each observable, in order (cheaper than [`Extraction::iter`] for counting).
    pub fn kinds(&self) -> impl Iterator<Item = IocKind> + '_ {
        self.items.iter().map(|item| item.kind)
    }

    pub fn iter(&self) -> impl Iterator<Item = Observable<'_>> {
        (0..self.items.len()).map(move |idx| self.get(idx))
    }

    /// Adds an observable unless the same (kind, value) is already there; true when added.
    fn push(
        &mut self,
        kind: IocKind,
        value: &str,
        field: FieldRef,
        free_text: bool,
        ip: Option<IpAddr>,
    ) -> bool {
        if value.is_empty() {
            return false;
        }
        let mut existing = None;
        let arena = self.arena.as_bytes();
        for (idx, item) in self.items.iter().enumerate() {
            if item.kind == kind
                && arena[item.value.0 as usize..item.value.1 as usize] == *value.as_bytes()
            {
                existing = Some(idx);
                break;
            }
        }
        if let Some(idx) = existing {
            // A typed field names the value better than the free text that also held it.
            if self.items[idx].free_text && !free_text {
                self.items[idx].source = Some(field);
                self.items[idx].field = (0, 0);
                self.items[idx].free_text = false;
            }
            return false;
        }
        if self.items.len() >= MAX_OBSERVABLES {
            self.truncated += 1;
            return false;
        }
        let value_start = self.arena.len() as u32;
        self.arena.push_str(value);
        let value_end = self.arena.len() as u32;
        self.items.push(Item {
            kind,
            value: (value_start, value_end),
            field: (0, 0),
            source: Some(field),
            free_text,
            ip,
            hash: 0,
        });
        true
    }
}

/// The extraction being filled, and the snapshot to prefetch for (see
/// [`Extractor::extract_prefetching`]).
struct Sink<'a> {
    out: &'a mut Extraction,
    snapshot: Option<&'a IntelSnapshot>,
}

impl Sink<'_> {
    #[inline]
    fn push(
        &mut self,
        kind: IocKind,
        value: &str,
        field: FieldRef,
        free_text: bool,
        ip: Option<IpAddr>,
    ) {
        // Only a new observable is worth prefetching for: a repeat is not matched again.
        if self.out.push(kind, value, field, free_text, ip) {
            if let Some(snapshot) = self.snapshot {
                let hash = snapshot.prefetch(kind, value, ip);
                if let Some(item) = self.out.items.last_mut() {
                    item.hash = hash;
                }
            }
        }
    }
}

impl std::ops::Deref for Sink<'_> {
    type Target = Extraction;
    fn deref(&self) -> &Extraction {
        self.out
    }
}

impl std::ops::DerefMut for Sink<'_> {
    fn deref_mut(&mut self) -> &mut Extraction {
        self.out
    }
}

/// The alert envelope: who saw it, which rule fired, when.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertMeta<'a> {
    pub agent_name: Option<&'a str>,
    pub rule_id: Option<&'a str>,
    pub rule_description: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub alert_id: Option<&'a str>,
}

/// Where an observable's field is: its path is written out only for the alerts whose fields
/// are read ([`Extraction::resolve_fields`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldRef {
    /// The tape index of the field's value.
    Node(u32),
    /// A path of its own (an observable made from several fields).
    Named(&'static str),
}

/// Appends the dotted path of the value at tape index `target` (object keys from the root
/// down; array positions are not part of a path) to `out`.
fn write_path(nodes: &[Node<'_>], target: usize, out: &mut String) {
    let mut idx = 0;
    let mut first = true;
    while idx < target {
        let (len, is_object) = match nodes.get(idx) {
            Some(Node::Object { len, .. }) => (*len, true),
            Some(Node::Array { len, .. }) => (*len, false),
            _ => return,
        };
        // The member (or element) whose value holds `target`.
        let mut child = idx + 1;
        let mut inner = None;
        for _ in 0..len {
            let value_idx = child + usize::from(is_object);
            let end = value_idx + span(nodes, value_idx);
            if target < end {
                inner = Some((child, value_idx));
                break;
            }
            child = end;
        }
        let Some((child, value_idx)) = inner else {
            return;
        };
        if is_object {
            if let Some(Node::String(key)) = nodes.get(child) {
                if !first {
                    out.push('.');
                }
                out.push_str(key);
                first = false;
            }
        }
        idx = value_idx;
    }
}

/// Per-worker extractor: the field table and reusable scratch space.
pub struct Extractor {
    table: FieldTable,
    scanner: TextScanner,
    /// The field being read (its value's tape index).
    field: FieldRef,
    /// Suricata's `http.hostname` (normalised) and `http.url` path, joined into a URL after
    /// the walk; empty when the alert has none.
    http_host: String,
    http_path: String,
    /// A normalised URL, reused.
    url: NormalizedUrl,
    /// Keep free texts for the Aho-Corasick scan (set when the snapshot has text patterns).
    pub collect_texts: bool,
    /// Normalised values are written here before being copied into the extraction.
    scratch: String,
    /// The alert's envelope members (which, value index), read after the walk.
    envelopes: Vec<(Envelope, usize)>,
}

impl Default for Extractor {
    fn default() -> Self {
        Extractor::new(FieldTable::default())
    }
}

impl Extractor {
    pub fn new(table: FieldTable) -> Self {
        Extractor {
            table,
            scanner: TextScanner::default(),
            field: FieldRef::Node(0),
            http_host: String::new(),
            http_path: String::new(),
            url: NormalizedUrl::default(),
            collect_texts: false,
            scratch: String::with_capacity(256),
            envelopes: Vec::with_capacity(8),
        }
    }

    /// Extracts from the alert object whose tape nodes are `nodes` (starting at its header),
    /// its envelope and field paths included.
    pub fn extract(&mut self, nodes: &[Node<'_>], out: &mut Extraction) {
        self.extract_into(
            nodes,
            &mut Sink {
                out,
                snapshot: None,
            },
        );
        self.describe(nodes, out);
    }

    /// `extract`, prefetching what matching each observable against `snapshot` will read as
    /// soon as the observable is found: the cache misses of the lookups then overlap with the
    /// rest of the extraction instead of stalling the match stage. The envelope (rule level,
    /// agent, ids, `misp`/`threat` keys) is not read and the field paths are not written:
    /// [`Extractor::describe`] does that when they are needed, which for most deployments is
    /// for matched alerts only.
    pub fn extract_prefetching(
        &mut self,
        nodes: &[Node<'_>],
        out: &mut Extraction,
        snapshot: &IntelSnapshot,
    ) {
        self.extract_into(
            nodes,
            &mut Sink {
                out,
                snapshot: Some(snapshot),
            },
        );
    }

    /// Reads the envelope and writes the field paths of the alert last walked by
    /// [`Extractor::extract_prefetching`] (the same `nodes`) into `out`.
    pub fn describe(&self, nodes: &[Node<'_>], out: &mut Extraction) {
        for &(envelope, value_idx) in &self.envelopes {
            read_envelope(envelope, nodes, value_idx, out);
        }
        out.resolve_fields(nodes);
    }

    fn extract_into(&mut self, nodes: &[Node<'_>], out: &mut Sink<'_>) {
        out.clear();
        self.http_host.clear();
        self.http_path.clear();
        self.envelopes.clear();
        if !matches!(nodes.first(), Some(Node::Object { .. })) {
            return;
        }
        self.walk(nodes, 0, 0, Scope::ROOT, out);
        if !self.http_host.is_empty() && !self.http_path.is_empty() {
            let text = &mut self.scratch;
            text.clear();
            text.push_str("http://");
            text.push_str(&self.http_host);
            text.push_str(&self.http_path);
            if normalize::normalize_url_into(text, &mut self.url) {
                let field = FieldRef::Named("data.http.url");
                out.push(IocKind::Url, &self.url.url, field, false, None);
            }
        }
    }

    /// Walks the value at `idx`, the value of the field at `scope`; spans are computed by
    /// the caller.
    fn walk(
        &mut self,
        nodes: &[Node<'_>],
        idx: usize,
        depth: usize,
        scope: Scope,
        out: &mut Sink<'_>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        match nodes.get(idx) {
            Some(Node::Object { len, .. }) => {
                let mut child = idx + 1;
                for _ in 0..*len {
                    let Some(Node::String(child_key)) = nodes.get(child) else {
                        return;
                    };
                    let value_idx = child + 1;
                    let (mut role, child_scope) = self.table.lookup(scope, child_key);
                    if depth == 0 {
                        if let Some(envelope) = self.table.envelope(child_scope) {
                            self.envelopes.push((envelope, value_idx));
                        }
                    }
                    if role == Some(Role::EventSystem) {
                        // `system` and `eventdata` are siblings in `data.win`.
                        role = if has_eventdata(nodes, idx) {
                            Some(Role::Skip)
                        } else {
                            None
                        };
                    }
                    if role != Some(Role::Skip) {
                        match (role, nodes.get(value_idx)) {
                            (Some(role), Some(Node::String(text))) => {
                                self.leaf(role, text, value_idx, out)
                            }
                            (Some(role), Some(Node::Array { .. })) => self.array_of(
                                role,
                                nodes,
                                value_idx,
                                depth + 1,
                                child_scope.without_key(),
                                out,
                            ),
                            // What `walk` would do with a string or a scalar, without the call.
                            (None, Some(Node::String(text))) if depth < MAX_DEPTH => {
                                self.free_text(text, Some(value_idx), out)
                            }
                            (_, Some(Node::Static(_)) | None) => {}
                            _ => self.walk(nodes, value_idx, depth + 1, child_scope, out),
                        }
                    }
                    child = value_idx + span(nodes, value_idx);
                }
            }
            Some(Node::Array { len, .. }) => {
                let mut child = idx + 1;
                for _ in 0..*len {
                    match nodes.get(child) {
                        None => return,
                        Some(Node::String(text)) if depth < MAX_DEPTH => {
                            self.free_text(text, Some(child), out)
                        }
                        Some(Node::Static(_)) => {}
                        Some(_) => self.walk(nodes, child, depth + 1, scope, out),
                    }
                    child += span(nodes, child);
                }
            }
            // A field the table does not name: generic free-text scan.
            Some(Node::String(text)) if depth > 0 => self.free_text(text, Some(idx), out),
            _ => {}
        }
    }

    /// An array under a field with a role: each string element gets the role; other
    /// elements are walked at `scope` (the array's).
    fn array_of(
        &mut self,
        role: Role,
        nodes: &[Node<'_>],
        idx: usize,
        depth: usize,
        scope: Scope,
        out: &mut Sink<'_>,
    ) {
        let Some(Node::Array { len, .. }) = nodes.get(idx) else {
            return;
        };
        let mut child = idx + 1;
        for _ in 0..*len {
            match nodes.get(child) {
                Some(Node::String(text)) => self.leaf(role, text, child, out),
                Some(_) => self.walk(nodes, child, depth + 1, scope, out),
                None => return,
            }
            child += span(nodes, child);
        }
    }

    /// Scans a free-text value: the value at tape index `node`, or (`None`) the value of
    /// `self.field` (a typed field's fallback).
    fn free_text(&mut self, text: &str, node: Option<usize>, out: &mut Sink<'_>) {
        if let Some(node) = node {
            self.field = FieldRef::Node(node as u32);
        }
        if text.len() < 4 {
            return;
        }
        // Every observable but a bare hash has a '.', ':' or '@' (or a defanged form of one);
        // a bare hash is a run of at least 32 hex digits.
        let bytes = text.as_bytes();
        let short = bytes.len() < 32;
        if short
            && !bytes
                .iter()
                .any(|b| matches!(b, b'.' | b':' | b'@' | b'[' | b'('))
        {
            // Short values (ids, numbers, names) are most of them: one pass, no calls.
            return;
        }
        let has_mark = self.scanner.load(text);
        let field = self.field;
        if self.collect_texts {
            out.push_text(field, text);
        }
        // Long texts with neither (GUIDs, product names, channel paths) end here.
        if !has_mark && !has_hex_run(bytes, 32) {
            return;
        }
        self.scanner.scan_loaded(text, &mut |kind, value, ip| {
            out.push(kind, value, field, true, ip)
        });
    }

    /// A field with a role: `text`, the value at tape index `node`, read as the role says.
    fn leaf(&mut self, role: Role, text: &str, node: usize, out: &mut Sink<'_>) {
        let value = normalize::trim(text);
        if value.is_empty() || value == "-" || value == "null" {
            return;
        }
        self.field = FieldRef::Node(node as u32);
        match role {
            Role::Skip | Role::EventSystem => {}
            // An event message that reached here has no `eventdata` to repeat.
            Role::FreeText => self.free_text(value, None, out),
            // An address field holding a name is read as a host field: one parse either way.
            Role::Ip => self.host(value, out),
            Role::Host | Role::HttpHost => {
                self.host(value, out);
                if role == Role::HttpHost
                    && !normalize::normalize_domain_into(value, &mut self.http_host)
                {
                    match normalize::parse_ip(value) {
                        Some(ip) => normalize::write_ip(&ip, &mut self.http_host),
                        None => self.http_host.clear(),
                    }
                }
            }
            Role::Url => {
                if value.starts_with('/') {
                    out.push(IocKind::UriPath, value, self.field, false, None);
                    self.free_text(value, None, out);
                } else if normalize::normalize_url_into(value, &mut self.url) {
                    out.push(IocKind::Url, &self.url.url, self.field, false, None);
                    let url = std::mem::take(&mut self.url);
                    self.host(url.host(), out);
                    self.url = url;
                } else {
                    self.free_text(value, None, out);
                }
            }
            Role::HttpPath => {
                if value.starts_with('/') {
                    out.push(IocKind::UriPath, value, self.field, false, None);
                    self.http_path.clear();
                    self.http_path.push_str(value);
                }
                self.free_text(value, None, out);
            }
            Role::Email => match normalize::normalize_email_into(value, &mut self.scratch) {
                Some(domain_start) => {
                    let email = &self.scratch;
                    out.push(IocKind::Email, email, self.field, false, None);
                    let domain = &email[domain_start..];
                    out.push(IocKind::Domain, domain, self.field, false, None);
                }
                None => self.free_text(value, None, out),
            },
            Role::Hash => {
                if normalize::normalize_hash_into(value, &mut self.scratch) {
                    out.push(IocKind::Hash, &self.scratch, self.field, false, None);
                } else {
                    self.free_text(value, None, out);
                }
            }
            Role::HashList => {
                // `value.split([',', ';', ' '])`, by byte (the separators are ASCII).
                let mut rest = value;
                loop {
                    let (part, next) = match memchr::memchr3(b',', b';', b' ', rest.as_bytes()) {
                        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
                        None => (rest, None),
                    };
                    let hash = match memchr::memchr(b'=', part.as_bytes()) {
                        Some(at) => &part[at + 1..],
                        None => part,
                    };
                    if normalize::normalize_hash_into(hash, &mut self.scratch) {
                        out.push(IocKind::Hash, &self.scratch, self.field, false, None);
                    }
                    match next {
                        Some(next) => rest = next,
                        None => break,
                    }
                }
            }
            Role::FilePath => {
                if normalize::normalize_filename_into(value, &mut self.scratch) {
                    out.push(IocKind::Filename, &self.scratch, self.field, false, None);
                }
            }
            Role::PathOrRegKey => {
                let upper_start = value
                    .get(..5)
                    .map(|p| p.eq_ignore_ascii_case("hkey_") || p.eq_ignore_ascii_case("hklm\\"));
                if upper_start == Some(true) {
                    if normalize::normalize_text_into(value, &mut self.scratch) {
                        out.push(IocKind::Text, &self.scratch, self.field, false, None);
                    }
                } else if normalize::normalize_filename_into(value, &mut self.scratch) {
                    out.push(IocKind::Filename, &self.scratch, self.field, false, None);
                }
            }
            Role::DnsResults => {
                for part in value.split(';') {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    // "type:  5 cname.example.net" carries a CNAME target.
                    let candidate = if part.starts_with("type:") {
                        part.rsplit(' ').next().unwrap_or("")
                    } else {
                        part
                    };
                    match normalize::parse_ip_text(candidate) {
                        Some((ip, text)) if !normalize::is_noise_ip(&ip) => {
                            self.push_ip(ip, text, out)
                        }
                        Some(_) => {}
                        None => {
                            if normalize::normalize_domain_into(candidate, &mut self.scratch) {
                                out.push(IocKind::Domain, &self.scratch, self.field, false, None);
                            }
                        }
                    }
                }
            }
            Role::ExactText => {
                if normalize::normalize_text_into(value, &mut self.scratch) {
                    out.push(IocKind::Text, &self.scratch, self.field, false, None);
                }
            }
        }
    }

    /// Pushes address `ip`; `text` is its canonical text when the field held it as is.
    fn push_ip(&mut self, ip: IpAddr, text: Option<&str>, out: &mut Sink<'_>) {
        let text = normalize::ip_text(&ip, text, &mut self.scratch);
        out.push(IocKind::Ip, text, self.field, false, Some(ip));
    }

    /// A host field: an IP, a domain, or (for odd values) free text.
    fn host(&mut self, value: &str, out: &mut Sink<'_>) {
        if let Some((ip, text)) = normalize::parse_ip_text(value) {
            if !normalize::is_noise_ip(&ip) {
                self.push_ip(ip, text, out);
            }
        } else if normalize::normalize_domain_into(value, &mut self.scratch) {
            out.push(IocKind::Domain, &self.scratch, self.field, false, None);
        } else if normalize::normalize_url_into(value, &mut self.url) {
            out.push(IocKind::Url, &self.url.url, self.field, false, None);
        } else if value.contains(' ') {
            self.free_text(value, None, out);
        }
    }
}

/// Records the top-level facts needed after the walk (rule level, agent, ids) of the
/// `envelope` member whose value is at `value_idx`.
fn read_envelope(envelope: Envelope, nodes: &[Node<'_>], value_idx: usize, out: &mut Extraction) {
    match envelope {
        Envelope::Rule => {
            let [level, id, description] =
                members(nodes, value_idx, ["level", "id", "description"]);
            out.rule_level = level.and_then(|idx| rule_level(nodes, idx));
            out.set_meta(1, id.and_then(|idx| string_at(nodes, idx)));
            out.set_meta(2, description.and_then(|idx| string_at(nodes, idx)));
        }
        Envelope::Agent => {
            let [id, name] = members(nodes, value_idx, ["id", "name"]);
            if let Some(id) = id.and_then(|idx| string_at(nodes, idx)) {
                let start = out.arena.len() as u32;
                out.arena.push_str(id);
                out.agent_id = Some((start, out.arena.len() as u32));
            }
            out.set_meta(0, name.and_then(|idx| string_at(nodes, idx)));
        }
        Envelope::Timestamp => out.set_meta(3, string_at(nodes, value_idx)),
        Envelope::Id => out.set_meta(4, string_at(nodes, value_idx)),
        Envelope::Misp => out.has_misp_key = true,
        Envelope::Threat => out.has_threat_key = true,
    }
}

/// Whether the Windows `win` object at tape index `win` has a non-empty `eventdata`.
fn has_eventdata(nodes: &[Node<'_>], win: usize) -> bool {
    member(nodes, win, "eventdata")
        .is_some_and(|idx| matches!(nodes.get(idx), Some(Node::Object { len, .. }) if *len > 0))
}

/// Whether `bytes` has a run of at least `len` hex digits.
fn has_hex_run(bytes: &[u8], len: usize) -> bool {
    let mut run = 0;
    for &b in bytes {
        run = if b.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= len {
            return true;
        }
    }
    false
}

/// Number of tape nodes of the value at `idx` (1 for scalars).
#[inline]
pub fn span(nodes: &[Node<'_>], idx: usize) -> usize {
    match nodes.get(idx) {
        Some(Node::Object { count, .. }) | Some(Node::Array { count, .. }) => count + 1,
        _ => 1,
    }
}

/// The tape index of member `name` of the object at `idx`.
fn member(nodes: &[Node<'_>], idx: usize, name: &str) -> Option<usize> {
    members(nodes, idx, [name])[0]
}

/// The value indices of the members `names` of the object at `idx` (the first of each), in
/// one pass over its keys.
fn members<const N: usize>(nodes: &[Node<'_>], idx: usize, names: [&str; N]) -> [Option<usize>; N] {
    let mut found = [None; N];
    let Some(Node::Object { len, .. }) = nodes.get(idx) else {
        return found;
    };
    let mut child = idx + 1;
    for _ in 0..*len {
        let Some(Node::String(key)) = nodes.get(child) else {
            break;
        };
        let value_idx = child + 1;
        if let Some(at) = names.iter().position(|name| name == key) {
            found[at].get_or_insert(value_idx);
            if found.iter().all(Option::is_some) {
                // Each name's first member is found: the rest cannot change the answer.
                break;
            }
        }
        child = value_idx + span(nodes, value_idx);
    }
    found
}

/// The string at tape index `idx`.
fn string_at<'t>(nodes: &[Node<'t>], idx: usize) -> Option<&'t str> {
    match nodes.get(idx) {
        Some(Node::String(text)) => Some(text),
        _ => None,
    }
}

/// `rule.level` at tape index `idx`: a number (or, leniently, a numeric string).
fn rule_level(nodes: &[Node<'_>], idx: usize) -> Option<u8> {
    match nodes.get(idx) {
        Some(Node::Static(StaticNode::I64(level))) => u8::try_from(*level).ok(),
        Some(Node::Static(StaticNode::U64(level))) => u8::try_from(*level).ok(),
        Some(Node::String(level)) => level.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_written_from_the_tape_at_any_depth() {
        let keys: Vec<String> = (0..20).map(|idx| format!("k{idx}")).collect();
        for depth in 1..=keys.len() {
            let mut json = String::new();
            for key in &keys[..depth] {
                json.push_str(&format!(r#"{{"x":1,"{key}":"#));
            }
            json.push_str(r#""v""#);
            json.push_str(&"}".repeat(depth));
            let mut bytes = json.into_bytes();
            let tape = simd_json::to_tape(&mut bytes).expect("valid JSON");
            let target = tape.0.len() - 1;
            let mut path = String::from("arena:");
            write_path(&tape.0, target, &mut path);
            assert_eq!(
                path,
                format!("arena:{}", keys[..depth].join(".")),
                "depth {depth}"
            );
        }
        // Array positions are not part of a path; siblings before the value are skipped.
        let mut bytes =
            br#"{"a":[{"n":2},{"b":["x",{"c":"y"}],"d":"z"}],"e":{"f":[["w"]]}}"#.to_vec();
        let tape = simd_json::to_tape(&mut bytes).expect("valid JSON");
        let at = |text: &str| {
            tape.0
                .iter()
                .position(|node| matches!(node, Node::String(s) if *s == text))
                .unwrap()
        };
        for (value, want) in [("x", "a.b"), ("y", "a.b.c"), ("z", "a.d"), ("w", "e.f")] {
            let mut path = String::new();
            write_path(&tape.0, at(value), &mut path);
            assert_eq!(path, want, "{value}");
        }
    }

    #[test]
    fn deep_fields_keep_their_whole_path() {
        let mut json = String::from(r#"{"data":"#);
        let keys = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for key in keys {
            json.push_str(&format!(r#"{{"{key}":"#));
        }
        json.push_str(r#""seen 203.0.113.9 here""#);
        json.push_str(&"}".repeat(keys.len() + 1));
        let mut bytes = json.into_bytes();
        let tape = simd_json::to_tape(&mut bytes).expect("valid JSON");
        let mut extraction = Extraction::default();
        Extractor::default().extract(&tape.0, &mut extraction);
        let found: Vec<(IocKind, String, String)> = extraction
            .iter()
            .map(|o| (o.kind, o.value.to_string(), o.field.to_string()))
            .collect();
        assert_eq!(
            found,
            [(
                IocKind::Ip,
                "203.0.113.9".to_string(),
                "data.a.b.c.d.e.f.g.h.i.j".to_string()
            )]
        );
    }
}
