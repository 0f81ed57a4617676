//! Free-text scanning: whole tokens only, after re-fanging.
//!
//! `evil.com` is never found inside `notevil.com` or `evil.community`, `1.2.3.4` never inside
//! `11.2.3.45`: a token is a maximal run of `[A-Za-z0-9._:@-]` and is classified whole.
//! URLs are found at `scheme://` and run to the next delimiter.

use std::net::IpAddr;

use super::bytemask::{self, ByteMasks};
use super::normalize::{self, parse_ip_text, NormalizedUrl};
use crate::model::observable::IocKind;

/// A token without `.`, `:` or `@` can only be a bare hash, at least this long.
const MIN_BARE_HASH: usize = 32;

/// What each byte adds to a token's counters (see `classify_token`), in 16-bit lanes:
/// `.` (bits 0-15), `:` (16-31), `@` (32-47), and bytes that are not hex digits (48-63).
const fn token_counts_table() -> [u64; 256] {
    const NOT_HEX: u64 = 1 << 48;
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = if b == b'.' {
            1 | NOT_HEX
        } else if b == b':' {
            (1 << 16) | NOT_HEX
        } else if b == b'@' {
            (1 << 32) | NOT_HEX
        } else if b.is_ascii_hexdigit() {
            0
        } else {
            NOT_HEX
        };
        byte += 1;
    }
    table
}
static TOKEN_COUNTS: [u64; 256] = token_counts_table();

/// Bytes that end a URL.
const fn url_end_table() -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b <= b' '
            || b == b'"'
            || b == b'\''
            || b == b'<'
            || b == b'>'
            || b == b'`'
            || b == b'|'
            || b == b'\\'
            || b == b'{'
            || b == b'}'
            || b == 0x7f;
        byte += 1;
    }
    table
}
static URL_END: [bool; 256] = url_end_table();

/// Reusable scanner state: the re-fang buffer and a scratch buffer for normalised values.
#[derive(Default)]
pub struct TextScanner {
    refanged: String,
    scratch: String,
    url: NormalizedUrl,
    /// Byte classes of the text being scanned.
    masks: ByteMasks,
}

/// True when the text (whose byte classes are `masks`) holds a defanged marker worth
/// rewriting.
fn looks_defanged(masks: &ByteMasks, bytes: &[u8]) -> bool {
    for (word, (open, brace)) in masks.open.iter().zip(&masks.brace).enumerate() {
        let mut bits = open | brace;
        while bits != 0 {
            let at = word * 64 + bits.trailing_zeros() as usize;
            if REPLACEMENTS
                .iter()
                .any(|(pattern, _)| bytes[at..].starts_with(pattern))
            {
                return true;
            }
            bits &= bits - 1;
        }
    }
    for (word, x) in masks.x.iter().enumerate() {
        let mut bits = *x;
        while bits != 0 {
            let pos = word * 64 + bits.trailing_zeros() as usize;
            if pos > 0
                && bytes[pos - 1].eq_ignore_ascii_case(&b'h')
                && bytes
                    .get(pos + 1)
                    .is_some_and(|b| b.eq_ignore_ascii_case(&b'x'))
            {
                return true;
            }
            bits &= bits - 1;
        }
    }
    false
}

const REPLACEMENTS: [(&[u8], &str); 11] = [
    (b"[.]", "."),
    (b"(.)", "."),
    (b"{.}", "."),
    (b"[dot]", "."),
    (b"[:]", ":"),
    (b"[://]", "://"),
    (b"[@]", "@"),
    (b"(@)", "@"),
    (b"[at]", "@"),
    (b"hxxp", "http"),
    (b"HXXP", "HTTP"),
];

/// Rewrites `hxxp`, `[.]`, `(.)`, `[dot]`, `[:]`, `[@]`, `(@)`, `[at]`, `[://]` to their plain forms.
pub fn refang_into(text: &str, out: &mut String) {
    out.clear();
    let bytes = text.as_bytes();
    let mut idx = 0;
    let mut run_start = 0;
    'outer: while idx < bytes.len() {
        let b = bytes[idx];
        if b == b'[' || b == b'(' || b == b'{' || b == b'h' || b == b'H' {
            for (pattern, replacement) in REPLACEMENTS {
                if bytes[idx..].starts_with(pattern) {
                    out.push_str(&text[run_start..idx]);
                    out.push_str(replacement);
                    idx += pattern.len();
                    run_start = idx;
                    continue 'outer;
                }
            }
        }
        idx += 1;
    }
    out.push_str(&text[run_start..]);
}

impl TextScanner {
    /// Scans `text` and calls `emit(kind, normalised value, parsed ip)` for every observable.
    pub fn scan(&mut self, text: &str, emit: &mut dyn FnMut(IocKind, &str, Option<IpAddr>)) {
        self.load(text);
        self.scan_loaded(text, emit);
    }

    /// Classifies the bytes of `text` for [`TextScanner::scan_loaded`]. True when the text
    /// has a `.`, `:`, `@`, `[` or `(`: without one, only a bare hash can be found in it.
    pub fn load(&mut self, text: &str) -> bool {
        self.masks.build(text.as_bytes());
        bytemask::any(&self.masks.mark) || bytemask::any(&self.masks.open)
    }

    /// [`TextScanner::scan`] of the text last given to [`TextScanner::load`].
    pub fn scan_loaded(&mut self, text: &str, emit: &mut dyn FnMut(IocKind, &str, Option<IpAddr>)) {
        if looks_defanged(&self.masks, text.as_bytes()) {
            let mut buffer = std::mem::take(&mut self.refanged);
            refang_into(text, &mut buffer);
            self.masks.build(buffer.as_bytes());
            scan_plain(&buffer, &self.masks, &mut self.scratch, &mut self.url, emit);
            self.refanged = buffer;
        } else {
            scan_plain(text, &self.masks, &mut self.scratch, &mut self.url, emit);
        }
    }
}

/// The first `://` at or after `from`, by the text's colons.
fn next_scheme_separator(masks: &ByteMasks, bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = bytemask::next_one(&masks.colon, from)?;
        if bytes[at + 1..].starts_with(b"//") {
            return Some(at);
        }
        from = at + 1;
    }
}

/// The extent of the URL whose `://` is at `sep`: back over the scheme's characters, forward
/// to the next byte that ends a URL, trailing sentence punctuation dropped.
fn url_around(bytes: &[u8], sep: usize) -> (usize, usize) {
    let mut start = sep;
    while start > 0
        && (bytes[start - 1].is_ascii_alphanumeric()
            || bytes[start - 1] == b'+'
            || bytes[start - 1] == b'-')
    {
        start -= 1;
    }
    let mut end = sep + 3;
    while end < bytes.len() && !URL_END[bytes[end] as usize] {
        end += 1;
    }
    // Trailing punctuation is sentence, not URL.
    while end > sep + 3
        && matches!(
            bytes[end - 1],
            b'.' | b',' | b';' | b':' | b')' | b']' | b'!' | b'?'
        )
    {
        end -= 1;
    }
    (start, end)
}

fn scan_plain(
    text: &str,
    masks: &ByteMasks,
    scratch: &mut String,
    url: &mut NormalizedUrl,
    emit: &mut dyn FnMut(IocKind, &str, Option<IpAddr>),
) {
    let bytes = text.as_bytes();
    // URLs first: every "://" with a scheme before it.
    let mut search_from = 0;
    while let Some(sep) = next_scheme_separator(masks, bytes, search_from) {
        let (start, end) = url_around(bytes, sep);
        if start < sep && end > sep + 3 {
            let scheme = &text[start..sep];
            if scheme.len() <= 10 && normalize::normalize_url_into(&text[start..end], url) {
                emit(IocKind::Url, &url.url, None);
            }
        }
        search_from = end.max(sep + 3);
    }

    // Then every token: a maximal run of token bytes. Tokens that cannot be an observable
    // (no `.`, `:` or `@`, and too short for a hash) are skipped without classifying them:
    // `classify_token` would drop them.
    // Token bytes are ASCII, so a token's `start` and `end` are char boundaries.
    let mut from = 0;
    if masks.has_long_token() {
        // Every token, in order.
        while let Some(start) = bytemask::next_one(&masks.token, from) {
            let end = bytemask::next_zero(&masks.token, start).min(bytes.len());
            if end - start >= MIN_BARE_HASH || bytemask::any_in(&masks.mark, start, end) {
                classify_token(&text[start..end], scratch, emit);
            }
            from = end;
        }
    } else {
        // No token is long enough for a bare hash: only the tokens around marks, found from
        // the marks (most tokens of a log line have none).
        while let Some(mark) = bytemask::next_one(&masks.mark, from) {
            let start = bytemask::prev_zero(&masks.token, mark).map_or(0, |gap| gap + 1);
            let end = bytemask::next_zero(&masks.token, mark).min(bytes.len());
            classify_token(&text[start..end], scratch, emit);
            from = end;
        }
    }
}

/// Classifies one whole token. Leading and trailing `.`, `:`, `-`, `_` are sentence punctuation.
pub fn classify_token(
    raw: &str,
    scratch: &mut String,
    emit: &mut dyn FnMut(IocKind, &str, Option<IpAddr>),
) {
    // Tokens are ASCII (see `bytemask`), so byte-wise trimming keeps char boundaries.
    let punctuation = |b: &u8| matches!(b, b'.' | b':' | b'-' | b'_');
    let raw_bytes = raw.as_bytes();
    let start = raw_bytes
        .iter()
        .position(|b| !punctuation(b))
        .unwrap_or(raw_bytes.len());
    let end = raw_bytes
        .iter()
        .rposition(|b| !punctuation(b))
        .map_or(start, |idx| idx + 1);
    let token = &raw[start..end];
    let bytes = token.as_bytes();
    if bytes.len() < 4 {
        // Shortest observables: "a.io", "::1" (noise anyway).
        return;
    }
    // Counted branch-free in one pass (tokens mix letters, digits and dots unpredictably):
    // one table add per byte, four 16-bit counters. No observable is anywhere near 64 KiB
    // long, so longer tokens (which would overflow a counter) are not classified.
    if bytes.len() >= 1 << 16 {
        return;
    }
    let counts = bytes
        .iter()
        .fold(0u64, |sum, &b| sum + TOKEN_COUNTS[usize::from(b)]);
    let n_dots = counts & 0xffff;
    let n_colons = (counts >> 16) & 0xffff;
    let n_ats = (counts >> 32) & 0xffff;
    let all_hex = counts >> 48 == 0;
    if n_ats > 0 {
        if let Some(domain_start) = normalize::normalize_email_into(token, scratch) {
            emit(IocKind::Email, scratch, None);
            emit(IocKind::Domain, &scratch[domain_start..], None);
        }
        return;
    }
    if n_dots == 0 && n_colons == 0 && !all_hex {
        return;
    }
    if all_hex {
        if normalize::is_hash_len(bytes.len()) && normalize::normalize_hash_into(token, scratch) {
            emit(IocKind::Hash, scratch, None);
        }
        return;
    }
    // Two to five colons without a `::` cannot be IPv6 (8 groups, or 6 and a dotted IPv4)
    // nor IPv4 with a port: times like `09:10:11` skip the address parsers.
    let maybe_v6 =
        n_colons >= 6 || (n_colons >= 2 && normalize::find_doubled(bytes, b':').is_some());
    if maybe_v6 || (n_colons < 2 && n_dots == 3 && bytes[0].is_ascii_digit()) {
        if let Some((ip, text)) = parse_ip_text(token) {
            if !normalize::is_noise_ip(&ip) {
                emit_ip(ip, text, scratch, emit);
            }
            return;
        }
    }
    if n_dots >= 1 {
        // host or host:port
        let host = match n_colons {
            0 => token,
            1 => match token.rsplit_once(':') {
                Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
                _ => return,
            },
            _ => return,
        };
        if host.as_bytes()[0].is_ascii_digit()
            && host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            // A dotted number that is not an IP (version strings, 1.2.3.4.5).
            if let Some((ip, text)) = parse_ip_text(host) {
                if !normalize::is_noise_ip(&ip) {
                    emit_ip(ip, text, scratch, emit);
                }
            }
            return;
        }
        if normalize::is_domain_shape(host) {
            scratch.clear();
            scratch.push_str(host);
            scratch.make_ascii_lowercase();
            emit(IocKind::Domain, scratch, None);
        }
    }
}

/// Emits address `ip`; `text` is its canonical text when the token held it as is.
fn emit_ip(
    ip: IpAddr,
    text: Option<&str>,
    scratch: &mut String,
    emit: &mut dyn FnMut(IocKind, &str, Option<IpAddr>),
) {
    emit(
        IocKind::Ip,
        normalize::ip_text(&ip, text, scratch),
        Some(ip),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Vec<(IocKind, String)> {
        let mut out = Vec::new();
        TextScanner::default().scan(text, &mut |kind, value, _| {
            out.push((kind, value.to_string()))
        });
        out
    }

    fn has(found: &[(IocKind, String)], kind: IocKind, value: &str) -> bool {
        found.iter().any(|(k, v)| *k == kind && v == value)
    }

    #[test]
    fn whole_tokens_only() {
        type Case<'a> = (&'a str, &'a [(IocKind, &'a str)], &'a [(IocKind, &'a str)]);
        let cases: &[Case] = &[
            (
                "connect to evil.com now",
                &[(IocKind::Domain, "evil.com")],
                &[],
            ),
            (
                "connect to notevil.com now",
                &[(IocKind::Domain, "notevil.com")],
                &[(IocKind::Domain, "evil.com")],
            ),
            (
                "see evil.community",
                &[(IocKind::Domain, "evil.community")],
                &[(IocKind::Domain, "evil.com")],
            ),
            (
                "from 11.2.3.45 port 22",
                &[(IocKind::Ip, "11.2.3.45")],
                &[(IocKind::Ip, "1.2.3.4")],
            ),
            (
                "Invalid user paco from 172.17.1.1 port 56404",
                &[(IocKind::Ip, "172.17.1.1")],
                &[],
            ),
            (
                "version 1.2.3.4.5 installed",
                &[],
                &[(IocKind::Ip, "1.2.3.4")],
            ),
            ("host EVIL.COM. said", &[(IocKind::Domain, "evil.com")], &[]),
            ("to evil.com:443 via", &[(IocKind::Domain, "evil.com")], &[]),
            (
                "from 2001:db8::1 port 22",
                &[(IocKind::Ip, "2001:db8::1")],
                &[],
            ),
            (
                "mail bad@evil.com",
                &[
                    (IocKind::Email, "bad@evil.com"),
                    (IocKind::Domain, "evil.com"),
                ],
                &[],
            ),
            (
                "hash 0639B0A6F69B3265C1E42227D650B7D1 seen",
                &[(IocKind::Hash, "0639b0a6f69b3265c1e42227d650b7d1")],
                &[],
            ),
            (
                "evil[.]com and 1[.]2[.]3[.]4",
                &[(IocKind::Domain, "evil.com"), (IocKind::Ip, "1.2.3.4")],
                &[],
            ),
            (
                "hxxps://evil[.]com/payload.exe",
                &[
                    (IocKind::Url, "https://evil.com/payload.exe"),
                    (IocKind::Domain, "evil.com"),
                ],
                &[],
            ),
            (
                "GET http://x.org/a?b=c HTTP/1.1",
                &[(IocKind::Url, "http://x.org/a?b=c")],
                &[],
            ),
            (
                "(see http://x.org/a).",
                &[(IocKind::Url, "http://x.org/a")],
                &[],
            ),
            ("user[@]evil.com", &[(IocKind::Email, "user@evil.com")], &[]),
            (
                "loopback 127.0.0.1 and ::1",
                &[],
                &[(IocKind::Ip, "127.0.0.1"), (IocKind::Ip, "::1")],
            ),
            (
                "evil.com.other.net",
                &[(IocKind::Domain, "evil.com.other.net")],
                &[(IocKind::Domain, "evil.com")],
            ),
            ("time 12:29:18 mac aa:bb:cc:dd:ee:ff", &[], &[]),
        ];
        for (text, want, not_want) in cases {
            let found = scan(text);
            for (kind, value) in *want {
                assert!(
                    has(&found, *kind, value),
                    "{text:?} should give {kind:?} {value}, got {found:?}"
                );
            }
            for (kind, value) in *not_want {
                assert!(
                    !has(&found, *kind, value),
                    "{text:?} must not give {kind:?} {value}, got {found:?}"
                );
            }
        }
    }

    #[test]
    fn refang() {
        let mut out = String::new();
        refang_into("hxxp://a[.]b(.)c[:]8080 x[@]y.z [dot] ok", &mut out);
        assert_eq!(out, "http://a.b.c:8080 x@y.z . ok");
    }

    /// The scanner as it was written first, byte by byte with `memchr` pre-passes: the
    /// definition the mask-based scanner must agree with, observable for observable.
    mod byte_by_byte {
        use super::super::*;
        use crate::pipeline::normalize::find_scheme_separator;

        fn looks_defanged(text: &str) -> bool {
            let bytes = text.as_bytes();
            if let Some(pos) = memchr::memchr3(b'[', b'(', b'{', bytes) {
                let rest = &bytes[pos..];
                if memchr::memchr3_iter(b'[', b'(', b'{', rest).any(|at| {
                    REPLACEMENTS
                        .iter()
                        .any(|(pattern, _)| rest[at..].starts_with(pattern))
                }) {
                    return true;
                }
            }
            memchr::memchr2_iter(b'x', b'X', bytes).any(|pos| {
                pos > 0
                    && bytes[pos - 1].eq_ignore_ascii_case(&b'h')
                    && bytes
                        .get(pos + 1)
                        .is_some_and(|b| b.eq_ignore_ascii_case(&b'x'))
            })
        }

        pub fn scan(text: &str) -> Vec<(IocKind, String, Option<IpAddr>)> {
            let mut found = Vec::new();
            let mut emit = |kind, value: &str, ip| found.push((kind, value.to_string(), ip));
            let mut refanged = String::new();
            let text = if looks_defanged(text) {
                refang_into(text, &mut refanged);
                refanged.as_str()
            } else {
                text
            };
            let (mut scratch, bytes) = (String::new(), text.as_bytes());
            let mut search_from = 0;
            while let Some(rel) = find_scheme_separator(&bytes[search_from..]) {
                // The URL's extent is the scanner's own `url_around` (unchanged); what
                // differs is how separators and tokens are found.
                let sep = search_from + rel;
                let (start, end) = url_around(bytes, sep);
                if start < sep && end > sep + 3 && sep - start <= 10 {
                    if let Some(url) = normalize::normalize_url(&text[start..end]) {
                        emit(IocKind::Url, &url.url, None);
                    }
                }
                search_from = end.max(sep + 3);
            }
            let token =
                |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'@' | b'-' | b'_');
            let mut idx = 0;
            while idx < bytes.len() {
                if !token(bytes[idx]) {
                    idx += 1;
                    continue;
                }
                let start = idx;
                let mut marked = false;
                while idx < bytes.len() && token(bytes[idx]) {
                    marked |= matches!(bytes[idx], b'.' | b':' | b'@');
                    idx += 1;
                }
                if marked || idx - start >= MIN_BARE_HASH {
                    classify_token(&text[start..idx], &mut scratch, &mut emit);
                }
            }
            found
        }
    }

    /// Texts built from pieces of observables, defanged marks, separators and non-ASCII, long
    /// enough to cross the 64-byte words of the masks.
    fn text_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("evil.com"),
            Just("1.2.3.4"),
            Just("2001:db8::1"),
            Just("::1"),
            Just("[.]"),
            Just("(.)"),
            Just("{.}"),
            Just("[dot]"),
            Just("[:]"),
            Just("[@]"),
            Just("hxxp"),
            Just("HXXPS"),
            Just("http"),
            Just("://"),
            Just("@"),
            Just("x"),
            Just("X"),
            Just("h"),
            Just(" "),
            Just("\t"),
            Just("é"),
            Just("ü"),
            Just("["),
            Just("("),
            Just("{"),
            Just("."),
            Just(":"),
            Just("-"),
            Just("_"),
            Just("/"),
            Just("\\\\"),
            Just("'"),
            Just("\""),
            Just("a"),
            Just("0"),
            Just("f"),
            Just("5d41402abc4b2a76b9719d911017c592"),
            Just("user@mail.example.org"),
            Just(":8080"),
            Just("?q=1"),
            Just("ß.de"),
        ];
        prop::collection::vec(piece, 0..80).prop_map(|pieces| pieces.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, .. Default::default() })]
        #[test]
        fn masks_scan_equals_byte_by_byte_scan(text in text_strategy()) {
            let mut found = Vec::new();
            TextScanner::default().scan(&text, &mut |kind, value, ip| {
                found.push((kind, value.to_string(), ip))
            });
            proptest::prop_assert_eq!(found, byte_by_byte::scan(&text));
        }

        #[test]
        fn masks_scan_equals_byte_by_byte_scan_on_any_text(text in ".{0,300}") {
            let mut found = Vec::new();
            TextScanner::default().scan(&text, &mut |kind, value, ip| {
                found.push((kind, value.to_string(), ip))
            });
            proptest::prop_assert_eq!(found, byte_by_byte::scan(&text));
        }
    }
}
