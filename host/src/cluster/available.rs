//! Available: the first provider that is available, without load balancing.

use std::sync::Arc;

use super::listed;
use crate::directory::Directory;
use crate::rpc::{Invocation, RpcError, RpcResult};

pub(super) async fn invoke(dir: &Arc<Directory>, inv: &Invocation) -> Result<RpcResult, RpcError> {
    let invokers = listed(dir, inv)?;
    match invokers.iter().find(|i| i.is_available()) {
        Some(i) => i.invoke(inv).await,
        None => Err(RpcError::NoProvider(format!(
            "none of the {} providers of {}.{} is available",
            invokers.len(),
            dir.service(),
            inv.method
        ))),
    }
}
