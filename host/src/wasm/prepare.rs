//! The one way a guest component becomes runnable, shared by `serve` (each version a slot
//! swaps in), `run` and `check`: its WASI and Dubbo imports linked (the Dubbo ones bound to
//! the references it is granted), pre-instantiated — the type check of every import — and the
//! export its trigger runs looked up.

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::Engine;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bind::bind_imports;
use super::state::GuestState;
use super::WasmError;
use crate::config::{GuestConfig, Trigger};
use crate::reference::References;

/// A component ready to run for its trigger: create a store and instantiate.
pub enum Prepared {
    /// `wasi:http/incoming-handler`, for `trigger = "http"`.
    Http(ProxyPre<GuestState>),
    /// `wasi:cli/run`, for `trigger = "cli"`.
    Cli(CommandPre<GuestState>),
}

/// Links `component`'s imports for `cfg`'s guest (its Dubbo imports bound to the references it
/// is granted), pre-instantiates it and finds the export `cfg.trigger` runs.
pub fn prepare(
    engine: &Engine,
    cfg: &GuestConfig,
    component: &Component,
    refs: &References,
) -> Result<Prepared, WasmError> {
    Ok(match cfg.trigger {
        Trigger::Http => Prepared::Http(prepare_http(engine, cfg, component, refs)?),
        Trigger::Cli => Prepared::Cli(prepare_cli(engine, cfg, component, refs)?),
    })
}

/// [`prepare`] for the http trigger, whatever `cfg.trigger` says.
pub fn prepare_http(
    engine: &Engine,
    cfg: &GuestConfig,
    component: &Component,
    refs: &References,
) -> Result<ProxyPre<GuestState>, WasmError> {
    prepare_as(engine, cfg, component, refs, Trigger::Http, ProxyPre::new)
}

/// [`prepare`] for the cli trigger, whatever `cfg.trigger` says.
pub fn prepare_cli(
    engine: &Engine,
    cfg: &GuestConfig,
    component: &Component,
    refs: &References,
) -> Result<CommandPre<GuestState>, WasmError> {
    prepare_as(engine, cfg, component, refs, Trigger::Cli, CommandPre::new)
}

/// Pre-instantiates and looks up `trigger`'s export with `export`.
fn prepare_as<P>(
    engine: &Engine,
    cfg: &GuestConfig,
    component: &Component,
    refs: &References,
    trigger: Trigger,
    export: fn(InstancePre<GuestState>) -> wasmtime::Result<P>,
) -> Result<P, WasmError> {
    let pre = linker_for(engine, component, cfg, refs)?
        .instantiate_pre(component)
        .map_err(|e| WasmError::Instantiate {
            guest: cfg.name.clone(),
            message: format!("{e:#}"),
        })?;
    export(pre).map_err(|e| WasmError::Export {
        guest: cfg.name.clone(),
        trigger,
        message: format!("{e:#}"),
    })
}

/// The linker for one guest version: WASI (no sockets, files or environment unless granted),
/// wasi-http types, and the guest's Dubbo imports bound to its granted references.
fn linker_for(
    engine: &Engine,
    component: &Component,
    cfg: &GuestConfig,
    refs: &References,
) -> Result<Linker<GuestState>, WasmError> {
    let host_err = |e: wasmtime::Error| WasmError::Engine(format!("{e:#}"));
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(host_err)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(host_err)?;
    bind_imports(engine, &mut linker, component, &cfg.references, refs).map_err(|error| {
        WasmError::Bind {
            guest: cfg.name.clone(),
            error,
        }
    })?;
    Ok(linker)
}
