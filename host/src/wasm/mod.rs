//! The guest side: the Wasmtime engine, dynamic binding of a guest's Dubbo imports to
//! references, guests loaded and pre-instantiated, and the triggers that run them. Nothing here
//! knows about sockets to providers; calls go through `reference::Reference::invoke`.

pub mod bind;
pub mod cli;
pub mod engine;
pub mod guest;
pub mod http;
pub mod loader;
pub mod prepare;
pub mod slot;
pub mod state;
pub mod watch;

pub use engine::{
    new_engine, pool_instances, warn_if_pool_short, MAX_POOL_INSTANCES, MIN_POOL_INSTANCES,
};
pub use guest::{Digest, Guest};
pub use loader::Loader;
pub use prepare::{prepare, Prepared};
pub use slot::{GuestSlot, Source, SwapOutcome};

use std::path::PathBuf;

use crate::config::Trigger;
use bind::BindError;

/// Why a guest cannot be loaded or run. [`WasmError::field`] names the `[[guest]]` field the
/// problem is in and [`WasmError::fix`] says what to do, so `check` reports them as they are;
/// the message shows both.
#[derive(Debug)]
pub enum WasmError {
    /// The engine or its linker could not be set up.
    Engine(String),
    /// The guest's file cannot be read.
    Read {
        guest: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a component this engine compiles.
    Compile {
        guest: String,
        path: PathBuf,
        message: String,
    },
    /// A Dubbo or `dubbo:host` import cannot be bound.
    Bind { guest: String, error: BindError },
    /// An import nothing provides (neither WASI 0.2, `dubbo:host` nor a granted reference).
    Instantiate { guest: String, message: String },
    /// The component lacks the export its trigger runs.
    Export {
        guest: String,
        trigger: Trigger,
        message: String,
    },
    /// A `cli` guest trapped or ran past its time limit.
    Run { guest: String, message: String },
}

impl WasmError {
    /// The `[[guest]]` field the problem is in: `path`, `references` or `trigger` (empty for
    /// the engine).
    pub fn field(&self) -> &'static str {
        match self {
            WasmError::Engine(_) => "",
            WasmError::Read { .. } | WasmError::Compile { .. } | WasmError::Instantiate { .. } => {
                "path"
            }
            WasmError::Bind { .. } => "references",
            WasmError::Export { .. } | WasmError::Run { .. } => "trigger",
        }
    }

    /// What is wrong, without the fix.
    pub fn problem(&self) -> String {
        match self {
            WasmError::Engine(m) => format!("cannot set up the Wasm engine: {m}"),
            WasmError::Read {
                guest,
                path,
                source,
            } => format!("guest `{guest}`: cannot read {}: {source}", path.display()),
            WasmError::Compile {
                guest,
                path,
                message,
            } => format!(
                "guest `{guest}`: {} is not a valid WebAssembly component: {message}",
                path.display()
            ),
            WasmError::Bind { guest, error } => format!("guest `{guest}`: {error}"),
            WasmError::Instantiate { guest, message } => {
                format!("guest `{guest}`: imports something this host does not provide: {message}")
            }
            WasmError::Export {
                guest,
                trigger: Trigger::Http,
                message,
            } => format!("guest `{guest}` does not export wasi:http/incoming-handler ({message})"),
            WasmError::Export {
                guest,
                trigger: Trigger::Cli,
                message,
            } => format!("guest `{guest}` does not export wasi:cli/run ({message})"),
            WasmError::Run { guest, message } => format!("guest `{guest}`: {message}"),
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            WasmError::Engine(_) | WasmError::Run { .. } => return None,
            WasmError::Read { .. } => "build the guest (see README) or correct `path` in its [[guest]] entry (relative to the config file's directory)".to_string(),
            WasmError::Compile { .. } => "build it as a component for wasm32-wasip2 (cargo build --target wasm32-wasip2, or componentize-py for Python)".to_string(),
            WasmError::Bind { error, .. } => error.fix().unwrap_or_else(|| {
                "make the guest's imports match the WIT of the references it is granted".to_string()
            }),
            WasmError::Instantiate { .. } => "import only WASI 0.2 interfaces, dubbo:host and the Dubbo interfaces of the granted references".to_string(),
            WasmError::Export { trigger: Trigger::Http, .. } => "export it (see guest-examples/hello-http) or set trigger = \"cli\"".to_string(),
            WasmError::Export { trigger: Trigger::Cli, .. } => "build it as a binary (a `main` function) or set trigger = \"http\"".to_string(),
        })
    }
}

impl std::fmt::Display for WasmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.problem())?;
        if let Some(fix) = self.fix() {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WasmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WasmError::Read { source, .. } => Some(source),
            WasmError::Bind { error, .. } => Some(error),
            _ => None,
        }
    }
}
