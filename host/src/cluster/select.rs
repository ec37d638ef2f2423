//! Choosing one provider for one try, as Dubbo's AbstractClusterInvoker does: sticky reuse,
//! then the load balancer, then a reselect that avoids providers already tried or unavailable.

use std::sync::Arc;

use super::MethodPolicy;
use crate::directory::Directory;
use crate::rpc::{Invocation, Invoker, RpcError};

fn same(a: &Arc<dyn Invoker>, b: &Arc<dyn Invoker>) -> bool {
    Arc::ptr_eq(a, b)
}

/// Picks a provider among `invokers` (non-empty), avoiding `tried` when it can.
pub(super) fn pick(
    dir: &Directory,
    policy: &MethodPolicy,
    inv: &Invocation,
    invokers: &[Arc<dyn Invoker>],
    tried: &[Arc<dyn Invoker>],
) -> Result<Arc<dyn Invoker>, RpcError> {
    if invokers.is_empty() {
        return Err(RpcError::NoProvider(format!(
            "no provider available for {}.{}",
            dir.service(),
            inv.method
        )));
    }
    if policy.sticky {
        let last = policy.last.lock().ok().and_then(|l| l.as_ref()?.upgrade());
        if let Some(last) = last {
            let listed = invokers.iter().any(|i| same(i, &last));
            if listed && last.is_available() && !tried.iter().any(|t| same(t, &last)) {
                return Ok(last);
            }
        }
    }
    let chosen = choose(dir, policy, inv, invokers, tried);
    if policy.sticky {
        if let Ok(mut l) = policy.last.lock() {
            *l = Some(Arc::downgrade(&chosen));
        }
    }
    Ok(chosen)
}

fn choose(
    dir: &Directory,
    policy: &MethodPolicy,
    inv: &Invocation,
    invokers: &[Arc<dyn Invoker>],
    tried: &[Arc<dyn Invoker>],
) -> Arc<dyn Invoker> {
    if invokers.len() == 1 {
        return invokers[0].clone();
    }
    let i = policy.loadbalance.select(invokers, dir.consumer(), inv) % invokers.len();
    let picked = &invokers[i];
    if !tried.iter().any(|t| same(t, picked)) && picked.is_available() {
        return picked.clone();
    }
    // Reselect among the untried available providers, then among tried ones still available,
    // else take the next one along.
    let fresh: Vec<Arc<dyn Invoker>> = invokers
        .iter()
        .filter(|c| c.is_available() && !tried.iter().any(|t| same(t, c)))
        .cloned()
        .collect();
    if !fresh.is_empty() {
        let j = policy.loadbalance.select(&fresh, dir.consumer(), inv) % fresh.len();
        return fresh[j].clone();
    }
    let again: Vec<Arc<dyn Invoker>> = tried
        .iter()
        .filter(|t| t.is_available() && invokers.iter().any(|c| same(c, t)))
        .cloned()
        .collect();
    if !again.is_empty() {
        let j = policy.loadbalance.select(&again, dir.consumer(), inv) % again.len();
        return again[j].clone();
    }
    invokers[(i + 1) % invokers.len()].clone()
}
