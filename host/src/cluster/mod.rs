//! Clusters: how one invocation is carried out over the providers the directory lists —
//! failover (default), failfast, failsafe, failback, forking, broadcast, available — chosen by
//! the `cluster` parameter, with Dubbo's parameters (`retries`, `forks`, `sticky`) per method.

mod available;
mod broadcast;
mod failback;
mod failover;
mod forking;
mod select;

use std::sync::{Arc, Mutex, Weak};

use crate::directory::Directory;
use crate::hessian2::Value;
use crate::loadbalance::LoadBalance;
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult};

pub use failback::FailbackQueue;

/// A calling strategy, by Dubbo name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterKind {
    Failover,
    Failfast,
    Failsafe,
    Failback,
    Forking,
    Broadcast,
    Available,
}

impl ClusterKind {
    /// Every name `by_name` knows.
    pub const NAMES: &'static [&'static str] = &[
        "failover",
        "failfast",
        "failsafe",
        "failback",
        "forking",
        "broadcast",
        "available",
    ];

    /// The strategy called `name` (Dubbo's `cluster` values).
    pub fn by_name(name: &str) -> Option<ClusterKind> {
        Some(match name {
            "failover" => ClusterKind::Failover,
            "failfast" => ClusterKind::Failfast,
            "failsafe" => ClusterKind::Failsafe,
            "failback" => ClusterKind::Failback,
            "forking" => ClusterKind::Forking,
            "broadcast" => ClusterKind::Broadcast,
            "available" => ClusterKind::Available,
            _ => return None,
        })
    }
}

/// How calls of one method are made, resolved once from the consumer URL.
pub struct MethodPolicy {
    pub cluster: ClusterKind,
    pub loadbalance: Arc<dyn LoadBalance>,
    /// Extra tries after the first (failover) or background retries (failback).
    pub retries: u32,
    /// Parallel calls for forking (0 or ≥ providers: all).
    pub forks: usize,
    /// Reuse the last provider while it is listed and available.
    pub sticky: bool,
    last: Mutex<Option<Weak<dyn Invoker>>>,
}

impl MethodPolicy {
    /// A policy; `retries` defaults to 2 in Dubbo, `forks` to 2.
    pub fn new(
        cluster: ClusterKind,
        loadbalance: Arc<dyn LoadBalance>,
        retries: u32,
        forks: usize,
        sticky: bool,
    ) -> Self {
        MethodPolicy {
            cluster,
            loadbalance,
            retries,
            forks,
            sticky,
            last: Mutex::new(None),
        }
    }
}

/// Carries out `inv` over `dir` as `policy` says.
pub async fn invoke(
    dir: &Arc<Directory>,
    policy: &MethodPolicy,
    failback: &FailbackQueue,
    inv: &Invocation,
) -> Result<RpcResult, RpcError> {
    match policy.cluster {
        ClusterKind::Failover => failover::invoke(dir, policy, inv).await,
        ClusterKind::Failfast => {
            let invokers = listed(dir, inv)?;
            select::pick(dir, policy, inv, &invokers, &[])?
                .invoke(inv)
                .await
        }
        ClusterKind::Failsafe => {
            let attempt = async {
                let invokers = listed(dir, inv)?;
                select::pick(dir, policy, inv, &invokers, &[])?
                    .invoke(inv)
                    .await
            };
            match attempt.await {
                Ok(r) => Ok(r),
                Err(e) => {
                    tracing::warn!(service = %dir.service(), method = %inv.method, error = %e, "failsafe: ignoring the failure");
                    Ok(empty())
                }
            }
        }
        ClusterKind::Failback => failback::invoke(dir, policy, failback, inv).await,
        ClusterKind::Forking => forking::invoke(dir, policy, inv).await,
        ClusterKind::Broadcast => broadcast::invoke(dir, inv).await,
        ClusterKind::Available => available::invoke(dir, inv).await,
    }
}

/// The empty result failsafe and failback answer with.
fn empty() -> RpcResult {
    RpcResult {
        value: Value::Null,
        attachments: Vec::new(),
    }
}

/// The routed providers, or the no-provider error Dubbo raises when there are none.
fn listed(dir: &Directory, inv: &Invocation) -> Result<Vec<Arc<dyn Invoker>>, RpcError> {
    let invokers = dir.list(inv);
    if invokers.is_empty() {
        return Err(RpcError::NoProvider(format!(
            "no provider available for {}.{} (consumer {})",
            dir.service(),
            inv.method,
            dir.consumer().host
        )));
    }
    Ok(invokers)
}

#[cfg(test)]
mod tests;
