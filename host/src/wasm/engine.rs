//! The one Wasmtime engine of the process: compiled code cached on disk, epoch interruption
//! driven by a single ticker thread so that a guest's wall-time limit costs nothing per call.

use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::WasmError;

/// How often the epoch advances; guest deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine and starts its epoch ticker.
pub fn new_engine() -> Result<Engine, WasmError> {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true);
    // Guests are WASIp2 components; the CM-async machinery costs microseconds per host call.
    cfg.concurrency_support(false);
    match Cache::new(CacheConfig::new()) {
        Ok(cache) => {
            cfg.cache(Some(cache));
        }
        Err(e) => {
            tracing::warn!(error = %e, "compile cache unavailable; guests compile on every load")
        }
    }
    let engine = Engine::new(&cfg).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".to_string())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| WasmError::Engine(format!("cannot start the epoch thread: {e}")))?;
    Ok(engine)
}

/// The number of epoch ticks that covers `limit` (at least one).
pub fn ticks_for(limit: Duration) -> u64 {
    (limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}
