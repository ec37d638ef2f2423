//! The one Wasmtime engine of the process: compiled code cached on disk, epoch interruption
//! driven by a single ticker thread so that a guest's wall-time limit costs nothing per call.

use std::time::Duration;

use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

use super::WasmError;

/// How often the epoch advances; guest deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of each instance slot's linear memory kept mapped and reset with `memset` (or, with
/// `PAGEMAP_SCAN`, only the dirty pages) when the slot is reused, instead of returned to the
/// kernel with `madvise`: the kernel round trip, its page faults on the next request and the
/// TLB shootdowns cost more than the reset for the few MiB a request touches. The rest of a
/// slot beyond this is still decommitted. `DUBBO_WASM_KEEP_RESIDENT` (MiB) overrides it.
const KEEP_RESIDENT_MIB: usize = 16;
/// The same for each slot's tables.
const TABLE_KEEP_RESIDENT: usize = 1 << 20;
/// The same for each async stack.
const STACK_KEEP_RESIDENT: usize = 128 << 10;
/// Slots whose remaining memory is decommitted together, in one batch of `madvise` calls.
const DECOMMIT_BATCH: usize = 16;

/// Builds the engine and starts its epoch ticker. Instances come from a pooling allocator
/// (instantiation in microseconds) unless the machine cannot reserve its address space or
/// `DUBBO_WASM_POOLING=0`; then from the on-demand allocator.
pub fn new_engine() -> Result<Engine, WasmError> {
    let pooling = std::env::var("DUBBO_WASM_POOLING").map_or(true, |v| v != "0");
    if pooling {
        match build(true) {
            Ok(engine) => return start_ticker(engine),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; instantiating on demand")
            }
        }
    }
    start_ticker(build(false)?)
}

fn build(pooling: bool) -> Result<Engine, WasmError> {
    let mut cfg = Config::new();
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        // Sizes as Spin uses them, large enough for Python and JavaScript guests.
        pool.total_component_instances(1000)
            .total_core_instances(4000)
            .total_memories(1000)
            .total_tables(2000)
            .max_component_instance_size(10 << 20)
            .max_core_instance_size(10 << 20)
            .max_memories_per_component(16)
            .max_tables_per_component(32)
            .table_elements(100_000)
            .linear_memory_keep_resident(keep_resident())
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .async_stack_keep_resident(STACK_KEEP_RESIDENT)
            .decommit_batch_size(DECOMMIT_BATCH)
            .pagemap_scan(Enabled::Auto);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
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
    Engine::new(&cfg).map_err(|e| WasmError::Engine(format!("{e:#}")))
}

fn keep_resident() -> usize {
    let mib = std::env::var("DUBBO_WASM_KEEP_RESIDENT")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(KEEP_RESIDENT_MIB);
    mib << 20
}

fn start_ticker(engine: Engine) -> Result<Engine, WasmError> {
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
