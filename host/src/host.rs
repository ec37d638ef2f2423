//! The running host: what outlives any guest version — the registry sessions, the references
//! and their provider connections, the engine and its compiled guests — and the guest slots
//! that change under it, on a file change, an upload (`PUT /admin/guests/{name}`) or a config
//! reload (SIGHUP). `server` boots it and stops it; `admin` reads it and swaps guests in it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::{Config, ConfigError, GuestConfig, RegistryConfig, Trigger};
use crate::protocol::dubbo::ConnectionPool;
use crate::reference::{ReferenceError, References};
use crate::registry::{self, Registry, RegistryError, RegistryOptions};
use crate::url::{Url, UrlError};
use crate::wasm::http::HttpTrigger;
use crate::wasm::watch::FileWatch;
use crate::wasm::{GuestSlot, Loader, Source, SwapOutcome, WasmError};

/// Bound on unregistering consumers at shutdown.
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the host cannot start, or a reload was refused. Each case names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("[[registry]] `{id}` address in {file}: {error}")]
    RegistryAddress {
        id: String,
        file: PathBuf,
        error: UrlError,
    },
    #[error("[[registry]] `{id}` ({address}) in {file}: {error}")]
    Registry {
        id: String,
        address: String,
        file: PathBuf,
        error: Box<RegistryError>,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Wasm(#[from] WasmError),
    #[error("config file {file}: no [[guest]] with trigger = \"http\" to serve\n  fix: add one (see guest-examples/demo.toml)")]
    NoHttpGuest { file: PathBuf },
    #[error("cannot listen on {listen} ({field} listen in {file}): {error}\n  fix: stop the process using that port or choose another address")]
    Listen {
        listen: String,
        field: &'static str,
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot start the Wasm engine: {0}")]
    Engine(String),
}

/// Registry sessions by `[[registry]]` id, with the settings each was opened with.
pub(crate) type Sessions = HashMap<String, (RegistryConfig, Arc<dyn Registry>)>;

/// Opens a session to every registry some reference of `config` subscribes through, reusing
/// those of `existing` whose settings did not change.
pub async fn connect_registries(
    config: &Config,
    existing: &Sessions,
) -> Result<Sessions, HostError> {
    let mut sessions = Sessions::new();
    for r in &config.registries {
        if !config
            .references
            .iter()
            .any(|c| c.url.is_none() && c.registry.contains(&r.id))
        {
            continue;
        }
        if let Some((cfg, session)) = existing.get(&r.id) {
            if cfg == r {
                sessions.insert(r.id.clone(), (cfg.clone(), session.clone()));
                continue;
            }
        }
        let address = Url::parse(&r.address).map_err(|error| HostError::RegistryAddress {
            id: r.id.clone(),
            file: config.path.clone(),
            error,
        })?;
        let opts =
            RegistryOptions::from_address(address, &config.application.name, config.data_dir())
                .with_timeouts(r.session_timeout, r.connect_timeout);
        let session = registry::connect(opts)
            .await
            .map_err(|e| HostError::Registry {
                id: r.id.clone(),
                address: r.address.clone(),
                file: config.path.clone(),
                error: Box::new(e),
            })?;
        sessions.insert(r.id.clone(), (r.clone(), session));
    }
    Ok(sessions)
}

pub(crate) fn by_id(sessions: &Sessions) -> HashMap<String, Arc<dyn Registry>> {
    sessions
        .iter()
        .map(|(id, (_, s))| (id.clone(), s.clone()))
        .collect()
}

/// Connects the registries the references use and builds every reference over one
/// connection pool (for `call` and `run`).
pub async fn build_references(config: &Config) -> Result<References, HostError> {
    let pool = Arc::new(ConnectionPool::default());
    let sessions = connect_registries(config, &Sessions::new()).await?;
    let refs = References::build(config, &pool, &by_id(&sessions)).await?;
    refs.check().await?;
    Ok(refs)
}

/// A consumer registration: (registry id, consumer URL as registered).
type Registrations = BTreeMap<(String, String), Url>;

/// The consumer registrations `config` makes, for references that subscribe through
/// registries and register (the default).
pub(crate) fn registrations(config: &Config, refs: &References) -> Registrations {
    let mut out = Registrations::new();
    for c in &config.references {
        if c.url.is_some() || c.register == Some(false) {
            continue;
        }
        let Some(r) = refs.get(&c.id) else { continue };
        for reg in &c.registry {
            let consumer = r.consumer();
            out.insert((reg.clone(), consumer.to_string()), consumer.clone());
        }
    }
    out
}

/// Removes consumer registrations from their registries, each bounded in time.
pub(crate) async fn unregister(sessions: &Sessions, which: Registrations) {
    for ((id, consumer), url) in which {
        let Some((_, session)) = sessions.get(&id) else {
            tracing::warn!(registry = %id, %consumer, "cannot unregister consumer: the registry session is gone");
            continue;
        };
        match tokio::time::timeout(UNREGISTER_TIMEOUT, session.unregister(&url)).await {
            Ok(Ok(())) => tracing::info!(registry = %id, %consumer, "consumer unregistered"),
            Ok(Err(e)) => tracing::warn!(registry = %id, error = %e, "cannot unregister consumer"),
            Err(_) => tracing::warn!(registry = %id, "unregistering the consumer timed out"),
        }
    }
}

/// Whether reference `id` can be kept as built from `old` under `new`: same settings, same
/// application, and every registry it follows unchanged.
fn reference_unchanged(old: &Config, new: &Config, id: &str) -> bool {
    let (Some(a), Some(b)) = (
        old.references.iter().find(|r| r.id == id),
        new.references.iter().find(|r| r.id == id),
    ) else {
        return false;
    };
    a == b
        && old.application.name == new.application.name
        && old.data_dir() == new.data_dir()
        && a.registry.iter().all(|reg| {
            old.registries.iter().find(|r| &r.id == reg)
                == new.registries.iter().find(|r| &r.id == reg)
        })
}

/// The running host.
pub struct Host {
    pub(crate) config: ArcSwap<Config>,
    pub(crate) loader: Arc<Loader>,
    pub(crate) pool: Arc<ConnectionPool>,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) references: ArcSwap<References>,
    pub(crate) slots: ArcSwap<HashMap<String, Arc<GuestSlot>>>,
    pub(crate) trigger: Arc<HttpTrigger>,
    pub(crate) watch: Mutex<Option<FileWatch>>,
    pub(crate) stopping: AtomicBool,
    /// One config reload at a time.
    pub(crate) reloading: tokio::sync::Mutex<()>,
    /// Component instances the engine's pool holds (sized from the config at start).
    pub(crate) instance_pool: usize,
}

impl Host {
    /// The references serving now.
    pub fn references(&self) -> Arc<References> {
        self.references.load_full()
    }

    /// The http guest named `name`.
    pub fn slot(&self, name: &str) -> Option<Arc<GuestSlot>> {
        self.slots.load().get(name).cloned()
    }

    /// Every http guest, by name.
    pub fn slots_sorted(&self) -> Vec<Arc<GuestSlot>> {
        let slots = self.slots.load();
        let mut names: Vec<&String> = slots.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|n| slots.get(n).cloned())
            .collect()
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Swaps in uploaded `bytes` as guest `name`'s next version. `Ok` with the slot's JSON
    /// when it serves (or was already serving); `Err(Some((reason, slot)))` when refused;
    /// `Err(None)` for an unknown guest.
    pub async fn swap_upload(
        &self,
        name: &str,
        bytes: Arc<[u8]>,
    ) -> Result<serde_json::Value, Option<(String, serde_json::Value)>> {
        let slot = self.slot(name).ok_or(None)?;
        let cfg = slot.current().config().clone();
        let origin = PathBuf::from(format!("PUT /admin/guests/{name}"));
        let refs = self.references();
        match slot
            .swap(
                &self.loader,
                &cfg,
                &origin,
                Some(bytes),
                Source::Upload,
                &refs,
                false,
            )
            .await
        {
            Ok(_) => Ok(slot.to_json()),
            Err(failure) => Err(Some((failure.message, slot.to_json()))),
        }
    }

    /// Loads guest `name`'s file again after it changed on disk.
    pub async fn swap_from_file(&self, name: &str) {
        let Some(slot) = self.slot(name) else { return };
        let cfg = slot.current().config().clone();
        let refs = self.references();
        // A missing file is being replaced; its arrival is reported again.
        let _ = slot
            .swap(
                &self.loader,
                &cfg,
                &slot.path(),
                None,
                Source::File,
                &refs,
                false,
            )
            .await;
    }

    /// Re-reads the config file and applies it: registries and references whose settings
    /// changed are rebuilt (unchanged ones, and their connections, are kept), guests added,
    /// removed, or reloaded when their settings or granted references changed. An invalid
    /// file, or references that cannot be built, change nothing.
    pub async fn reload(&self) -> Result<(), HostError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.config.load_full();
        let new = Config::load(&old.path)?;
        if new.http != old.http {
            tracing::warn!("[http] changed; restart the host to apply it");
        }
        if new.admin != old.admin {
            tracing::warn!("[admin] changed; restart the host to apply it");
        }
        crate::wasm::warn_if_pool_short(&new, self.instance_pool);
        let old_sessions = self.sessions.lock().map(|s| s.clone()).unwrap_or_default();
        let sessions = connect_registries(&new, &old_sessions).await?;
        let old_refs = self.references();
        let keep = |id: &str| reference_unchanged(&old, &new, id);
        let refs =
            References::rebuild(&new, &self.pool, &by_id(&sessions), &old_refs, &keep).await?;

        let mut slots = HashMap::new();
        let mut problems = Vec::new();
        for g in new.guests.iter().filter(|g| g.trigger == Trigger::Http) {
            let path = new.guest_path(g);
            let rebind = g
                .references
                .iter()
                .any(|id| match (old_refs.get(id), refs.get(id)) {
                    (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                    _ => true,
                });
            let slot = match self.slot(&g.name) {
                Some(slot) => {
                    if let Err(problem) = self.reapply(&slot, g, &path, &refs, rebind).await {
                        problems.push(problem);
                    }
                    slot
                }
                None => match self.load_new(g, &path, &refs).await {
                    Ok(slot) => Arc::new(slot),
                    Err(e) => {
                        problems.push(e.to_string());
                        continue;
                    }
                },
            };
            slots.insert(g.name.clone(), slot);
        }

        let kept = registrations(&new, &refs);
        let mut gone = registrations(&old, &old_refs);
        gone.retain(|key, _| !kept.contains_key(key));
        self.references.store(Arc::new(refs));
        self.trigger.set_routes(routes_of(&new, &slots));
        self.watch_files(&slots);
        self.slots.store(Arc::new(slots));
        if let Ok(mut s) = self.sessions.lock() {
            *s = sessions;
        }
        self.config.store(Arc::new(new));
        unregister(&old_sessions, gone).await;
        for p in &problems {
            tracing::error!(problem = %p, "config reload: a guest kept its previous version or was not added");
        }
        tracing::info!(problems = problems.len(), "config reloaded");
        Ok(())
    }

    /// Applies a reloaded guest entry to its slot: a module on disk that changed since the
    /// file was last read is loaded (an uploaded version survives a reload that does not
    /// touch its file); otherwise (or when that new module is refused) the serving module
    /// is bound again if its settings or granted references changed, so settings apply even
    /// while the file is broken.
    async fn reapply(
        &self,
        slot: &GuestSlot,
        g: &GuestConfig,
        path: &Path,
        refs: &References,
        rebind: bool,
    ) -> Result<(), String> {
        let current = slot.current();
        let mut problem = None;
        let file_changed = match tokio::fs::read(path).await {
            Ok(bytes) => Some(crate::wasm::Digest::of(&bytes)) != slot.file_digest(),
            Err(e) => {
                let message = format!("cannot read {}: {e}", path.display());
                problem = Some(slot.refuse(&g.name, None, message).message);
                false
            }
        };
        if file_changed {
            match slot
                .swap(&self.loader, g, path, None, Source::File, refs, true)
                .await
            {
                Ok(SwapOutcome::Swapped(_)) => return Ok(()),
                Ok(_) => {}
                Err(f) => problem = Some(f.message),
            }
        }
        if rebind || current.config() != g || slot.path() != path {
            if let Err(f) = slot.rebind(&self.loader, g, path, refs).await {
                problem = Some(f.message);
            }
        }
        problem.map_or(Ok(()), Err)
    }

    pub(crate) async fn load_new(
        &self,
        g: &GuestConfig,
        path: &Path,
        refs: &References,
    ) -> Result<GuestSlot, HostError> {
        let started = Instant::now();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| crate::wasm::WasmError::Read {
                guest: g.name.clone(),
                path: path.to_path_buf(),
                source,
            })?;
        let guest = self.loader.load(g, bytes.into(), path, refs).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(guest = %g.name, path = %path.display(), digest = %guest.digest(), ms, "guest loaded");
        Ok(GuestSlot::new(guest, path.to_path_buf(), ms))
    }

    pub(crate) fn watch_files(&self, slots: &HashMap<String, Arc<GuestSlot>>) {
        let files: Vec<(String, PathBuf)> = slots
            .iter()
            .map(|(name, slot)| (name.clone(), slot.path()))
            .collect();
        if let Ok(mut w) = self.watch.lock() {
            if let Some(w) = w.as_mut() {
                w.set_targets(&files);
            }
        }
    }
}

pub(crate) fn routes_of(
    config: &Config,
    slots: &HashMap<String, Arc<GuestSlot>>,
) -> crate::wasm::http::Routes {
    config
        .guests
        .iter()
        .filter_map(|g| {
            let slot = slots.get(&g.name)?;
            Some((
                g.route.clone().unwrap_or_else(|| "/".to_string()),
                slot.clone(),
            ))
        })
        .collect()
}
