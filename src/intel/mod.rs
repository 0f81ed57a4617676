//! The indicator set, on its own schedule: loaded from files, feeds and MISP, built into an
//! immutable [`IntelSnapshot`] and swapped whole into the [`IntelStore`] that every worker reads.

pub mod feeds;
pub mod index;
pub mod load;
pub mod snapshot;
pub mod sync;
pub mod types;
pub mod update;
pub mod warninglist;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use load::{LoadError, Loader};
pub use snapshot::{IntelSnapshot, SnapshotBuilder, SnapshotStats};
pub use warninglist::{WarninglistError, Warninglists};

/// The shared handle to the current snapshot. Readers take one cheap `load()` per message.
pub struct IntelStore {
    current: ArcSwap<IntelSnapshot>,
    loaded: AtomicBool,
    last_success_unix: AtomicI64,
}

impl Default for IntelStore {
    fn default() -> Self {
        IntelStore {
            current: ArcSwap::from_pointee(IntelSnapshot::empty()),
            loaded: AtomicBool::new(false),
            last_success_unix: AtomicI64::new(0),
        }
    }
}

impl IntelStore {
    pub fn new(snapshot: IntelSnapshot) -> Self {
        let store = IntelStore::default();
        store.swap(snapshot);
        store
    }

    /// The current snapshot.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<IntelSnapshot>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<IntelSnapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot whole. In-flight readers keep the one they hold.
    pub fn swap(&self, snapshot: IntelSnapshot) {
        self.current.store(Arc::new(snapshot));
        self.loaded.store(true, Ordering::Release);
        self.last_success_unix
            .store(chrono::Utc::now().timestamp(), Ordering::Release);
    }

    /// Whether a first snapshot has been installed (for `/readyz`).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn last_success_unix(&self) -> i64 {
        self.last_success_unix.load(Ordering::Acquire)
    }
}

/// What to load: the `intel.*` config section, or `enrich --indicators/--warninglists`.
#[derive(Debug, Clone, Default)]
pub struct IntelSources {
    pub files: Vec<PathBuf>,
    pub warninglists_dir: Option<PathBuf>,
    pub include_non_ids: bool,
    /// Extra restSearch filters for MISP pulls (`misp.tags`, `misp.threat_levels`, ...).
    pub misp_filter: serde_json::Map<String, serde_json::Value>,
    /// `misp.decay_threshold`, applied to attributes that carry a decay score.
    pub decay_threshold: Option<f64>,
    /// Remote feeds (`intel.feeds`), loaded from their cache in `feed_cache_dir`.
    pub feeds: Vec<crate::config::FeedConfig>,
    pub feed_cache_dir: Option<PathBuf>,
}

impl IntelSources {
    /// Files, then cached feeds, into `builder` (everything but MISP's REST API).
    pub fn load_local(
        &self,
        builder: &mut SnapshotBuilder,
        loader: &mut Loader,
    ) -> Result<(), IntelError> {
        for path in &self.files {
            loader.add_path(builder, path)?;
        }
        if let Some(dir) = &self.feed_cache_dir {
            feeds::load_cached(loader, builder, &self.feeds, dir)?;
        }
        Ok(())
    }
}

/// Loads warninglists (if configured) and every file into a new snapshot.
pub fn load_snapshot(sources: &IntelSources) -> Result<IntelSnapshot, IntelError> {
    let warninglists = match &sources.warninglists_dir {
        Some(dir) => Some(Arc::new(Warninglists::load_dir(dir)?)),
        None => None,
    };
    let mut builder = SnapshotBuilder::new(sources.include_non_ids, warninglists);
    sources.load_local(&mut builder, &mut Loader::default())?;
    Ok(builder.build())
}

/// Loads one path into a fresh builder (tests, `lookup`).
pub fn load_files(paths: &[&Path], include_non_ids: bool) -> Result<IntelSnapshot, IntelError> {
    load_snapshot(&IntelSources {
        files: paths.iter().map(|p| p.to_path_buf()).collect(),
        warninglists_dir: None,
        include_non_ids,
        ..IntelSources::default()
    })
}

#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Warninglist(#[from] WarninglistError),
    #[error("indicator set of {count} attributes is below the configured floor of {floor}; keeping the previous one")]
    TooSmall { count: usize, floor: usize },
}

impl IntelError {
    pub fn code(&self) -> &'static str {
        match self {
            IntelError::Load(err) => err.code(),
            IntelError::Warninglist(_) => "warninglist",
            IntelError::TooSmall { .. } => "too_small",
        }
    }
}
