//! Forking: the same call to `forks` providers at once; the first success wins, and the call
//! fails only when every fork failed.

use std::sync::Arc;

use futures_util::future::select_ok;
use futures_util::FutureExt;

use super::{listed, select, MethodPolicy};
use crate::directory::Directory;
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult};

pub(super) async fn invoke(
    dir: &Arc<Directory>,
    policy: &MethodPolicy,
    inv: &Invocation,
) -> Result<RpcResult, RpcError> {
    let invokers = listed(dir, inv)?;
    let forks = if policy.forks == 0 || policy.forks >= invokers.len() {
        invokers.to_vec()
    } else {
        let mut chosen: Vec<Arc<dyn Invoker>> = Vec::with_capacity(policy.forks);
        while chosen.len() < policy.forks {
            let next = select::pick(dir, policy, inv, &invokers, &chosen)?;
            if chosen.iter().any(|c| Arc::ptr_eq(c, &next)) {
                break;
            }
            chosen.push(next);
        }
        chosen
    };
    let calls: Vec<_> = forks.iter().map(|i| i.invoke(inv).boxed()).collect();
    let outcome = select_ok(calls).await;
    outcome.map(|(r, _still_running)| r)
}
