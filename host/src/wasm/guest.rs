//! A loaded guest version: its component compiled (through the engine's on-disk cache), known
//! by the digest of its bytes, prepared once for the http trigger so each request only creates
//! a store. Limits: linear memory per instance, wall time per request, and instances running
//! at once.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Component;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::prepare::prepare_http;
use super::state::GuestState;
use super::WasmError;
use crate::config::GuestConfig;
use crate::reference::References;

/// Default linear-memory limit per instance.
const DEFAULT_MAX_MEMORY_MIB: u64 = 64;
/// Default wall-time limit per request.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default number of instances of one guest running at once.
const DEFAULT_MAX_INSTANCES: usize = 256;

/// The SHA-256 digest of a module's bytes: a version's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    /// Lowercase hex, as `sha256sum` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads and compiles a guest's component.
pub fn compile(engine: &Engine, cfg: &GuestConfig, path: &Path) -> Result<Component, WasmError> {
    let bytes = std::fs::read(path).map_err(|source| WasmError::Read {
        guest: cfg.name.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    compile_bytes(engine, cfg, &bytes, path)
}

/// Compiles a guest's component from `bytes` read from `origin` (a file, or where an upload
/// came from), through the engine's on-disk cache. Blocks for as long as compilation takes.
pub fn compile_bytes(
    engine: &Engine,
    cfg: &GuestConfig,
    bytes: &[u8],
    origin: &Path,
) -> Result<Component, WasmError> {
    Component::new(engine, bytes).map_err(|e| WasmError::Compile {
        guest: cfg.name.clone(),
        path: origin.to_path_buf(),
        message: format!("{e:#}"),
    })
}

/// The store limits of one instance of `cfg`'s guest.
pub fn store_limits(cfg: &GuestConfig) -> StoreLimits {
    let max_memory = (cfg.max_memory_mib.unwrap_or(DEFAULT_MAX_MEMORY_MIB) as usize) << 20;
    StoreLimitsBuilder::new()
        .memory_size(max_memory)
        .trap_on_grow_failure(true)
        .build()
}

/// How many instances of `cfg`'s guest may run at once (`max-instances`).
pub fn max_instances(cfg: &GuestConfig) -> usize {
    cfg.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES)
}

/// The wall-time limit of one request or run of `cfg`'s guest.
pub fn time_limit(cfg: &GuestConfig) -> Duration {
    Duration::from_millis(cfg.timeout.unwrap_or(DEFAULT_TIMEOUT_MS))
}

/// An instance that has served `served` requests and may serve more (`instance-reuse`).
pub struct Warm {
    pub store: Store<GuestState>,
    pub proxy: Proxy,
    pub served: u32,
}

/// An HTTP guest ready to serve: one pre-instantiated component and its limits.
pub struct Guest {
    name: String,
    pre: ProxyPre<GuestState>,
    cfg: GuestConfig,
    digest: Digest,
    timeout: Duration,
    instances: Arc<Semaphore>,
    /// `instance-reuse`: requests one instance may serve (1: a fresh one each time).
    reuse: u32,
    /// Instances between requests, when `reuse` > 1; at most `max-instances`.
    idle: Mutex<Vec<Warm>>,
    max_idle: usize,
    /// When `reuse` is 1: one instance made ahead, that no request has run on yet, so that a
    /// request finds it ready instead of instantiating on its own time.
    spare: Mutex<Option<Warm>>,
    /// Whether a task is making the spare.
    refilling: AtomicBool,
    /// Requests this version started on the spare.
    made_ahead: AtomicU64,
}

impl Guest {
    /// Reads, compiles, binds and pre-instantiates the guest at `path`.
    pub fn load(
        engine: &Engine,
        cfg: &GuestConfig,
        path: &Path,
        refs: &References,
    ) -> Result<Guest, WasmError> {
        let bytes = std::fs::read(path).map_err(|source| WasmError::Read {
            guest: cfg.name.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        let component = compile_bytes(engine, cfg, &bytes, path)?;
        Guest::bind(engine, cfg, &component, Digest::of(&bytes), refs)
    }

    /// Binds a compiled component to `cfg`'s granted references and pre-instantiates it: the
    /// type check a new version must pass before it may serve.
    pub fn bind(
        engine: &Engine,
        cfg: &GuestConfig,
        component: &Component,
        digest: Digest,
        refs: &References,
    ) -> Result<Guest, WasmError> {
        let pre = prepare_http(engine, cfg, component, refs)?;
        let max_instances = max_instances(cfg);
        Ok(Guest {
            name: cfg.name.clone(),
            pre,
            cfg: cfg.clone(),
            digest,
            timeout: time_limit(cfg),
            instances: Arc::new(Semaphore::new(max_instances)),
            reuse: cfg.instance_reuse.unwrap_or(1).max(1),
            idle: Mutex::new(Vec::new()),
            max_idle: max_instances,
            spare: Mutex::new(None),
            refilling: AtomicBool::new(false),
            made_ahead: AtomicU64::new(0),
        })
    }

    /// The guest's name in config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The compiled component this version runs.
    pub fn component(&self) -> &Component {
        self.pre.instance_pre().component()
    }

    /// The guest's settings.
    pub fn config(&self) -> &GuestConfig {
        &self.cfg
    }

    /// The digest of the module bytes this version was loaded from.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The wall-time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The pre-instantiated component.
    pub fn pre(&self) -> &ProxyPre<GuestState> {
        &self.pre
    }

    /// A slot for one more running instance, or `None` when `max-instances` are running.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.instances.clone().try_acquire_owned().ok()
    }

    /// A fresh store for one request, with the guest's memory and time limits applied.
    pub fn new_store(&self) -> Store<GuestState> {
        let mut state = GuestState::new(store_limits(&self.cfg));
        state.begin_request(self.timeout);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        // Yield to the executor on every tick instead of running to the deadline: a spinning
        // guest must not hold a Tokio worker, and with it the I/O and timer drivers, for its
        // whole time limit. At the deadline (the request's, so that a reused instance gets
        // each request its own) it traps with `Trap::Interrupt`.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            Ok(if std::time::Instant::now() >= ctx.data().deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });
        store
    }

    /// How many requests this version started on an instance made ahead of them.
    pub fn made_ahead(&self) -> u64 {
        self.made_ahead.load(Ordering::Relaxed)
    }

    /// `instance-reuse`: how many requests one instance serves (1: a fresh one each).
    pub fn reuse(&self) -> u32 {
        self.reuse
    }

    /// An instance to start this request on: one that served earlier requests and may serve
    /// this one (`instance-reuse`), or by default the spare made ahead, which none has run on.
    pub fn take_warm(&self) -> Option<Warm> {
        let mut warm = if self.reuse <= 1 {
            // Never waits: a request that finds the spare being put or taken makes its own.
            let spare = self.spare.try_lock().ok()?.take()?;
            self.made_ahead.fetch_add(1, Ordering::Relaxed);
            spare
        } else {
            self.idle.lock().ok()?.pop()?
        };
        warm.store.data_mut().begin_request(self.timeout);
        warm.store.set_epoch_deadline(1);
        Some(warm)
    }

    /// Keeps an instance that finished a request without a trap for the next one, unless it
    /// has served its `instance-reuse` requests (then it is dropped and its slot reset).
    pub fn put_warm(&self, warm: Warm) {
        if warm.served >= self.reuse {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                idle.push(warm);
            }
        }
    }

    /// By default (`instance-reuse` 1): drops the store of an instance that served its
    /// request, and makes the spare for a later one if it was taken, on a task of its own.
    /// The request's task spawns it before hyper writes the response, and the worker runs it
    /// after that task yields: resetting the old instance's slot and instantiating the next
    /// happen after the response is on its way, not before it. When the spare is there or
    /// being made (under load, most requests), the store is dropped here: a task per request
    /// would cost more than it saves.
    pub fn recycle(self: &Arc<Self>, store: Store<GuestState>) {
        let taken = self.spare.try_lock().is_ok_and(|s| s.is_none());
        if !taken || self.refilling.swap(true, Ordering::Acquire) {
            return;
        }
        let guest = self.clone();
        tokio::spawn(async move {
            drop(store);
            guest.make_spare().await;
        });
    }

    /// Makes the spare, for the caller that claimed `refilling`, and gives the claim back.
    async fn make_spare(&self) {
        let mut store = self.new_store();
        match self.pre.instantiate_async(&mut store).await {
            Ok(proxy) => {
                if let Ok(mut spare) = self.spare.lock() {
                    *spare = Some(Warm {
                        store,
                        proxy,
                        served: 0,
                    });
                }
            }
            // The pool is full, say: requests instantiate their own, and report it if it lasts.
            Err(e) => {
                tracing::debug!(guest = %self.name, error = %format!("{e:#}"), "no spare instance made")
            }
        }
        self.refilling.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_in_lowercase_hex() {
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
