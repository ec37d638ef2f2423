//! The invoker for one `dubbo://` provider: a provider URL (consumer settings merged) bound to
//! its exchange clients — one shared client, or the reference's own `connections` — taken in
//! turn per call, with the per-method `timeout` resolved once at construction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::pool::SharedClient;
use crate::rpc::{BoxFuture, CallStats, Invocation, Invoker, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// Dubbo's default call timeout.
const DEFAULT_TIMEOUT_MS: u64 = 1000;

/// Calls one provider of one service.
pub struct DubboInvoker {
    url: Url,
    service: ServiceKey,
    clients: Vec<Arc<SharedClient>>,
    next: AtomicUsize,
    timeout: Duration,
    method_timeouts: HashMap<String, Duration>,
    stats: CallStats,
}

impl DubboInvoker {
    /// Binds `url` (the provider, with consumer parameters merged) to `clients`; an empty
    /// list is refused by giving the invoker nothing to call (it reports unavailable).
    pub fn new(url: Url, service: ServiceKey, clients: Vec<Arc<SharedClient>>) -> Self {
        let timeout = Duration::from_millis(url.param_u64("timeout", DEFAULT_TIMEOUT_MS));
        let method_timeouts = url
            .params
            .iter()
            .filter_map(|(k, v)| {
                let method = k.strip_suffix(".timeout")?;
                let ms = v.trim().parse().ok()?;
                Some((method.to_string(), Duration::from_millis(ms)))
            })
            .collect();
        DubboInvoker {
            url,
            service,
            clients,
            next: AtomicUsize::new(0),
            timeout,
            method_timeouts,
            stats: CallStats::default(),
        }
    }

    /// Starts connecting every client without waiting.
    pub fn connect_in_background(&self) {
        for client in &self.clients {
            let client = client.clone();
            tokio::spawn(async move {
                let _ = client.connection().await;
            });
        }
    }

    /// The timeout of `method`: its own `method.timeout`, else the reference's.
    pub fn timeout_for(&self, method: &str) -> Duration {
        self.method_timeouts
            .get(method)
            .copied()
            .unwrap_or(self.timeout)
    }

    async fn call(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        let n = self.clients.len();
        if n == 0 {
            return Err(RpcError::Network(format!(
                "no connection configured for {}",
                self.url.address()
            )));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let client = (0..n)
            .map(|i| &self.clients[(start + i) % n])
            .find(|c| c.is_available())
            .unwrap_or(&self.clients[start % n]);
        let conn = client.connection().await?;
        let active = self.stats.begin();
        let result = conn
            .invoke(&self.service, inv, self.timeout_for(&inv.method))
            .await;
        // A business exception is a completed call, as Dubbo's RpcStatus counts it.
        active.finish(matches!(
            &result,
            Ok(_) | Err(RpcError::BizException { .. })
        ));
        result
    }
}

impl Invoker for DubboInvoker {
    fn url(&self) -> &Url {
        &self.url
    }

    fn is_available(&self) -> bool {
        self.clients.iter().any(|c| c.is_available())
    }

    fn stats(&self) -> &CallStats {
        &self.stats
    }

    fn invoke<'a>(&'a self, inv: &'a Invocation) -> BoxFuture<'a, Result<RpcResult, RpcError>> {
        Box::pin(self.call(inv))
    }

    fn connections(&self) -> (usize, usize) {
        let open = self.clients.iter().filter(|c| c.is_connected()).count();
        (open, self.clients.len())
    }
}
