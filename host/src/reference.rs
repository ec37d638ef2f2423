//! A reference: one configured remote interface, composed here from its provider invokers,
//! and the `invoke` entry point the Wasm bindings call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::ReferenceConfig;
use crate::protocol::dubbo::{ConnectionConfig, ConnectionPool, DubboInvoker, ExchangeClient};
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// One remote Dubbo interface a guest can call.
pub struct Reference {
    id: String,
    service: ServiceKey,
    wit: Option<String>,
    invokers: Vec<DubboInvoker>,
    next: AtomicUsize,
    lazy: bool,
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
        let defaults = ConnectionConfig::default();
        let conn_cfg = ConnectionConfig {
            connect_timeout: cfg
                .connect_timeout
                .map_or(defaults.connect_timeout, Duration::from_millis),
            heartbeat: cfg
                .heartbeat
                .map_or(defaults.heartbeat, Duration::from_millis),
            payload: cfg.payload.unwrap_or(defaults.payload),
        };
        let own_connections = cfg.connections.unwrap_or(0) as usize;
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
            let clients = if own_connections == 0 {
                vec![pool.client(&url.address(), &conn_cfg)]
            } else {
                (0..own_connections)
                    .map(|_| Arc::new(ExchangeClient::new(url.address(), conn_cfg.clone())))
                    .collect()
            };
            invokers.push(DubboInvoker::new(url, service.clone(), clients));
        }
        Ok(Reference {
            id: cfg.id.clone(),
            service,
            wit: cfg.wit.clone(),
            invokers,
            next: AtomicUsize::new(0),
            lazy: cfg.lazy.unwrap_or(false),
        })
    }

    /// Opens the connections of a non-`lazy` reference in the background, so the first call
    /// does not pay for the connect. Failures are logged; calls reconnect on demand.
    pub fn connect_eagerly(&self) {
        if self.lazy {
            return;
        }
        for invoker in &self.invokers {
            invoker.connect_in_background();
        }
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

    /// Opens the connections of every non-`lazy` reference in the background.
    pub fn connect_eagerly(&self) {
        for r in self.by_id.values() {
            r.connect_eagerly();
        }
    }

    /// Every reference, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Reference>> {
        self.by_id.values()
    }
}
