//! The invoker for one `dubbo://` provider: a provider URL bound to a shared exchange client.

use std::sync::Arc;
use std::time::Duration;

use super::client::ExchangeClient;
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// Calls one provider of one service.
pub struct DubboInvoker {
    url: Url,
    service: ServiceKey,
    client: Arc<ExchangeClient>,
    timeout: Duration,
}

impl DubboInvoker {
    /// Binds `url` (the provider, with consumer parameters merged) to `client`.
    pub fn new(url: Url, service: ServiceKey, client: Arc<ExchangeClient>) -> Self {
        let timeout = Duration::from_millis(url.param_u64("timeout", 1000));
        DubboInvoker {
            url,
            service,
            client,
            timeout,
        }
    }

    /// The provider URL this invoker calls.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the provider can take a call now.
    pub fn is_available(&self) -> bool {
        self.client.is_available()
    }

    /// Sends `inv` to the provider and waits for the reply within the `timeout` parameter.
    pub async fn invoke(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        let conn = self.client.connection().await?;
        conn.invoke(&self.service, inv, self.timeout).await
    }
}
