//! Connections shared per provider address (Dubbo's `shareconnections`, default 1): an
//! `ExchangeClient` owns the current connection to one address, replaces it when it dies and
//! backs off after a failed connect, so a dead address is never dialled in a tight loop. The
//! pool hands out one client per address and forgets it when no invoker holds it any more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::connection::{Connection, ConnectionConfig};
use crate::rpc::RpcError;

/// Least time between two connect attempts to one address.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(1000);

/// The (re)connecting owner of the connection to one provider address.
pub struct ExchangeClient {
    addr: String,
    cfg: ConnectionConfig,
    current: Mutex<Option<Arc<Connection>>>,
    /// Serializes connect attempts so a burst of calls dials once.
    connecting: tokio::sync::Mutex<Option<(Instant, RpcError)>>,
}

impl ExchangeClient {
    /// A client for `addr`; it connects on first use (Dubbo's `lazy` behaviour) or on `connect`.
    pub fn new(addr: String, cfg: ConnectionConfig) -> Self {
        ExchangeClient {
            addr,
            cfg,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(None),
        }
    }

    /// The provider address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn live(&self) -> Option<Arc<Connection>> {
        let cur = self.current.lock().ok()?;
        cur.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// Whether a call may be sent now: connected and not read-only, or not yet tried.
    pub fn is_available(&self) -> bool {
        match self.current.lock() {
            Ok(cur) => cur.as_ref().is_none_or(|c| c.is_available()),
            Err(_) => false,
        }
    }

    /// Whether a connection is open now (it may be read-only).
    pub fn is_connected(&self) -> bool {
        self.live().is_some()
    }

    /// The live connection, connecting first if there is none.
    pub async fn connection(&self) -> Result<Arc<Connection>, RpcError> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let mut last_failure = self.connecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        if let Some((at, err)) = last_failure.as_ref() {
            if at.elapsed() < RECONNECT_BACKOFF {
                return Err(err.clone());
            }
        }
        match Connection::connect(&self.addr, &self.cfg).await {
            Ok(c) => {
                let c = Arc::new(c);
                if let Ok(mut cur) = self.current.lock() {
                    *cur = Some(c.clone());
                }
                *last_failure = None;
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(provider = %self.addr, error = %e, "connect failed");
                *last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }
}

/// One shared client per provider address, held weakly: when the last invoker using an
/// address goes, its connection closes.
#[derive(Default)]
pub struct ConnectionPool {
    clients: Mutex<HashMap<String, Weak<ExchangeClient>>>,
}

impl ConnectionPool {
    /// The shared client for `addr`, created with `cfg` if none is alive.
    pub fn client(&self, addr: &str, cfg: &ConnectionConfig) -> Arc<ExchangeClient> {
        let Ok(mut clients) = self.clients.lock() else {
            return Arc::new(ExchangeClient::new(addr.to_string(), cfg.clone()));
        };
        if let Some(c) = clients.get(addr).and_then(Weak::upgrade) {
            return c;
        }
        clients.retain(|_, w| w.strong_count() > 0);
        let c = Arc::new(ExchangeClient::new(addr.to_string(), cfg.clone()));
        clients.insert(addr.to_string(), Arc::downgrade(&c));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_shares_one_client_per_address_while_it_is_used() {
        let pool = ConnectionPool::default();
        let cfg = ConnectionConfig::default();
        let a = pool.client("127.0.0.1:1", &cfg);
        let b = pool.client("127.0.0.1:1", &cfg);
        assert!(Arc::ptr_eq(&a, &b));
        let other = pool.client("127.0.0.1:2", &cfg);
        assert!(!Arc::ptr_eq(&a, &other));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(weak.upgrade().is_none(), "unused client must be released");
    }

    #[tokio::test]
    async fn failed_connect_is_not_retried_within_the_backoff() {
        // Port 1 on loopback is closed: connect fails fast with "refused".
        let client = ExchangeClient::new("127.0.0.1:1".to_string(), ConnectionConfig::default());
        let first = client.connection().await.err().expect("refused");
        let started = Instant::now();
        let second = client.connection().await.err().expect("still refused");
        assert_eq!(first, second, "second call reuses the recorded failure");
        assert!(started.elapsed() < RECONNECT_BACKOFF);
    }
}
