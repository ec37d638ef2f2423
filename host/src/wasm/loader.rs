//! Compiling and binding guest versions, once per process: the engine, and an in-memory cache
//! of recently compiled components by digest in front of Wasmtime's on-disk cache (keyed by
//! the module bytes and the engine's compatibility), so swapping back to a recent version only
//! binds it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::Component;
use wasmtime::Engine;

use super::guest::{compile_bytes, Digest, Guest};
use super::WasmError;
use crate::config::GuestConfig;
use crate::reference::References;

/// Compiled versions kept in memory, so swapping back to a recent version only binds it.
const COMPILED_IN_MEMORY: usize = 16;

/// Compiles and binds guest versions. One per process: it owns the engine and the in-memory
/// cache of compiled components.
pub struct Loader {
    engine: Engine,
    compiled: Mutex<Vec<(Digest, Component, u64)>>,
    uses: AtomicU64,
}

impl Loader {
    /// A loader compiling with `engine`.
    pub fn new(engine: Engine) -> Loader {
        Loader {
            engine,
            compiled: Mutex::new(Vec::new()),
            uses: AtomicU64::new(0),
        }
    }

    /// The engine guests run on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (unless recently compiled), binds and pre-instantiates `bytes` as a version of
    /// `cfg`'s guest, on a blocking thread: compiling a large component takes seconds.
    pub async fn load(
        self: &Arc<Self>,
        cfg: &GuestConfig,
        bytes: Arc<[u8]>,
        origin: &Path,
        refs: &References,
    ) -> Result<Guest, WasmError> {
        let (this, cfg2, origin2, refs) = (
            self.clone(),
            cfg.clone(),
            origin.to_path_buf(),
            refs.clone(),
        );
        tokio::task::spawn_blocking(move || this.load_blocking(&cfg2, &bytes, &origin2, &refs))
            .await
            .unwrap_or_else(|e| {
                Err(WasmError::Engine(format!(
                    "loading guest `{}` stopped: {e}",
                    cfg.name
                )))
            })
    }

    /// [`Loader::load`] on the calling thread.
    pub fn load_blocking(
        &self,
        cfg: &GuestConfig,
        bytes: &[u8],
        origin: &Path,
        refs: &References,
    ) -> Result<Guest, WasmError> {
        let digest = Digest::of(bytes);
        let component = match self.cached(&digest) {
            Some(c) => c,
            None => {
                let c = compile_bytes(&self.engine, cfg, bytes, origin)?;
                self.remember(digest, c.clone());
                c
            }
        };
        Guest::bind(&self.engine, cfg, &component, digest, refs)
    }

    fn cached(&self, digest: &Digest) -> Option<Component> {
        let tick = self.uses.fetch_add(1, Ordering::Relaxed);
        let mut compiled = self.compiled.lock().ok()?;
        let entry = compiled.iter_mut().find(|(d, _, _)| d == digest)?;
        entry.2 = tick;
        Some(entry.1.clone())
    }

    fn remember(&self, digest: Digest, component: Component) {
        let tick = self.uses.fetch_add(1, Ordering::Relaxed);
        let Ok(mut compiled) = self.compiled.lock() else {
            return;
        };
        if compiled.iter().any(|(d, _, _)| *d == digest) {
            return;
        }
        if compiled.len() >= COMPILED_IN_MEMORY {
            if let Some(oldest) = compiled
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.2)
                .map(|(i, _)| i)
            {
                compiled.swap_remove(oldest);
            }
        }
        compiled.push((digest, component, tick));
    }
}
