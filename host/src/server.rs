//! `serve`: boots the running [`Host`] — config, registry sessions, references, guests, the
//! http listener and the admin API — serves until SIGTERM/SIGINT, then shuts down gracefully:
//! stops accepting, lets requests in flight finish, unregisters its consumers and closes its
//! connections. SIGHUP reloads the config.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Config, Trigger};
use crate::host::{
    by_id, connect_registries, registrations, routes_of, unregister, Host, HostError, Sessions,
};
use crate::protocol::dubbo::ConnectionPool;
use crate::reference::References;
use crate::wasm::http::HttpTrigger;
use crate::wasm::watch::FileWatch;
use crate::wasm::{new_engine, pool_instances, warn_if_pool_short};

/// Default bound on finishing requests at shutdown (Dubbo's `dubbo.service.shutdown.wait`).
const DEFAULT_SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Serves the configured guests until SIGTERM/SIGINT, then shuts down gracefully: stops
/// accepting, lets requests in flight finish (up to `[application] shutdown-wait`),
/// unregisters its consumers and closes its connections.
pub async fn serve(config_path: &Path) -> Result<(), HostError> {
    let config = Config::load(config_path)?;
    let sessions = connect_registries(&config, &Sessions::new()).await?;
    let pool = Arc::new(ConnectionPool::default());
    let refs = References::build(&config, &pool, &by_id(&sessions)).await?;
    let instance_pool = pool_instances(&config);
    let loader = Arc::new(crate::wasm::Loader::new(new_engine(instance_pool)?));
    warn_if_pool_short(&config, instance_pool);
    let host = Arc::new(Host {
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
        instance_pool,
    });
    let mut slots = HashMap::new();
    for g in config.guests.iter().filter(|g| g.trigger == Trigger::Http) {
        let path = config.guest_path(g);
        let slot = host.load_new(g, &path, &host.references()).await?;
        slots.insert(g.name.clone(), Arc::new(slot));
    }
    if slots.is_empty() {
        return Err(HostError::NoHttpGuest {
            file: config_path.to_path_buf(),
        });
    }
    host.trigger.set_routes(routes_of(&config, &slots));
    host.slots.store(Arc::new(slots));

    let listen = &config.http.listen;
    let bind_error = |error| HostError::Listen {
        listen: listen.clone(),
        field: "[http]",
        file: config_path.to_path_buf(),
        error,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    // Local problems (guests, ports) are reported before waiting on providers.
    host.references().check().await?;
    let admin = start_admin(&config, &host).await?;

    let (changed_tx, mut changed_rx) = mpsc::unbounded_channel();
    match FileWatch::start(changed_tx) {
        Ok(w) => {
            if let Ok(mut slot) = host.watch.lock() {
                *slot = Some(w);
            }
            host.watch_files(&host.slots.load());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch guest files; swap guests with PUT /admin/guests/{{name}} or SIGHUP")
        }
    }
    let swapper = {
        let host = host.clone();
        tokio::spawn(async move {
            while let Some(name) = changed_rx.recv().await {
                let host = host.clone();
                tokio::spawn(async move { host.swap_from_file(&name).await });
            }
        })
    };
    let reloader = tokio::spawn(reload_on_hangup(host.clone()));

    if let Some(a) = &admin {
        println!("admin API at http://{}", a.0);
    }
    for (route, slot) in routes_of(&config, &host.slots.load()) {
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
    let server = tokio::spawn(host.trigger.clone().serve(
        listener,
        async {
            let _ = stop_rx.await;
        },
        wait,
        config.http.threads(),
    ));

    shutdown_signal().await;
    tracing::info!("shutting down");
    host.stopping.store(true, Ordering::Relaxed);
    // A second signal while draining stops at once.
    tokio::spawn(async {
        shutdown_signal().await;
        tracing::warn!("second signal: exiting without waiting");
        std::process::exit(130);
    });
    reloader.abort();
    swapper.abort();
    if let Ok(mut w) = host.watch.lock() {
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
    let config = host.config.load_full();
    let sessions = host.sessions.lock().map(|s| s.clone()).unwrap_or_default();
    unregister(&sessions, registrations(&config, &host.references())).await;
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
    host: &Arc<Host>,
) -> Result<Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>, HostError> {
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
        Err(error) => {
            return Err(HostError::Listen {
                listen: listen.to_string(),
                field: "[admin]",
                file: config.path.clone(),
                error,
            })
        }
    };
    let addr = listener.local_addr().map_err(|error| HostError::Listen {
        listen: listen.to_string(),
        field: "[admin]",
        file: config.path.clone(),
        error,
    })?;
    let task = tokio::spawn(crate::admin::serve(
        listener,
        host.clone(),
        config.admin.token.clone(),
    ));
    Ok(Some((addr, task)))
}

async fn reload_on_hangup(host: Arc<Host>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            if let Err(e) = host.reload().await {
                tracing::error!(error = %e, "config reload refused; the previous config stays in effect");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = host;
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
