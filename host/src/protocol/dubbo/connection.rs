//! One TCP connection to a provider, as a transport: it reads and writes Dubbo frames and
//! nothing else. A writer task batches queued frames into one write; a reader task splits the
//! byte stream into frames (the header checked before the body arrives) and hands each to the
//! connection's [`Inbound`] side, which also hears when the connection has been read-idle for
//! the heartbeat period and when it ends. Request ids, replies and events are the exchange's
//! business (`exchange.rs`).
//!
//! A provider is outside the host's trust boundary, so neither direction may hang on it: a
//! frame that has started must be whole within the connection's stall limit (the `read-stall`
//! setting, or the longest timeout of the calls made on it when that is shorter), and a write
//! must finish within the same limit; otherwise the connection is closed, its calls fail with
//! `network` (failover retries them elsewhere) and the pool connects again. A frame the
//! [`Inbound`] side finds to be a protocol violation closes the connection too.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::frame::{split_frame, Frame, DEFAULT_PAYLOAD};
use crate::rpc::RpcError;

/// Settings of one connection, from the reference's URL parameters.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `connect.timeout`, default 3 s.
    pub connect_timeout: Duration,
    /// `heartbeat`: read-idle time before a heartbeat is sent, default 60 s.
    pub heartbeat: Duration,
    /// `payload`: largest body accepted or sent, default 8 MiB.
    pub payload: usize,
    /// `read-stall`: longest time a started frame may take to arrive whole, and a write may
    /// take to finish, default 3 s.
    pub read_stall: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            connect_timeout: Duration::from_millis(3000),
            heartbeat: Duration::from_millis(60_000),
            payload: DEFAULT_PAYLOAD,
            read_stall: Duration::from_millis(DEFAULT_READ_STALL_MS),
        }
    }
}

/// Default of `read-stall`, in milliseconds.
pub const DEFAULT_READ_STALL_MS: u64 = 3000;

/// Frames queued for the writer task before callers wait for room.
const WRITE_QUEUE: usize = 4096;
/// The writer stops gathering queued frames into one write past this many bytes.
const WRITE_BATCH: usize = 256 * 1024;

/// One frame for the writer, and who waits for it to be written (Dubbo's `sent=true`).
pub struct Outgoing {
    pub frame: BytesMut,
    pub written: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Outgoing {
    /// A frame nobody waits for.
    pub fn frame(frame: BytesMut) -> Outgoing {
        Outgoing {
            frame,
            written: None,
        }
    }
}

/// Where frames go out: the writer task's queue. Cloned by whoever needs to write.
pub type Outbound = mpsc::Sender<Outgoing>;

/// What a connection's reader reports to the side that understands frames.
pub trait Inbound: Send + Sync + 'static {
    /// A whole frame arrived; `out` writes on the same connection (e.g. a heartbeat reply).
    /// An `Err` is a protocol violation, with what it was: the connection is closed.
    fn frame(
        &self,
        frame: Frame,
        out: &Outbound,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The connection has been read-idle for the heartbeat period, `rounds` times in a row;
    /// returning `false` ends the connection.
    fn idle(&self, rounds: u32, out: &Outbound) -> impl Future<Output = bool> + Send;
    /// The connection ended (closed, failed, stalled, or a bad frame), with why.
    fn closed(&self, why: &str);
}

/// How long a started frame or a write may take on one connection: `read-stall`, lowered to
/// the longest timeout of the calls made on the connection when that is shorter (a call
/// waiting on a frame that takes longer has given up anyway). Shared by the reader, the
/// writer and the exchange, which reports each call's timeout without a lock.
#[derive(Debug)]
pub struct StallLimit {
    read_stall_ms: u64,
    longest_call_ms: AtomicU64,
}

impl StallLimit {
    /// A limit of `read_stall` until calls report their timeouts.
    pub fn new(read_stall: Duration) -> StallLimit {
        StallLimit {
            read_stall_ms: (read_stall.as_millis() as u64).max(1),
            longest_call_ms: AtomicU64::new(0),
        }
    }

    /// A call with `timeout` is made on the connection.
    pub fn call(&self, timeout: Duration) {
        let ms = timeout.as_millis() as u64;
        if ms > self.longest_call_ms.load(Ordering::Relaxed) {
            self.longest_call_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }

    /// The limit now.
    pub fn get(&self) -> Duration {
        let calls = self.longest_call_ms.load(Ordering::Relaxed);
        let ms = if calls == 0 {
            self.read_stall_ms
        } else {
            self.read_stall_ms.min(calls.max(1))
        };
        Duration::from_millis(ms)
    }
}

/// A live TCP connection to one provider address.
pub struct Connection {
    addr: String,
    writer: Outbound,
    tasks: [JoinHandle<()>; 2],
}

impl Connection {
    /// Connects to `addr` (`host:port`) within the configured connect timeout and starts the
    /// reader and writer, which report to `inbound`.
    pub async fn open<I: Inbound>(
        addr: &str,
        cfg: &ConnectionConfig,
        stall: Arc<StallLimit>,
        inbound: Arc<I>,
    ) -> Result<Connection, RpcError> {
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
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(write_loop(
            wr,
            rx,
            addr.to_string(),
            stall.clone(),
            inbound.clone(),
        ));
        let reader = tokio::spawn(read_loop(
            rd,
            tx.clone(),
            addr.to_string(),
            inbound,
            cfg.clone(),
            stall,
        ));
        tracing::debug!(provider = addr, "connected");
        Ok(Connection {
            addr: addr.to_string(),
            writer: tx,
            tasks: [writer, reader],
        })
    }

    /// The provider address this connection goes to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The writer's queue.
    pub fn outbound(&self) -> &Outbound {
        &self.writer
    }

    /// Ends the connection now: the reader and writer stop and the socket closes.
    pub fn close(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn write_loop<I: Inbound>(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    addr: String,
    stall: Arc<StallLimit>,
    inbound: Arc<I>,
) {
    let mut batch = BytesMut::with_capacity(8 * 1024);
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.unsplit(first.frame);
        waiting.extend(first.written);
        // Gather what queued up meanwhile: one syscall for many frames under load.
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    batch.extend_from_slice(&more.frame);
                    waiting.extend(more.written);
                }
                Err(_) => break,
            }
        }
        let limit = stall.get();
        let failed = match tokio::time::timeout(limit, wr.write_all(&batch)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("write failed: {e}")),
            Err(_) => Some(format!(
                "a {}-byte write made no way in {} ms: the provider stopped reading",
                batch.len(),
                limit.as_millis()
            )),
        };
        if let Some(why) = failed {
            tracing::warn!(provider = %addr, reason = %why, "closing connection");
            // Ends the reader too, so the socket closes rather than lingering half-open.
            let _ = wr.shutdown().await;
            inbound.closed(&why);
            return;
        }
        batch.clear();
        for w in waiting.drain(..) {
            let _ = w.send(());
        }
    }
}

async fn read_loop<I: Inbound>(
    mut rd: OwnedReadHalf,
    writer: Outbound,
    addr: String,
    inbound: Arc<I>,
    cfg: ConnectionConfig,
    stall: Arc<StallLimit>,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut idle_rounds = 0u32;
    // When the frame at the front of `buf` started arriving, while it is incomplete.
    let mut started: Option<tokio::time::Instant> = None;
    let why = loop {
        match split_frame(&mut buf, cfg.payload) {
            Ok(Some(frame)) => {
                idle_rounds = 0;
                started = None;
                if let Err(violation) = inbound.frame(frame, &writer).await {
                    tracing::warn!(provider = %addr, violation = %violation, "protocol violation; closing connection");
                    break format!("protocol violation: {violation}");
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(provider = %addr, error = %e, "bad frame; closing connection");
                break format!("bad frame: {e}");
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let now = tokio::time::Instant::now();
        let (wait, stalling) = if buf.is_empty() {
            (cfg.heartbeat, false)
        } else {
            let since = *started.get_or_insert(now);
            let deadline = since + stall.get();
            if deadline <= now {
                break stalled(&addr, &buf, now - since);
            }
            (cfg.heartbeat.min(deadline - now), true)
        };
        match tokio::time::timeout(wait, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) => break "closed by the provider".to_string(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => break format!("read failed: {e}"),
            Err(_) if stalling => {
                let since = started.unwrap_or(now);
                break stalled(&addr, &buf, tokio::time::Instant::now() - since);
            }
            Err(_) => {
                idle_rounds += 1;
                if !inbound.idle(idle_rounds, &writer).await {
                    break format!(
                        "no data for {} ms ({idle_rounds} heartbeats)",
                        u128::from(idle_rounds) * cfg.heartbeat.as_millis()
                    );
                }
            }
        }
    };
    tracing::debug!(provider = %addr, reason = %why, "connection ended");
    inbound.closed(&why);
}

/// Why a connection whose frame stopped arriving is closed, logged once.
fn stalled(addr: &str, buf: &BytesMut, waited: Duration) -> String {
    let promised = match buf.get(12..16) {
        Some(len) => {
            let body = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            format!("{} bytes", body + super::frame::HEADER_LEN)
        }
        None => "a header".to_string(),
    };
    let why = format!(
        "a frame stalled: {} of {promised} arrived in {} ms",
        buf.len(),
        waited.as_millis()
    );
    tracing::warn!(provider = %addr, reason = %why, "closing connection");
    why
}
