//! Broadcast: calls every provider in turn (e.g. to refresh caches everywhere) and fails with
//! the last error if any call failed.

use std::sync::Arc;

use super::listed;
use crate::directory::Directory;
use crate::rpc::{Invocation, RpcError, RpcResult};

pub(super) async fn invoke(dir: &Arc<Directory>, inv: &Invocation) -> Result<RpcResult, RpcError> {
    let invokers = listed(dir, inv)?;
    let mut last_ok = None;
    let mut last_err = None;
    for invoker in invokers.iter() {
        match invoker.invoke(inv).await {
            Ok(r) => last_ok = Some(r),
            Err(e) => {
                tracing::warn!(service = %dir.service(), method = %inv.method, provider = %invoker.url().address(), error = %e, "broadcast call failed");
                last_err = Some(e);
            }
        }
    }
    match (last_err, last_ok) {
        (Some(e), _) => Err(e),
        (None, Some(r)) => Ok(r),
        (None, None) => Err(RpcError::NoProvider(format!(
            "no provider available for {}.{}",
            dir.service(),
            inv.method
        ))),
    }
}
