//! The `cli` trigger: runs a guest's `wasi:cli/run` export once, with its arguments, its
//! stdout and stderr passed through, and returns the guest's exit code.

use std::path::Path;

use wasmtime::Store;
use wasmtime_wasi::{I32Exit, WasiCtx};

use super::engine::ticks_for;
use super::guest::{compile, store_limits, time_limit};
use super::prepare::prepare_cli;
use super::state::GuestState;
use super::WasmError;
use crate::config::GuestConfig;
use crate::reference::References;

/// Runs the guest once with `args` (the guest sees its name as argument 0) and returns its
/// exit code: 0 when `run` returns ok, 1 when it returns an error, the code it passed to
/// `exit`, or an error when it traps or runs past its time limit.
pub async fn run(
    engine: &wasmtime::Engine,
    cfg: &GuestConfig,
    path: &Path,
    refs: &References,
    args: &[String],
) -> Result<i32, WasmError> {
    let component = compile(engine, cfg, path)?;
    let pre = prepare_cli(engine, cfg, &component, refs)?;
    let fail = |message: String| WasmError::Run {
        guest: cfg.name.clone(),
        message,
    };
    let mut argv = vec![cfg.name.clone()];
    argv.extend(args.iter().cloned());
    let wasi = WasiCtx::builder()
        .inherit_stdout()
        .inherit_stderr()
        .args(&argv)
        .build();
    let mut store = Store::new(engine, GuestState::with_wasi(store_limits(cfg), wasi));
    store.limiter(|s| &mut s.limits);
    let limit = time_limit(cfg);
    store.set_epoch_deadline(ticks_for(limit));
    store.epoch_deadline_trap();
    let run = async {
        let command = pre.instantiate_async(&mut store).await?;
        command.wasi_cli_run().call_run(&mut store).await
    };
    let outcome = tokio::time::timeout(limit, run).await.map_err(|_| {
        fail(format!(
            "did not finish within its time limit of {} ms",
            limit.as_millis()
        ))
    })?;
    match outcome {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => match e.downcast_ref::<wasmtime::Trap>() {
                Some(wasmtime::Trap::Interrupt) => Err(fail(format!(
                    "ran past its time limit of {} ms",
                    limit.as_millis()
                ))),
                _ => Err(fail(format!("trapped: {e:#}"))),
            },
        },
    }
}
