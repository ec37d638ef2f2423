//! Connections shared per provider address (Dubbo's `shareconnections`, default 1): a
//! `SharedClient` owns the current connection to one address, replaces it when it dies and
//! backs off after a failed connect, so a dead address is never dialled in a tight loop. Once
//! used, a client keeps its connection up in the background like Dubbo's reconnect timer: a
//! provider whose connection dropped reports unavailable, so clusters send its calls
//! elsewhere, and comes back as soon as it accepts again — without waiting for a call that
//! would not be routed to it. The pool hands out one client per address and forgets it when no
//! invoker holds it any more (which also ends its reconnecting).
//!
//! A thread that serves HTTP on a runtime of its own (a *lane*, see [`set_lane`]) gets a
//! connection of its own to each provider, opened from that thread: the connection's reader,
//! flusher and timeout tasks then run on the same thread as the guests calling through it, and
//! a reply wakes its caller without crossing to another thread. Everything else (the main
//! runtime: `bench`, jobs) shares lane 0's connection, as before; the background reconnect
//! keeps the lane of the first call.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::connection::ConnectionConfig;
use super::exchange::Exchange;
use crate::config::MAX_HTTP_THREADS;
use crate::rpc::RpcError;

/// Least time between two connect attempts to one address, and the period of the
/// background reconnect check.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(1000);
/// A provider that stays unreachable is logged at warn level once per this many attempts.
const WARN_EVERY: u32 = 60;

/// Lanes with a connection of their own: lane 0 (every thread that is not a serving thread)
/// and one per serving thread (`[http] threads`, at most [`MAX_HTTP_THREADS`]); a lane beyond
/// shares lane 0's.
pub const LANES: usize = MAX_HTTP_THREADS + 1;

thread_local! {
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread lane `lane`: connections it opens from now on are its own. Called
/// once by each thread that serves HTTP on a single-threaded runtime, before it serves; lane 0
/// (the default) is every other thread's. Every task of a lane must run on that one thread.
pub fn set_lane(lane: usize) {
    let lane = if lane < LANES { lane } else { 0 };
    LANE.with(|l| l.set(lane));
    IN_USE.fetch_max(lane + 1, Ordering::Relaxed);
}

/// How many lanes, from lane 0, any thread has been: only those can hold a connection, so
/// only those are read when a client's state is asked for on every call.
static IN_USE: AtomicUsize = AtomicUsize::new(1);

/// The calling thread's lane.
fn lane() -> usize {
    LANE.with(Cell::get)
}

/// The (re)connecting owner of the connection to one provider address.
pub struct SharedClient {
    addr: String,
    cfg: ConnectionConfig,
    /// The connection of each lane, read by every call without a lock (an atomic load);
    /// written only on connect.
    lanes: Box<[ArcSwapOption<Exchange>]>,
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
            lanes: (0..LANES).map(|_| ArcSwapOption::empty()).collect(),
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

    /// `lane`'s open connection.
    fn live(&self, lane: usize) -> Option<Arc<Exchange>> {
        self.lanes[lane].load_full().filter(|c| !c.is_closed())
    }

    /// The lanes that may hold a connection: those some thread has been.
    fn used(&self) -> &[ArcSwapOption<Exchange>] {
        let n = IN_USE.load(Ordering::Relaxed).min(self.lanes.len());
        &self.lanes[..n]
    }

    /// Whether any lane has an open connection.
    fn any_live(&self) -> bool {
        self.used()
            .iter()
            .any(|l| l.load().as_deref().is_some_and(|c| !c.is_closed()))
    }

    /// Whether a call may be sent now: connected and not read-only, or never tried (a lazy
    /// client). A dropped connection or a failed connect makes it unavailable until the
    /// background reconnect (or a call) connects again. With connections on several lanes,
    /// the open ones decide (all of them not read-only); a lane without one opens it on its
    /// next call.
    pub fn is_available(&self) -> bool {
        let mut open = false;
        let mut dropped = false;
        for l in self.used() {
            match l.load().as_deref() {
                Some(c) if !c.is_closed() => {
                    open = true;
                    if !c.is_available() {
                        return false;
                    }
                }
                Some(_) => dropped = true,
                None => {}
            }
        }
        open || (!dropped && !self.failed.load(Ordering::Relaxed))
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
        self.any_live()
    }

    /// The calling thread's lane's live connection, connecting first if there is none. The
    /// first call also starts the background reconnect.
    pub async fn connection(self: &Arc<Self>) -> Result<Arc<Exchange>, RpcError> {
        let lane = lane();
        if let Some(c) = self.live(lane) {
            return Ok(c);
        }
        self.keep_connected();
        self.connect(lane).await
    }

    /// Connects `lane`, from the thread of that lane (its tasks are spawned here).
    async fn connect(&self, lane: usize) -> Result<Arc<Exchange>, RpcError> {
        let mut last_failure = self.connecting.lock().await;
        if let Some(c) = self.live(lane) {
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
                self.lanes[lane].store(Some(c.clone()));
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
                self.lanes[lane].store(None);
                self.failed.store(true, Ordering::Relaxed);
                *last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Starts, once, the task that reconnects every [`RECONNECT_BACKOFF`] while no lane has a
    /// connection; it reconnects the lane of the runtime it runs on (the first caller's) and
    /// ends when the client is dropped.
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
                if !client.any_live() {
                    let _ = client.connect(lane()).await;
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

    /// Runs `f` on a new thread made lane `lane`, on a single-threaded runtime of its own
    /// that stops when `f` is done, as a serving thread's does when the host stops serving.
    fn on_lane<T: Send + 'static>(
        lane: usize,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        std::thread::spawn(move || {
            set_lane(lane);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("lane thread")
    }

    #[test]
    fn each_lane_opens_a_connection_of_its_own_and_keeps_using_it() {
        let main = tokio::runtime::Runtime::new().expect("runtime");
        let listener = main
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
        main.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = accepted_tx.send(stream);
            }
        });
        let client = Arc::new(SharedClient::new(
            addr.to_string(),
            ConnectionConfig::default(),
        ));
        let shared = main.block_on(client.connection()).expect("lane 0");
        let twice = |lane| {
            let client = client.clone();
            on_lane(lane, async move {
                let first = client.connection().await.expect("connected");
                let again = client.connection().await.expect("connected");
                assert!(Arc::ptr_eq(&first, &again), "lane {lane} reconnected");
                first
            })
        };
        let one = twice(1);
        let two = twice(2);
        assert!(
            !Arc::ptr_eq(&shared, &one),
            "lane 1 used lane 0's connection"
        );
        assert!(!Arc::ptr_eq(&one, &two), "lanes 1 and 2 share a connection");
        // A lane past the last has no slot: it shares lane 0's connection.
        let beyond = twice(LANES);
        assert!(Arc::ptr_eq(&shared, &beyond));
        let provider_sides = main.block_on(async {
            let mut held = Vec::new();
            while let Ok(Some(s)) =
                tokio::time::timeout(Duration::from_millis(300), accepted.recv()).await
            {
                held.push(s);
            }
            held
        });
        assert_eq!(provider_sides.len(), 3, "one connection per lane");
        // Lanes 1 and 2 stopped with their threads' runtimes: their connections ended then,
        // and lane 0's, still open, keeps the provider available.
        assert!(
            one.is_closed() && two.is_closed(),
            "a stopped lane's connection stays open"
        );
        assert!(!shared.is_closed());
        assert!(client.is_available());
        // The provider goes away: with no connection open, it is unavailable.
        drop(provider_sides);
        main.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(5);
            while client.is_available() {
                assert!(
                    Instant::now() < deadline,
                    "every connection closed, yet available"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        assert!(!client.is_connected());
    }
}
