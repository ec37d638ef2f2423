//! Load balancing: picks one provider among those the routers left for one invocation, with
//! Dubbo's strategies and their URL parameters (`loadbalance`, `weight`, `warmup`,
//! `hash.arguments`, `hash.nodes`), selectable per reference and per method.

use std::sync::Arc;

use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Picks one provider for one call.
pub trait LoadBalance: Send + Sync {
    /// Picks one of `invokers` (never empty) for `inv` and returns its index. `consumer` is the
    /// reference's URL (for method-level settings such as `hash.arguments`).
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize;
}
