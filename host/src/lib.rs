//! dubbo-wasm-host: a native Apache Dubbo consumer that hands remote services to sandboxed
//! WebAssembly components as WIT imports. See DESIGN.md for the layers; data flows one way per
//! call: guest → `wasm` binding → `reference` → `protocol::dubbo` → socket, and back.

pub mod admin;
pub mod bench;
pub mod check;
pub mod cluster;
pub mod config;
pub mod directory;
pub mod generic;
pub mod hessian2;
pub mod host;
pub mod java;
pub mod loadbalance;
pub mod metrics;
pub mod protocol;
pub mod reference;
pub mod registry;
pub mod router;
pub mod rpc;
pub mod server;
#[doc(hidden)]
pub mod testing;
pub mod url;
pub mod wasm;
pub mod witgen;
