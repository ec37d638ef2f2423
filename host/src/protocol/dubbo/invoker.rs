//! The invoker for one `dubbo://` provider: a provider URL bound to its exchange clients (one
//! shared client, or the reference's own `connections`), taken in turn per call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::client::ExchangeClient;
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// Calls one provider of one service.
pub struct DubboInvoker {
    url: Url,
    service: ServiceKey,
    clients: Vec<Arc<ExchangeClient>>,
    next: AtomicUsize,
    timeout: Duration,
}

impl DubboInvoker {
    /// Binds `url` (the provider, with consumer parameters merged) to `clients` (at least one).
    pub fn new(url: Url, service: ServiceKey, clients: Vec<Arc<ExchangeClient>>) -> Self {
        let timeout = Duration::from_millis(url.param_u64("timeout", 1000));
        DubboInvoker {
            url,
            service,
            clients,
            next: AtomicUsize::new(0),
            timeout,
        }
    }

    /// The provider URL this invoker calls.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the provider can take a call now: some connection is usable.
    pub fn is_available(&self) -> bool {
        self.clients.iter().any(|c| c.is_available())
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

    /// Sends `inv` to the provider and waits for the reply within the `timeout` parameter.
    pub async fn invoke(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        let n = self.clients.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let client = (0..n)
            .map(|i| &self.clients[(start + i) % n])
            .find(|c| c.is_available())
            .unwrap_or(&self.clients[start % n]);
        let conn = client.connection().await?;
        conn.invoke(&self.service, inv, self.timeout).await
    }
}
