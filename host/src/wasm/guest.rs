//! A loaded guest: its component compiled (through the engine's on-disk cache), its imports
//! bound, and the result pre-instantiated once so each request only creates a store.

use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bind::bind_imports;
use super::engine::ticks_for;
use super::host::HostState;
use super::WasmError;
use crate::config::GuestConfig;
use crate::reference::References;

/// Default linear-memory limit per instance.
const DEFAULT_MAX_MEMORY_MIB: u64 = 64;
/// Default wall-time limit per request.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A guest ready to serve: one pre-instantiated component and its limits.
pub struct Guest {
    name: String,
    pre: ProxyPre<HostState>,
    max_memory: usize,
    timeout: Duration,
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
        let component = Component::new(engine, &bytes).map_err(|e| WasmError::Compile {
            guest: cfg.name.clone(),
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        let bind_err = |message: String| WasmError::Bind {
            guest: cfg.name.clone(),
            message,
        };
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| bind_err(format!("{e:#}")))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| bind_err(format!("{e:#}")))?;
        bind_imports(engine, &mut linker, &component, &cfg.references, refs).map_err(bind_err)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| bind_err(format!("{e:#}")))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            bind_err(format!(
                "does not export wasi:http/incoming-handler ({e:#})\n  fix: export it (see guest-examples/hello-http) or use trigger = \"cli\""
            ))
        })?;
        Ok(Guest {
            name: cfg.name.clone(),
            pre,
            max_memory: (cfg.max_memory_mib.unwrap_or(DEFAULT_MAX_MEMORY_MIB) as usize) << 20,
            timeout: Duration::from_millis(cfg.timeout.unwrap_or(DEFAULT_TIMEOUT_MS)),
        })
    }

    /// The guest's name in config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wall-time limit of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The pre-instantiated component.
    pub fn pre(&self) -> &ProxyPre<HostState> {
        &self.pre
    }

    /// A fresh store for one request, with the guest's memory and time limits applied.
    pub fn new_store(&self) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.max_memory)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(self.pre.engine(), HostState::new(limits));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks_for(self.timeout));
        store.epoch_deadline_trap();
        store
    }
}
