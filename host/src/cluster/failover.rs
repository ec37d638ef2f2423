//! Failover (Dubbo's default): up to `retries` + 1 tries on different providers, re-listing
//! before each retry; a business exception is the provider's answer and is never retried.

use std::sync::Arc;

use super::{listed, select, MethodPolicy};
use crate::directory::Directory;
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult};

pub(super) async fn invoke(
    dir: &Arc<Directory>,
    policy: &MethodPolicy,
    inv: &Invocation,
) -> Result<RpcResult, RpcError> {
    let tries = policy.retries as usize + 1;
    let mut tried: Vec<Arc<dyn Invoker>> = Vec::new();
    let mut last_error = None;
    for attempt in 0..tries {
        // Re-list on retries: the provider set may have changed since the first try.
        let invokers = match listed(dir, inv) {
            Ok(i) => i,
            Err(e) if attempt == 0 => return Err(e),
            Err(_) => break,
        };
        let invoker = select::pick(dir, policy, inv, &invokers, &tried)?;
        match invoker.invoke(inv).await {
            Ok(r) => {
                if attempt > 0 {
                    tracing::debug!(service = %dir.service(), method = %inv.method, attempt, "succeeded after failover");
                }
                return Ok(r);
            }
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::debug!(service = %dir.service(), method = %inv.method, provider = %invoker.url().address(), error = %e, "try failed");
                // Only a failed try is remembered: a call that succeeds at once allocates nothing.
                tried.push(invoker);
                last_error = Some(e);
            }
        }
    }
    Err(match last_error {
        Some(e) => with_context(e, dir, inv, &tried),
        None => RpcError::NoProvider(format!(
            "no provider available for {}.{}",
            dir.service(),
            inv.method
        )),
    })
}

/// Says how many providers were tried, keeping the error's kind.
fn with_context(
    e: RpcError,
    dir: &Directory,
    inv: &Invocation,
    tried: &[Arc<dyn Invoker>],
) -> RpcError {
    let mut addresses: Vec<String> = tried.iter().map(|t| t.url().address()).collect();
    addresses.dedup();
    let ctx = format!(
        "{}.{} failed after {} tries on [{}]",
        dir.service(),
        inv.method,
        tried.len(),
        addresses.join(", ")
    );
    match e {
        RpcError::Timeout(m) => RpcError::Timeout(format!("{ctx}; last: {m}")),
        RpcError::Network(m) => RpcError::Network(format!("{ctx}; last: {m}")),
        RpcError::NoProvider(m) => RpcError::NoProvider(format!("{ctx}; last: {m}")),
        RpcError::LimitExceeded(m) => RpcError::LimitExceeded(format!("{ctx}; last: {m}")),
        RpcError::Other(m) => RpcError::Other(format!("{ctx}; last: {m}")),
        other => other,
    }
}
