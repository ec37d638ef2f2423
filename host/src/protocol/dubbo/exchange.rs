//! Dubbo's request/response exchange over one [`Connection`] (Java's `HeaderExchangeClient`):
//! request ids, calls waiting for their replies (out-of-order replies complete the right call),
//! per-call timeouts with Dubbo's client/server timeout statuses, heartbeats sent on read-idle
//! and answered when the provider sends them, and the read-only events of a provider that is
//! shutting down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::oneshot;

use super::connection::{Connection, ConnectionConfig, Inbound, Outbound, Outgoing};
use super::frame::{status, Frame, HEADER_LEN};
use super::message::{
    decode_event, decode_response, encode_heartbeat_request, encode_heartbeat_response,
    encode_request, status_error, Event,
};
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};

/// Dubbo's `heartbeat.timeout`: this many silent heartbeat periods mean a dead peer.
const SILENT_HEARTBEATS: u32 = 3;

type Waiter = oneshot::Sender<Result<Frame, RpcError>>;

/// The exchange's side of a connection: calls waiting for replies, and the connection's state.
struct Calls {
    addr: String,
    pending: Mutex<HashMap<u64, Waiter>>,
    closed: AtomicBool,
    read_only: AtomicBool,
    heartbeat_id: AtomicU64,
}

impl Calls {
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

impl Inbound for Calls {
    async fn frame(&self, frame: Frame, out: &Outbound) {
        let h = frame.header;
        if h.is_event() {
            match decode_event(&frame.body) {
                Ok(Event::Heartbeat) if h.is_request() && h.is_two_way() => {
                    let mut reply = BytesMut::new();
                    encode_heartbeat_response(&mut reply, h.id);
                    let _ = out.send(Outgoing::frame(reply)).await;
                }
                Ok(Event::Heartbeat) => {}
                Ok(Event::ReadOnly) => {
                    tracing::info!(provider = %self.addr, "provider is read-only (shutting down)");
                    self.read_only.store(true, Ordering::Release);
                }
                Ok(Event::Writable) => self.read_only.store(false, Ordering::Release),
                Ok(Event::Other(e)) => {
                    tracing::debug!(provider = %self.addr, event = %e, "ignoring unknown event")
                }
                Err(e) => tracing::warn!(provider = %self.addr, error = %e, "undecodable event"),
            }
            return;
        }
        if h.is_request() {
            tracing::warn!(provider = %self.addr, id = h.id, "ignoring a request sent by a provider");
            return;
        }
        let waiter = self.pending.lock().ok().and_then(|mut p| p.remove(&h.id));
        match waiter {
            Some(w) => {
                let _ = w.send(Ok(frame));
            }
            None => {
                tracing::debug!(provider = %self.addr, id = h.id, "reply for a call that already timed out")
            }
        }
    }

    async fn idle(&self, rounds: u32, out: &Outbound) -> bool {
        if rounds >= SILENT_HEARTBEATS {
            return false;
        }
        let mut hb = BytesMut::new();
        let id = self.heartbeat_id.fetch_add(1, Ordering::Relaxed);
        encode_heartbeat_request(&mut hb, id);
        out.send(Outgoing::frame(hb)).await.is_ok()
    }

    fn closed(&self, why: &str) {
        self.fail_all(why);
    }
}

/// A live exchange with one provider address: one connection, many calls in flight on it.
pub struct Exchange {
    calls: Arc<Calls>,
    connection: Connection,
    next_id: AtomicU64,
    payload: usize,
}

impl Exchange {
    /// Connects to `addr` (`host:port`) within the configured connect timeout.
    pub async fn connect(addr: &str, cfg: &ConnectionConfig) -> Result<Exchange, RpcError> {
        let calls = Arc::new(Calls {
            addr: addr.to_string(),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            heartbeat_id: AtomicU64::new(u64::MAX / 2),
        });
        let connection = Connection::open(addr, cfg, calls.clone()).await?;
        Ok(Exchange {
            calls,
            connection,
            next_id: AtomicU64::new(1),
            payload: cfg.payload,
        })
    }

    /// The provider address.
    pub fn addr(&self) -> &str {
        self.connection.addr()
    }

    /// Whether the connection is open and the provider has not announced read-only.
    pub fn is_available(&self) -> bool {
        !self.is_closed() && !self.calls.read_only.load(Ordering::Acquire)
    }

    /// Whether the connection has ended and must be replaced.
    pub fn is_closed(&self) -> bool {
        self.calls.closed.load(Ordering::Acquire)
    }

    /// Encodes `inv` as a request frame, refusing one over the payload limit.
    fn frame(
        &self,
        id: u64,
        two_way: bool,
        service: &ServiceKey,
        token: Option<&str>,
        inv: &Invocation,
        timeout: Duration,
    ) -> Result<BytesMut, RpcError> {
        let mut frame = BytesMut::new();
        encode_request(
            &mut frame,
            id,
            two_way,
            service,
            token,
            inv,
            timeout.as_millis() as u64,
        );
        if frame.len() - HEADER_LEN > self.payload {
            return Err(RpcError::LimitExceeded(format!(
                "request {}.{} is {} bytes, over the payload limit of {} bytes",
                service.interface,
                inv.method,
                frame.len(),
                self.payload
            )));
        }
        Ok(frame)
    }

    /// Sends one two-way invocation and waits up to `timeout` for its reply.
    pub async fn invoke(
        &self,
        service: &ServiceKey,
        token: Option<&str>,
        inv: &Invocation,
        timeout: Duration,
    ) -> Result<RpcResult, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(id, true, service, token, inv, timeout)?;
        let (tx, rx) = oneshot::channel();
        self.pending()?.insert(id, tx);
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = tokio::time::timeout_at(
            deadline,
            self.connection.outbound().send(Outgoing::frame(frame)),
        )
        .await;
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

    /// Sends one oneway invocation (two-way bit clear, no reply): returns once it is queued,
    /// or, with `sent`, once it was written to the socket (Dubbo's `sent=true`), within
    /// `timeout`.
    pub async fn send_oneway(
        &self,
        service: &ServiceKey,
        token: Option<&str>,
        inv: &Invocation,
        sent: bool,
        timeout: Duration,
    ) -> Result<(), RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(id, false, service, token, inv, timeout)?;
        let closed = || RpcError::Network(format!("connection to {} is closed", self.addr()));
        let not_sent = || {
            RpcError::Network(format!(
                "Failed to send message {}.{} to {} in timeout({} ms) limit",
                service.interface,
                inv.method,
                self.addr(),
                timeout.as_millis()
            ))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        if !sent {
            return match tokio::time::timeout_at(
                deadline,
                self.connection.outbound().send(Outgoing::frame(frame)),
            )
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(closed()),
                Err(_) => Err(not_sent()),
            };
        }
        let (done, written) = oneshot::channel();
        let queued = async {
            self.connection
                .outbound()
                .send(Outgoing {
                    frame,
                    written: Some(done),
                })
                .await
                .map_err(|_| closed())?;
            written.await.map_err(|_| closed())
        };
        match tokio::time::timeout_at(deadline, queued).await {
            Ok(r) => r,
            Err(_) => Err(not_sent()),
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
        self.calls
            .pending
            .lock()
            .map_err(|_| RpcError::Other("connection state poisoned".to_string()))
    }

    fn forget(&self, id: u64) {
        if let Ok(mut p) = self.calls.pending.lock() {
            p.remove(&id);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.calls.fail_all("connection dropped");
    }
}
