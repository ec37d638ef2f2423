//! Dubbo's request/response exchange over one [`Connection`] (Java's `HeaderExchangeClient`):
//! request ids, calls waiting for their replies (out-of-order replies complete the right call),
//! per-call timeouts with Dubbo's client/server timeout statuses (checked on a tick, as Java's
//! `DefaultFuture` does on its timer wheel, so a call costs no timer of its own), heartbeats
//! sent on read-idle and answered when the provider sends them, and the read-only events of a
//! provider that is shutting down.
//!
//! What a consumer never expects from a provider closes the connection (logged once, with the
//! provider's address) and fails the calls on it with `network`: a reply to an id never sent,
//! a request, an event other than heartbeat/read-only/writable, and a reply body that ends in
//! the middle of a value although its header's length was honoured.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::connection::{Connection, ConnectionConfig, Inbound, Outbound, Outgoing, StallLimit};
use super::frame::{status, Frame, HEADER_LEN};
use super::message::{
    decode_event, decode_reply, encode_heartbeat_request, encode_heartbeat_response,
    encode_request, status_error, Event, ReplyError,
};
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};

/// Dubbo's `heartbeat.timeout`: this many silent heartbeat periods mean a dead peer.
const SILENT_HEARTBEATS: u32 = 3;

/// How often calls past their deadline are failed. Java's `DefaultFuture` checks timeouts on a
/// 30 ms wheel; here a call fails at most one 10 ms tick after its timeout, and no call
/// registers a timer of its own (a timer per call costs two locked timer-wheel updates, often
/// from two threads, and a clock read).
const TIMEOUT_TICK: Duration = Duration::from_millis(10);
/// Ticks without a call pending after which the timeout checker sleeps until the next call.
const IDLE_TICKS: u32 = 100;

/// How a call waiting for its reply ends.
enum Answer {
    Reply(Frame),
    Failed(RpcError),
    TimedOut,
}

/// A call waiting for its reply, and when it stops waiting.
struct Waiter {
    answer: oneshot::Sender<Answer>,
    deadline: Instant,
}

/// Calls waiting for their replies, by request id. A call joins without taking the lock: it
/// sends its waiter down `arrivals` (a lock-free queue) before its frame can be written, and
/// whoever takes the lock next (the reader with a reply, the timeout checker on its tick, a
/// connection failing its calls) takes the arrivals in first. So a reply always finds its
/// call, and a call takes no lock of the exchange's: one is the reader's, per reply. (Taking
/// the arrivals in waits for a send caught between claiming its slot and filling it, a few
/// instructions, as a lock's waiters wait for its holder.)
struct Pending {
    waiting: HashMap<u64, Waiter>,
    arrivals: mpsc::Receiver<(u64, Waiter)>,
}

impl Pending {
    /// The calls waiting, the ones that arrived since the last look included.
    fn settled(&mut self) -> &mut HashMap<u64, Waiter> {
        while let Ok((id, w)) = self.arrivals.try_recv() {
            self.waiting.insert(id, w);
        }
        &mut self.waiting
    }
}

/// The exchange's side of a connection: calls waiting for replies, and the connection's state.
struct Calls {
    addr: String,
    pending: Mutex<Pending>,
    /// Where a call sends its waiter to join `pending`.
    arrive: mpsc::Sender<(u64, Waiter)>,
    /// Calls in `pending` and on their way to it: counted in before a waiter is sent, out as
    /// it is taken. More than one means other calls are in flight.
    waiters: AtomicUsize,
    /// Whether the timeout checker sleeps until `wake` (nothing was pending for a while).
    checker_asleep: AtomicBool,
    wake: Notify,
    closed: AtomicBool,
    read_only: AtomicBool,
    heartbeat_id: AtomicU64,
    /// The next request id; a reply to an id at or past it was never asked for.
    next_id: AtomicU64,
}

/// Initial capacity of a request frame: a typical call's header, service, method, types,
/// arguments and attachments fit without growing.
const FRAME_CAPACITY: usize = 512;
/// A spent frame buffer up to this capacity is kept for the thread's next call; a larger one
/// (a call with a large argument) goes back to the allocator rather than stay pinned.
const SPARE_FRAME_MAX: usize = 64 * 1024;

thread_local! {
    /// The buffer of the last frame this thread encoded, spent and cleared: the next call
    /// encodes into its capacity instead of allocating one per call. A call whose send has
    /// to wait (a full backlog, rare) keeps its buffer meanwhile, and a call encoded on this
    /// thread in that time allocates its own.
    static SPARE_FRAME: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

/// A buffer for a request frame: this thread's spare, else a new one.
fn frame_buffer() -> BytesMut {
    SPARE_FRAME
        .take()
        .unwrap_or_else(|| BytesMut::with_capacity(FRAME_CAPACITY))
}

/// Keeps a spent frame buffer for this thread's next call, unless it grew large.
fn spare(mut spent: BytesMut) {
    if spent.capacity() <= SPARE_FRAME_MAX {
        spent.clear();
        SPARE_FRAME.set(Some(spent));
    }
}

/// Heartbeat ids start here, far from request ids.
const FIRST_HEARTBEAT_ID: u64 = u64::MAX / 2;

impl Calls {
    /// The calls waiting. A panic while the lock was held (none of the map's operations under
    /// it can) would leave the map whole, so a poisoned lock is taken as it is: refusing it
    /// would leave every call on the connection without its reply or its timeout.
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the waiter of call `id`, if it still waits.
    fn take(&self, id: u64) -> Option<Waiter> {
        let w = self.pending().settled().remove(&id)?;
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        Some(w)
    }

    /// Takes the waiters that `pick` (all of them, or those past their deadline) selects;
    /// `None` when none is waiting at all.
    fn take_those(&self, mut pick: impl FnMut(&Waiter) -> bool) -> Option<Vec<Waiter>> {
        let taken: Vec<Waiter> = {
            let mut p = self.pending();
            let waiting = p.settled();
            if waiting.is_empty() {
                return None;
            }
            waiting.extract_if(|_, w| pick(w)).map(|(_, w)| w).collect()
        };
        self.waiters.fetch_sub(taken.len(), Ordering::SeqCst);
        Some(taken)
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.pending().settled().len()
    }

    fn fail_all(&self, why: &str) {
        self.closed.store(true, Ordering::Release);
        let waiters = self.take_those(|_| true).unwrap_or_default();
        self.wake.notify_one();
        for w in waiters {
            let _ = w.answer.send(Answer::Failed(RpcError::Network(format!(
                "connection to {} closed: {why}",
                self.addr
            ))));
        }
    }

    /// Fails the calls past their deadline every [`TIMEOUT_TICK`] while any is pending; sleeps
    /// while none has been for [`IDLE_TICKS`]; ends when the connection closes.
    async fn check_timeouts(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TIMEOUT_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle = 0;
        while !self.closed.load(Ordering::Acquire) {
            if idle >= IDLE_TICKS {
                self.checker_asleep.store(true, Ordering::SeqCst);
                // Against the fence of a call between sending its waiter and looking at
                // `checker_asleep`: either that call sees this sleep coming and wakes the
                // checker, or the look below sees its waiter.
                fence(Ordering::SeqCst);
                let empty = self.pending().settled().is_empty();
                if empty && !self.closed.load(Ordering::Acquire) {
                    self.wake.notified().await;
                }
                self.checker_asleep.store(false, Ordering::SeqCst);
                idle = 0;
                tick.reset();
                continue;
            }
            tick.tick().await;
            let now = Instant::now();
            let Some(expired) = self.take_those(|w| w.deadline <= now) else {
                idle += 1;
                continue;
            };
            idle = 0;
            for w in expired {
                let _ = w.answer.send(Answer::TimedOut);
            }
        }
    }
}

impl Inbound for Calls {
    async fn frame(&self, frame: Frame, out: &Outbound) -> Result<(), String> {
        let h = frame.header;
        if h.is_event() {
            match decode_event(&frame.body) {
                Ok(Event::Heartbeat) if h.is_request() && h.is_two_way() => {
                    let mut reply = BytesMut::new();
                    encode_heartbeat_response(&mut reply, h.id);
                    let _ = out.send(Outgoing::frame(reply)).await;
                }
                Ok(Event::Heartbeat) if !h.is_request() => {
                    let sent = self.heartbeat_id.load(Ordering::Relaxed);
                    if !(FIRST_HEARTBEAT_ID..sent).contains(&h.id) {
                        return Err(format!("a heartbeat reply to id {}, never sent", h.id));
                    }
                }
                Ok(Event::Heartbeat) => {}
                Ok(Event::ReadOnly) => {
                    tracing::info!(provider = %self.addr, "provider is read-only (shutting down)");
                    self.read_only.store(true, Ordering::Release);
                }
                Ok(Event::Writable) => self.read_only.store(false, Ordering::Release),
                Ok(Event::Other(e)) => return Err(format!("an unknown event {e:?}")),
                Err(e) => return Err(format!("an undecodable event: {e}")),
            }
            return Ok(());
        }
        if h.is_request() {
            return Err(format!("a request (id {}) sent to a consumer", h.id));
        }
        match self.take(h.id) {
            Some(w) => {
                let _ = w.answer.send(Answer::Reply(frame));
            }
            None if h.id == 0 || h.id >= self.next_id.load(Ordering::Relaxed) => {
                return Err(format!("a reply to id {}, never sent", h.id));
            }
            None => {
                tracing::debug!(provider = %self.addr, id = h.id, "reply for a call that already timed out")
            }
        }
        Ok(())
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
    stall: Arc<StallLimit>,
    payload: usize,
}

impl Exchange {
    /// Connects to `addr` (`host:port`) within the configured connect timeout.
    pub async fn connect(addr: &str, cfg: &ConnectionConfig) -> Result<Exchange, RpcError> {
        let (arrive, arrivals) = mpsc::channel();
        let calls = Arc::new(Calls {
            addr: addr.to_string(),
            pending: Mutex::new(Pending {
                waiting: HashMap::new(),
                arrivals,
            }),
            arrive,
            waiters: AtomicUsize::new(0),
            checker_asleep: AtomicBool::new(false),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            heartbeat_id: AtomicU64::new(FIRST_HEARTBEAT_ID),
            next_id: AtomicU64::new(1),
        });
        let stall = Arc::new(StallLimit::new(cfg.read_stall));
        let connection = Connection::open(addr, cfg, stall.clone(), calls.clone()).await?;
        tokio::spawn(calls.clone().check_timeouts());
        Ok(Exchange {
            calls,
            connection,
            stall,
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
        // No allocation for a typical call: the thread's spare buffer, or one sized for it.
        let mut frame = frame_buffer();
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
        let id = self.calls.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(id, true, service, token, inv, timeout)?;
        self.stall.call(timeout);
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        // Counted in before it is sent: whoever takes it counts it out.
        let others_in_flight = self.calls.waiters.fetch_add(1, Ordering::SeqCst) > 0;
        let waiter = Waiter {
            answer: tx,
            deadline,
        };
        if self.calls.arrive.send((id, waiter)).is_err() {
            // The receiving end lives as long as the sending one: not reached.
            self.calls.waiters.fetch_sub(1, Ordering::SeqCst);
            return Err(RpcError::Other("connection state gone".to_string()));
        }
        // See `check_timeouts`.
        fence(Ordering::SeqCst);
        if self.calls.checker_asleep.load(Ordering::SeqCst) {
            self.calls.wake.notify_one();
        }
        let out = if others_in_flight {
            Outgoing::gathered(frame)
        } else {
            Outgoing::frame(frame)
        };
        match tokio::time::timeout_at(deadline, self.connection.outbound().send(out)).await {
            Ok(Ok(spent)) => spare(spent),
            not_sent => {
                self.forget(id);
                return Err(match not_sent {
                    Err(_) => status_error(
                        status::CLIENT_TIMEOUT,
                        self.timeout_message(service, inv, timeout, "was never sent"),
                    ),
                    _ => RpcError::Network(format!("connection to {} is closed", self.addr())),
                });
            }
        }
        match rx.await {
            Ok(Answer::Reply(frame)) => match decode_reply(&frame.header, &frame.body) {
                Ok(r) => Ok(r),
                Err(ReplyError::Call(e)) => Err(e),
                Err(ReplyError::Broken(e)) => {
                    let why = format!("protocol violation: {e}");
                    tracing::warn!(provider = %self.addr(), reason = %why, "closing connection");
                    self.calls.fail_all(&why);
                    self.connection.close();
                    Err(e)
                }
            },
            Ok(Answer::Failed(e)) => Err(e),
            Ok(Answer::TimedOut) => Err(status_error(
                status::SERVER_TIMEOUT,
                self.timeout_message(service, inv, timeout, "got no reply"),
            )),
            Err(_) => Err(RpcError::Network(format!(
                "connection to {} closed while waiting for a reply",
                self.addr()
            ))),
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
        let id = self.calls.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(id, false, service, token, inv, timeout)?;
        self.stall.call(timeout);
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
                Ok(Ok(spent)) => {
                    spare(spent);
                    Ok(())
                }
                Ok(Err(_)) => Err(closed()),
                Err(_) => Err(not_sent()),
            };
        }
        let (done, written) = oneshot::channel();
        let queued = async {
            self.connection
                .outbound()
                .send(Outgoing {
                    written: Some(done),
                    ..Outgoing::frame(frame)
                })
                .await
                .map(spare)
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

    fn forget(&self, id: u64) {
        self.calls.take(id);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.calls.fail_all("connection dropped");
    }
}

#[cfg(test)]
mod tests {
    //! The exchange against a raw TCP peer that misbehaves the way a broken or hostile
    //! provider does: each misbehaviour must cost that connection, never hang its calls.

    use std::sync::Arc;
    use std::time::Duration;

    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{Exchange, IDLE_TICKS, TIMEOUT_TICK};
    use crate::hessian2::Value;
    use crate::protocol::dubbo::connection::ConnectionConfig;
    use crate::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
    use crate::protocol::dubbo::message::{encode_event, encode_response, Reply};
    use crate::rpc::{Invocation, RpcError, ServiceKey};

    #[test]
    fn a_spent_frame_buffer_serves_the_threads_next_call_unless_it_grew_large() {
        use super::{frame_buffer, spare, FRAME_CAPACITY, SPARE_FRAME_MAX};
        let mut b = frame_buffer();
        assert!(b.capacity() >= FRAME_CAPACITY);
        b.extend_from_slice(b"frame");
        let at = b.as_ptr();
        spare(b);
        let again = frame_buffer();
        assert_eq!(again.as_ptr(), at, "the same buffer");
        assert!(again.is_empty(), "cleared");
        // Taken: the next call on this thread gets one of its own.
        assert_ne!(frame_buffer().as_ptr(), at);
        // A buffer that grew past the limit is not kept.
        spare(BytesMut::with_capacity(SPARE_FRAME_MAX + 1));
        assert_eq!(frame_buffer().capacity(), FRAME_CAPACITY);
        drop(again);
    }

    fn service() -> ServiceKey {
        ServiceKey {
            interface: "org.apache.dubbo.demo.DemoService".to_string(),
            version: None,
            group: None,
        }
    }

    fn say_hello(arg: &str) -> Invocation {
        Invocation {
            method: Arc::from("sayHello"),
            parameter_types: Arc::from("Ljava/lang/String;"),
            args: vec![Value::String(arg.to_string())],
            attachments: Vec::new(),
        }
    }

    /// A peer that reads request frames and lets `answer` write what it likes for each.
    async fn peer<F>(answer: F) -> String
    where
        F: Fn(u64, &mut BytesMut) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = BytesMut::new();
                    loop {
                        while let Ok(Some(frame)) = split_frame(&mut buf, DEFAULT_PAYLOAD) {
                            let mut out = BytesMut::new();
                            answer(frame.header.id, &mut out);
                            if s.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                        match s.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        addr
    }

    fn hello(id: u64, out: &mut BytesMut) {
        encode_response(out, id, &Reply::Value(&Value::String("hi".into())), None);
    }

    /// A header promising 1000 body bytes, a few sent, then nothing more of that frame.
    fn stalling(id: u64, out: &mut BytesMut) {
        let mut whole = BytesMut::new();
        hello(id, &mut whole);
        whole[12..16].copy_from_slice(&1000u32.to_be_bytes());
        out.extend_from_slice(&whole[..whole.len() - 2]);
    }

    fn cfg(read_stall_ms: u64) -> ConnectionConfig {
        ConnectionConfig {
            read_stall: Duration::from_millis(read_stall_ms),
            ..ConnectionConfig::default()
        }
    }

    async fn call(ex: &Exchange, timeout_ms: u64) -> Result<Value, RpcError> {
        ex.invoke(
            &service(),
            None,
            &say_hello("x"),
            Duration::from_millis(timeout_ms),
        )
        .await
        .map(|r| r.value)
    }

    #[tokio::test]
    async fn a_well_behaved_peer_answers() {
        let addr = peer(hello).await;
        let ex = Exchange::connect(&addr, &cfg(3000)).await.expect("connect");
        assert_eq!(
            call(&ex, 2000).await.expect("reply"),
            Value::String("hi".into())
        );
        assert!(!ex.is_closed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_in_flight_are_counted_out_however_they_end() {
        use std::sync::atomic::Ordering;
        let in_flight = |ex: &Exchange| ex.calls.waiters.load(Ordering::SeqCst);
        // Answered, many at once from two workers: each waiter is taken by the reader.
        let addr = peer(hello).await;
        let ex = Arc::new(Exchange::connect(&addr, &cfg(3000)).await.expect("connect"));
        let calls: Vec<_> = (0..200)
            .map(|_| {
                let ex = ex.clone();
                tokio::spawn(async move { call(&ex, 2000).await })
            })
            .collect();
        for c in calls {
            c.await.expect("joined").expect("reply");
        }
        assert_eq!((in_flight(&ex), ex.calls.waiting()), (0, 0));
        // Timed out: taken by the checker.
        let silent = peer(|_, _| {}).await;
        let ex = Exchange::connect(&silent, &cfg(3000))
            .await
            .expect("connect");
        call(&ex, 30).await.expect_err("no reply");
        assert_eq!((in_flight(&ex), ex.calls.waiting()), (0, 0));
        // Failed with the connection: taken by `fail_all`.
        let stalled = peer(stalling).await;
        let ex = Exchange::connect(&stalled, &cfg(100))
            .await
            .expect("connect");
        call(&ex, 20_000).await.expect_err("stalled");
        assert_eq!((in_flight(&ex), ex.calls.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn a_stalled_frame_closes_the_connection_and_fails_its_calls_with_network() {
        let addr = peer(stalling).await;
        let ex = Exchange::connect(&addr, &cfg(200)).await.expect("connect");
        // The call's own timeout is far longer: the stall limit ends it, as a network error.
        let err = call(&ex, 20_000).await.expect_err("stalled");
        assert!(matches!(err, RpcError::Network(_)), "{err:?}");
        assert!(err.to_string().contains("stalled"), "{err}");
        assert!(ex.is_closed());
    }

    #[tokio::test]
    async fn the_stall_limit_is_the_longest_call_timeout_when_shorter() {
        let addr = peer(stalling).await;
        // read-stall is a minute, the calls' timeout 300 ms: the connection closes once the
        // frame has been stalled for 300 ms, so a second call made afterwards sees it closed.
        let ex = Exchange::connect(&addr, &cfg(60_000))
            .await
            .expect("connect");
        // Whichever ends it first, the call's timeout or the stall, it fails.
        call(&ex, 300).await.expect_err("stalled");
        for _ in 0..100 {
            if ex.is_closed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            ex.is_closed(),
            "the stalled frame still holds the connection"
        );
    }

    async fn violation_closes(answer: fn(u64, &mut BytesMut)) {
        let addr = peer(answer).await;
        let ex = Exchange::connect(&addr, &cfg(3000)).await.expect("connect");
        let err = call(&ex, 5000).await.expect_err("violation");
        assert!(matches!(err, RpcError::Network(_)), "{err:?}");
        assert!(err.to_string().contains("protocol violation"), "{err}");
        assert!(ex.is_closed());
    }

    #[tokio::test]
    async fn a_reply_to_an_id_never_sent_closes_the_connection() {
        violation_closes(|id, out| hello(id + 1000, out)).await;
    }

    #[tokio::test]
    async fn a_request_from_the_provider_closes_the_connection() {
        violation_closes(|id, out| {
            hello(id, out);
            out[2] |= crate::protocol::dubbo::frame::FLAG_REQUEST;
        })
        .await;
    }

    #[tokio::test]
    async fn an_unknown_event_closes_the_connection() {
        violation_closes(|id, out| encode_event(out, id, "surprise")).await;
    }

    #[tokio::test]
    async fn a_body_ending_mid_value_fails_the_call_and_closes_the_connection() {
        let addr = peer(|id, out| {
            let mut whole = BytesMut::new();
            encode_response(
                &mut whole,
                id,
                &Reply::Value(&Value::String("a longer reply".into())),
                None,
            );
            // Cut the string's last bytes and make the header agree.
            let cut = whole.len() - 4;
            whole.truncate(cut);
            let body = (cut - 16) as u32;
            whole[12..16].copy_from_slice(&body.to_be_bytes());
            out.extend_from_slice(&whole);
        })
        .await;
        let ex = Exchange::connect(&addr, &cfg(3000)).await.expect("connect");
        let err = call(&ex, 5000).await.expect_err("truncated");
        assert!(matches!(err, RpcError::Serialization(_)), "{err:?}");
        assert!(ex.is_closed());
    }

    #[tokio::test]
    async fn a_provider_that_stops_reading_closes_the_connection_on_write() {
        // Accepts and never reads: the host's writes fill the socket buffers, then stall.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let _held = tokio::spawn(async move {
            let mut kept: Vec<TcpStream> = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                kept.push(s);
            }
        });
        let cfg = ConnectionConfig {
            payload: 64 * 1024 * 1024,
            ..cfg(300)
        };
        let ex = Arc::new(Exchange::connect(&addr, &cfg).await.expect("connect"));
        let big = "x".repeat(8 * 1024 * 1024);
        let mut calls = Vec::new();
        for _ in 0..8 {
            let ex = ex.clone();
            let big = big.clone();
            calls.push(tokio::spawn(async move {
                ex.invoke(&service(), None, &say_hello(&big), Duration::from_secs(30))
                    .await
            }));
        }
        for c in calls {
            let err = c.await.expect("task").expect_err("never read");
            assert!(matches!(err, RpcError::Network(_)), "{err:?}");
        }
        assert!(ex.is_closed());
    }

    /// A peer that reads everything and never answers.
    fn silent(_id: u64, _out: &mut BytesMut) {}

    #[tokio::test]
    async fn a_call_without_reply_times_out_with_the_server_timeout_status_not_before_its_timeout()
    {
        let addr = peer(silent).await;
        let ex = Exchange::connect(&addr, &cfg(60_000))
            .await
            .expect("connect");
        let started = std::time::Instant::now();
        let err = call(&ex, 150).await.expect_err("no reply");
        assert!(started.elapsed() >= Duration::from_millis(150), "early");
        assert!(matches!(err, RpcError::Timeout(_)), "{err:?}");
        assert!(
            err.to_string().contains("got no reply within 150 ms"),
            "{err}"
        );
        // The connection stays: a timeout is the call's, not the provider's fault.
        assert!(!ex.is_closed());
        let pending = ex.calls.waiting();
        assert_eq!(pending, 0, "the timed-out call is forgotten");
    }

    #[tokio::test]
    async fn an_abandoned_call_is_forgotten_at_its_deadline() {
        let addr = peer(silent).await;
        let ex = Exchange::connect(&addr, &cfg(60_000))
            .await
            .expect("connect");
        // The caller gives up long before the call's own timeout (a request the host dropped).
        let gave_up = tokio::time::timeout(Duration::from_millis(20), call(&ex, 100)).await;
        assert!(gave_up.is_err());
        assert_eq!(ex.calls.waiting(), 1);
        for _ in 0..100 {
            if ex.calls.waiting() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ex.calls.waiting() == 0, "the waiter leaked");
        // After the checker went to sleep with nothing pending, a new call still times out.
        tokio::time::sleep(TIMEOUT_TICK * (IDLE_TICKS + 5)).await;
        let err = call(&ex, 50).await.expect_err("no reply");
        assert!(matches!(err, RpcError::Timeout(_)), "{err:?}");
    }
}
