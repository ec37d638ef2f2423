//! Load balancing: picks one provider among those the routers left for one invocation, with
//! Dubbo's strategies and their URL parameters (`loadbalance`, `weight`, `warmup`,
//! `hash.arguments`, `hash.nodes`), selectable per reference and per method.

use std::sync::Arc;

use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

pub mod consistenthash;
mod java_string;
pub mod leastactive;
pub mod p2c;
mod param;
mod pick;
pub mod random;
pub mod roundrobin;
pub mod shortestresponse;
mod state;
#[cfg(test)]
mod testing;
pub mod weight;
mod weight_cache;

pub use consistenthash::ConsistentHash;
pub use leastactive::LeastActive;
pub use p2c::P2c;
pub use random::Random;
pub use roundrobin::RoundRobin;
pub use shortestresponse::ShortestResponse;

/// Picks one provider for one call.
pub trait LoadBalance: Send + Sync {
    /// Picks one of `invokers` (never empty) for `inv` and returns its index. `consumer` is the
    /// reference's URL (for method-level settings such as `hash.arguments`).
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize;
}

/// The strategy used when `loadbalance` is not set, as in Dubbo.
pub const DEFAULT: &str = "random";

/// Every `loadbalance` value [`by_name`] accepts.
pub const NAMES: &[&str] = &[
    "random",
    "roundrobin",
    "leastactive",
    "shortestresponse",
    "consistenthash",
    "p2c",
];

/// A new balancer for a `loadbalance` value, or `None` for an unknown name. Each instance keeps
/// its own per-method state (counters, rings, parsed weights), so share one per reference.
pub fn by_name(name: &str) -> Option<Arc<dyn LoadBalance>> {
    Some(match name {
        "random" => Arc::new(Random::default()),
        "roundrobin" => Arc::new(RoundRobin::default()),
        "leastactive" => Arc::new(LeastActive::default()),
        "shortestresponse" => Arc::new(ShortestResponse::default()),
        "consistenthash" => Arc::new(ConsistentHash::default()),
        "p2c" => Arc::new(P2c::default()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadbalance::testing::{as_dyn, consumer, invocation, weighted};

    #[test]
    fn by_name_knows_every_strategy_and_refuses_unknown_names() {
        let invokers = as_dyn(&weighted(&[100, 100, 100]));
        let (url, inv) = (consumer(""), invocation(vec!["k".into()]));
        for name in NAMES {
            let lb = by_name(name).unwrap_or_else(|| panic!("{name} is listed but unknown"));
            assert!(lb.select(&invokers, &url, &inv) < invokers.len(), "{name}");
            assert_eq!(lb.select(&invokers[..1], &url, &inv), 0, "{name}");
        }
        assert!(NAMES.contains(&DEFAULT));
        for unknown in ["", "Random", "adaptive", "round-robin"] {
            assert!(by_name(unknown).is_none(), "{unknown}");
        }
    }
}
