//! MISP attribute types (describeTypes.json) → how each part of a value is indexed.

/// How one part of a MISP attribute value is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartKind {
    /// IP address or CIDR (ip-src, ip-dst, composite IP parts).
    Ip,
    /// A domain: matches itself and every sub-domain.
    Domain,
    /// A host name: exact host only.
    Hostname,
    /// A full URL, normalised.
    Url,
    /// A URL path (`uri`): exact against URL paths, whole-word in free text.
    Uri,
    Email,
    Hash,
    /// A file name: file-name fields only, never free text.
    Filename,
    /// Exact strings without a lexical shape (user-agent, regkey, mutex, named pipe):
    /// exact against typed fields, Aho-Corasick in free text.
    Text,
    /// A port or other part that never matches alone.
    Ignored,
}

/// The indexing plan of a MISP type: one entry per `|`-separated part, or `None` when the
/// type is not matched against alerts (comments, links, vulnerabilities, ...).
pub fn plan(misp_type: &str) -> Option<&'static [PartKind]> {
    use PartKind::*;
    Some(match misp_type {
        "ip-src" | "ip-dst" => &[Ip],
        "ip-src|port" | "ip-dst|port" => &[Ip, Ignored],
        "domain" => &[Domain],
        "domain|ip" => &[Domain, Ip],
        "hostname" => &[Hostname],
        "hostname|port" => &[Hostname, Ignored],
        "url" => &[Url],
        "uri" => &[Uri],
        "email"
        | "email-src"
        | "email-dst"
        | "target-email"
        | "whois-registrant-email"
        | "email-reply-to"
        | "dns-soa-email" => &[Email],
        "md5"
        | "sha1"
        | "sha224"
        | "sha256"
        | "sha384"
        | "sha512"
        | "sha512/224"
        | "sha512/256"
        | "sha3-224"
        | "sha3-256"
        | "sha3-384"
        | "sha3-512"
        | "imphash"
        | "authentihash"
        | "tlsh"
        | "ssdeep"
        | "impfuzzy"
        | "pehash"
        | "vhash"
        | "telfhash"
        | "cdhash"
        | "ja3-fingerprint-md5"
        | "jarm-fingerprint"
        | "hassh-md5"
        | "hasshserver-md5"
        | "x509-fingerprint-sha1"
        | "x509-fingerprint-sha256"
        | "x509-fingerprint-md5" => &[Hash],
        "filename" => &[Filename],
        "malware-sample" => &[Filename, Hash],
        "regkey"
        | "mutex"
        | "named pipe"
        | "user-agent"
        | "pdb"
        | "windows-service-name"
        | "windows-scheduled-task" => &[Text],
        "regkey|value" => &[Text, Ignored],
        other if other.starts_with("filename|") => &[Filename, Hash],
        _ => return None,
    })
}

/// ECS `threat.indicator.type` for a MISP type.
pub fn ecs_indicator_type(misp_type: &str) -> &'static str {
    let first = misp_type.split('|').next().unwrap_or(misp_type);
    match first {
        "ip-src" | "ip-dst" => "ipv4-addr",
        "domain" | "hostname" => "domain-name",
        "url" | "uri" => "url",
        "email"
        | "email-src"
        | "email-dst"
        | "target-email"
        | "whois-registrant-email"
        | "email-reply-to" => "email-addr",
        "filename" | "malware-sample" => "file",
        "regkey" => "windows-registry-key",
        "mutex" => "mutex",
        "user-agent" => "software",
        "x509-fingerprint-sha1" | "x509-fingerprint-sha256" | "x509-fingerprint-md5" => {
            "x509-certificate"
        }
        _ if misp_type.contains("md5")
            || misp_type.contains("sha")
            || misp_type.contains("hash") =>
        {
            "file"
        }
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(
            plan("ip-dst|port"),
            Some(&[PartKind::Ip, PartKind::Ignored][..])
        );
        assert_eq!(
            plan("filename|sha256"),
            Some(&[PartKind::Filename, PartKind::Hash][..])
        );
        assert_eq!(
            plan("domain|ip"),
            Some(&[PartKind::Domain, PartKind::Ip][..])
        );
        assert_eq!(plan("link"), None);
        assert_eq!(plan("comment"), None);
        assert_eq!(ecs_indicator_type("ip-dst|port"), "ipv4-addr");
        assert_eq!(ecs_indicator_type("filename|sha256"), "file");
    }
}
