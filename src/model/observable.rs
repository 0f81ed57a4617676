//! Observables: the IOC-shaped values pulled out of one alert.

use std::net::IpAddr;

/// The kind of an observable, which decides where it is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IocKind {
    Ip,
    Domain,
    Url,
    /// A URL path (web access logs, Suricata `http.url`): matched against MISP `uri`.
    UriPath,
    Email,
    Hash,
    /// A file's basename, from file-name fields only (never from free text).
    Filename,
    /// Other exact strings (user-agents, registry keys, mutexes), lower-cased.
    Text,
}

impl IocKind {
    pub const ALL: [IocKind; 8] = [
        IocKind::Ip,
        IocKind::Domain,
        IocKind::Url,
        IocKind::UriPath,
        IocKind::Email,
        IocKind::Hash,
        IocKind::Filename,
        IocKind::Text,
    ];

    /// The metric label and the name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            IocKind::Ip => "ip",
            IocKind::Domain => "domain",
            IocKind::Url => "url",
            IocKind::UriPath => "uri",
            IocKind::Email => "email",
            IocKind::Hash => "hash",
            IocKind::Filename => "filename",
            IocKind::Text => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One observable, borrowed from an [`crate::pipeline::extract::Extraction`].
#[derive(Clone, Copy, Debug)]
pub struct Observable<'a> {
    pub kind: IocKind,
    /// Normalised value (lower-case where the kind is case-insensitive, canonical IP form).
    pub value: &'a str,
    /// Dotted path of the alert field it came from (array indices dropped).
    pub field: &'a str,
    /// True when found by scanning free text rather than read from a typed field.
    pub free_text: bool,
    /// The parsed address for `IocKind::Ip`.
    pub ip: Option<IpAddr>,
}
