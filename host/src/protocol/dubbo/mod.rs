//! The `dubbo://` protocol: frame header, message bodies, connections with multiplexed
//! requests and heartbeats, connections shared per address, and the provider invoker.

pub mod client;
pub mod connection;
pub mod frame;
pub mod invoker;
pub mod message;
#[cfg(test)]
mod vectors;

pub use client::{ConnectionPool, ExchangeClient};
pub use connection::{Connection, ConnectionConfig};
pub use invoker::DubboInvoker;
