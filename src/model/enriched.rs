//! The enrichment objects added to an alert, and their JSON text: the only JSON we write into
//! output records (besides the alert's own bytes, which pass through untouched).
//!
//! Written straight into the output buffer, without serde or an intermediate `Value`: an
//! enriched alert is on the hot path, and its key order is part of the output contract
//! (`schemas/enriched-alert.schema.json`).

use crate::intel::snapshot::UuidRef;

/// `threat.enrichments[]`: one per matching MISP attribute (ECS threat enrichment).
#[derive(Debug)]
pub struct Enrichment<'a> {
    pub matched: Matched<'a>,
    pub indicator: Indicator<'a>,
    pub misp: MispContext<'a>,
}

#[derive(Debug)]
pub struct Matched<'a> {
    /// The observable as found in the alert (normalised).
    pub atomic: &'a str,
    /// Dotted path of the alert field.
    pub field: &'a str,
    pub match_type: &'static str,
}

/// ECS `threat.indicator` for a MISP attribute.
#[derive(Debug)]
pub struct Indicator<'a> {
    /// ECS indicator type (`ipv4-addr`, `domain-name`, `file`, ...).
    pub ecs_type: &'a str,
    pub misp_type: &'a str,
    pub value: &'a str,
    /// `<misp url>/events/view/<event>` when the MISP URL is known.
    pub reference: Option<(&'a str, &'a str)>,
    pub tlp: Option<&'a str>,
    pub first_seen: Option<&'a str>,
    pub last_seen: Option<&'a str>,
    pub confidence: &'a str,
}

/// The MISP side of a match (its `tags` are passed to [`Enrichment::write`]).
#[derive(Debug)]
pub struct MispContext<'a> {
    pub attribute: MispAttributeRef<'a>,
    pub event: MispEventRef<'a>,
}

#[derive(Debug)]
pub struct MispAttributeRef<'a> {
    pub uuid: UuidRef<'a>,
    pub misp_type: &'a str,
    pub category: &'a str,
    pub value: &'a str,
    pub to_ids: bool,
}

#[derive(Debug)]
pub struct MispEventRef<'a> {
    pub id: &'a str,
    pub uuid: &'a str,
    pub info: &'a str,
    pub threat_level_id: &'a str,
}

/// `wazuh_misp`: the summary block.
#[derive(Debug)]
pub struct Summary {
    pub risk_score: u8,
    pub matched_count: usize,
}

/// `misp`: the first match in the shape of the community `custom-misp.py` integration.
#[derive(Debug)]
pub struct CompatBlock<'a> {
    pub event_id: &'a str,
    pub category: &'a str,
    pub value: &'a str,
    pub misp_type: &'a str,
}

/// A JSON object being written: `{`, then `"key":value` pairs with commas, then `}`.
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Object<'o> {
    pub fn begin(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Keys are this crate's own field names: nothing in them needs escaping.
    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(key.bytes().all(|b| ESCAPE[usize::from(b)] == 0), "{key}");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        let out = self.key(key);
        write_str(out, value);
        self
    }

    pub fn raw(&mut self, key: &'static str, json: &[u8]) -> &mut Self {
        self.key(key).extend_from_slice(json);
        self
    }

    pub fn uint(&mut self, key: &'static str, value: u64) -> &mut Self {
        let out = self.key(key);
        write_uint(out, value);
        self
    }

    /// `"key":{"inner":value}`.
    pub fn one(&mut self, key: &'static str, inner: &str, value: &str) -> &mut Self {
        // `inner` can come from the data (a MISP type): written as any string is.
        let out = self.key(key);
        out.push(b'{');
        write_str(out, inner);
        out.push(b':');
        write_str(out, value);
        out.push(b'}');
        self
    }

    /// Opens a nested object under `key`; end it before writing to `self` again.
    pub fn object(&mut self, key: &'static str) -> Object<'_> {
        Object::begin(self.key(key))
    }

    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

impl Enrichment<'_> {
    /// The enrichment as JSON; `tags` are the attribute's tags then its event's.
    pub fn write<'t>(&self, tags: impl Iterator<Item = &'t str>, out: &mut Vec<u8>) {
        let mut object = Object::begin(out);
        object
            .object("matched")
            .str("atomic", self.matched.atomic)
            .str("field", self.matched.field)
            .str("type", self.matched.match_type)
            .end();
        self.indicator.write(object.object("indicator"));
        let mut misp = object.object("misp");
        let attribute = &self.misp.attribute;
        let mut written = misp.object("attribute");
        match attribute.uuid {
            UuidRef::Text(text) => {
                written.str("uuid", text);
            }
            canonical @ UuidRef::Canonical(_) => {
                let out = written.key("uuid");
                out.push(b'"');
                canonical.write_to(out);
                out.push(b'"');
            }
        }
        written
            .str("type", attribute.misp_type)
            .str("category", attribute.category)
            .str("value", attribute.value)
            .raw("to_ids", if attribute.to_ids { b"true" } else { b"false" })
            .end();
        let event = &self.misp.event;
        misp.object("event")
            .str("id", event.id)
            .str("uuid", event.uuid)
            .str("info", event.info)
            .str("threat_level_id", event.threat_level_id)
            .end();
        let out = misp.key("tags");
        out.push(b'[');
        for (idx, tag) in tags.enumerate() {
            if idx > 0 {
                out.push(b',');
            }
            write_str(out, tag);
        }
        out.push(b']');
        misp.end();
        object.end();
    }
}

impl Indicator<'_> {
    /// The indicator's members into `object` (already opened), then closes it.
    fn write(&self, mut object: Object<'_>) {
        let (misp_type, value) = (self.misp_type, self.value);
        object.str("type", self.ecs_type).str("provider", "misp");
        let first = value.split('|').next().unwrap_or(value);
        let second = value.split_once('|').map(|(_, rest)| rest);
        let base = misp_type.split('|').next().unwrap_or(misp_type);
        match base {
            "ip-src" | "ip-dst" => {
                object.str("ip", first);
                if let Some(port) = second.and_then(|port| port.trim().parse::<u16>().ok()) {
                    object.uint("port", u64::from(port));
                }
            }
            "domain" | "hostname" => {
                object.one("url", "domain", first);
                if let Some(ip) = second.filter(|_| misp_type == "domain|ip") {
                    object.str("ip", ip);
                }
            }
            "url" | "uri" => {
                object.one("url", "full", value);
            }
            "email"
            | "email-src"
            | "email-dst"
            | "target-email"
            | "whois-registrant-email"
            | "email-reply-to" => {
                object.one("email", "address", value);
            }
            "filename" | "malware-sample" => {
                let mut file = object.object("file");
                file.str("name", first);
                if let Some(hash) = second {
                    let algorithm = misp_type.split_once('|').map_or("md5", |(_, alg)| alg);
                    file.one("hash", algorithm, hash);
                }
                file.end();
            }
            "regkey" => {
                object.one("registry", "key", first);
            }
            _ if self.ecs_type == "file" => {
                object.object("file").one("hash", misp_type, value).end();
            }
            _ => {
                object.str("description", value);
            }
        }
        if let Some((base, event)) = self.reference {
            let out = object.key("reference");
            write_str_parts(out, &[base.trim_end_matches('/'), "/events/view/", event]);
        }
        if let Some(tlp) = self.tlp {
            object.one("marking", "tlp", tlp);
        }
        if let Some(first_seen) = self.first_seen {
            object.str("first_seen", first_seen);
        }
        if let Some(last_seen) = self.last_seen {
            object.str("last_seen", last_seen);
        }
        object.str("confidence", self.confidence);
        object.end();
    }
}

impl Summary {
    pub fn write(&self, out: &mut Vec<u8>) {
        Object::begin(out)
            .uint("risk_score", u64::from(self.risk_score))
            .uint("matched_count", self.matched_count as u64)
            .end();
    }
}

impl CompatBlock<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        Object::begin(out)
            .str("event_id", self.event_id)
            .str("category", self.category)
            .str("value", self.value)
            .str("type", self.misp_type)
            .end();
    }
}

/// Bytes that JSON strings must escape, and how: 0 none, `u` as `\u00XX`, else `\<byte>`.
const fn escape_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
}
static ESCAPE: [u8; 256] = escape_table();

/// `text` as a JSON string (the escapes serde_json writes: `\"`, `\\`, `\b\f\n\r\t`, and
/// `\u00XX` for other control characters).
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    write_str_parts(out, &[text]);
}

/// The concatenation of `parts` as one JSON string.
fn write_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        escape_into(out, part.as_bytes());
    }
    out.push(b'"');
}

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(byte)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..idx]);
        run = idx + 1;
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(escape);
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

fn write_uint(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "quote \" backslash \\ slash /".into(),
            "C:\\Windows\\System32\\evil.exe".into(),
            "tab\tnewline\nreturn\rbell\u{7}del\u{7f}".into(),
            "ünïcödé ☃ \u{2028}".into(),
        ];
        samples.push((0u8..0x80).map(char::from).collect());
        for sample in samples {
            let mut ours = Vec::new();
            write_str(&mut ours, &sample);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&sample).unwrap()
            );
        }
    }

    #[test]
    fn integers_are_plain_decimal() {
        for value in [0u64, 7, 10, 99, 100, 65535, u64::MAX] {
            let mut out = Vec::new();
            write_uint(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }

    #[test]
    fn objects_nest_and_separate() {
        let mut out = Vec::new();
        let mut object = Object::begin(&mut out);
        object.str("a", "x").uint("n", 3);
        object.object("inner").one("k", "v", "w").end();
        object.raw("t", b"true").end();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, r#"{"a":"x","n":3,"inner":{"k":{"v":"w"}},"t":true}"#);
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
    }
}
