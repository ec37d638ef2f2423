//! Routers: narrow the provider list for one invocation by rules from the registry or config
//! (condition rules, tag rules), applied in priority order before load balancing.

use std::sync::Arc;

use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Narrows the providers for one call.
pub trait Router: Send + Sync {
    /// The providers of `invokers` that `inv` from `consumer` may go to.
    fn route(
        &self,
        invokers: &[Arc<dyn Invoker>],
        consumer: &Url,
        inv: &Invocation,
    ) -> Vec<Arc<dyn Invoker>>;

    /// Lower runs first (Dubbo's `priority`).
    fn priority(&self) -> i32 {
        0
    }
}
