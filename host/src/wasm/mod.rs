//! The guest side: the Wasmtime engine, dynamic binding of a guest's Dubbo imports to
//! references, guests loaded and pre-instantiated, and the triggers that run them. Nothing here
//! knows about sockets to providers; calls go through `reference::Reference::invoke`.

pub mod bind;
pub mod cli;
pub mod engine;
pub mod guest;
pub mod host;
pub mod http;
pub mod slot;
pub mod watch;

pub use engine::new_engine;
pub use guest::Guest;
pub use slot::{Digest, GuestSlot, Loader, Source, SwapOutcome};

use std::path::PathBuf;

/// Why a guest cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("cannot set up the Wasm engine: {0}")]
    Engine(String),
    #[error("guest `{guest}`: cannot read {path}: {source}\n  fix: build the guest (see README) or correct `path` in its [[guest]] entry")]
    Read {
        guest: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("guest `{guest}`: {path} is not a valid WebAssembly component: {message}\n  fix: build it for wasm32-wasip2 (cargo build --target wasm32-wasip2)")]
    Compile {
        guest: String,
        path: PathBuf,
        message: String,
    },
    #[error("guest `{guest}`: {message}")]
    Bind { guest: String, message: String },
}
