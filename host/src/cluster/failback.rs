//! Failback: one try; on failure answer empty at once and retry in the background every 5 s,
//! up to `retries` times (Dubbo default 3), with at most 100 retry tasks pending per reference.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{empty, listed, select, MethodPolicy};
use crate::directory::Directory;
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult};

/// Time between background retries.
const RETRY_PERIOD: Duration = Duration::from_secs(5);

/// Bounds the background retries of one reference (Dubbo's `failbacktasks`).
pub struct FailbackQueue {
    pending: Arc<AtomicUsize>,
    limit: usize,
    period: Duration,
}

impl Default for FailbackQueue {
    fn default() -> Self {
        FailbackQueue::new(100, RETRY_PERIOD)
    }
}

impl FailbackQueue {
    /// A queue of at most `limit` pending retries, `period` apart.
    pub fn new(limit: usize, period: Duration) -> Self {
        FailbackQueue {
            pending: Arc::new(AtomicUsize::new(0)),
            limit,
            period,
        }
    }

    /// Retries waiting in the background.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

pub(super) async fn invoke(
    dir: &Arc<Directory>,
    policy: &MethodPolicy,
    queue: &FailbackQueue,
    inv: &Invocation,
) -> Result<RpcResult, RpcError> {
    let first: Result<RpcResult, (RpcError, Option<Arc<dyn Invoker>>)> = async {
        let invokers = listed(dir, inv).map_err(|e| (e, None))?;
        let invoker = select::pick(dir, policy, inv, &invokers, &[]).map_err(|e| (e, None))?;
        invoker
            .invoke(inv)
            .await
            .map_err(|e| (e, Some(invoker.clone())))
    }
    .await;
    match first {
        Ok(r) => Ok(r),
        Err((e, _)) if !e.is_retryable() => Err(e),
        Err((e, last)) => {
            schedule(dir.clone(), policy.retries, queue, inv.clone(), e, last);
            Ok(empty())
        }
    }
}

fn schedule(
    dir: Arc<Directory>,
    retries: u32,
    queue: &FailbackQueue,
    inv: Invocation,
    first: RpcError,
    mut last: Option<Arc<dyn Invoker>>,
) {
    if retries == 0 {
        tracing::warn!(service = %dir.service(), method = %inv.method, error = %first, "failback: failed, retries=0");
        return;
    }
    if queue.pending.fetch_add(1, Ordering::AcqRel) >= queue.limit {
        queue.pending.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(service = %dir.service(), method = %inv.method, error = %first, "failback: retry queue full, dropping the call");
        return;
    }
    tracing::warn!(service = %dir.service(), method = %inv.method, error = %first, "failback: will retry in the background");
    let pending = queue.pending.clone();
    let period = queue.period;
    tokio::spawn(async move {
        for attempt in 1..=retries {
            tokio::time::sleep(period).await;
            // Each retry avoids the provider that failed last, when another is listed.
            let invokers = dir.list(&inv);
            let avoid = |i: &&Arc<dyn Invoker>| last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, i));
            let Some(invoker) = invokers
                .iter()
                .find(|i| i.is_available() && avoid(i))
                .or(invokers.first())
                .cloned()
            else {
                continue;
            };
            last = Some(invoker.clone());
            match invoker.invoke(&inv).await {
                Ok(_) => {
                    tracing::info!(service = %dir.service(), method = %inv.method, attempt, "failback: retry succeeded");
                    break;
                }
                Err(e) => {
                    tracing::warn!(service = %dir.service(), method = %inv.method, attempt, error = %e, "failback: retry failed")
                }
            }
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    });
}
