//! The guest checks of `check`: each guest's file read, compiled and prepared for its trigger —
//! the same preparation `serve` and `run` use — against placeholder references that never
//! connect, and which of its imports went to which reference.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::Engine;

use super::{Finding, Pending, Problem, Report};
use crate::config::{Config, GuestConfig};
use crate::protocol::dubbo::ConnectionPool;
use crate::reference::References;
use crate::wasm::bind::interface_matches;
use crate::wasm::guest::compile;
use crate::wasm::{new_engine, pool_instances, prepare, WasmError};

/// Where the placeholder references guests are bound against point; never connected.
const PLACEHOLDER_URL: &str = "dubbo://127.0.0.1:9";

/// Compiles and binds every guest, one after the other, printing each result.
pub(super) async fn check_guests(config: &Config, report: &mut Report) {
    if config.guests.is_empty() {
        report.add(Finding::Warning(Problem::new(
            "guest",
            "there is no [[guest]]: `serve` and `run` have nothing to run",
            "add a [[guest]] (see guest-examples/demo.toml)",
        )));
        return;
    }
    let engine = match new_engine(pool_instances(config)) {
        Ok(e) => e,
        Err(e) => {
            report.add(Finding::Error(Problem::new(
                "guest",
                format!("guests cannot be compiled here: {e}"),
                "run the check on a machine that can run the host (see README)",
            )));
            return;
        }
    };
    let refs = match offline_references(config).await {
        Ok(r) => r,
        Err(p) => {
            report.add(Finding::Error(p));
            return;
        }
    };
    // (reference id, WIT interface), to say which import went to which reference.
    let wits: Arc<[(String, String)]> = config
        .references
        .iter()
        .filter_map(|r| Some((r.id.clone(), r.wit.clone()?)))
        .collect();
    for (i, g) in config.guests.iter().enumerate() {
        let (engine, cfg, refs, wits) = (engine.clone(), g.clone(), refs.clone(), wits.clone());
        let path = config.guest_path(g);
        // Compiling a large (Python) component takes seconds of CPU.
        let task =
            tokio::task::spawn_blocking(move || check_guest(&engine, i, &cfg, &path, &refs, &wits));
        let pending = Pending::Running {
            task,
            field: format!("guest[{i}]"),
        };
        report.add(pending.finding().await);
    }
}

/// The references with every provider replaced by a lazy placeholder that never connects, and
/// no registry: what binding needs, and nothing that touches the network.
async fn offline_references(config: &Config) -> Result<References, Problem> {
    let mut offline = config.clone();
    offline.registries.clear();
    for r in &mut offline.references {
        r.url = Some(PLACEHOLDER_URL.to_string());
        r.registry.clear();
        r.lazy = Some(true);
        r.check = Some(false);
        r.register = Some(false);
        r.connections = Some(0);
    }
    let pool = Arc::new(ConnectionPool::default());
    References::build(&offline, &pool, &HashMap::new())
        .await
        .map_err(|e| {
            let field = config
                .references
                .iter()
                .position(|r| r.id == e.id())
                .map_or_else(|| "reference".to_string(), |i| format!("reference[{i}]"));
            let fix = e
                .fix()
                .unwrap_or("correct this [[reference]] (see README, Configuration)");
            Problem::new(field, e.problem(), fix)
        })
}

/// One guest: readable, a component, its imports bound to its granted references, and the
/// export its trigger runs.
fn check_guest(
    engine: &Engine,
    i: usize,
    cfg: &GuestConfig,
    path: &Path,
    refs: &References,
    wits: &[(String, String)],
) -> Finding {
    let fail = |e: WasmError| {
        let field = match e.field() {
            "" => format!("guest[{i}]"),
            f => format!("guest[{i}].{f}"),
        };
        let fix = e
            .fix()
            .unwrap_or_else(|| "see README, Writing a guest".to_string());
        Finding::Error(Problem::new(field, e.problem(), fix))
    };
    let component = match compile(engine, cfg, path) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = prepare(engine, cfg, &component, refs) {
        return fail(e);
    }
    let bound = bindings(engine, &component, &cfg.references, wits);
    let what = if bound.is_empty() {
        "compiles and binds; it imports no Dubbo interface".to_string()
    } else {
        format!("binds {}", bound.join(", "))
    };
    Finding::Ok(format!("guest `{}` ({}) {what}", cfg.name, path.display()))
}

/// `demo-service to reference `demo`` for each Dubbo interface the component imports.
fn bindings(
    engine: &Engine,
    component: &Component,
    granted: &[String],
    wits: &[(String, String)],
) -> Vec<String> {
    let mut bound = Vec::new();
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:") || name.starts_with("dubbo:host/") {
            continue;
        }
        let Some((id, _)) = wits
            .iter()
            .find(|(id, wit)| granted.contains(id) && interface_matches(name, wit))
        else {
            continue;
        };
        let short = name.rsplit_once('/').map_or(name, |(_, i)| i);
        let short = short.split_once('@').map_or(short, |(i, _)| i);
        bound.push(format!("{short} to reference `{id}`"));
    }
    bound
}
