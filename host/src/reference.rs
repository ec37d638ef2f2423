//! A reference: one configured remote interface, composed here from its provider invokers,
//! and the `invoke` entry point the Wasm bindings call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::ReferenceConfig;
use crate::protocol::dubbo::{ConnectionConfig, ConnectionPool, DubboInvoker};
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// One remote Dubbo interface a guest can call.
pub struct Reference {
    id: String,
    service: ServiceKey,
    wit: Option<String>,
    invokers: Vec<DubboInvoker>,
    next: AtomicUsize,
}

impl Reference {
    /// Builds the reference from its config, sharing connections through `pool`.
    /// Connections are opened on the first call.
    pub fn build(cfg: &ReferenceConfig, pool: &ConnectionPool) -> Result<Reference, RpcError> {
        let service = ServiceKey {
            interface: cfg.interface.clone(),
            version: cfg.version.clone(),
            group: cfg.group.clone(),
        };
        let conn_cfg = ConnectionConfig {
            connect_timeout: Duration::from_millis(cfg.connect_timeout.unwrap_or(3000)),
            ..ConnectionConfig::default()
        };
        let mut invokers = Vec::new();
        for raw in cfg.url.as_deref().unwrap_or("").split(';') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let mut url = Url::parse(raw)
                .map_err(|e| RpcError::Other(format!("reference {}: {e}", cfg.id)))?;
            if url.path.is_empty() {
                url.path = cfg.interface.clone();
            }
            // Consumer settings override the provider's, as Dubbo merges them.
            if let Some(t) = cfg.timeout {
                url.params.insert("timeout".to_string(), t.to_string());
            }
            let client = pool.client(&url.address(), &conn_cfg);
            invokers.push(DubboInvoker::new(url, service.clone(), client));
        }
        Ok(Reference {
            id: cfg.id.clone(),
            service,
            wit: cfg.wit.clone(),
            invokers,
            next: AtomicUsize::new(0),
        })
    }

    /// The reference's id in config.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The remote service.
    pub fn service(&self) -> &ServiceKey {
        &self.service
    }

    /// The WIT interface bound to this reference, if any.
    pub fn wit(&self) -> Option<&str> {
        self.wit.as_deref()
    }

    /// Calls the service on one available provider, taking providers in turn.
    pub async fn invoke(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        let n = self.invokers.len();
        if n == 0 {
            return Err(RpcError::NoProvider(format!(
                "no provider configured for {}",
                self.service
            )));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let invoker = (0..n)
            .map(|i| &self.invokers[(start + i) % n])
            .find(|i| i.is_available())
            .unwrap_or(&self.invokers[start % n]);
        invoker.invoke(inv).await
    }
}

/// All references of a host, by id.
#[derive(Default, Clone)]
pub struct References {
    by_id: Arc<std::collections::HashMap<String, Arc<Reference>>>,
}

impl References {
    /// Builds every configured reference over one shared connection pool.
    pub fn build(cfgs: &[ReferenceConfig], pool: &ConnectionPool) -> Result<References, RpcError> {
        let mut by_id = std::collections::HashMap::new();
        for c in cfgs {
            by_id.insert(c.id.clone(), Arc::new(Reference::build(c, pool)?));
        }
        Ok(References {
            by_id: Arc::new(by_id),
        })
    }

    /// The reference with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Reference>> {
        self.by_id.get(id)
    }

    /// Every reference, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Reference>> {
        self.by_id.values()
    }
}
