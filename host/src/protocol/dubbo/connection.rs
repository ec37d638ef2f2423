//! One TCP connection to a provider, as a transport: it reads and writes Dubbo frames and
//! nothing else. A caller writes its frame itself when the connection is idle (one syscall on
//! the caller's task, no hop through another task); when the socket is busy or full, or other
//! calls are in flight (more frames are coming), frames queue in one buffer that a flusher task
//! writes in batches, one per scheduler round. A reader task splits the
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
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
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

/// Bytes queued behind a busy socket before callers wait for room (at least twice the
/// payload limit, so one largest frame always fits).
const BACKLOG_MIN: usize = 4 * 1024 * 1024;

/// One frame to write, and who waits for it to be written (Dubbo's `sent=true`).
pub struct Outgoing {
    pub frame: BytesMut,
    pub written: Option<oneshot::Sender<()>>,
    /// Other calls are in flight on this connection, so more frames are likely to follow in
    /// the same scheduler round: the frame may wait for the end of that round and go out with
    /// them in one write, instead of in a syscall of its own.
    pub gather: bool,
}

impl Outgoing {
    /// A frame nobody waits for, written at once if nobody else is writing.
    pub fn frame(frame: BytesMut) -> Outgoing {
        Outgoing {
            frame,
            written: None,
            gather: false,
        }
    }

    /// A frame that may be gathered with others written in the same scheduler round.
    pub fn gathered(frame: BytesMut) -> Outgoing {
        Outgoing {
            gather: true,
            ..Outgoing::frame(frame)
        }
    }
}

/// The connection was closed: the frame was not written.
#[derive(Debug)]
pub struct Closed;

/// Where frames go out: the socket's write side, shared by callers and the flusher.
pub type Outbound = Arc<Link>;

/// The write side of one connection. Whoever owns it writes; everyone else queues. A caller
/// that finds nobody writing takes ownership (a compare-and-swap, no lock) and writes its frame
/// itself (one non-blocking `try_write`, no hop through another task), then gives ownership
/// back the same way. Frames that other callers queued meanwhile, or what the socket did not
/// take, are handed to the flusher task, which owns the socket until the queue is empty,
/// writing it in batches, one write each. A caller whose frame may be gathered
/// ([`Outgoing::gather`]: other calls are in flight) queues it and hands ownership to the
/// flusher, which first lets the scheduler run the tasks that are ready (their frames join the
/// queue) and then writes them all in one syscall. So under load one syscall carries many
/// frames, and the provider reads them in one go; on an idle connection a call costs one
/// syscall on the caller's own task, and takes no lock: ownership is one atomic word, taken
/// and given back with a compare-and-swap and a store.
pub struct Link {
    /// The provider's address, for the log.
    addr: String,
    wr: OwnedWriteHalf,
    /// Who may write to the socket now: [`NOBODY`], [`CALLER`] or [`FLUSHER`].
    owner: AtomicU8,
    /// Frames waiting for the flusher, in the order they were queued, and their waiters.
    queue: std::sync::Mutex<Queue>,
    /// Bytes in `queue`, set under its lock and read without it.
    queued: AtomicUsize,
    /// Set once, when the link closes: why.
    closed: OnceLock<String>,
    /// Wakes the flusher when it is handed ownership.
    wake: Notify,
    /// Wakes callers waiting for room in the queue.
    room: Notify,
    backlog: usize,
    /// Writes that put bytes on the socket (syscalls), for tests and diagnostics.
    writes: AtomicU64,
}

/// [`Link::owner`]: nobody writes; the next caller writes directly.
const NOBODY: u8 = 0;
/// [`Link::owner`]: a caller is writing its own frame.
const CALLER: u8 = 1;
/// [`Link::owner`]: the flusher task is writing the queue.
const FLUSHER: u8 = 2;

/// Frames queued for the flusher, back to back, and who waits for them to be written.
#[derive(Default)]
struct Queue {
    bytes: BytesMut,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Link {
    /// Writes `out` now if nobody is writing, else queues it behind what is being written;
    /// waits only when the queue is over its backlog. Gives the frame's buffer back, spent
    /// (its bytes are on the socket or copied into the queue), for the caller to reuse.
    pub async fn send(&self, out: Outgoing) -> Result<BytesMut, Closed> {
        let Outgoing {
            frame,
            mut written,
            gather,
        } = out;
        loop {
            if self.is_closed() {
                return Err(Closed);
            }
            // Not past frames still queued: a caller's frames go out in the order it sent them.
            if !gather && self.queued.load(Ordering::SeqCst) == 0 && self.take(CALLER) {
                return self.write_owned(&frame, written).map(|()| frame);
            }
            // Created before the queue is looked at, so a `notify_waiters` after that wakes it
            // (a `Notified` sees those from its creation); it costs no lock until awaited.
            let room = self.room.notified();
            if self.queued.load(Ordering::SeqCst) < self.backlog {
                {
                    let Ok(mut q) = self.queue.lock() else {
                        return Err(Closed);
                    };
                    // Looked at again under the lock that `close` takes to drop the waiters,
                    // so that no waiter is queued after the flusher has ended.
                    if self.is_closed() {
                        return Err(Closed);
                    }
                    q.bytes.extend_from_slice(&frame);
                    q.waiters.extend(written.take());
                    self.queued.store(q.bytes.len(), Ordering::SeqCst);
                }
                // Whoever gives ownership up looks at `queued` after it, and this looks at the
                // owner after counting the frame in: one of the two sees the other and hands
                // the queue to the flusher.
                if self.owner.load(Ordering::SeqCst) == NOBODY {
                    self.hand_to_flusher();
                }
                return Ok(frame);
            }
            room.await;
        }
    }

    /// Takes ownership for `who` if nobody has it.
    fn take(&self, who: u8) -> bool {
        self.owner
            .compare_exchange(NOBODY, who, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives ownership to the flusher, if nobody has it, and wakes it.
    fn hand_to_flusher(&self) {
        if self.take(FLUSHER) {
            self.wake.notify_one();
        }
    }

    /// Gives ownership up; hands it to the flusher if frames were queued meanwhile.
    fn give_up(&self) {
        self.owner.store(NOBODY, Ordering::SeqCst);
        if self.queued.load(Ordering::SeqCst) > 0 {
            self.hand_to_flusher();
        }
    }

    /// Writes `frame` as the owner, then gives ownership up, or to the flusher when the socket
    /// did not take all of it.
    fn write_owned(
        &self,
        frame: &[u8],
        written: Option<oneshot::Sender<()>>,
    ) -> Result<(), Closed> {
        let mut sent = 0;
        let mut failed = None;
        while sent < frame.len() {
            match self.wr.try_write(&frame[sent..]) {
                Ok(0) => {
                    failed = Some(std::io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    self.writes.fetch_add(1, Ordering::Relaxed);
                    sent += n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            tracing::warn!(provider = %self.addr, error = %e, "write failed; closing connection");
            self.close(&format!("write failed: {e}"));
            return Err(Closed);
        }
        if sent < frame.len() {
            // The rest of this frame goes out before what others queued behind it; still the
            // owner, so the flusher cannot be taking the queue meanwhile.
            let Ok(mut q) = self.queue.lock() else {
                self.close("connection state poisoned");
                return Err(Closed);
            };
            if self.is_closed() {
                return Err(Closed);
            }
            let mut bytes = BytesMut::with_capacity(frame.len() - sent + q.bytes.len());
            bytes.extend_from_slice(&frame[sent..]);
            bytes.extend_from_slice(&q.bytes);
            q.bytes = bytes;
            q.waiters.extend(written);
            self.queued.store(q.bytes.len(), Ordering::SeqCst);
            drop(q);
            self.owner.store(FLUSHER, Ordering::SeqCst);
            self.wake.notify_one();
            return Ok(());
        }
        self.give_up();
        if let Some(w) = written {
            let _ = w.send(());
        }
        Ok(())
    }

    /// Writes all of `buf`, waiting for the socket to take it.
    async fn write_all(&self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            self.wr.writable().await?;
            match self.wr.try_write(buf) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.writes.fetch_add(1, Ordering::Relaxed);
                    buf = &buf[n..];
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// How many writes have put bytes on the socket so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }

    /// Marks the link closed with `why` (the first reason wins) and wakes whoever waits.
    fn close(&self, why: &str) {
        let _ = self.closed.set(why.to_string());
        if let Ok(mut q) = self.queue.lock() {
            q.waiters.clear();
        }
        self.wake.notify_one();
        self.room.notify_waiters();
    }
}

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
        let link = Arc::new(Link {
            addr: addr.to_string(),
            wr,
            owner: AtomicU8::new(NOBODY),
            queue: std::sync::Mutex::new(Queue::default()),
            queued: AtomicUsize::new(0),
            closed: OnceLock::new(),
            wake: Notify::new(),
            room: Notify::new(),
            backlog: BACKLOG_MIN.max(cfg.payload.saturating_mul(2)),
            writes: AtomicU64::new(0),
        });
        let writer = tokio::spawn(flush_loop(link.clone(), stall.clone(), inbound.clone()));
        let end = Unfinished::new(&link, &inbound);
        let reader = tokio::spawn(read_loop(
            rd,
            link.clone(),
            inbound,
            cfg.clone(),
            stall,
            end,
        ));
        tracing::debug!(provider = addr, "connected");
        Ok(Connection {
            writer: link,
            tasks: [writer, reader],
        })
    }

    /// The provider address this connection goes to.
    pub fn addr(&self) -> &str {
        &self.writer.addr
    }

    /// The writer's queue.
    pub fn outbound(&self) -> &Outbound {
        &self.writer
    }

    /// Ends the connection now: the reader and writer stop and the socket closes.
    pub fn close(&self) {
        self.writer.close("closed by the host");
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.writer.close("connection dropped");
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Writes what callers queued while the socket was busy, in batches, until the queue is
/// empty (then callers write directly again), the link closes, or a write stalls.
async fn flush_loop<I: Inbound>(link: Arc<Link>, stall: Arc<StallLimit>, inbound: Arc<I>) {
    let addr = &link.addr;
    // The frames taken from the queue, and who waits for them.
    let mut batch = BytesMut::with_capacity(16 * 1024);
    let mut waiters = Vec::new();
    // Whether the tasks that were ready when the flusher got the queue have run since, adding
    // their frames to it.
    let mut gathered = false;
    let why = loop {
        let wake = link.wake.notified();
        if let Some(why) = link.closed.get() {
            // Closed by the reader, the exchange, or a caller whose write failed (which
            // logged it).
            tracing::debug!(provider = %addr, reason = %why, "flusher ends");
            inbound.closed(why);
            return;
        }
        if link.owner.load(Ordering::SeqCst) != FLUSHER {
            wake.await;
            continue;
        }
        // The owner: take the whole queue (a caller's unwritten rest is at its front).
        {
            let Ok(mut q) = link.queue.lock() else {
                break "connection state poisoned".to_string();
            };
            if !q.bytes.is_empty() {
                if batch.is_empty() {
                    std::mem::swap(&mut batch, &mut q.bytes);
                } else {
                    // Queued while the flusher let the ready tasks run: behind what it took.
                    batch.extend_from_slice(&q.bytes);
                    q.bytes.clear();
                }
                waiters.append(&mut q.waiters);
                link.queued.store(0, Ordering::SeqCst);
                drop(q);
                link.room.notify_waiters();
            }
        }
        if batch.is_empty() {
            gathered = false;
            link.give_up();
            continue;
        }
        if !gathered {
            gathered = true;
            behind_the_ready_tasks().await;
            continue;
        }
        let limit = stall.get();
        match tokio::time::timeout(limit, link.write_all(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break format!("write failed: {e}"),
            Err(_) => {
                break format!(
                    "a {}-byte write made no way in {} ms: the provider stopped reading",
                    batch.len(),
                    limit.as_millis()
                )
            }
        }
        batch.clear();
        gathered = false;
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    };
    link.close(&why);
    tracing::warn!(provider = %addr, reason = %why, "closing connection");
    inbound.closed(&why);
}

/// Lets the tasks that are ready now run before this one goes on: it wakes itself and waits
/// once, which puts it at the back of its worker's run queue, where an idle worker may also take
/// it. (Tokio's `yield_now` would wait for the worker to run out of ready tasks or reach its event
/// interval, and could not be taken by another worker: behind guests that run for their whole
/// epoch tick, a frame could wait tens of such ticks.)
async fn behind_the_ready_tasks() {
    let mut waited = false;
    std::future::poll_fn(|cx| {
        if waited {
            return std::task::Poll::Ready(());
        }
        waited = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

async fn read_loop<I: Inbound>(
    mut rd: OwnedReadHalf,
    writer: Outbound,
    inbound: Arc<I>,
    cfg: ConnectionConfig,
    stall: Arc<StallLimit>,
    end: Unfinished<I>,
) {
    // An argument, not a local: dropped with the future even if it never ran.
    let mut end = end;
    let addr = &writer.addr;
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
                break stalled(addr, &buf, now - since);
            }
            (cfg.heartbeat.min(deadline - now), true)
        };
        match tokio::time::timeout(wait, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) => break "closed by the provider".to_string(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => break format!("read failed: {e}"),
            Err(_) if stalling => {
                let since = started.unwrap_or(now);
                break stalled(addr, &buf, tokio::time::Instant::now() - since);
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
    end.ended = true;
    writer.close(&why);
    inbound.closed(&why);
}

/// Ends the connection when its reader stops before its end: its task aborted, or the
/// runtime it runs on stopped (a serving thread's, say). The calls in flight then fail at once
/// instead of at their timeouts, and the pool sees the connection closed and replaces it.
struct Unfinished<I: Inbound> {
    writer: Outbound,
    inbound: Arc<I>,
    ended: bool,
}

impl<I: Inbound> Unfinished<I> {
    fn new(writer: &Outbound, inbound: &Arc<I>) -> Self {
        Unfinished {
            writer: writer.clone(),
            inbound: inbound.clone(),
            ended: false,
        }
    }
}

impl<I: Inbound> Drop for Unfinished<I> {
    fn drop(&mut self) {
        if !self.ended {
            let why = "the connection's reader stopped";
            self.writer.close(why);
            self.inbound.closed(why);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An inbound side that ignores what it hears.
    struct Deaf;

    impl Inbound for Deaf {
        async fn frame(&self, _frame: Frame, _out: &Outbound) -> Result<(), String> {
            Ok(())
        }
        async fn idle(&self, _rounds: u32, _out: &Outbound) -> bool {
            true
        }
        fn closed(&self, _why: &str) {}
    }

    /// A connection to a local peer that collects every byte it receives.
    async fn connected() -> (Connection, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accept = tokio::spawn(async move { listener.accept().await.expect("accept").0 });
        let conn = Connection::open(
            &addr,
            &ConnectionConfig::default(),
            Arc::new(StallLimit::new(Duration::from_secs(3))),
            Arc::new(Deaf),
        )
        .await
        .expect("connect");
        (conn, accept.await.expect("accepted"))
    }

    async fn receive(peer: &mut tokio::net::TcpStream, len: usize) -> Vec<u8> {
        let mut got = vec![0; len];
        tokio::time::timeout(Duration::from_secs(5), peer.read_exact(&mut got))
            .await
            .expect("the bytes arrive")
            .expect("read");
        got
    }

    fn frame(i: u8) -> BytesMut {
        BytesMut::from(&[i; 100][..])
    }

    #[tokio::test(flavor = "current_thread")]
    async fn frames_sent_one_at_a_time_on_an_idle_connection_each_get_a_write() {
        let (conn, mut peer) = connected().await;
        let out = conn.outbound().clone();
        for i in 0..3 {
            out.send(Outgoing::frame(frame(i))).await.expect("sent");
            // Written by the caller itself: there before it returns.
            assert_eq!(out.writes(), u64::from(i) + 1);
        }
        let got = receive(&mut peer, 300).await;
        assert_eq!(got, [[0u8; 100], [1; 100], [2; 100]].concat());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sent_frames_buffer_comes_back_whole_for_reuse_written_or_queued() {
        let (conn, mut peer) = connected().await;
        let out = conn.outbound().clone();
        let mut f = BytesMut::with_capacity(512);
        f.extend_from_slice(&[1; 100]);
        let at = f.as_ptr();
        // Written by the caller.
        let spent = out.send(Outgoing::frame(f)).await.expect("sent");
        assert_eq!((spent.as_ptr(), spent.capacity()), (at, 512));
        assert_eq!(
            &spent[..],
            [1u8; 100],
            "the bytes were copied, not split off"
        );
        // Queued for the flusher (gathered): copied into the queue.
        let mut f = spent;
        f.clear();
        f.extend_from_slice(&[2; 100]);
        let spent = out.send(Outgoing::gathered(f)).await.expect("queued");
        assert_eq!((spent.as_ptr(), spent.capacity()), (at, 512));
        assert_eq!(
            receive(&mut peer, 200).await,
            [[1u8; 100], [2; 100]].concat()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_the_socket_did_not_take_of_a_callers_frame_goes_out_before_frames_queued_after_it(
    ) {
        let (conn, mut peer) = connected().await;
        let out = conn.outbound().clone();
        // More than loopback's socket buffers hold while the peer is not reading.
        const BIG: usize = 32 << 20;
        let big = BytesMut::from(&vec![7u8; BIG][..]);
        out.send(Outgoing::frame(big)).await.expect("sent");
        assert_eq!(
            out.owner.load(Ordering::SeqCst),
            FLUSHER,
            "the rest was handed to the flusher"
        );
        for i in 0..3u8 {
            out.send(Outgoing::frame(frame(i))).await.expect("queued");
        }
        let got = receive(&mut peer, BIG + 300).await;
        assert!(
            got[..BIG].iter().all(|&b| b == 7),
            "the big frame first, whole"
        );
        assert_eq!(&got[BIG..], [[0u8; 100], [1; 100], [2; 100]].concat());
        // All written: the socket is nobody's again, and the next frame is its caller's write.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(out.owner.load(Ordering::SeqCst), NOBODY);
        let before = out.writes();
        out.send(Outgoing::frame(frame(9))).await.expect("sent");
        assert_eq!(out.writes(), before + 1);
        assert_eq!(receive(&mut peer, 100).await, [9u8; 100]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_from_many_callers_on_two_workers_all_arrive_whole() {
        let (conn, mut peer) = connected().await;
        let out = conn.outbound().clone();
        // Callers on both workers, some writing themselves and some queueing, so ownership
        // changes hands between callers and the flusher many times.
        let callers: Vec<_> = (0..16u8)
            .map(|c| {
                let out = out.clone();
                tokio::spawn(async move {
                    for i in 0..200u8 {
                        let f = BytesMut::from(&[c, i, c ^ i, 0xAA][..]);
                        let o = if (c + i) % 3 == 0 {
                            Outgoing::gathered(f)
                        } else {
                            Outgoing::frame(f)
                        };
                        out.send(o).await.expect("sent");
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let got = receive(&mut peer, 16 * 200 * 4).await;
        for c in callers {
            c.await.expect("caller");
        }
        let mut next = [0u8; 16];
        for f in got.chunks(4) {
            let (c, i) = (f[0], f[1]);
            assert_eq!(f[2..], [c ^ i, 0xAA], "frame {c}/{i} arrived whole");
            assert_eq!(next[usize::from(c)], i, "caller {c}'s frames in its order");
            next[usize::from(c)] += 1;
        }
        assert!(next.iter().all(|&n| n == 200));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn frames_that_may_be_gathered_in_one_round_go_out_in_one_write_in_order() {
        let (conn, mut peer) = connected().await;
        let out = conn.outbound().clone();
        let callers: Vec<_> = (0..8u8)
            .map(|i| {
                let out = out.clone();
                tokio::spawn(async move { out.send(Outgoing::gathered(frame(i))).await })
            })
            .collect();
        for c in callers {
            c.await.expect("caller").expect("queued");
        }
        let got = receive(&mut peer, 800).await;
        let want: Vec<u8> = (0..8u8).flat_map(|i| [i; 100]).collect();
        assert_eq!(got, want);
        assert_eq!(out.writes(), 1, "eight frames, one syscall");
        // The flusher gave the socket back: an ungathered frame is written by its caller.
        tokio::task::yield_now().await;
        out.send(Outgoing::frame(frame(9))).await.expect("sent");
        assert_eq!(out.writes(), 2);
        assert_eq!(receive(&mut peer, 100).await, [9u8; 100]);
    }
}
