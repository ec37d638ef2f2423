//! The `dubbo://` protocol, in Dubbo's rooms: the frame header and message bodies (the codec),
//! the connection (a transport of frames), the exchange over it (request ids, replies,
//! timeouts, heartbeats, read-only events), the pool of connections shared per provider
//! address with their reconnect timer, and the provider invoker.

pub mod connection;
pub mod exchange;
pub mod frame;
pub mod invoker;
pub mod message;
pub mod pool;
#[cfg(test)]
mod vectors;

pub use connection::ConnectionConfig;
pub use exchange::Exchange;
pub use invoker::DubboInvoker;
pub use pool::{ConnectionPool, SharedClient};
