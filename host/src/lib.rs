//! dubbo-wasm-host: a native Apache Dubbo consumer that hands remote services to sandboxed
//! WebAssembly components as WIT imports. See DESIGN.md for the layers; data flows one way per
//! call: guest → `wasm` binding → `reference` → `protocol::dubbo` → socket, and back.

pub mod config;
pub mod protocol;
pub mod reference;
pub mod rpc;
pub mod url;
pub mod wasm;
