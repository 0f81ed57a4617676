//! The immutable indicator set: built once, swapped whole, never mutated.
//!
//! Layout: attribute records in a flat `Vec` (values, uuids and dates in one string arena),
//! and one index per kind of part: IP prefixes (exact IPs are /32 and /128), domains (looked
//! up for the host and each parent), host names, URLs, URI paths, e-mails, hashes, file names
//! and exact text. Free-text indicators without a lexical shape (URI paths, user-agents,
//! registry keys, mutexes) are also compiled into one Aho-Corasick automaton.

use std::net::IpAddr;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use hashbrown::HashMap;

use super::index::{self, Postings, PrefixMap, StrIndex};
use super::types::{plan, PartKind};
use super::warninglist::Warninglists;
use crate::model::observable::IocKind;
use crate::pipeline::normalize;

/// Shortest free-text (Aho-Corasick) pattern: shorter ones would fire on ordinary words.
pub const MIN_TEXT_PATTERN: usize = 6;

/// A MISP event, shared by its attributes.
#[derive(Debug, Clone, Default)]
pub struct EventInfo {
    pub id: Box<str>,
    pub uuid: Box<str>,
    pub info: Box<str>,
    pub threat_level_id: Box<str>,
    pub date: Box<str>,
    pub orgc: Box<str>,
    pub tags: Box<[u32]>,
}

impl EventInfo {
    /// How outputs name the event: its id, or its uuid for events known only by uuid (feeds).
    pub fn reference_id(&self) -> &str {
        if self.id.is_empty() {
            &self.uuid
        } else {
            &self.id
        }
    }
}

/// One MISP attribute, compact (48 bytes, 4-byte aligned): strings live in the snapshot's
/// arena; first/last seen, rarely set, live in a side map.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// A canonical uuid's 16 bytes, or (flag `UUID_TEXT`) arena start and length in the
    /// first 8 bytes.
    uuid: [u8; 16],
    value: (u32, u32),
    tags: (u32, u32),
    event: u32,
    /// Unix seconds (u32 lasts until 2106).
    timestamp: u32,
    misp_type: u16,
    category: u16,
    flags: u8,
}

const TO_IDS: u8 = 1;
const UUID_TEXT: u8 = 2;
/// Pulled from MISP's REST API or notifications (not from files or feeds): the part an
/// incremental pull or a notification may replace, and that a files reload keeps.
const FROM_MISP: u8 = 4;

/// A borrowed view of one attribute.
#[derive(Debug, Clone, Copy)]
pub struct Attribute<'a> {
    pub id: u32,
    pub uuid: UuidRef<'a>,
    pub misp_type: &'a str,
    pub category: &'a str,
    pub value: &'a str,
    pub to_ids: bool,
    pub timestamp: i64,
    pub first_seen: Option<&'a str>,
    pub last_seen: Option<&'a str>,
    pub event: &'a EventInfo,
    /// From MISP (REST or notifications) rather than from files or feeds.
    pub from_misp: bool,
    snapshot: &'a IntelSnapshot,
    tags: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
pub enum UuidRef<'a> {
    Canonical(u128),
    Text(&'a str),
}

impl std::fmt::Display for UuidRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UuidRef::Text(text) => f.write_str(text),
            UuidRef::Canonical(bits) => {
                let hex = format!("{bits:032x}");
                write!(
                    f,
                    "{}-{}-{}-{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..32]
                )
            }
        }
    }
}

impl UuidRef<'_> {
    /// The uuid's text (as [`Display`](std::fmt::Display) writes it), without allocating.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            UuidRef::Text(text) => out.extend_from_slice(text.as_bytes()),
            UuidRef::Canonical(bits) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for (idx, byte) in bits.to_be_bytes().iter().enumerate() {
                    if matches!(idx, 4 | 6 | 8 | 10) {
                        out.push(b'-');
                    }
                    out.push(HEX[usize::from(byte >> 4)]);
                    out.push(HEX[usize::from(byte & 0xf)]);
                }
            }
        }
    }
}

impl<'a> Attribute<'a> {
    /// Attribute tags, then the event's tags (de-duplicated).
    pub fn tags(&self) -> impl Iterator<Item = &'a str> + 'a {
        let snapshot = self.snapshot;
        let own = &snapshot.tag_refs[self.tags.0 as usize..(self.tags.0 + self.tags.1) as usize];
        let event_tags = &self.event.tags;
        own.iter()
            .copied()
            .chain(
                event_tags
                    .iter()
                    .copied()
                    .filter(move |tag| !own.contains(tag)),
            )
            .map(move |tag| snapshot.tag_names[tag as usize].as_ref())
    }
}

/// Counts by index, for metrics and `check-config`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SnapshotStats {
    pub attributes: usize,
    pub events: usize,
    pub ip: usize,
    pub domain: usize,
    pub hostname: usize,
    pub url: usize,
    pub uri: usize,
    pub email: usize,
    pub hash: usize,
    pub filename: usize,
    pub text: usize,
    pub text_patterns: usize,
    /// Attributes not indexed, by reason.
    pub skipped_non_ids: usize,
    pub skipped_deleted: usize,
    pub skipped_unsupported_type: usize,
    pub skipped_invalid_value: usize,
    pub skipped_warninglisted: usize,
    pub skipped_duplicate: usize,
    /// Under `misp.decay_threshold`.
    pub skipped_decayed: usize,
}

/// Arena ranges of an attribute's first_seen and last_seen ((0, 0) when absent).
type SeenRanges = ((u32, u32), (u32, u32));

/// The indicator set.
pub struct IntelSnapshot {
    records: Vec<Record>,
    /// first_seen / last_seen ranges of the attributes that have them.
    seen: HashMap<u32, SeenRanges>,
    arena: String,
    events: Vec<EventInfo>,
    tag_names: Vec<Box<str>>,
    tag_refs: Vec<u32>,
    type_names: Vec<Box<str>>,
    category_names: Vec<Box<str>>,
    postings: Postings,
    ip: PrefixMap<u32>,
    domain: StrIndex,
    hostname: StrIndex,
    url: StrIndex,
    uri: StrIndex,
    email: StrIndex,
    hash: StrIndex,
    filename: StrIndex,
    text: StrIndex,
    automaton: Option<AhoCorasick>,
    automaton_ids: Vec<u32>,
    warninglists: Option<Arc<Warninglists>>,
    stats: SnapshotStats,
}

impl std::fmt::Debug for IntelSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntelSnapshot")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl IntelSnapshot {
    pub fn empty() -> Self {
        SnapshotBuilder::new(false, None).build()
    }

    pub fn stats(&self) -> &SnapshotStats {
        &self.stats
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn warninglists(&self) -> Option<&Warninglists> {
        self.warninglists.as_deref()
    }

    /// The shared warninglists, for a builder that derives a new snapshot from this one.
    pub fn warninglists_arc(&self) -> Option<Arc<Warninglists>> {
        self.warninglists.clone()
    }

    /// The attribute's own tags (not its event's).
    fn own_tags(&self, tags: (u32, u32)) -> impl Iterator<Item = &str> {
        self.tag_refs[tags.0 as usize..(tags.0 + tags.1) as usize]
            .iter()
            .map(|tag| self.tag_names[*tag as usize].as_ref())
    }

    /// The event's tag names.
    fn event_tags<'s>(&'s self, event: &'s EventInfo) -> impl Iterator<Item = &'s str> {
        event
            .tags
            .iter()
            .map(|tag| self.tag_names[*tag as usize].as_ref())
    }

    /// Newest `timestamp` among the attributes from MISP (0 when none).
    pub fn misp_high_water_mark(&self) -> i64 {
        self.records
            .iter()
            .filter(|record| record.flags & FROM_MISP != 0)
            .map(|record| i64::from(record.timestamp))
            .max()
            .unwrap_or(0)
    }

    fn text(&self, range: (u32, u32)) -> &str {
        &self.arena[range.0 as usize..(range.0 + range.1) as usize]
    }

    /// Starts loading the record of attribute `id` (a hint; no effect on any result).
    #[inline]
    pub fn prefetch_record(&self, id: u32) {
        if let Some(record) = self.records.get(id as usize) {
            index::prefetch(record);
        }
    }

    /// Starts loading what [`IntelSnapshot::attribute`] reads besides the record (loaded by
    /// now, see [`IntelSnapshot::prefetch_record`]): the value text, the event, the tag list.
    /// A hint; no effect on any result.
    pub fn prefetch_attribute(&self, id: u32) {
        let Some(record) = self.records.get(id as usize) else {
            return;
        };
        if let Some(value) = self.arena.as_bytes().get(record.value.0 as usize) {
            index::prefetch(value);
        }
        if let Some(event) = self.events.get(record.event as usize) {
            index::prefetch(event);
        }
        if let Some(tags) = self.tag_refs.get(record.tags.0 as usize) {
            index::prefetch(tags);
        }
    }

    /// Starts loading what writing `attribute` out reads besides [`IntelSnapshot::attribute`]:
    /// the event's texts and tags (a hint; no effect on any result).
    pub fn prefetch_attribute_data(&self, attribute: &Attribute<'_>) {
        let event = attribute.event;
        for text in [&event.id, &event.uuid, &event.info, &event.threat_level_id] {
            index::prefetch(&**text);
        }
        index::prefetch(&*event.tags);
    }

    pub fn attribute(&self, id: u32) -> Attribute<'_> {
        let record = &self.records[id as usize];
        let seen = self.seen.get(&id);
        let opt = |range: (u32, u32)| {
            if range.1 == 0 {
                None
            } else {
                Some(self.text(range))
            }
        };
        let uuid = if record.flags & UUID_TEXT != 0 {
            let start = u32::from_le_bytes([
                record.uuid[0],
                record.uuid[1],
                record.uuid[2],
                record.uuid[3],
            ]);
            let len = u32::from_le_bytes([
                record.uuid[4],
                record.uuid[5],
                record.uuid[6],
                record.uuid[7],
            ]);
            UuidRef::Text(self.text((start, len)))
        } else {
            UuidRef::Canonical(u128::from_be_bytes(record.uuid))
        };
        Attribute {
            id,
            uuid,
            misp_type: &self.type_names[record.misp_type as usize],
            category: &self.category_names[record.category as usize],
            value: self.text(record.value),
            to_ids: record.flags & TO_IDS != 0,
            timestamp: i64::from(record.timestamp),
            first_seen: seen.and_then(|(first, _)| opt(*first)),
            last_seen: seen.and_then(|(_, last)| opt(*last)),
            event: &self.events[record.event as usize],
            from_misp: record.flags & FROM_MISP != 0,
            snapshot: self,
            tags: record.tags,
        }
    }

    /// Every attribute, for the changelog topic and persistence.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        (0..self.records.len() as u32).map(|id| self.attribute(id))
    }

    pub fn events(&self) -> &[EventInfo] {
        &self.events
    }

    /// Rough heap size, for the memory bench and a gauge.
    pub fn heap_bytes(&self) -> usize {
        self.records.capacity() * std::mem::size_of::<Record>()
            + self.arena.capacity()
            + self.postings.heap_bytes()
            + self.ip.heap_bytes()
            + [
                &self.domain,
                &self.hostname,
                &self.url,
                &self.uri,
                &self.email,
                &self.hash,
                &self.filename,
                &self.text,
            ]
            .iter()
            .map(|index| index.heap_bytes())
            .sum::<usize>()
            + self.automaton.as_ref().map_or(0, |a| a.memory_usage())
    }

    // ---- lookups: each calls `found(attribute id)` for every attribute matching ----

    #[inline]
    fn emit(&self, slot: Option<&u32>, found: &mut dyn FnMut(u32)) {
        if let Some(slot) = slot {
            for &id in self.postings.ids(slot) {
                found(id);
            }
        }
    }

    /// IPs: exact and every CIDR containing the address.
    pub fn match_ip(&self, ip: IpAddr, found: &mut dyn FnMut(u32)) {
        self.ip
            .for_each_containing(ip, |_, slot| self.emit(Some(slot), found));
    }

    /// Hosts: `domain` attributes for the host and each parent, `hostname` attributes exact.
    pub fn match_host(&self, host: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::Domain, host, None, found);
    }

    /// Whether a `hostname` or `domain` index holds anything (what a host is looked up in).
    fn has_hosts(&self) -> bool {
        !self.hostname.is_empty() || !self.domain.is_empty()
    }

    /// The one string index of an observable kind (domains have two, IPs none).
    fn str_index(&self, kind: IocKind) -> Option<&StrIndex> {
        match kind {
            IocKind::Url => Some(&self.url),
            IocKind::UriPath => Some(&self.uri),
            IocKind::Email => Some(&self.email),
            IocKind::Hash => Some(&self.hash),
            IocKind::Filename => Some(&self.filename),
            IocKind::Text => Some(&self.text),
            IocKind::Ip | IocKind::Domain => None,
        }
    }

    /// The lookup of a string observable of `kind` (every kind but IPs, which take
    /// [`IntelSnapshot::match_ip`]): the `match_*` of its kind. `hash` is the value's
    /// [`index::key_hash`] when already known (from [`IntelSnapshot::prefetch`]); otherwise
    /// it is computed, unless no index of the kind holds anything. A URL's path is not looked
    /// up here.
    #[inline]
    pub fn match_key(
        &self,
        kind: IocKind,
        value: &str,
        hash: Option<u64>,
        found: &mut dyn FnMut(u32),
    ) {
        let index = match kind {
            IocKind::Domain => {
                if !self.has_hosts() {
                    return;
                }
                let hash = hash.unwrap_or_else(|| index::key_hash(value));
                return self.match_host_hashed(value, hash, found);
            }
            kind => match self.str_index(kind) {
                Some(index) if !index.is_empty() => index,
                _ => return,
            },
        };
        let hash = hash.unwrap_or_else(|| index::key_hash(value));
        self.emit(index.get_hashed(value, hash), found);
    }

    fn match_host_hashed(&self, host: &str, hash: u64, found: &mut dyn FnMut(u32)) {
        if !self.hostname.is_empty() {
            self.emit(self.hostname.get_hashed(host, hash), found);
        }
        if self.domain.is_empty() {
            return;
        }
        self.emit(self.domain.get_hashed(host, hash), found);
        // Parents down to the registrable level; a bare TLD is never a MISP domain.
        for parent in normalize::dotted_parent_domains(host) {
            self.emit(self.domain.get(parent), found);
        }
    }

    pub fn match_url(&self, url: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::Url, url, None, found);
    }

    pub fn match_uri(&self, path: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::UriPath, path, None, found);
    }

    pub fn match_email(&self, email: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::Email, email, None, found);
    }

    pub fn match_hash(&self, hash: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::Hash, hash, None, found);
    }

    pub fn match_filename(&self, name: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::Filename, name, None, found);
    }

    pub fn match_text(&self, text: &str, found: &mut dyn FnMut(u32)) {
        self.match_key(IocKind::Text, text, None, found);
    }

    /// Starts loading what the `match_*` lookups of one observable will read (the filter
    /// blocks of its indexes), so that matching it a little later does not stall on memory.
    /// A hint only: no effect on any result. Returns the value's [`index::key_hash`] for
    /// [`IntelSnapshot::match_key`]; 0 (not computed) for an IP, or when no index of the
    /// kind holds anything.
    #[inline]
    pub fn prefetch(&self, kind: IocKind, value: &str, ip: Option<IpAddr>) -> u64 {
        let index = match kind {
            IocKind::Ip => {
                if let Some(ip) = ip {
                    self.ip.prefetch(ip);
                }
                return 0;
            }
            IocKind::Domain => {
                if !self.has_hosts() {
                    return 0;
                }
                let hash = index::key_hash(value);
                self.hostname.prefetch_hashed(hash);
                self.domain.prefetch_hashed(hash);
                if !self.domain.is_empty() {
                    for parent in normalize::dotted_parent_domains(value) {
                        self.domain.prefetch(parent);
                    }
                }
                return hash;
            }
            kind => match self.str_index(kind) {
                Some(index) if !index.is_empty() => index,
                _ => return 0,
            },
        };
        let hash = index::key_hash(value);
        index.prefetch_hashed(hash);
        hash
    }

    pub fn has_automaton(&self) -> bool {
        self.automaton.is_some()
    }

    /// Free text (already lower-cased): every text/URI pattern found on word boundaries.
    pub fn scan_free_text(&self, lowered: &str, found: &mut dyn FnMut(u32)) {
        let Some(automaton) = &self.automaton else {
            return;
        };
        let bytes = lowered.as_bytes();
        for hit in automaton.find_iter(bytes) {
            let (start, end) = (hit.start(), hit.end());
            let starts_word = bytes[start].is_ascii_alphanumeric();
            let ends_word = bytes[end - 1].is_ascii_alphanumeric();
            let before_ok = !starts_word || start == 0 || !is_word_byte(bytes[start - 1]);
            let after_ok = !ends_word || end == bytes.len() || !is_word_byte(bytes[end]);
            if before_ok && after_ok {
                self.emit(Some(&self.automaton_ids[hit.pattern().as_usize()]), found);
            }
        }
    }

    /// The warninglist holding `value` for the attribute's type, if any.
    pub fn warninglisted(&self, value: &str, misp_type: &str) -> Option<&str> {
        self.warninglists.as_ref()?.check(value, misp_type)
    }
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// One attribute as read from MISP, before indexing.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttributeInput<'a> {
    pub uuid: &'a str,
    pub misp_type: &'a str,
    pub category: &'a str,
    pub value: &'a str,
    pub to_ids: bool,
    pub deleted: bool,
    pub timestamp: i64,
    pub first_seen: Option<&'a str>,
    pub last_seen: Option<&'a str>,
    /// From MISP (REST or notifications) rather than from files or feeds.
    pub from_misp: bool,
}

/// One part of an attribute, normalised: its index, key, and for IPs the network.
type NormalizedPart = (PartKind, String, Option<(IpAddr, u8)>);

/// Accumulates events and attributes, then builds the indexes.
pub struct SnapshotBuilder {
    include_non_ids: bool,
    snapshot: IntelSnapshot,
    tag_ids: HashMap<Box<str>, u32>,
    type_ids: HashMap<Box<str>, u16>,
    category_ids: HashMap<Box<str>, u16>,
    seen_uuids: hashbrown::HashSet<u128, foldhash::fast::FixedState>,
    text_patterns: Vec<(String, u32)>,
}

impl SnapshotBuilder {
    pub fn new(include_non_ids: bool, warninglists: Option<Arc<Warninglists>>) -> Self {
        SnapshotBuilder {
            include_non_ids,
            snapshot: IntelSnapshot {
                records: Vec::new(),
                seen: HashMap::new(),
                arena: String::new(),
                events: Vec::new(),
                tag_names: Vec::new(),
                tag_refs: Vec::new(),
                type_names: Vec::new(),
                category_names: Vec::new(),
                postings: Postings::default(),
                ip: PrefixMap::default(),
                domain: StrIndex::default(),
                hostname: StrIndex::default(),
                url: StrIndex::default(),
                uri: StrIndex::default(),
                email: StrIndex::default(),
                hash: StrIndex::default(),
                filename: StrIndex::default(),
                text: StrIndex::default(),
                automaton: None,
                automaton_ids: Vec::new(),
                warninglists,
                stats: SnapshotStats::default(),
            },
            tag_ids: HashMap::new(),
            type_ids: HashMap::new(),
            category_ids: HashMap::new(),
            seen_uuids: Default::default(),
            text_patterns: Vec::new(),
        }
    }

    pub fn stats(&self) -> &SnapshotStats {
        &self.snapshot.stats
    }

    fn tag_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.tag_ids.get(name) {
            return *id;
        }
        let id = self.snapshot.tag_names.len() as u32;
        self.snapshot.tag_names.push(name.into());
        self.tag_ids.insert(name.into(), id);
        id
    }

    fn intern(map: &mut HashMap<Box<str>, u16>, names: &mut Vec<Box<str>>, name: &str) -> u16 {
        if let Some(id) = map.get(name) {
            return *id;
        }
        let id = names.len() as u16;
        names.push(name.into());
        map.insert(name.into(), id);
        id
    }

    fn push_text(&mut self, text: &str) -> (u32, u32) {
        let start = self.snapshot.arena.len() as u32;
        self.snapshot.arena.push_str(text);
        (start, text.len() as u32)
    }

    /// Adds an event; returns its handle for `add_attribute`.
    pub fn add_event(&mut self, event: EventInfo, tags: &[&str]) -> u32 {
        let tag_ids: Vec<u32> = tags.iter().map(|tag| self.tag_id(tag)).collect();
        let mut event = event;
        event.tags = tag_ids.into_boxed_slice();
        self.snapshot.events.push(event);
        self.snapshot.stats.events += 1;
        (self.snapshot.events.len() - 1) as u32
    }

    /// Counts an attribute left out for its decay score.
    pub fn skip_decayed(&mut self) {
        self.snapshot.stats.skipped_decayed += 1;
    }

    /// Adds one attribute of `event`. Returns false when it was not indexed (see stats).
    pub fn add_attribute(&mut self, event: u32, input: &AttributeInput<'_>, tags: &[&str]) -> bool {
        let stats = &mut self.snapshot.stats;
        if input.deleted {
            stats.skipped_deleted += 1;
            return false;
        }
        if !input.to_ids && !self.include_non_ids {
            stats.skipped_non_ids += 1;
            return false;
        }
        let Some(parts_plan) = plan(input.misp_type) else {
            stats.skipped_unsupported_type += 1;
            return false;
        };
        let uuid = parse_uuid(input.uuid);
        if let Some(bits) = uuid {
            if !self.seen_uuids.insert(bits) {
                stats.skipped_duplicate += 1;
                return false;
            }
        }
        // Normalise every part first; the attribute is indexed if any part is usable.
        let id = self.snapshot.records.len() as u32;
        let mut parts: [Option<NormalizedPart>; 2] = [None, None];
        let values: Vec<&str> = if parts_plan.len() == 2 {
            input.value.splitn(2, '|').collect()
        } else {
            vec![input.value]
        };
        let mut any_warninglisted = false;
        for (slot, (kind, raw)) in parts.iter_mut().zip(parts_plan.iter().zip(values.iter())) {
            if *kind == PartKind::Ignored {
                continue;
            }
            let Some(normalized) = normalize_part(*kind, raw) else {
                continue;
            };
            if let Some(lists) = &self.snapshot.warninglists {
                if lists.check(raw.trim(), input.misp_type).is_some()
                    || lists.check(&normalized.0, input.misp_type).is_some()
                {
                    any_warninglisted = true;
                    continue;
                }
            }
            *slot = Some((*kind, normalized.0, normalized.1));
        }
        if parts.iter().all(Option::is_none) {
            if any_warninglisted {
                self.snapshot.stats.skipped_warninglisted += 1;
            } else {
                self.snapshot.stats.skipped_invalid_value += 1;
            }
            return false;
        }
        for part in parts.iter().flatten() {
            self.index_part(id, part);
        }
        let tag_start = self.snapshot.tag_refs.len() as u32;
        for tag in tags {
            let tag_id = self.tag_id(tag);
            self.snapshot.tag_refs.push(tag_id);
        }
        let tag_len = self.snapshot.tag_refs.len() as u32 - tag_start;
        let mut flags = if input.to_ids { TO_IDS } else { 0 };
        if input.from_misp {
            flags |= FROM_MISP;
        }
        let record_uuid = match uuid {
            Some(bits) => bits.to_be_bytes(),
            None => {
                let (start, len) = self.push_text(input.uuid);
                flags |= UUID_TEXT;
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&start.to_le_bytes());
                bytes[4..8].copy_from_slice(&len.to_le_bytes());
                bytes
            }
        };
        let value = self.push_text(input.value);
        if input.first_seen.is_some() || input.last_seen.is_some() {
            let first_seen = input.first_seen.map_or((0, 0), |text| self.push_text(text));
            let last_seen = input.last_seen.map_or((0, 0), |text| self.push_text(text));
            self.snapshot.seen.insert(id, (first_seen, last_seen));
        }
        let misp_type = Self::intern(
            &mut self.type_ids,
            &mut self.snapshot.type_names,
            input.misp_type,
        );
        let category = Self::intern(
            &mut self.category_ids,
            &mut self.snapshot.category_names,
            input.category,
        );
        self.snapshot.records.push(Record {
            uuid: record_uuid,
            value,
            tags: (tag_start, tag_len),
            event,
            timestamp: u32::try_from(input.timestamp).unwrap_or(0),
            misp_type,
            category,
            flags,
        });
        self.snapshot.stats.attributes += 1;
        true
    }

    fn index_part(&mut self, id: u32, part: &NormalizedPart) {
        let snapshot = &mut self.snapshot;
        let postings = &mut snapshot.postings;
        let (kind, key, network) = part;
        match kind {
            PartKind::Ip => {
                if let Some((network, len)) = network {
                    postings.add(snapshot.ip.slot(*network, *len, || u32::MAX), id);
                    snapshot.stats.ip += 1;
                }
            }
            PartKind::Domain => {
                snapshot.domain.insert(key, id, postings);
                snapshot.stats.domain += 1;
            }
            PartKind::Hostname => {
                snapshot.hostname.insert(key, id, postings);
                snapshot.stats.hostname += 1;
            }
            PartKind::Url => {
                snapshot.url.insert(key, id, postings);
                snapshot.stats.url += 1;
            }
            PartKind::Uri => {
                snapshot.uri.insert(key, id, postings);
                snapshot.stats.uri += 1;
                if key.len() >= MIN_TEXT_PATTERN {
                    self.text_patterns.push((key.to_lowercase(), id));
                }
            }
            PartKind::Email => {
                snapshot.email.insert(key, id, postings);
                snapshot.stats.email += 1;
            }
            PartKind::Hash => {
                snapshot.hash.insert(key, id, postings);
                snapshot.stats.hash += 1;
            }
            PartKind::Filename => {
                snapshot.filename.insert(key, id, postings);
                snapshot.stats.filename += 1;
            }
            PartKind::Text => {
                snapshot.text.insert(key, id, postings);
                snapshot.stats.text += 1;
                if key.len() >= MIN_TEXT_PATTERN {
                    self.text_patterns.push((key.clone(), id));
                }
            }
            PartKind::Ignored => {}
        }
    }

    /// Copies every attribute of `old` that `keep` accepts, with its event, tags, origin
    /// and first/last seen (re-normalised and re-indexed like any other input). Attributes
    /// whose uuid was already added win over the copies (see `seen_uuids`).
    pub fn add_from(&mut self, old: &IntelSnapshot, mut keep: impl FnMut(&Attribute<'_>) -> bool) {
        let mut events: HashMap<u32, u32> = HashMap::new();
        let mut uuid_text = String::new();
        for id in 0..old.records.len() as u32 {
            let attribute = old.attribute(id);
            if !keep(&attribute) {
                continue;
            }
            let old_event = old.records[id as usize].event;
            let handle = match events.get(&old_event) {
                Some(handle) => *handle,
                None => {
                    let event = attribute.event;
                    let tags: Vec<&str> = old.event_tags(event).collect();
                    let handle = self.add_event(
                        EventInfo {
                            tags: Box::new([]),
                            ..event.clone()
                        },
                        &tags,
                    );
                    events.insert(old_event, handle);
                    handle
                }
            };
            uuid_text.clear();
            std::fmt::Write::write_fmt(&mut uuid_text, format_args!("{}", attribute.uuid))
                .expect("writing to a String cannot fail");
            let tags: Vec<&str> = old.own_tags(attribute.tags).collect();
            self.add_attribute(
                handle,
                &AttributeInput {
                    uuid: &uuid_text,
                    misp_type: attribute.misp_type,
                    category: attribute.category,
                    value: attribute.value,
                    to_ids: attribute.to_ids,
                    deleted: false,
                    timestamp: attribute.timestamp,
                    first_seen: attribute.first_seen,
                    last_seen: attribute.last_seen,
                    from_misp: attribute.from_misp,
                },
                &tags,
            );
        }
    }

    /// Builds the indexes. The automaton is built over the text patterns only.
    pub fn build(mut self) -> IntelSnapshot {
        let snapshot = &mut self.snapshot;
        if !self.text_patterns.is_empty() {
            self.text_patterns.sort_unstable();
            let mut patterns: Vec<String> = Vec::new();
            let mut ids: Vec<u32> = Vec::new();
            for (pattern, id) in self.text_patterns.drain(..) {
                if patterns.last() == Some(&pattern) {
                    let slot = ids.last_mut().expect("ids and patterns grow together");
                    snapshot.postings.add(slot, id);
                } else {
                    let mut slot = u32::MAX;
                    snapshot.postings.add(&mut slot, id);
                    patterns.push(pattern);
                    ids.push(slot);
                }
            }
            match AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&patterns)
                .or_else(|_| {
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&patterns)
                }) {
                Ok(automaton) => {
                    snapshot.stats.text_patterns = patterns.len();
                    snapshot.automaton = Some(automaton);
                    snapshot.automaton_ids = ids;
                }
                Err(err) => {
                    tracing::warn!(error = %err, patterns = patterns.len(), "Free-text automaton not built; text indicators match typed fields only.")
                }
            }
        }
        snapshot.records.shrink_to_fit();
        snapshot.arena.shrink_to_fit();
        snapshot.tag_refs.shrink_to_fit();
        snapshot.ip.shrink();
        for index in [
            &mut snapshot.domain,
            &mut snapshot.hostname,
            &mut snapshot.url,
            &mut snapshot.uri,
            &mut snapshot.email,
            &mut snapshot.hash,
            &mut snapshot.filename,
            &mut snapshot.text,
        ] {
            index.shrink();
        }
        self.snapshot
    }
}

/// Normalises one part of an attribute value for its index: the key, and for IPs the network.
fn normalize_part(kind: PartKind, raw: &str) -> Option<(String, Option<(IpAddr, u8)>)> {
    let raw = raw.trim();
    match kind {
        PartKind::Ip => {
            normalize::parse_cidr(raw).map(|network| (network.0.to_string(), Some(network)))
        }
        PartKind::Domain | PartKind::Hostname => normalize::normalize_domain(raw)
            .or_else(|| {
                // MISP sometimes stores an IP as a hostname; index it as a host key anyway.
                normalize::parse_ip(raw).map(|ip| ip.to_string())
            })
            .map(|key| (key, None)),
        PartKind::Url => normalize::normalize_url(raw)
            .map(|url| (url.url, None))
            .or_else(|| {
                // A URL without a scheme ("evil.com/a"): MISP allows it; match it as http.
                normalize::normalize_url(&format!("http://{raw}")).map(|url| (url.url, None))
            }),
        PartKind::Uri => (!raw.is_empty()).then(|| (raw.to_string(), None)),
        PartKind::Email => normalize::normalize_email(raw).map(|email| (email, None)),
        PartKind::Hash => {
            let hash = normalize::normalize_hash(raw).unwrap_or_else(|| raw.to_ascii_lowercase());
            (!hash.is_empty()).then_some((hash, None))
        }
        PartKind::Filename => normalize::normalize_filename(raw).map(|name| (name, None)),
        PartKind::Text => normalize::normalize_text(raw).map(|text| (text, None)),
        PartKind::Ignored => None,
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower or upper hex) → bits; anything else `None`.
pub fn parse_uuid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != 36
        || bytes[8] != b'-'
        || bytes[13] != b'-'
        || bytes[18] != b'-'
        || bytes[23] != b'-'
    {
        return None;
    }
    let mut bits: u128 = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        if matches!(idx, 8 | 13 | 18 | 23) {
            continue;
        }
        let digit = (byte as char).to_digit(16)?;
        bits = (bits << 4) | u128::from(digit);
    }
    // Only lower-case text round-trips through the compact form.
    if bytes.iter().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_is_written_as_displayed() {
        for uuid in [
            UuidRef::Canonical(0x5f1c_2e8a_0b4d_4c1e_9a7b_3d2f_6e8c_1a0b),
            UuidRef::Canonical(0),
            UuidRef::Canonical(u128::MAX),
            UuidRef::Text("not-a-canonical-uuid"),
        ] {
            let mut out = Vec::new();
            uuid.write_to(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), uuid.to_string());
        }
    }

    #[test]
    fn record_stays_compact() {
        // 10M attributes must fit in 1.5 GiB: every byte of Record counts ten million times.
        assert!(
            std::mem::size_of::<Record>() <= 48,
            "{}",
            std::mem::size_of::<Record>()
        );
    }

    #[test]
    fn uuids_and_seen_round_trip() {
        let mut builder = SnapshotBuilder::new(true, None);
        let event = builder.add_event(EventInfo::default(), &[]);
        let canonical = "5f1c2a3b-0d6e-4c1a-9f00-a1b2c3d4e5f6";
        builder.add_attribute(
            event,
            &AttributeInput {
                uuid: canonical,
                misp_type: "domain",
                value: "a.com",
                to_ids: true,
                timestamp: 1_764_000_000,
                ..Default::default()
            },
            &["tlp:red"],
        );
        builder.add_attribute(
            event,
            &AttributeInput {
                uuid: "feed.csv#3",
                misp_type: "domain",
                value: "b.com",
                first_seen: Some("2026-01-01"),
                ..Default::default()
            },
            &[],
        );
        let snapshot = builder.build();
        let first = snapshot.attribute(0);
        assert_eq!(first.uuid.to_string(), canonical);
        assert!(first.to_ids);
        assert_eq!(first.timestamp, 1_764_000_000);
        assert_eq!(first.first_seen, None);
        assert_eq!(first.tags().collect::<Vec<_>>(), ["tlp:red"]);
        let second = snapshot.attribute(1);
        assert_eq!(second.uuid.to_string(), "feed.csv#3");
        assert!(!second.to_ids);
        assert_eq!(second.first_seen, Some("2026-01-01"));
        assert_eq!(second.last_seen, None);
    }
}
