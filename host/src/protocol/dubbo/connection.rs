//! One TCP connection to a provider: requests multiplexed by id with out-of-order replies,
//! a writer task that batches queued frames into one write, a reader task that splits frames,
//! completes waiting calls, answers the provider's heartbeats and follows read-only events, and
//! a heartbeat sent when the connection has been read-idle for `heartbeat`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::frame::{split_frame, status, Frame, DEFAULT_PAYLOAD};
use super::message::{
    decode_event, decode_response, encode_heartbeat_request, encode_heartbeat_response,
    encode_request, status_error, Event,
};
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};

/// Settings of one connection, from the reference's URL parameters.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `connect.timeout`, default 3 s.
    pub connect_timeout: Duration,
    /// `heartbeat`: read-idle time before a heartbeat is sent, default 60 s.
    pub heartbeat: Duration,
    /// `payload`: largest body accepted or sent, default 8 MiB.
    pub payload: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            connect_timeout: Duration::from_millis(3000),
            heartbeat: Duration::from_millis(60_000),
            payload: DEFAULT_PAYLOAD,
        }
    }
}

/// Frames queued for the writer task before callers wait for room.
const WRITE_QUEUE: usize = 4096;
/// The writer stops gathering queued frames into one write past this many bytes.
const WRITE_BATCH: usize = 256 * 1024;

type Waiter = oneshot::Sender<Result<Frame, RpcError>>;

/// State shared by the connection handle and its reader task.
struct Shared {
    addr: String,
    pending: Mutex<HashMap<u64, Waiter>>,
    closed: AtomicBool,
    read_only: AtomicBool,
}

impl Shared {
    fn fail_all(&self, why: &str) {
        self.closed.store(true, Ordering::Release);
        let waiters: Vec<Waiter> = match self.pending.lock() {
            Ok(mut p) => p.drain().map(|(_, w)| w).collect(),
            Err(_) => return,
        };
        for w in waiters {
            let _ = w.send(Err(RpcError::Network(format!(
                "connection to {} closed: {why}",
                self.addr
            ))));
        }
    }
}

/// A live connection to one provider address.
pub struct Connection {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    writer: mpsc::Sender<BytesMut>,
    payload: usize,
    tasks: [JoinHandle<()>; 2],
}

impl Connection {
    /// Connects to `addr` (`host:port`) within the configured connect timeout.
    pub async fn connect(addr: &str, cfg: &ConnectionConfig) -> Result<Connection, RpcError> {
        let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                RpcError::Network(format!(
                    "connecting to {addr} timed out after {} ms",
                    cfg.connect_timeout.as_millis()
                ))
            })?
            .map_err(|e| RpcError::Network(format!("cannot connect to {addr}: {e}")))?;
        // Small request/response frames: Nagle would add up to 40 ms per call.
        stream
            .set_nodelay(true)
            .map_err(|e| RpcError::Network(format!("cannot set TCP_NODELAY on {addr}: {e}")))?;
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(write_loop(wr, rx, shared.clone()));
        let reader = tokio::spawn(read_loop(rd, tx.clone(), shared.clone(), cfg.clone()));
        tracing::debug!(provider = addr, "connected");
        Ok(Connection {
            shared,
            next_id: AtomicU64::new(1),
            writer: tx,
            payload: cfg.payload,
            tasks: [writer, reader],
        })
    }

    /// The provider address this connection goes to.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Whether the connection is open and the provider has not announced read-only.
    pub fn is_available(&self) -> bool {
        !self.is_closed() && !self.shared.read_only.load(Ordering::Acquire)
    }

    /// Whether the connection has ended and must be replaced.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends one two-way invocation and waits up to `timeout` for its reply.
    pub async fn invoke(
        &self,
        service: &ServiceKey,
        inv: &Invocation,
        timeout: Duration,
    ) -> Result<RpcResult, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::new();
        encode_request(
            &mut frame,
            id,
            true,
            service,
            inv,
            timeout.as_millis() as u64,
        );
        if frame.len() - super::frame::HEADER_LEN > self.payload {
            return Err(RpcError::LimitExceeded(format!(
                "request {}.{} is {} bytes, over the payload limit of {} bytes",
                service.interface,
                inv.method,
                frame.len(),
                self.payload
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.pending()?.insert(id, tx);
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = tokio::time::timeout_at(deadline, self.writer.send(frame)).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.forget(id);
            return Err(match sent {
                Err(_) => status_error(
                    status::CLIENT_TIMEOUT,
                    self.timeout_message(service, inv, timeout, "was never sent"),
                ),
                _ => RpcError::Network(format!("connection to {} is closed", self.addr())),
            });
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(frame))) => decode_response(&frame.header, &frame.body),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(RpcError::Network(format!(
                "connection to {} closed while waiting for a reply",
                self.addr()
            ))),
            Err(_) => {
                self.forget(id);
                Err(status_error(
                    status::SERVER_TIMEOUT,
                    self.timeout_message(service, inv, timeout, "got no reply"),
                ))
            }
        }
    }

    fn timeout_message(
        &self,
        service: &ServiceKey,
        inv: &Invocation,
        timeout: Duration,
        what: &str,
    ) -> String {
        format!(
            "{service}.{} on {} {what} within {} ms",
            inv.method,
            self.addr(),
            timeout.as_millis()
        )
    }

    fn pending(&self) -> Result<std::sync::MutexGuard<'_, HashMap<u64, Waiter>>, RpcError> {
        self.shared
            .pending
            .lock()
            .map_err(|_| RpcError::Other("connection state poisoned".to_string()))
    }

    fn forget(&self, id: u64) {
        if let Ok(mut p) = self.shared.pending.lock() {
            p.remove(&id);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.fail_all("connection dropped");
    }
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<BytesMut>, shared: Arc<Shared>) {
    let mut batch = BytesMut::with_capacity(8 * 1024);
    while let Some(first) = rx.recv().await {
        batch.unsplit(first);
        // Gather what queued up meanwhile: one syscall for many frames under load.
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&batch).await {
            tracing::warn!(provider = %shared.addr, error = %e, "write failed; closing connection");
            shared.fail_all(&format!("write failed: {e}"));
            return;
        }
        batch.clear();
    }
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    writer: mpsc::Sender<BytesMut>,
    shared: Arc<Shared>,
    cfg: ConnectionConfig,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut idle_rounds = 0u32;
    let mut heartbeat_id = u64::MAX / 2;
    let why = loop {
        match split_frame(&mut buf, cfg.payload) {
            Ok(Some(frame)) => {
                idle_rounds = 0;
                handle_frame(frame, &writer, &shared).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(provider = %shared.addr, error = %e, "bad frame; closing connection");
                break format!("bad frame: {e}");
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        match tokio::time::timeout(cfg.heartbeat, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) => break "closed by the provider".to_string(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => break format!("read failed: {e}"),
            Err(_) => {
                idle_rounds += 1;
                // Dubbo's heartbeat.timeout: three silent heartbeat periods mean a dead peer.
                if idle_rounds >= 3 {
                    break format!(
                        "no data for {} ms (3 heartbeats)",
                        3 * cfg.heartbeat.as_millis()
                    );
                }
                let mut hb = BytesMut::new();
                heartbeat_id = heartbeat_id.wrapping_add(1);
                encode_heartbeat_request(&mut hb, heartbeat_id);
                if writer.send(hb).await.is_err() {
                    break "writer ended".to_string();
                }
            }
        }
    };
    tracing::debug!(provider = %shared.addr, reason = %why, "connection ended");
    shared.fail_all(&why);
}

async fn handle_frame(frame: Frame, writer: &mpsc::Sender<BytesMut>, shared: &Shared) {
    let h = frame.header;
    if h.is_event() {
        match decode_event(&frame.body) {
            Ok(Event::Heartbeat) if h.is_request() && h.is_two_way() => {
                let mut reply = BytesMut::new();
                encode_heartbeat_response(&mut reply, h.id);
                let _ = writer.send(reply).await;
            }
            Ok(Event::Heartbeat) => {}
            Ok(Event::ReadOnly) => {
                tracing::info!(provider = %shared.addr, "provider is read-only (shutting down)");
                shared.read_only.store(true, Ordering::Release);
            }
            Ok(Event::Writable) => shared.read_only.store(false, Ordering::Release),
            Ok(Event::Other(e)) => {
                tracing::debug!(provider = %shared.addr, event = %e, "ignoring unknown event")
            }
            Err(e) => tracing::warn!(provider = %shared.addr, error = %e, "undecodable event"),
        }
        return;
    }
    if h.is_request() {
        tracing::warn!(provider = %shared.addr, id = h.id, "ignoring a request sent by a provider");
        return;
    }
    let waiter = shared.pending.lock().ok().and_then(|mut p| p.remove(&h.id));
    match waiter {
        Some(w) => {
            let _ = w.send(Ok(frame));
        }
        None => {
            tracing::debug!(provider = %shared.addr, id = h.id, "reply for a call that already timed out")
        }
    }
}
