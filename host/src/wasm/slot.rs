//! Guest slots and hot swap. A slot holds the version of one guest that serves now, as an
//! `Arc<Guest>` swapped atomically: a request takes the current version once and runs on it to
//! the end, so requests in flight finish on the old version while new ones get the new. New
//! versions come from the [`Loader`], off the request path; a version it refuses leaves the
//! old one serving, and the slot keeps the reason.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use super::guest::{Digest, Guest};
use super::loader::Loader;
use crate::config::GuestConfig;
use crate::reference::References;

/// Where a guest version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The guest's `path`, at startup, on a file change or on a config reload.
    File,
    /// `PUT /admin/guests/{name}`.
    Upload,
}

impl Source {
    /// `file` or `upload`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Upload => "upload",
        }
    }
}

/// A refused version.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// When it was refused, in Unix milliseconds.
    pub at_ms: u64,
    /// The refused module's digest, when its bytes could be read.
    pub digest: Option<Digest>,
    /// Why, as a person would want to read it.
    pub message: String,
}

/// What a slot reports besides its current version.
struct Status {
    path: PathBuf,
    generation: u64,
    loaded_at_ms: u64,
    load_ms: f64,
    source: Source,
    last_error: Option<LoadFailure>,
    /// The digest of the guest's file when it was last read, loaded or not.
    file_digest: Option<Digest>,
}

/// Per-guest counters, as `GET /metrics` shows them.
#[derive(Default)]
pub struct GuestCounters {
    /// Requests routed to the guest.
    pub requests: AtomicU64,
    /// Requests that ended in a trap, a time-out or no response.
    pub traps: AtomicU64,
    /// Versions swapped in after the first.
    pub swaps: AtomicU64,
    /// Versions refused.
    pub refused: AtomicU64,
}

/// How a swap attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapOutcome {
    /// The new version serves, as this generation.
    Swapped(u64),
    /// Same module, same settings: nothing to do.
    Unchanged,
    /// The file to load does not exist (yet: a writer may be replacing it).
    NoFile,
}

/// One guest's serving version and its history.
pub struct GuestSlot {
    current: ArcSwap<Guest>,
    status: Mutex<Status>,
    counters: GuestCounters,
    /// One load at a time per slot, so versions land in the order they were asked for.
    loading: tokio::sync::Mutex<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl GuestSlot {
    /// A slot serving `guest`, loaded from `path` in `load_ms` milliseconds, as generation 1.
    pub fn new(guest: Guest, path: PathBuf, load_ms: f64) -> GuestSlot {
        let file_digest = Some(*guest.digest());
        GuestSlot {
            current: ArcSwap::from_pointee(guest),
            status: Mutex::new(Status {
                path,
                generation: 1,
                loaded_at_ms: now_ms(),
                load_ms,
                source: Source::File,
                last_error: None,
                file_digest,
            }),
            counters: GuestCounters::default(),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The version serving now; a request keeps it until it ends.
    pub fn current(&self) -> Arc<Guest> {
        self.current.load_full()
    }

    /// The slot's counters.
    pub fn counters(&self) -> &GuestCounters {
        &self.counters
    }

    /// The current generation (1 at startup, one more per version swapped in).
    pub fn generation(&self) -> u64 {
        self.status.lock().map_or(0, |s| s.generation)
    }

    /// The component file the slot follows.
    pub fn path(&self) -> PathBuf {
        self.status
            .lock()
            .map(|s| s.path.clone())
            .unwrap_or_default()
    }

    /// The digest of the guest's file when it was last read (at startup, on a change or a
    /// reload), whether that version was loaded or refused.
    pub fn file_digest(&self) -> Option<Digest> {
        self.status.lock().ok().and_then(|s| s.file_digest)
    }

    /// The last refused version, if any.
    pub fn last_error(&self) -> Option<LoadFailure> {
        self.status.lock().ok().and_then(|s| s.last_error.clone())
    }

    /// Loads `bytes` — or, when `None`, the file at `path`, read once this slot's earlier
    /// loads are done so that versions land in the order they were written — as the guest's
    /// next version with settings `cfg`, and swaps it in, unless it is the same module with
    /// the same settings and `rebind` is false (`rebind`: the granted references changed, so
    /// even the same module must be bound again). A refused version leaves the current one
    /// serving; the reason is kept as the slot's last error and returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn swap(
        &self,
        loader: &Arc<Loader>,
        cfg: &GuestConfig,
        path: &Path,
        bytes: Option<Arc<[u8]>>,
        source: Source,
        refs: &References,
        rebind: bool,
    ) -> Result<SwapOutcome, LoadFailure> {
        let _one_at_a_time = self.loading.lock().await;
        let started = Instant::now();
        let bytes = match bytes {
            Some(b) => b,
            None => match tokio::fs::read(path).await {
                Ok(b) => Arc::from(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(SwapOutcome::NoFile)
                }
                Err(e) => {
                    let message = format!("cannot read {}: {e}", path.display());
                    return Err(self.refuse(&cfg.name, None, message));
                }
            },
        };
        let digest = Digest::of(&bytes);
        if source == Source::File {
            if let Ok(mut s) = self.status.lock() {
                s.file_digest = Some(digest);
            }
        }
        let current = self.current();
        if !rebind && *current.digest() == digest && current.config() == cfg {
            return Ok(SwapOutcome::Unchanged);
        }
        match loader.load(cfg, bytes, path, refs).await {
            Ok(guest) => {
                let follows = (source == Source::File).then_some(path);
                Ok(self.install(guest, follows, source, started))
            }
            Err(e) => Err(self.refuse(&cfg.name, Some(digest), e.to_string())),
        }
    }

    /// Binds the module serving now again, with settings `cfg` and references `refs` (a
    /// config reload that changed them but not the module), and swaps it in.
    pub async fn rebind(
        &self,
        loader: &Arc<Loader>,
        cfg: &GuestConfig,
        path: &Path,
        refs: &References,
    ) -> Result<SwapOutcome, LoadFailure> {
        let _one_at_a_time = self.loading.lock().await;
        let started = Instant::now();
        let current = self.current();
        let source = self.status.lock().map_or(Source::File, |s| s.source);
        match Guest::bind(
            loader.engine(),
            cfg,
            current.component(),
            *current.digest(),
            refs,
        ) {
            Ok(guest) => Ok(self.install(guest, Some(path), source, started)),
            Err(e) => Err(self.refuse(&cfg.name, Some(*current.digest()), e.to_string())),
        }
    }

    /// Makes `guest` the serving version; `path`, when given, becomes the file the slot follows.
    fn install(
        &self,
        guest: Guest,
        path: Option<&Path>,
        source: Source,
        started: Instant,
    ) -> SwapOutcome {
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (name, digest) = (guest.name().to_string(), *guest.digest());
        // The version and its generation change under the status lock, where `to_json` reads
        // both: the admin API never shows the new digest with the old generation.
        let mut status = self.status.lock();
        let old = self.current.swap(Arc::new(guest));
        self.counters.swaps.fetch_add(1, Ordering::Relaxed);
        let generation = match &mut status {
            Ok(s) => {
                s.generation += 1;
                if let Some(path) = path {
                    s.path = path.to_path_buf();
                }
                s.loaded_at_ms = now_ms();
                s.load_ms = load_ms;
                s.source = source;
                s.generation
            }
            Err(_) => 0,
        };
        drop(status);
        drop(old);
        tracing::info!(guest = %name, %digest, generation, source = source.as_str(), load_ms, "guest version swapped in");
        SwapOutcome::Swapped(generation)
    }

    /// Records a version that could not be loaded (not even read) and returns the record.
    pub fn refuse(&self, guest: &str, digest: Option<Digest>, message: String) -> LoadFailure {
        let failure = LoadFailure {
            at_ms: now_ms(),
            digest,
            message,
        };
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(guest, digest = ?failure.digest, error = %failure.message, "guest version refused; the current version keeps serving");
        if let Ok(mut s) = self.status.lock() {
            s.last_error = Some(failure.clone());
        }
        failure
    }

    /// The slot as `GET /admin/guests` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let status = self.status.lock().ok();
        // Read under the status lock, so that the digest is the generation's (see `install`).
        let guest = self.current();
        let cfg = guest.config();
        let c = &self.counters;
        let (path, generation, loaded_at_ms, load_ms, source, last_error) = match &status {
            Some(s) => (
                s.path.display().to_string(),
                s.generation,
                s.loaded_at_ms,
                s.load_ms,
                s.source.as_str(),
                s.last_error.as_ref().map(|e| {
                    serde_json::json!({
                        "at_ms": e.at_ms,
                        "digest": e.digest.map(|d| d.to_string()),
                        "message": e.message,
                    })
                }),
            ),
            None => (String::new(), 0, 0, 0.0, "file", None),
        };
        serde_json::json!({
            "name": cfg.name,
            "trigger": match cfg.trigger {
                crate::config::Trigger::Http => "http",
                crate::config::Trigger::Cli => "cli",
            },
            "route": cfg.route,
            "path": path,
            "generation": generation,
            "digest": guest.digest().to_string(),
            "loaded_at_ms": loaded_at_ms,
            "load_ms": (load_ms * 1000.0).round() / 1000.0,
            "source": source,
            "references": cfg.references,
            "requests": c.requests.load(Ordering::Relaxed),
            "traps": c.traps.load(Ordering::Relaxed),
            "swaps": c.swaps.load(Ordering::Relaxed),
            "refused": c.refused.load(Ordering::Relaxed),
            "made_ahead": guest.made_ahead(),
            "last_error": last_error,
        })
    }
}
