//! Connections shared per provider address (Dubbo's `shareconnections`, default 1): a
//! `SharedClient` owns the current connection to one address, replaces it when it dies and
//! backs off after a failed connect, so a dead address is never dialled in a tight loop. Once
//! used, a client keeps its connection up in the background like Dubbo's reconnect timer: a
//! provider whose connection dropped reports unavailable, so clusters send its calls
//! elsewhere, and comes back as soon as it accepts again — without waiting for a call that
//! would not be routed to it. The pool hands out one client per address and forgets it when no
//! invoker holds it any more (which also ends its reconnecting).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::connection::ConnectionConfig;
use super::exchange::Exchange;
use crate::rpc::RpcError;

/// Least time between two connect attempts to one address, and the period of the
/// background reconnect check.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(1000);
/// A provider that stays unreachable is logged at warn level once per this many attempts.
const WARN_EVERY: u32 = 60;

/// The (re)connecting owner of the connection to one provider address.
pub struct SharedClient {
    addr: String,
    cfg: ConnectionConfig,
    /// Read by every call without a lock (an atomic load); written only on connect.
    current: ArcSwapOption<Exchange>,
    /// Serializes connect attempts so a burst of calls dials once.
    connecting: tokio::sync::Mutex<Option<(Instant, RpcError)>>,
    /// Whether the last connect attempt failed (no connection since).
    failed: AtomicBool,
    /// Connect attempts failed in a row, for log throttling.
    failures: AtomicU32,
    /// Whether the background reconnect task runs.
    reconnecting: AtomicBool,
}

impl SharedClient {
    /// A client for `addr`; it connects on first use (Dubbo's `lazy` behaviour) or on `connect`.
    pub fn new(addr: String, cfg: ConnectionConfig) -> Self {
        SharedClient {
            addr,
            cfg,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(None),
            failed: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            reconnecting: AtomicBool::new(false),
        }
    }

    /// The provider address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn live(&self) -> Option<Arc<Exchange>> {
        self.current.load_full().filter(|c| !c.is_closed())
    }

    /// Whether a call may be sent now: connected and not read-only, or never tried (a lazy
    /// client). A dropped connection or a failed connect makes it unavailable until the
    /// background reconnect (or a call) connects again.
    pub fn is_available(&self) -> bool {
        match self.current.load().as_deref() {
            Some(c) => c.is_available(),
            None => !self.failed.load(Ordering::Relaxed),
        }
    }

    /// The last connect failure, while there is no connection since.
    pub fn last_failure(&self) -> Option<RpcError> {
        if !self.failed.load(Ordering::Relaxed) {
            return None;
        }
        self.connecting
            .try_lock()
            .ok()
            .and_then(|f| f.as_ref().map(|(_, e)| e.clone()))
    }

    /// Whether a connection is open now (it may be read-only).
    pub fn is_connected(&self) -> bool {
        self.live().is_some()
    }

    /// The live connection, connecting first if there is none. The first call also starts
    /// the background reconnect.
    pub async fn connection(self: &Arc<Self>) -> Result<Arc<Exchange>, RpcError> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        self.keep_connected();
        self.connect().await
    }

    async fn connect(&self) -> Result<Arc<Exchange>, RpcError> {
        let mut last_failure = self.connecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        if let Some((at, err)) = last_failure.as_ref() {
            if at.elapsed() < RECONNECT_BACKOFF {
                return Err(err.clone());
            }
        }
        match Exchange::connect(&self.addr, &self.cfg).await {
            Ok(c) => {
                let c = Arc::new(c);
                self.current.store(Some(c.clone()));
                *last_failure = None;
                self.failed.store(false, Ordering::Relaxed);
                if self.failures.swap(0, Ordering::Relaxed) > 0 {
                    tracing::info!(provider = %self.addr, "reconnected");
                }
                Ok(c)
            }
            Err(e) => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(WARN_EVERY) {
                    tracing::warn!(provider = %self.addr, error = %e, attempts = n + 1, "connect failed; retrying every second while the provider is listed");
                } else {
                    tracing::debug!(provider = %self.addr, error = %e, attempts = n + 1, "connect failed");
                }
                self.current.store(None);
                self.failed.store(true, Ordering::Relaxed);
                *last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Starts, once, the task that reconnects every [`RECONNECT_BACKOFF`] while the
    /// connection is down; it ends when the client is dropped.
    fn keep_connected(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RECONNECT_BACKOFF);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(client) = weak.upgrade() else { return };
                if client.live().is_none() {
                    let _ = client.connect().await;
                }
            }
        });
    }
}

/// One shared client per provider address, held weakly: when the last invoker using an
/// address goes, its connection closes.
#[derive(Default)]
pub struct ConnectionPool {
    clients: Mutex<HashMap<String, Weak<SharedClient>>>,
}

impl ConnectionPool {
    /// The shared client for `addr`, created with `cfg` if none is alive.
    pub fn client(&self, addr: &str, cfg: &ConnectionConfig) -> Arc<SharedClient> {
        let Ok(mut clients) = self.clients.lock() else {
            return Arc::new(SharedClient::new(addr.to_string(), cfg.clone()));
        };
        if let Some(c) = clients.get(addr).and_then(Weak::upgrade) {
            return c;
        }
        clients.retain(|_, w| w.strong_count() > 0);
        let c = Arc::new(SharedClient::new(addr.to_string(), cfg.clone()));
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
        let client = Arc::new(SharedClient::new(
            "127.0.0.1:1".to_string(),
            ConnectionConfig::default(),
        ));
        assert!(client.is_available(), "never tried: available");
        let first = client.connection().await.err().expect("refused");
        let started = Instant::now();
        let second = client.connection().await.err().expect("still refused");
        assert_eq!(first, second, "second call reuses the recorded failure");
        assert!(started.elapsed() < RECONNECT_BACKOFF);
        assert!(
            !client.is_available(),
            "a failed connect makes it unavailable"
        );
    }

    #[tokio::test]
    async fn a_dropped_connection_comes_back_in_the_background_without_a_call() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("addr");
        let client = Arc::new(SharedClient::new(
            addr.to_string(),
            ConnectionConfig::default(),
        ));
        let (connected, accepted) = tokio::join!(client.connection(), listener.accept());
        connected.expect("connected");
        let (server_side, _) = accepted.expect("accept");
        assert!(client.is_available());
        // The provider goes away: its end of the connection and its listener close.
        drop((server_side, listener));
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.is_available() {
            assert!(
                Instant::now() < deadline,
                "a closed connection stays available"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // It listens again at the same address; no call is made, yet the client reconnects.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("listen again");
        let (_server_side, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the client redials within a few seconds")
            .expect("accept");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !client.is_available() {
            assert!(Instant::now() < deadline, "reconnected but not available");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
