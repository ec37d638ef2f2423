//! One TCP connection to a provider, as a transport: it reads and writes Dubbo frames and
//! nothing else. A writer task batches queued frames into one write; a reader task splits the
//! byte stream into frames (the header checked before the body arrives) and hands each to the
//! connection's [`Inbound`] side, which also hears when the connection has been read-idle for
//! the heartbeat period and when it ends. Request ids, replies and events are the exchange's
//! business (`exchange.rs`).

use std::future::Future;
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
    fn frame(&self, frame: Frame, out: &Outbound) -> impl Future<Output = ()> + Send;
    /// The connection has been read-idle for the heartbeat period, `rounds` times in a row;
    /// returning `false` ends the connection.
    fn idle(&self, rounds: u32, out: &Outbound) -> impl Future<Output = bool> + Send;
    /// The connection ended (closed, failed, or a bad frame), with why.
    fn closed(&self, why: &str);
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
        let writer = tokio::spawn(write_loop(wr, rx, addr.to_string(), inbound.clone()));
        let reader = tokio::spawn(read_loop(
            rd,
            tx.clone(),
            addr.to_string(),
            inbound,
            cfg.clone(),
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
        if let Err(e) = wr.write_all(&batch).await {
            tracing::warn!(provider = %addr, error = %e, "write failed; closing connection");
            inbound.closed(&format!("write failed: {e}"));
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
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut idle_rounds = 0u32;
    let why = loop {
        match split_frame(&mut buf, cfg.payload) {
            Ok(Some(frame)) => {
                idle_rounds = 0;
                inbound.frame(frame, &writer).await;
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
        match tokio::time::timeout(cfg.heartbeat, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) => break "closed by the provider".to_string(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => break format!("read failed: {e}"),
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
