//! A loaded guest: its component compiled (through the engine's on-disk cache), its imports
//! bound, and the result pre-instantiated once so each request only creates a store. Limits:
//! linear memory per instance, wall time per request, and instances running at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bind::bind_imports;
use super::host::HostState;
use super::slot::Digest;
use super::WasmError;
use crate::config::GuestConfig;
use crate::reference::References;

/// Default linear-memory limit per instance.
const DEFAULT_MAX_MEMORY_MIB: u64 = 64;
/// Default wall-time limit per request.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default number of instances of one guest running at once.
const DEFAULT_MAX_INSTANCES: usize = 256;

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

/// The linker for one guest version: WASI (no sockets, files or environment unless granted),
/// wasi-http types, and the guest's Dubbo imports bound to its granted references.
pub fn linker_for(
    engine: &Engine,
    component: &Component,
    cfg: &GuestConfig,
    refs: &References,
) -> Result<Linker<HostState>, WasmError> {
    let bind_err = |message: String| WasmError::Bind {
        guest: cfg.name.clone(),
        message,
    };
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| bind_err(format!("{e:#}")))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| bind_err(format!("{e:#}")))?;
    bind_imports(engine, &mut linker, component, &cfg.references, refs).map_err(bind_err)?;
    Ok(linker)
}

/// The store limits of one instance of `cfg`'s guest.
pub fn store_limits(cfg: &GuestConfig) -> StoreLimits {
    let max_memory = (cfg.max_memory_mib.unwrap_or(DEFAULT_MAX_MEMORY_MIB) as usize) << 20;
    StoreLimitsBuilder::new()
        .memory_size(max_memory)
        .trap_on_grow_failure(true)
        .build()
}

/// The wall-time limit of one request or run of `cfg`'s guest.
pub fn time_limit(cfg: &GuestConfig) -> Duration {
    Duration::from_millis(cfg.timeout.unwrap_or(DEFAULT_TIMEOUT_MS))
}

/// An HTTP guest ready to serve: one pre-instantiated component and its limits.
pub struct Guest {
    name: String,
    pre: ProxyPre<HostState>,
    cfg: GuestConfig,
    digest: Digest,
    timeout: Duration,
    instances: Arc<Semaphore>,
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
        let linker = linker_for(engine, component, cfg, refs)?;
        let bind_err = |message: String| WasmError::Bind {
            guest: cfg.name.clone(),
            message,
        };
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| bind_err(format!("{e:#}")))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            bind_err(format!(
                "does not export wasi:http/incoming-handler ({e:#})\n  fix: export it (see guest-examples/hello-http) or use trigger = \"cli\""
            ))
        })?;
        Ok(Guest {
            name: cfg.name.clone(),
            pre,
            cfg: cfg.clone(),
            digest,
            timeout: time_limit(cfg),
            instances: Arc::new(Semaphore::new(
                cfg.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES),
            )),
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
    pub fn pre(&self) -> &ProxyPre<HostState> {
        &self.pre
    }

    /// A slot for one more running instance, or `None` when `max-instances` are running.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.instances.clone().try_acquire_owned().ok()
    }

    /// A fresh store for one request, with the guest's memory and time limits applied.
    pub fn new_store(&self) -> Store<HostState> {
        let mut store = Store::new(self.pre.engine(), HostState::new(store_limits(&self.cfg)));
        store.limiter(|s| &mut s.limits);
        // Yield to the executor on every tick instead of running to the deadline: a spinning
        // guest must not hold a Tokio worker, and with it the I/O and timer drivers, for its
        // whole time limit. At the deadline it traps with `Trap::Interrupt`.
        let deadline = std::time::Instant::now() + self.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if std::time::Instant::now() >= deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });
        store
    }
}
