//! `serve`: the long-running host. It owns what outlives any guest version — the engine, the
//! registry sessions, the references and their provider connections — and the guest slots
//! that change under it: on a file change, an upload (`PUT /admin/guests/{name}`) or a config
//! reload (SIGHUP). SIGTERM/SIGINT stop it gracefully.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Config, GuestConfig, RegistryConfig, Trigger};
use crate::protocol::dubbo::ConnectionPool;
use crate::reference::References;
use crate::registry::{self, Registry, RegistryOptions};
use crate::url::Url;
use crate::wasm::http::HttpTrigger;
use crate::wasm::watch::FileWatch;
use crate::wasm::{new_engine, GuestSlot, Loader, Source, SwapOutcome};

/// Default bound on finishing requests at shutdown (Dubbo's `dubbo.service.shutdown.wait`).
const DEFAULT_SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// Bound on unregistering consumers at shutdown.
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Registry sessions by `[[registry]]` id, with the settings each was opened with.
type Sessions = HashMap<String, (RegistryConfig, Arc<dyn Registry>)>;

/// Opens a session to every registry some reference of `config` subscribes through, reusing
/// those of `existing` whose settings did not change.
pub async fn connect_registries(config: &Config, existing: &Sessions) -> anyhow::Result<Sessions> {
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
        let address =
            Url::parse(&r.address).with_context(|| format!("[[registry]] `{}` address", r.id))?;
        let mut opts =
            RegistryOptions::from_address(address, &config.application.name, config.data_dir());
        if let Some(ms) = r.session_timeout {
            opts.session_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = r.connect_timeout {
            opts.connect_timeout = Duration::from_millis(ms);
        }
        let session = registry::connect(opts).await.with_context(|| {
            format!(
                "[[registry]] `{}` ({}) in {}",
                r.id,
                r.address,
                config.path.display()
            )
        })?;
        sessions.insert(r.id.clone(), (r.clone(), session));
    }
    Ok(sessions)
}

fn by_id(sessions: &Sessions) -> HashMap<String, Arc<dyn Registry>> {
    sessions
        .iter()
        .map(|(id, (_, s))| (id.clone(), s.clone()))
        .collect()
}

/// Connects the registries the references use and builds every reference over one
/// connection pool (for `call` and `run`).
pub async fn build_references(config: &Config) -> anyhow::Result<References> {
    let pool = Arc::new(ConnectionPool::default());
    let sessions = connect_registries(config, &Sessions::new()).await?;
    Ok(References::build(config, &pool, &by_id(&sessions)).await?)
}

/// A consumer registration: (registry id, consumer URL as registered).
type Registrations = BTreeMap<(String, String), Url>;

/// The consumer registrations `config` makes, for references that subscribe through
/// registries and register (the default).
fn registrations(config: &Config, refs: &References) -> Registrations {
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
async fn unregister(sessions: &Sessions, which: Registrations) {
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
pub struct Runtime {
    config: ArcSwap<Config>,
    loader: Arc<Loader>,
    pool: Arc<ConnectionPool>,
    sessions: Mutex<Sessions>,
    references: ArcSwap<References>,
    slots: ArcSwap<HashMap<String, Arc<GuestSlot>>>,
    trigger: Arc<HttpTrigger>,
    watch: Mutex<Option<FileWatch>>,
    stopping: AtomicBool,
    /// One config reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Runtime {
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
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.config.load_full();
        let new = Config::load(&old.path)?;
        if new.http != old.http {
            tracing::warn!("[http] changed; restart the host to apply it");
        }
        if new.admin != old.admin {
            tracing::warn!("[admin] changed; restart the host to apply it");
        }
        let old_sessions = self.sessions.lock().map(|s| s.clone()).unwrap_or_default();
        let sessions = connect_registries(&new, &old_sessions).await?;
        let old_refs = self.references();
        let keep = |id: &str| reference_unchanged(&old, &new, id);
        let refs = References::rebuild(&new, &self.pool, &by_id(&sessions), &old_refs, &keep)
            .await
            .context("references")?;

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
                        problems.push(format!("{e:#}"));
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

    async fn load_new(
        &self,
        g: &GuestConfig,
        path: &Path,
        refs: &References,
    ) -> anyhow::Result<GuestSlot> {
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

    fn watch_files(&self, slots: &HashMap<String, Arc<GuestSlot>>) {
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

fn routes_of(
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

/// Serves the configured guests until SIGTERM/SIGINT, then shuts down gracefully: stops
/// accepting, lets requests in flight finish (up to `[application] shutdown-wait`),
/// unregisters its consumers and closes its connections.
pub async fn serve(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let sessions = connect_registries(&config, &Sessions::new()).await?;
    let pool = Arc::new(ConnectionPool::default());
    let refs = References::build(&config, &pool, &by_id(&sessions)).await?;
    let loader = Arc::new(Loader::new(new_engine()?));
    let runtime = Arc::new(Runtime {
        config: ArcSwap::from_pointee(config.clone()),
        loader,
        pool,
        sessions: Mutex::new(sessions),
        references: ArcSwap::from_pointee(refs),
        slots: ArcSwap::from_pointee(HashMap::new()),
        trigger: Arc::new(HttpTrigger::new(Vec::new())),
        watch: Mutex::new(None),
        stopping: AtomicBool::new(false),
        reloading: tokio::sync::Mutex::new(()),
    });
    let mut slots = HashMap::new();
    for g in config.guests.iter().filter(|g| g.trigger == Trigger::Http) {
        let path = config.guest_path(g);
        let slot = runtime.load_new(g, &path, &runtime.references()).await?;
        slots.insert(g.name.clone(), Arc::new(slot));
    }
    if slots.is_empty() {
        bail!(
            "config file {}: no [[guest]] with trigger = \"http\" to serve\n  fix: add one (see guest-examples/demo.toml)",
            config_path.display()
        );
    }
    runtime.trigger.set_routes(routes_of(&config, &slots));
    runtime.slots.store(Arc::new(slots));

    let listen = &config.http.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen} ([http] listen in {})\n  fix: stop the process using that port or choose another address",
            config_path.display()
        )
    })?;
    let addr = listener.local_addr()?;
    let admin = start_admin(&config, &runtime).await?;

    let (changed_tx, mut changed_rx) = mpsc::unbounded_channel();
    match FileWatch::start(changed_tx) {
        Ok(w) => {
            if let Ok(mut slot) = runtime.watch.lock() {
                *slot = Some(w);
            }
            runtime.watch_files(&runtime.slots.load());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch guest files; swap guests with PUT /admin/guests/{{name}} or SIGHUP")
        }
    }
    let swapper = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            while let Some(name) = changed_rx.recv().await {
                let runtime = runtime.clone();
                tokio::spawn(async move { runtime.swap_from_file(&name).await });
            }
        })
    };
    let reloader = tokio::spawn(reload_on_hangup(runtime.clone()));

    if let Some(a) = &admin {
        println!("admin API at http://{}", a.0);
    }
    for (route, slot) in routes_of(&config, &runtime.slots.load()) {
        println!(
            "serving guest `{}` at http://{addr}{route}",
            slot.current().name()
        );
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let wait = config
        .application
        .shutdown_wait
        .map_or(DEFAULT_SHUTDOWN_WAIT, Duration::from_millis);
    let server = tokio::spawn(runtime.trigger.clone().serve(
        listener,
        async {
            let _ = stop_rx.await;
        },
        wait,
    ));

    shutdown_signal().await;
    tracing::info!("shutting down");
    runtime.stopping.store(true, Ordering::Relaxed);
    // A second signal while draining stops at once.
    tokio::spawn(async {
        shutdown_signal().await;
        tracing::warn!("second signal: exiting without waiting");
        std::process::exit(130);
    });
    reloader.abort();
    swapper.abort();
    if let Ok(mut w) = runtime.watch.lock() {
        *w = None;
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(true) => tracing::info!("requests in flight finished"),
        Ok(false) => tracing::warn!(
            wait_ms = wait.as_millis() as u64,
            "requests still running after shutdown-wait; stopping them"
        ),
        Err(e) => tracing::warn!(error = %e, "http server task failed"),
    }
    let config = runtime.config.load_full();
    let sessions = runtime
        .sessions
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    unregister(&sessions, registrations(&config, &runtime.references())).await;
    if let Some((_, task)) = admin {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Binds and starts the admin API. An explicitly configured address that cannot be bound is
/// an error; the default one (like Dubbo's QoS port) only a warning.
async fn start_admin(
    config: &Config,
    runtime: &Arc<Runtime>,
) -> anyhow::Result<Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>> {
    if !config.admin.enabled() {
        return Ok(None);
    }
    let listen = config.admin.listen();
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) if config.admin.listen.is_none() => {
            tracing::warn!(%listen, error = %e, "admin API not started; set [admin] listen to another address, or enabled = false");
            return Ok(None);
        }
        Err(e) => bail!(
            "cannot listen on {listen} ([admin] listen in {}): {e}\n  fix: stop the process using that port or choose another address",
            config.path.display()
        ),
    };
    let addr = listener.local_addr()?;
    let task = tokio::spawn(crate::admin::serve(
        listener,
        runtime.clone(),
        config.admin.token.clone(),
    ));
    Ok(Some((addr, task)))
}

async fn reload_on_hangup(runtime: Arc<Runtime>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            if let Err(e) = runtime.reload().await {
                tracing::error!(error = %format!("{e:#}"), "config reload refused; the previous config stays in effect");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = runtime;
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
