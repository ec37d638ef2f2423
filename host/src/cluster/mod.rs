//! Clusters: how one invocation is carried out over the providers the directory lists —
//! failover (default), failfast, failsafe, failback, forking, broadcast, available — chosen by
//! the `cluster` parameter, with Dubbo's parameters (`retries`, `forks`, `sticky`) per method.

mod available;
mod broadcast;
mod failback;
mod failover;
mod forking;
mod mergeable;
pub mod mock;
mod select;

use std::sync::{Arc, Mutex, Weak};

use crate::directory::{Directory, Listed};
use crate::hessian2::Value;
use crate::loadbalance::{self, LoadBalance};
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult};
use crate::url::Url;

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

/// How calls of one method are made, resolved once per provider set: the cluster keys from
/// the invoker URL (the provider's defaults, the consumer's settings on top, the configurators
/// on top of both), the mock and the group merging from the consumer URL as configured.
pub struct MethodPolicy {
    pub cluster: ClusterKind,
    pub loadbalance: Arc<dyn LoadBalance>,
    /// Extra tries after the first (failover) or background retries (failback).
    pub retries: u32,
    /// Parallel calls for forking (0 or ≥ providers: all).
    pub forks: usize,
    /// Reuse the last provider while it is listed and available.
    pub sticky: bool,
    /// Mock degradation (`mock`), if on.
    pub mock: Option<mock::Mock>,
    /// Whether the reference calls several groups (`group` is `*` or a list): Dubbo's
    /// mergeable cluster, one call per group with `merger`, else the first available group.
    pub multi_group: bool,
    /// `merger`: how the groups' results are merged (`true` by their type, or a merger name).
    pub merger: Option<String>,
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
            mock: None,
            multi_group: false,
            merger: None,
            last: Mutex::new(None),
        }
    }

    /// The policy of `method` from the invoker URL `invoker` (the first provider's merged URL,
    /// or the consumer URL when there is none) and the consumer URL `consumer` (configurators
    /// applied). A `mock` that cannot be used is logged and left off.
    pub fn resolve(method: &str, invoker: &Url, consumer: &Url) -> MethodPolicy {
        let cluster = invoker
            .method_param(method, "cluster")
            .and_then(ClusterKind::by_name)
            .unwrap_or(ClusterKind::Failover);
        let default_retries = if cluster == ClusterKind::Failback {
            3
        } else {
            2
        };
        let lb = invoker
            .method_param(method, "loadbalance")
            .and_then(loadbalance::by_name)
            .or_else(|| loadbalance::by_name(loadbalance::DEFAULT))
            .expect("the default load balancing always exists");
        let mut policy = MethodPolicy::new(
            cluster,
            lb,
            invoker
                .method_param_i64(method, "retries", default_retries)
                .max(0) as u32,
            invoker.method_param_i64(method, "forks", 2).max(0) as usize,
            invoker
                .method_param(method, "sticky")
                .is_some_and(|v| v == "true"),
        );
        policy.mock = match mock::Mock::of(consumer, method) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(service = %consumer.path, method, error = %e, "mock not used");
                None
            }
        };
        let group = consumer.param("group").unwrap_or_default().trim();
        policy.multi_group = group == "*" || group.contains(',');
        policy.merger = consumer
            .method_param(method, "merger")
            .map(str::trim)
            .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("false"))
            .map(str::to_string);
        policy
    }
}

/// Carries out `inv` over `dir` as `policy` says.
pub async fn invoke(
    dir: &Arc<Directory>,
    policy: &MethodPolicy,
    failback: &FailbackQueue,
    inv: &Invocation,
) -> Result<RpcResult, RpcError> {
    if policy.multi_group {
        return mergeable::invoke(dir, policy, failback, inv).await;
    }
    invoke_one(dir, policy, failback, inv).await
}

/// Carries out `inv` over `dir` with the policy's cluster strategy, ignoring groups.
async fn invoke_one(
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
fn listed(dir: &Directory, inv: &Invocation) -> Result<Listed, RpcError> {
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
