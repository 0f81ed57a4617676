//! Match: observables × the current snapshot → hits. Pure: no IO, no allocation in the
//! steady state, every matching attribute reported once.

use crate::intel::IntelSnapshot;
use crate::model::observable::IocKind;
use crate::pipeline::extract::Extraction;

/// One matching attribute and the observable that matched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub attribute: u32,
    /// Index of the observable in the extraction; `u32::MAX` for a free-text automaton hit,
    /// whose text is in `FreeTextHit`.
    pub observable: u32,
}

/// Reusable matcher scratch.
#[derive(Default)]
pub struct Matcher {
    candidates: Vec<(u32, u32)>,
}

impl Matcher {
    /// Fills `hits` with every attribute matching an observable of `extraction`, in
    /// observable order, each attribute once, warninglisted values dropped.
    pub fn match_all(
        &mut self,
        snapshot: &IntelSnapshot,
        extraction: &Extraction,
        hits: &mut Vec<Hit>,
    ) {
        hits.clear();
        if snapshot.is_empty() {
            return;
        }
        self.candidates.clear();
        for idx in 0..extraction.len() {
            let (kind, value, ip, hash) = extraction.for_matching(idx);
            let candidates = &mut self.candidates;
            let mut found = |attribute: u32| candidates.push((attribute, idx as u32));
            match kind {
                IocKind::Ip => {
                    if let Some(ip) = ip {
                        snapshot.match_ip(ip, &mut found);
                    }
                }
                IocKind::Url => {
                    snapshot.match_key(IocKind::Url, value, hash, &mut found);
                    if let Some(path) = url_path(value) {
                        snapshot.match_uri(path, &mut found);
                        if let Some(bare) = without_query(path) {
                            snapshot.match_uri(bare, &mut found);
                        }
                    }
                }
                IocKind::UriPath => {
                    snapshot.match_key(IocKind::UriPath, value, hash, &mut found);
                    if let Some(bare) = without_query(value) {
                        snapshot.match_uri(bare, &mut found);
                    }
                }
                kind => snapshot.match_key(kind, value, hash, &mut found),
            }
        }
        if snapshot.has_automaton() {
            for (text_idx, text) in extraction.free_texts().enumerate() {
                let candidates = &mut self.candidates;
                snapshot.scan_free_text(text, &mut |attribute| {
                    candidates.push((attribute, u32::MAX - text_idx as u32))
                });
            }
        }
        for &(attribute, observable) in &self.candidates {
            if hits.iter().any(|hit| hit.attribute == attribute) {
                continue;
            }
            // Automaton hits were warninglist-checked when the snapshot was built.
            if (observable as usize) < extraction.len() && snapshot.warninglists().is_some() {
                let value = extraction.for_matching(observable as usize).1;
                if snapshot
                    .warninglisted(value, snapshot.attribute(attribute).misp_type)
                    .is_some()
                {
                    continue;
                }
            }
            // Enrichment reads the record next: start loading it now.
            snapshot.prefetch_record(attribute);
            hits.push(Hit {
                attribute,
                observable,
            });
        }
    }
}

/// The path (and query) of a normalised URL: everything from the first `/` after `://`.
fn url_path(url: &str) -> Option<&str> {
    let after_scheme = crate::pipeline::normalize::find_scheme_separator(url.as_bytes())? + 3;
    // '/' and '?' are ASCII: the positions memchr finds are char boundaries.
    let start = memchr::memchr(b'/', &url.as_bytes()[after_scheme..])? + after_scheme;
    Some(&url[start..])
}

/// A path without its query, when it has one.
fn without_query(path: &str) -> Option<&str> {
    memchr::memchr(b'?', path.as_bytes()).map(|at| &path[..at])
}
