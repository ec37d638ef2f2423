//! The one Wasmtime engine of the process: compiled code cached on disk, epoch interruption
//! driven by a single ticker thread so that a guest's wall-time limit costs nothing per call.

use std::time::Duration;

use wasmtime::{
    Cache, CacheConfig, Config as WasmtimeConfig, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

use super::WasmError;
use crate::config::Config;

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
/// Slots whose remaining memory is decommitted together, in one batch of `madvise` calls:
/// none. With the dirty pages reset in place, a slot has nothing left to decommit, but
/// Wasmtime still queues an empty region for it; a batch would hold the slot out of the pool
/// (cold, and not the one the next instance of the guest finds) until the batch fills, lock
/// the shared queue on every drop, and end in a `process_madvise` call that does nothing.
const DECOMMIT_BATCH: usize = 1;

/// Component instances the pool holds at least (as Spin sizes it).
pub const MIN_POOL_INSTANCES: usize = 1000;
/// ... and at most: every memory slot reserves its address space when the engine starts.
pub const MAX_POOL_INSTANCES: usize = 8192;

/// The component instances the pool must hold for `config`'s guests: each may run its
/// `max-instances` at once, and as many again during a hot swap (the old version finishing
/// while the new one starts) or kept warm (`instance-reuse`). At least
/// [`MIN_POOL_INSTANCES`], at most [`MAX_POOL_INSTANCES`] (config validation keeps
/// `max-instances` within half of that).
pub fn pool_instances(config: &Config) -> usize {
    instances_wanted(config).clamp(MIN_POOL_INSTANCES, MAX_POOL_INSTANCES)
}

/// Twice the sum of the guests' `max-instances`, unbounded.
fn instances_wanted(config: &Config) -> usize {
    config
        .guests
        .iter()
        .map(|g| super::guest::max_instances(g).saturating_mul(2))
        .fold(0, usize::saturating_add)
}

/// Logs when `config`'s guests want more instance slots than a pool of `held` has: more guests
/// at their `max-instances` than [`MAX_POOL_INSTANCES`] covers, or a reloaded config that grew
/// beyond the pool sized at start (it cannot grow).
pub fn warn_if_pool_short(config: &Config, held: usize) {
    let wanted = instances_wanted(config);
    if wanted > held {
        tracing::warn!(
            wanted,
            held,
            "the guests' max-instances want more instance slots than the pool holds; requests beyond it get 503 (lower max-instances, or restart the host if the config grew since it started)"
        );
    }
}

/// Builds the engine, its instance pool sized for `instances` component instances at once
/// (see [`pool_instances`]), and starts its epoch ticker. Instances come from a pooling
/// allocator (instantiation in microseconds) unless the machine cannot reserve its address
/// space or `DUBBO_WASM_POOLING=0`; then from the on-demand allocator.
pub fn new_engine(instances: usize) -> Result<Engine, WasmError> {
    let pooling = std::env::var("DUBBO_WASM_POOLING").map_or(true, |v| v != "0");
    if pooling {
        match build(Some(instances)) {
            Ok(engine) => return start_ticker(engine),
            Err(e) => {
                tracing::warn!(error = %e, "pooling allocator unavailable; instantiating on demand")
            }
        }
    }
    start_ticker(build(None)?)
}

/// An engine with a pool of `pooled` component instances, or instantiating on demand.
fn build(pooled: Option<usize>) -> Result<Engine, WasmError> {
    let mut cfg = WasmtimeConfig::new();
    if let Some(n) = pooled {
        let n = u32::try_from(n.clamp(1, MAX_POOL_INSTANCES)).unwrap_or(1000);
        let mut pool = PoolingAllocationConfig::new();
        // Per instance as Spin sizes them, enough for Python and JavaScript guests.
        pool.total_component_instances(n)
            .total_core_instances(4 * n)
            .total_memories(n)
            .total_tables(2 * n)
            .total_stacks(n)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(guests: &[Option<usize>]) -> Config {
        let mut text = String::new();
        for (i, max) in guests.iter().enumerate() {
            text.push_str(&format!(
                "[[guest]]\nname = \"g{i}\"\npath = \"g.wasm\"\ntrigger = \"http\"\nroute = \"/g{i}\"\n"
            ));
            if let Some(m) = max {
                text.push_str(&format!("max-instances = {m}\n"));
            }
        }
        Config::parse(&text, Path::new("host.toml")).expect("valid config")
    }

    #[test]
    fn the_pool_holds_twice_every_guests_instances_within_its_bounds() {
        assert_eq!(pool_instances(&config(&[])), MIN_POOL_INSTANCES);
        // One guest at the default 256 wants 512, below the floor; two want 1 024.
        assert_eq!(pool_instances(&config(&[None])), MIN_POOL_INSTANCES);
        assert_eq!(pool_instances(&config(&[None, None])), 1024);
        assert_eq!(pool_instances(&config(&[Some(1024)])), 2048);
        assert_eq!(pool_instances(&config(&[Some(1024), Some(600)])), 3248);
        assert_eq!(
            pool_instances(&config(&[Some(4096), Some(4096), Some(10)])),
            MAX_POOL_INSTANCES
        );
    }

    /// A core module with one memory of one page: `(module (memory 1))`.
    const MEMORY_MODULE: [u8; 13] = [0, b'a', b's', b'm', 1, 0, 0, 0, 0x05, 3, 1, 0, 1];

    /// A component that instantiates [`MEMORY_MODULE`]: its header, the module as a core
    /// module section, and a core instance section instantiating module 0 without imports.
    fn one_memory_component() -> Vec<u8> {
        let mut bytes = vec![0, b'a', b's', b'm', 0x0d, 0, 0x01, 0];
        bytes.extend([0x01, MEMORY_MODULE.len() as u8]);
        bytes.extend(MEMORY_MODULE);
        bytes.extend([0x02, 4, 1, 0, 0, 0]);
        bytes
    }

    #[tokio::test]
    async fn a_dropped_instances_memory_slot_is_back_in_the_pool_warm_at_once() {
        use wasmtime::component::{Component, Linker};
        let engine = new_engine(4).expect("engine");
        let component = Component::new(&engine, one_memory_component()).expect("component");
        let linker = Linker::<()>::new(&engine);
        let metrics = engine
            .pooling_allocator_metrics()
            .expect("a pooling engine");
        for round in 1..=3 {
            let mut store = wasmtime::Store::new(&engine, ());
            linker
                .instantiate_async(&mut store, &component)
                .await
                .expect("instantiate");
            assert_eq!(metrics.memories(), 1);
            drop(store);
            // Not parked in a decommit batch until others fill it: the next instance can
            // take the same slot, still resident.
            assert_eq!(metrics.memories(), 0);
            assert_eq!(metrics.unused_warm_memories(), 1, "round {round}");
        }
    }
}
