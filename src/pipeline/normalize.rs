//! Canonical forms of observable values, shared by extraction (alert side) and by the intel
//! loader (MISP side), so that both sides of every comparison are normalised the same way.
//!
//! Every function is total: odd input gives `None`, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `text.trim()`, without walking characters when neither end is whitespace (most values).
#[inline]
pub fn trim(text: &str) -> &str {
    let ascii_solid = |byte: u8| byte < 0x80 && !char::from(byte).is_whitespace();
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(&first), Some(&last)) if ascii_solid(first) && ascii_solid(last) => text,
        _ => text.trim(),
    }
}

/// Parses an IP address in any of the forms Wazuh alerts carry: plain v4/v6, uncompressed v6,
/// IPv4-mapped v6 (dotted or hex), `a.b.c.d:port`, `[v6]:port`, `v6%zone`. IPv4-mapped
/// addresses become the IPv4 address.
pub fn parse_ip(raw: &str) -> Option<IpAddr> {
    parse_ip_text(raw).map(|(ip, _)| ip)
}

/// [`parse_ip`], and the address's canonical text (what [`write_ip`] writes) when `raw` holds
/// it as is: a dotted quad, possibly with a port, which is most addresses in alerts. They need
/// not be written out again.
pub fn parse_ip_text(raw: &str) -> Option<(IpAddr, Option<&str>)> {
    let text = trim(raw);
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_hexdigit() || first == b':' || first == b'[') {
        return None;
    }
    if let Some((v4, end)) = parse_v4_fast(text.as_bytes()) {
        // The parser takes no leading zero and no sign: the digits are the canonical text.
        return Some((IpAddr::V4(v4), text.get(..end)));
    }
    let addr = if let Some(rest) = text.strip_prefix('[') {
        // [v6]:port or [v6]
        let end = rest.find(']')?;
        let tail = &rest[end + 1..];
        if !(tail.is_empty() || (tail.starts_with(':') && is_port(&tail[1..]))) {
            return None;
        }
        parse_v6(&rest[..end]).map(IpAddr::V6)?
    } else {
        // Every IPv4 form (with or without a port) was taken above.
        parse_v6(text).map(IpAddr::V6)?
    };
    Some((canonical_ip(addr), None))
}

/// Dotted-quad IPv4, optionally with `:port`, in the form [`Ipv4Addr`]'s parser accepts
/// (1-3 digits per octet, no leading zero, at most 255): every IPv4 form `parse_ip` takes,
/// without `FromStr`, and where the address ends (before any port). `None` leaves only IPv6
/// to try.
fn parse_v4_fast(bytes: &[u8]) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (idx, octet) in octets.iter_mut().enumerate() {
        if idx > 0 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let start = at;
        let mut value: u32 = 0;
        while let Some(digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            value = value * 10 + u32::from(digit - b'0');
            at += 1;
            if at - start > 3 {
                return None;
            }
        }
        let digits = at - start;
        if digits == 0 || value > 255 || (digits > 1 && bytes[start] == b'0') {
            return None;
        }
        *octet = value as u8;
    }
    match &bytes[at..] {
        [] => Some((Ipv4Addr::from(octets), at)),
        [b':', port @ ..] if !port.is_empty() && port.len() <= 5 => port
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| (Ipv4Addr::from(octets), at)),
        _ => None,
    }
}

fn parse_v6(text: &str) -> Option<Ipv6Addr> {
    let text = match text.find('%') {
        Some(zone) => &text[..zone],
        None => text,
    };
    text.parse::<Ipv6Addr>().ok()
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, `::ffff:5574:c80b`) becomes the IPv4 address.
pub fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Writes the canonical text of `ip` (its `Display` form) into `out`, replacing its content.
/// IPv4 is formatted by hand: `Display` through `fmt::write` costs several times more.
pub fn write_ip(ip: &IpAddr, out: &mut String) {
    out.clear();
    match ip {
        IpAddr::V4(v4) => {
            // Each octet's decimal digits (and a '.') from a table, copied whole; the length
            // decides how far the next one starts. No branch per digit.
            let mut buf = [0u8; 16];
            let mut len = 0;
            for octet in v4.octets() {
                let (digits, n) = OCTET_TEXT[usize::from(octet)];
                buf[len..len + 4].copy_from_slice(&digits);
                len += n;
            }
            // Only ASCII digits and dots were written; the last '.' is not part of it.
            out.push_str(std::str::from_utf8(&buf[..len - 1]).unwrap_or_default());
        }
        IpAddr::V6(_) => {
            use std::fmt::Write;
            let _ = write!(out, "{ip}");
        }
    }
}

/// The canonical text of `ip`: `text` when [`parse_ip_text`] gave it (the field held it as
/// is), else written into `scratch` by [`write_ip`].
pub fn ip_text<'a>(ip: &IpAddr, text: Option<&'a str>, scratch: &'a mut String) -> &'a str {
    match text {
        Some(text) => text,
        None => {
            write_ip(ip, scratch);
            scratch
        }
    }
}

/// The decimal text of each octet value followed by '.', padded to 4 bytes, and its length.
const fn octet_text_table() -> [([u8; 4], usize); 256] {
    let mut table = [([0u8; 4], 0usize); 256];
    let mut value = 0;
    while value < 256 {
        let octet = value as u8;
        let mut digits = [0u8; 4];
        let mut len = 0;
        if octet >= 100 {
            digits[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            digits[len] = b'0' + (octet / 10) % 10;
            len += 1;
        }
        digits[len] = b'0' + octet % 10;
        digits[len + 1] = b'.';
        table[value] = (digits, len + 2);
        value += 1;
    }
    table
}
static OCTET_TEXT: [([u8; 4], usize); 256] = octet_text_table();

/// Addresses that are never IOCs of a remote party: loopback and unspecified.
pub fn is_noise_ip(addr: &IpAddr) -> bool {
    addr.is_loopback() || addr.is_unspecified()
}

/// Private, reserved, link-local, multicast, documentation-free addresses: never shared as new IOCs.
pub fn is_private_or_reserved(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 CGNAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (a /32 or /128).
/// Returns the network address (host bits cleared) and the prefix length.
pub fn parse_cidr(raw: &str) -> Option<(IpAddr, u8)> {
    let text = trim(raw);
    match text.split_once('/') {
        None => parse_ip(text).map(|ip| {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            (ip, len)
        }),
        Some((addr, len)) => {
            let len: u8 = len.trim().parse().ok()?;
            let ip: IpAddr = addr.trim().parse().ok()?;
            match ip {
                IpAddr::V4(v4) if len <= 32 => Some((IpAddr::V4(mask_v4(v4, len)), len)),
                IpAddr::V6(v6) if len <= 128 => {
                    if let (Some(v4), true) = (v6.to_ipv4_mapped(), len >= 96) {
                        Some((IpAddr::V4(mask_v4(v4, len - 96)), len - 96))
                    } else {
                        Some((IpAddr::V6(mask_v6(v6, len)), len))
                    }
                }
                _ => None,
            }
        }
    }
}

pub fn mask_v4(addr: Ipv4Addr, len: u8) -> Ipv4Addr {
    Ipv4Addr::from(mask_u32(u32::from(addr), len))
}

pub fn mask_u32(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(len.min(32))))
    }
}

pub fn mask_v6(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    Ipv6Addr::from(mask_u128(u128::from(addr), len))
}

pub fn mask_u128(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len.min(128))))
    }
}

/// Lower-cases and validates a DNS name: trailing dot dropped, labels of `[a-z0-9_-]`, at
/// least two labels, an alphabetic (or punycode) top-level label. Returns `None` for anything
/// that cannot be a domain (including IP addresses).
pub fn normalize_domain(raw: &str) -> Option<String> {
    let mut out = String::new();
    normalize_domain_into(raw, &mut out).then_some(out)
}

/// `normalize_domain` into a reused buffer; false (buffer unspecified) when not a domain.
pub fn normalize_domain_into(raw: &str, out: &mut String) -> bool {
    let Some(text) = domain_text(raw) else {
        return false;
    };
    out.clear();
    out.push_str(text);
    out.make_ascii_lowercase();
    true
}

/// `raw` trimmed and without trailing dots, when that is shaped like a domain (case kept).
fn domain_text(raw: &str) -> Option<&str> {
    let text = trim(raw).trim_end_matches('.');
    is_domain_shape(text).then_some(text)
}

/// True when `text` (already trimmed, without a trailing dot) is shaped like a domain name.
pub fn is_domain_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 3 || bytes.len() > 253 {
        return false;
    }
    // One pass: labels of 1-63 `[A-Za-z0-9_-]` not starting or ending with `-`.
    let mut labels = 0;
    let mut label_start = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        if byte == b'.' {
            if !label_ok(&bytes[label_start..idx]) {
                return false;
            }
            labels += 1;
            label_start = idx + 1;
        } else if !(byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') {
            return false;
        }
    }
    let last_label = &bytes[label_start..];
    if labels < 1 || !label_ok(last_label) {
        return false;
    }
    (last_label.len() >= 2 && last_label.iter().all(u8::is_ascii_alphabetic))
        || (last_label.len() > 4 && last_label[..4].eq_ignore_ascii_case(b"xn--"))
}

/// A domain label's length and hyphens (its bytes are checked by the caller).
#[inline]
fn label_ok(label: &[u8]) -> bool {
    matches!((label.first(), label.last()), (Some(first), Some(last)) if *first != b'-' && *last != b'-')
        && label.len() <= 63
}

/// The parents of `host` that still have a dot (`b.evil.com`, `evil.com`; not `com`): the
/// ones a MISP `domain` attribute can be.
pub fn dotted_parent_domains(host: &str) -> impl Iterator<Item = &str> {
    let last_dot = memchr::memrchr(b'.', host.as_bytes()).unwrap_or(0);
    memchr::memchr_iter(b'.', host.as_bytes())
        .take_while(move |&idx| idx < last_dot)
        .map(move |idx| &host[idx + 1..])
}

/// Parent domains of a normalised host, nearest first: `a.b.evil.com` gives `b.evil.com`,
/// `evil.com`, `com`.
pub fn parent_domains(host: &str) -> impl Iterator<Item = &str> {
    // A '.' byte is always a whole character in UTF-8, so `idx + 1` is a char boundary.
    memchr::memchr_iter(b'.', host.as_bytes()).map(move |idx| &host[idx + 1..])
}

/// A URL in canonical form: scheme and host lower-case, the scheme's default port dropped,
/// an empty path written as `/`, the fragment dropped. Path and query keep their case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalizedUrl {
    pub url: String,
    /// Byte range of the host in `url`.
    pub host: std::ops::Range<usize>,
    /// Byte offset where the path starts in `url`.
    pub path_start: usize,
}

impl NormalizedUrl {
    pub fn host(&self) -> &str {
        &self.url[self.host.clone()]
    }
    pub fn path_and_query(&self) -> &str {
        &self.url[self.path_start..]
    }
}

/// Position of the first `://` in `bytes` (`memchr` for `:`; `str::find` with a string
/// pattern builds a two-way searcher per call, which costs more than the search here).
pub fn find_scheme_separator(bytes: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b':', bytes).find(|&at| bytes[at + 1..].starts_with(b"//"))
}

/// Position of the first pair of `byte` in `bytes`.
pub fn find_doubled(bytes: &[u8], byte: u8) -> Option<usize> {
    memchr::memchr_iter(byte, bytes).find(|&at| bytes.get(at + 1) == Some(&byte))
}

pub fn normalize_url(raw: &str) -> Option<NormalizedUrl> {
    let mut url = NormalizedUrl::default();
    normalize_url_into(raw, &mut url).then_some(url)
}

/// `normalize_url` into a reused value; false (value unspecified) when not a URL.
pub fn normalize_url_into(raw: &str, out: &mut NormalizedUrl) -> bool {
    let text = trim(raw);
    let Some(sep) = find_scheme_separator(text.as_bytes()) else {
        return false;
    };
    let (scheme, rest) = (&text[..sep], &text[sep + 3..]);
    if scheme.is_empty()
        || scheme.len() > 10
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    {
        return false;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut tail = &rest[authority_end..];
    if let Some(hash) = memchr::memchr(b'#', tail.as_bytes()) {
        tail = &tail[..hash];
    }
    // Drop user-info.
    let host_port = match memchr::memrchr(b'@', authority.as_bytes()) {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let Some((host, port)) = split_host_port(host_port) else {
        return false;
    };
    if host.is_empty() {
        return false;
    }
    let url = &mut out.url;
    url.clear();
    url.reserve(text.len() + 1);
    if scheme.eq_ignore_ascii_case("hxxp") {
        url.push_str("http");
    } else if scheme.eq_ignore_ascii_case("hxxps") {
        url.push_str("https");
    } else {
        url.push_str(scheme);
        url.make_ascii_lowercase();
    }
    let default_port = match url.as_str() {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        "ftp" => Some("21"),
        _ => None,
    };
    url.push_str("://");
    let host_start = url.len();
    url.push_str(host);
    url[host_start..].make_ascii_lowercase();
    let trimmed = url[host_start..].trim_end_matches('.').len();
    url.truncate(host_start + trimmed);
    let host_end = url.len();
    if let Some(port) = port {
        let port = port.trim_start_matches('0');
        if Some(port) != default_port && !port.is_empty() {
            url.push(':');
            url.push_str(port);
        }
    }
    let path_start = url.len();
    if tail.is_empty() || tail.starts_with('?') {
        url.push('/');
    }
    url.push_str(tail);
    out.host = host_start..host_end;
    out.path_start = path_start;
    true
}

/// Splits `host:port` and `[v6]:port`; a bare IPv6 address is returned whole.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':');
        return Some((&rest[..end], port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            if is_port(port) || port.is_empty() {
                Some((host, if port.is_empty() { None } else { Some(port) }))
            } else {
                None
            }
        }
        _ => Some((text, None)),
    }
}

/// Host of a URL or of a `host/path` value, the way MISP's hostname warninglists take it.
pub fn host_of(value: &str) -> &str {
    let rest = match find_doubled(value.as_bytes(), b'/') {
        Some(idx) => &value[idx + 2..],
        None => value,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let host = match host.rfind('@') {
        Some(at) => &host[at + 1..],
        None => host,
    };
    match split_host_port(host) {
        Some((host, _)) => host,
        None => host,
    }
}

/// Lower-case hex of a hash value, colons removed (`x509` fingerprints, Suricata TLS
/// fingerprints). `None` unless every character is hex and the length is one of a hash's.
pub fn normalize_hash(raw: &str) -> Option<String> {
    let mut out = String::new();
    normalize_hash_into(raw, &mut out).then_some(out)
}

/// `normalize_hash` into a reused buffer; false when not a hash.
pub fn normalize_hash_into(raw: &str, out: &mut String) -> bool {
    let text = trim(raw);
    out.clear();
    // Plain hex (the common case): validated once, copied and lower-cased in bulk.
    if is_all_hex(text.as_bytes()) {
        if !is_hash_len(text.len()) {
            return false;
        }
        out.push_str(text);
        out.make_ascii_lowercase();
        return !out.bytes().all(|b| b == b'0');
    }
    for byte in text.bytes() {
        match byte {
            b'0'..=b'9' | b'a'..=b'f' => out.push(byte as char),
            b'A'..=b'F' => out.push((byte + 32) as char),
            b':' => {}
            _ => return false,
        }
    }
    is_hash_len(out.len()) && !out.bytes().all(|b| b == b'0')
}

/// True when every byte is an ASCII hex digit (true for an empty slice). Branch-free, so
/// random hex (digits and letters mixed) costs no mispredictions; the loop vectorises.
#[inline]
pub fn is_all_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10) | ((b | 0x20).wrapping_sub(b'a') < 6))
    })
}

/// md5/imphash 32, sha1 40, sha224 56, sha256 64, sha384 96, sha512 128.
pub fn is_hash_len(len: usize) -> bool {
    matches!(len, 32 | 40 | 56 | 64 | 96 | 128)
}

/// The hash algorithm implied by a hex length, for IOC sharing.
pub fn hash_type_for_len(len: usize) -> &'static str {
    match len {
        32 => "md5",
        40 => "sha1",
        56 => "sha224",
        64 => "sha256",
        96 => "sha384",
        _ => "sha512",
    }
}

/// `local@domain`, lower-cased, with a valid domain.
pub fn normalize_email(raw: &str) -> Option<String> {
    let mut out = String::new();
    normalize_email_into(raw, &mut out).map(|_| out)
}

/// `normalize_email` into a reused buffer: the byte offset of the domain in `out`, or `None`
/// (buffer unspecified) when not an address.
pub fn normalize_email_into(raw: &str, out: &mut String) -> Option<usize> {
    let text = trim(raw).trim_start_matches("mailto:");
    let at = memchr::memrchr(b'@', text.as_bytes())?;
    let (local, domain) = (&text[..at], &text[at + 1..]);
    if local.is_empty()
        || local.len() > 64
        || !local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-'".contains(&b))
    {
        return None;
    }
    let domain = domain_text(domain)?;
    out.clear();
    out.push_str(local);
    out.push('@');
    out.push_str(domain);
    out.make_ascii_lowercase();
    Some(local.len() + 1)
}

/// Collapses the doubled backslashes Wazuh's Windows agent writes (`C:\\Windows\\x.exe`).
pub fn collapse_backslashes(raw: &str) -> std::borrow::Cow<'_, str> {
    if find_doubled(raw.as_bytes(), b'\\').is_some() {
        let mut out = String::with_capacity(raw.len());
        let mut prev_backslash = false;
        for ch in raw.chars() {
            if ch == '\\' {
                if !prev_backslash {
                    out.push(ch);
                }
                prev_backslash = true;
            } else {
                prev_backslash = false;
                out.push(ch);
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// The lower-cased basename of a Windows or POSIX path, `None` for an empty one.
pub fn normalize_filename(raw: &str) -> Option<String> {
    let mut out = String::new();
    normalize_filename_into(raw, &mut out).then_some(out)
}

/// `normalize_filename` into a reused buffer; false when there is no file name.
pub fn normalize_filename_into(raw: &str, out: &mut String) -> bool {
    // The basename is after the last separator; doubled backslashes do not change that.
    let path = trim(raw).trim_matches('"');
    let base = match memchr::memrchr2(b'\\', b'/', path.as_bytes()) {
        // An ASCII separator: the byte after it starts a character.
        Some(at) => trim(&path[at + 1..]),
        None => trim(path),
    };
    if base.is_empty() || base == "-" || base.len() > 255 {
        return false;
    }
    out.clear();
    if base.is_ascii() {
        out.push_str(base);
        out.make_ascii_lowercase();
    } else {
        out.extend(base.chars().flat_map(char::to_lowercase));
    }
    true
}

/// Exact-string observables (user-agents, mutexes, registry keys): lower-cased, backslashes
/// collapsed, registry hive names shortened (`HKEY_LOCAL_MACHINE` → `hklm`).
pub fn normalize_text(raw: &str) -> Option<String> {
    let mut out = String::new();
    normalize_text_into(raw, &mut out).then_some(out)
}

/// `normalize_text` into a reused buffer; false (buffer unspecified) when too short.
pub fn normalize_text_into(raw: &str, out: &mut String) -> bool {
    let text = trim(raw);
    if text.len() < 3 || text == "-" {
        return false;
    }
    out.clear();
    match collapse_backslashes(text) {
        std::borrow::Cow::Borrowed(text) => out.push_str(text),
        std::borrow::Cow::Owned(text) => out.push_str(&text),
    }
    if out.is_ascii() {
        out.make_ascii_lowercase();
    } else {
        *out = out.to_lowercase();
    }
    const HIVES: [(&str, &str); 5] = [
        ("hkey_local_machine", "hklm"),
        ("hkey_current_user", "hkcu"),
        ("hkey_classes_root", "hkcr"),
        ("hkey_users", "hku"),
        ("hkey_current_config", "hkcc"),
    ];
    for (long, short) in HIVES {
        if out.starts_with(long) {
            out.replace_range(..long.len(), short);
            break;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_is_str_trim() {
        // Every ASCII byte and some Unicode spaces and letters, at either end and both.
        let mut ends: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        ends.extend(["\u{85}", "\u{a0}", "\u{2028}", "\u{3000}", "é", "日"].map(String::from));
        for left in &ends {
            for right in &ends {
                for text in [
                    format!("{left}x{right}"),
                    format!("{left}{right}"),
                    left.to_string(),
                    format!("{left} a b {right}"),
                ] {
                    assert_eq!(trim(&text), text.trim(), "{text:?}");
                }
            }
        }
        assert_eq!(trim(""), "");
    }

    /// The fast IPv4 path accepts exactly what `Ipv4Addr`'s parser does (with or without a
    /// port), so it never changes what `parse_ip` finds.
    #[test]
    fn fast_ipv4_agrees_with_std() {
        let mut cases: Vec<String> = [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            ".1.2.3.4",
            "1.2.3.4.",
            "1.2.3.4:80",
            "1.2.3.4:",
            "1.2.3.4:123456",
            "1.2.3.4:8o",
            "1000.2.3.4",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.-4",
            "10.0.0.1:65535",
            "9.9.9.9x",
            "",
        ]
        .iter()
        .map(|case| case.to_string())
        .collect();
        for a in [0u32, 1, 9, 10, 99, 100, 199, 249, 255, 256, 999] {
            cases.push(format!("{a}.{a}.1.{a}"));
            cases.push(format!("0{a}.1.1.1"));
        }
        for case in cases {
            let bytes = case.as_bytes();
            let (host, port_ok) = match case.rsplit_once(':') {
                Some((host, port)) => (host, is_port(port)),
                None => (case.as_str(), true),
            };
            let want = host.parse::<Ipv4Addr>().ok().filter(|_| port_ok);
            assert_eq!(parse_v4_fast(bytes).map(|(ip, _)| ip), want, "{case:?}");
            // Every dotted quad (once trimmed) comes back with its canonical text, as
            // `write_ip` writes it.
            assert_eq!(
                matches!(parse_ip_text(&case), Some((_, Some(_)))),
                parse_v4_fast(case.trim().as_bytes()).is_some(),
                "{case:?}"
            );
            if let Some((ip, Some(text))) = parse_ip_text(&case) {
                let mut written = String::new();
                write_ip(&ip, &mut written);
                assert_eq!(text, written, "{case:?}");
            }
        }
    }

    #[test]
    fn write_ip_matches_display() {
        let mut out = String::new();
        for text in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.2.15",
            "99.100.255.9",
            "255.255.255.255",
            "2001:db8::1",
            "::1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            write_ip(&ip, &mut out);
            assert_eq!(out, ip.to_string());
        }
        for bits in (0..=u32::MAX).step_by(65_521) {
            let ip = IpAddr::V4(Ipv4Addr::from(bits));
            write_ip(&ip, &mut out);
            assert_eq!(out, ip.to_string());
        }
        // Every octet value in every position.
        for value in 0..=255u8 {
            for position in 0..4 {
                let mut octets = [1, 22, 203, 0];
                octets[position] = value;
                let ip = IpAddr::V4(Ipv4Addr::from(octets));
                write_ip(&ip, &mut out);
                assert_eq!(out, ip.to_string());
            }
        }
    }

    #[test]
    fn ip_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1.2.3.4", Some("1.2.3.4")),
            (" 1.2.3.4 ", Some("1.2.3.4")),
            ("51.144.33.14:58849", Some("51.144.33.14")),
            (
                "[2a01:111:f402:ac00::f134]:51514",
                Some("2a01:111:f402:ac00::f134"),
            ),
            ("0:0:0:0:0:0:0:1", Some("::1")),
            (
                "2001:0db8:0000:0000:0000:0000:0000:0001",
                Some("2001:db8::1"),
            ),
            ("::ffff:52.119.198.91", Some("52.119.198.91")),
            ("::ffff:5574:c80b", Some("85.116.200.11")),
            ("fe80::1%eth0", Some("fe80::1")),
            ("1.2.3.4.5", None),
            ("11.2.3.45", Some("11.2.3.45")),
            ("256.1.1.1", None),
            ("-", None),
            ("", None),
            ("evil.com", None),
            ("12:29:18", None),
            ("aa:bb:cc:dd:ee:ff", None),
            ("1.2.3.4:99999999", None),
        ];
        for (input, want) in cases {
            let got = parse_ip(input).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), *want, "input {input:?}");
        }
    }

    #[test]
    fn cidr_forms() {
        let cases: &[(&str, Option<(&str, u8)>)] = &[
            ("10.0.0.0/8", Some(("10.0.0.0", 8))),
            ("10.1.2.3/8", Some(("10.0.0.0", 8))),
            ("8.8.8.8", Some(("8.8.8.8", 32))),
            ("2001:db8::/32", Some(("2001:db8::", 32))),
            ("::ffff:10.0.0.0/104", Some(("10.0.0.0", 8))),
            ("10.0.0.0/33", None),
            ("x/8", None),
        ];
        for (input, want) in cases {
            let got = parse_cidr(input).map(|(ip, len)| (ip.to_string(), len));
            let want = want.map(|(ip, len)| (ip.to_string(), len));
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("Evil.COM.").as_deref(), Some("evil.com"));
        assert_eq!(
            normalize_domain("xn--80ak6aa92e.xn--p1ai").as_deref(),
            Some("xn--80ak6aa92e.xn--p1ai")
        );
        for bad in [
            "1.2.3.4",
            "localhost",
            "-evil.com",
            "evil..com",
            "a b.com",
            "",
            ".",
        ] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
        for host in [
            "a.b.evil.com",
            "evil.com",
            "com",
            "",
            ".",
            "a..b.c",
            ".evil.com",
            "evil.com.",
        ] {
            let dotted: Vec<_> = dotted_parent_domains(host).collect();
            let want: Vec<_> = parent_domains(host).filter(|p| p.contains('.')).collect();
            assert_eq!(dotted, want, "{host:?}");
        }
        let parents: Vec<_> = parent_domains("a.b.evil.com").collect();
        assert_eq!(parents, ["b.evil.com", "evil.com", "com"]);
    }

    #[test]
    fn urls() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "HTTP://Evil.COM:80/Path?Q=1#frag",
                Some(("http://evil.com/Path?Q=1", "evil.com")),
            ),
            (
                "https://evil.com:443",
                Some(("https://evil.com/", "evil.com")),
            ),
            (
                "https://evil.com:8443/x",
                Some(("https://evil.com:8443/x", "evil.com")),
            ),
            (
                "http://user:pw@evil.com/x",
                Some(("http://evil.com/x", "evil.com")),
            ),
            (
                "http://[2001:db8::1]:8080/a",
                Some(("http://2001:db8::1:8080/a", "2001:db8::1")),
            ),
            ("hxxp://evil.com/a", Some(("http://evil.com/a", "evil.com"))),
            ("evil.com/a", None),
            ("http:///a", None),
        ];
        for (input, want) in cases {
            let got = normalize_url(input);
            let got = got.as_ref().map(|url| (url.url.as_str(), url.host()));
            assert_eq!(got, *want, "input {input:?}");
        }
        assert_eq!(host_of("http://evil.com:8080/x"), "evil.com");
        assert_eq!(host_of("evil.com/x"), "evil.com");
    }

    #[test]
    fn hashes_emails_files_text() {
        assert_eq!(
            normalize_hash("0639B0A6F69B3265C1E42227D650B7D1").as_deref(),
            Some("0639b0a6f69b3265c1e42227d650b7d1")
        );
        assert_eq!(normalize_hash("00000000000000000000000000000000"), None);
        assert_eq!(normalize_hash("xyz"), None);
        assert_eq!(normalize_hash("abcd"), None);
        for byte in 0..=255u8 {
            assert_eq!(is_all_hex(&[b'a', byte, b'0']), byte.is_ascii_hexdigit());
        }
        assert!(is_all_hex(b""));
        assert_eq!(
            normalize_email("Bad.Guy@Evil.COM").as_deref(),
            Some("bad.guy@evil.com")
        );
        assert_eq!(normalize_email("nobody@localhost"), None);
        assert_eq!(
            normalize_filename("C:\\\\Windows\\\\System32\\\\CMD.exe").as_deref(),
            Some("cmd.exe")
        );
        assert_eq!(
            normalize_filename("/tmp/evil.sh").as_deref(),
            Some("evil.sh")
        );
        assert_eq!(normalize_filename("C:\\dir\\"), None);
        assert_eq!(
            normalize_text("HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\Run").as_deref(),
            Some("hklm\\software\\run")
        );
    }

    #[test]
    fn private_ranges() {
        for private in [
            "10.1.1.1",
            "192.168.0.1",
            "172.16.5.4",
            "127.0.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
            "100.64.0.1",
        ] {
            assert!(
                is_private_or_reserved(&private.parse().unwrap()),
                "{private}"
            );
        }
        for public in ["8.8.8.8", "185.220.101.4", "2a01:111::1"] {
            assert!(
                !is_private_or_reserved(&public.parse().unwrap()),
                "{public}"
            );
        }
    }
}
