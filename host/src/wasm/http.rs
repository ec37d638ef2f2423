//! The `http` trigger: serves `wasi:http/incoming-handler` guests on one listener, routed by
//! path prefix, with one fresh instance per request from the guest's pre-instantiated
//! component (or, with `instance-reuse = N`, one instance for up to N requests in sequence). A guest that traps, runs out of time or never answers fails only its request.
//! Each request takes its guest's current version once, so a hot swap never affects a request
//! in flight; routes themselves can be replaced at run time (config reload).
//!
//! Connections are served on `[http] threads` threads, each a single-threaded Tokio runtime
//! of its own and a lane of the connection pool (its own connection to each provider): a
//! request, its guest, the guest's Dubbo calls and their replies all run on one thread, with
//! no wake-up or task moving across threads. The accept loop hands each new connection to the
//! next thread in turn.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use hyper_util::server::graceful::GracefulShutdown;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use wasmtime::Trap;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use super::slot::GuestSlot;
use super::Guest;

/// Route prefixes and their guest slots, longest prefix first.
pub type Routes = Vec<(String, Arc<GuestSlot>)>;

/// Guests by route prefix.
pub struct HttpTrigger {
    routes: ArcSwap<Routes>,
    /// Set when shutdown's drain time is over: requests still waiting for their guest's
    /// response get 503 instead of a closed connection.
    abandon: tokio::sync::watch::Sender<bool>,
}

/// After the drain time, how long connections get to send the 503s of abandoned requests.
const ABANDON_GRACE: Duration = Duration::from_millis(500);

impl HttpTrigger {
    /// Routes each `(prefix, slot)` pair.
    pub fn new(routes: Routes) -> Self {
        HttpTrigger {
            routes: ArcSwap::from_pointee(sorted(routes)),
            abandon: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Replaces the routes; requests already routed keep their guest.
    pub fn set_routes(&self, routes: Routes) {
        self.routes.store(Arc::new(sorted(routes)));
    }

    fn route(&self, path: &str) -> Option<Arc<GuestSlot>> {
        self.routes.load().iter().find_map(|(prefix, slot)| {
            let rest = path.strip_prefix(prefix.trim_end_matches('/'))?;
            (rest.is_empty() || rest.starts_with('/') || prefix == "/").then(|| slot.clone())
        })
    }

    /// Accepts connections, serving each on its own task on one of `threads` serving threads
    /// (0: on the caller's runtime), until `shutdown` completes; then stops accepting (taking
    /// in connections the kernel already completed), lets every request in flight finish for
    /// up to `drain`, and returns whether all of them did. A request whose guest has not
    /// answered by then gets 503. The serving threads end when it returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        drain: Duration,
        threads: usize,
    ) -> bool {
        let lanes = match Lanes::start(threads) {
            Ok(lanes) => lanes,
            Err(e) => {
                tracing::warn!(error = %e, threads, "cannot start the HTTP serving threads; serving on the shared runtime");
                Lanes::none()
            }
        };
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = &mut shutdown => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    self.clone()
                        .spawn_connection(&graceful, stream, peer, lanes.next())
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // Connections whose handshake completed before the listener closes would be reset
        // by the close: serve them too.
        while let Some(Ok((stream, peer))) = listener.accept().now_or_never() {
            self.clone()
                .spawn_connection(&graceful, stream, peer, lanes.next());
        }
        drop(listener);
        let in_flight = graceful.count();
        tracing::info!(
            connections = in_flight,
            "stopped accepting; finishing requests in flight"
        );
        let drained = graceful.shutdown();
        tokio::pin!(drained);
        if tokio::time::timeout(drain, &mut drained).await.is_ok() {
            return true;
        }
        self.abandon.send_replace(true);
        let _ = tokio::time::timeout(ABANDON_GRACE, &mut drained).await;
        false
    }

    /// Serves one connection on a task of `lane` (a serving thread's runtime), or of the
    /// caller's runtime without one.
    fn spawn_connection(
        self: Arc<Self>,
        graceful: &GracefulShutdown,
        stream: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        lane: Option<&tokio::runtime::Handle>,
    ) {
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let serve = move |stream: tokio::net::TcpStream| async move {
            let service = hyper::service::service_fn(move |req| {
                let this = self.clone();
                async move { Ok::<_, Infallible>(this.handle(req).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
        };
        let Some(lane) = lane else {
            tokio::spawn(serve(stream));
            return;
        };
        // The socket moves to the serving thread's own I/O driver.
        match stream.into_std() {
            Ok(stream) => {
                lane.spawn(async move {
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => serve(stream).await,
                        Err(e) => tracing::warn!(%peer, error = %e, "cannot register the connection with its serving thread; closing it"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot move the connection to a serving thread; closing it")
            }
        }
    }

    /// Runs the routed guest's current version for one request.
    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<HyperOutgoingBody> {
        let Some(slot) = self.route(req.uri().path()) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("no guest is routed at {}\n", req.uri().path()),
            );
        };
        let counters = slot.counters();
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let guest = slot.current();
        match run_guest(&guest, req, self.abandon.subscribe()).await {
            Ok(resp) => resp,
            Err((status, reason, trapped)) => {
                if trapped {
                    counters.traps.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(guest = guest.name(), %status, reason = %reason, "request failed");
                text(
                    status,
                    format!("guest `{}` failed: {reason}\n", guest.name()),
                )
            }
        }
    }
}

/// The serving threads: each runs a single-threaded runtime as one lane of the connection pool
/// until this is dropped.
struct Lanes {
    handles: Vec<tokio::runtime::Handle>,
    next: std::sync::atomic::AtomicUsize,
    /// Dropped with this: each thread's runtime then stops, and with it the tasks left on it.
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Lanes {
    fn none() -> Lanes {
        Lanes {
            handles: Vec::new(),
            next: Default::default(),
            _stops: Vec::new(),
        }
    }

    /// Starts `n` serving threads, lanes 1 to `n`.
    fn start(n: usize) -> std::io::Result<Lanes> {
        let mut lanes = Lanes::none();
        for lane in 1..=n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("http-{lane}"))
                .spawn(move || {
                    crate::protocol::dubbo::pool::set_lane(lane);
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let _ = handle_tx.send(Ok(runtime.handle().clone()));
                            runtime.block_on(async {
                                let _ = stop_rx.await;
                            });
                        }
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                        }
                    }
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| std::io::Error::other("the serving thread ended at start"))??;
            lanes.handles.push(handle);
            lanes._stops.push(stop_tx);
        }
        Ok(lanes)
    }

    /// The runtime of the thread whose turn it is, if there are serving threads.
    fn next(&self) -> Option<&tokio::runtime::Handle> {
        if self.handles.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles.get(i)
    }
}

fn sorted(mut routes: Routes) -> Routes {
    routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
    routes
}

/// Why a request failed: status, reason, and whether the guest itself failed (trap, time
/// limit, no response) rather than the host refusing to run it.
type Failure = (StatusCode, String, bool);

/// Resolves once `abandon` is set (never, if its sender is gone).
async fn abandoned(mut abandon: tokio::sync::watch::Receiver<bool>) {
    if abandon.wait_for(|set| *set).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run_guest(
    guest: &Arc<Guest>,
    req: Request<hyper::body::Incoming>,
    abandon: tokio::sync::watch::Receiver<bool>,
) -> Result<Response<HyperOutgoingBody>, Failure> {
    let internal =
        |e: wasmtime::Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"), false);
    let Some(permit) = guest.admit() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight (max-instances)".to_string(),
            false,
        ));
    };
    let (mut store, mut warm) = match guest.take_warm() {
        Some(w) => (w.store, Some((w.proxy, w.served))),
        None => (guest.new_store(), None),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)
        .map_err(internal)?;
    let out = store
        .data_mut()
        .http()
        .new_response_outparam(tx)
        .map_err(internal)?;
    let owner = guest.clone();
    // The guest runs on this connection's task, not a task of its own: no spawn, and no wake
    // across tasks (often across threads) when it answers. A guest still running once its
    // response is out (a body it streams), or whose client went away, moves to a task of its
    // own and finishes there, as it would have on a task from the start.
    let mut run = Running(Some(Box::pin(async move {
        // Held until the guest is done, including any body it streams after the response.
        let _permit = permit;
        let (proxy, served) = match warm.take() {
            Some(w) => w,
            None => (owner.pre().instantiate_async(&mut store).await?, 0),
        };
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await?;
        // Only an instance that finished without a trap or a limit serves again; a request
        // the host gave up on drops this future, and with it the instance.
        if owner.reuse() > 1 {
            owner.put_warm(super::guest::Warm {
                store,
                proxy,
                served: served + 1,
            });
        } else {
            owner.recycle(store);
        }
        Ok::<(), wasmtime::Error>(())
    })));
    let limit = guest.timeout();
    let timed_out = tokio::time::sleep(limit);
    tokio::pin!(timed_out);
    let gone = abandoned(abandon);
    tokio::pin!(gone);
    let mut rx = rx;
    // Set once the guest dropped its response slot unset: it is ending, and its result says why.
    let mut unanswered = false;
    let answer = loop {
        let step = tokio::select! {
            biased;
            step = guest_step(&mut run, &mut rx, unanswered) => step,
            () = &mut timed_out => Step::Late,
            () = &mut gone => Step::ShuttingDown,
        };
        match step {
            Step::Answered(answer) => {
                // It finishes here if it can without waiting (the usual case: the body is
                // written), else on a task of its own while hyper sends the body.
                run.finish_or_detach();
                break answer;
            }
            Step::Unanswered => unanswered = true,
            Step::Finished(Err(e)) => return Err(trap_status(&e, limit)),
            // Finished without a trap: it set a response or it did not.
            Step::Finished(Ok(())) => break rx.try_recv().map_err(|_| no_response())?,
            Step::Late => {
                run.stop();
                return Err(late(limit));
            }
            Step::ShuttingDown => {
                run.stop();
                return Err(shutting_down());
            }
        }
    };
    match answer {
        Ok(resp) => Ok(resp),
        Err(code) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{code:?}"),
            false,
        )),
    }
}

/// Polls the guest until it finishes or sets its response slot. The slot is read after each
/// poll of the guest, without a waker: only the guest's own code (run inside that poll) sets
/// it, and a waker there would wake this very task while it runs, which Tokio answers by
/// queueing it behind the others and waking an idle worker to steal it: a futex call and a
/// move to the other core on every request.
fn guest_step<'a>(
    run: &'a mut Running,
    rx: &'a mut tokio::sync::oneshot::Receiver<HostResponse>,
    unanswered: bool,
) -> impl Future<Output = Step> + 'a {
    use tokio::sync::oneshot::error::TryRecvError;
    std::future::poll_fn(move |cx| {
        let done = std::pin::Pin::new(&mut *run).poll(cx);
        if !unanswered {
            match rx.try_recv() {
                Ok(answer) => return std::task::Poll::Ready(Step::Answered(answer)),
                Err(TryRecvError::Closed) if done.is_pending() => {
                    return std::task::Poll::Ready(Step::Unanswered)
                }
                Err(_) => {}
            }
        }
        done.map(Step::Finished)
    })
}

/// What ended one wait of a request.
enum Step {
    Answered(HostResponse),
    /// The guest dropped its response slot unset and is still running.
    Unanswered,
    Finished(Result<(), wasmtime::Error>),
    Late,
    ShuttingDown,
}

/// What a guest sets its response slot to.
type HostResponse = Result<Response<HyperOutgoingBody>, ErrorCode>;

fn no_response() -> Failure {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "it returned without setting a response".to_string(),
        true,
    )
}

fn late(limit: Duration) -> Failure {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "no response within its time limit of {} ms",
            limit.as_millis()
        ),
        true,
    )
}

fn shutting_down() -> Failure {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the host is shutting down and its shutdown-wait is over".to_string(),
        false,
    )
}

/// A guest's run.
type GuestRun = std::pin::Pin<Box<dyn Future<Output = Result<(), wasmtime::Error>> + Send>>;

/// A guest's run, polled from the request's own future. Dropped unfinished (hyper dropped the
/// request: its client went away), it finishes on a task of its own; [`Running::stop`] is the
/// only way to stop it (its time limit, or the host's shutdown).
struct Running(Option<GuestRun>);

impl Running {
    /// Stops the guest: its instance is dropped.
    fn stop(&mut self) {
        self.0 = None;
    }

    /// Polls the guest once more; if it is not done, it goes on on a task of its own.
    fn finish_or_detach(&mut self) {
        if let Some(mut run) = self.0.take() {
            if (&mut run).now_or_never().is_none() {
                tokio::spawn(run);
            }
        }
    }
}

impl Future for Running {
    type Output = Result<(), wasmtime::Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(run) = self.0.as_mut() else {
            // Polled after it finished or stopped: `run_guest` never does this.
            return std::task::Poll::Pending;
        };
        let done = std::task::ready!(run.as_mut().poll(cx));
        self.0 = None;
        std::task::Poll::Ready(done)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::spawn(run);
            }
        }
    }
}

fn trap_status(e: &wasmtime::Error, limit: Duration) -> Failure {
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        // The host's capacity, not the guest's fault: every slot of the pool is in use.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no instance could be made: {}", short(e)),
            false,
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ran past its time limit of {} ms", limit.as_millis()),
            true,
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("trapped: {}", short(e)),
            true,
        ),
    }
}

/// The root cause (for a trap, the trap itself), first line only: enough to act on, without
/// the wasm backtrace the error carries.
fn short(e: &wasmtime::Error) -> String {
    e.root_cause()
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn text(status: StatusCode, body: String) -> Response<HyperOutgoingBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::{Component, Linker};
    use wasmtime::Store;

    /// This process's threads named as serving threads.
    fn serving_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("http-"))
            .count()
    }

    #[tokio::test]
    async fn connections_are_served_on_serving_threads_that_end_with_serving() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let trigger = Arc::new(HttpTrigger::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(trigger.serve(
            listener,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(2),
            2,
        ));
        // Two connections, one per thread in turn; each is answered (no route: 404).
        for _ in 0..2 {
            let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
            c.write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .expect("send");
            let mut answer = String::new();
            c.read_to_string(&mut answer).await.expect("answer");
            assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
            assert!(
                answer.contains("no guest is routed at /nowhere"),
                "{answer}"
            );
        }
        assert_eq!(serving_threads(), 2);
        let _ = stop.send(());
        assert!(
            serving.await.expect("serve"),
            "a request was left unfinished"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while serving_threads() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "serving threads outlive serving"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The smallest component: the preamble of an empty one.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    /// A waker that counts its wakes.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Polls `guest_step` once over a guest run that does `act` with its response slot and
    /// then stays pending or ends; returns what it gave and how often it woke its task.
    fn step_once(
        act: impl FnOnce(tokio::sync::oneshot::Sender<HostResponse>) + Send + 'static,
        ends: bool,
        unanswered: bool,
    ) -> (std::task::Poll<Step>, usize) {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let mut act = Some((act, tx));
        let mut run = Running(Some(Box::pin(std::future::poll_fn(move |_| {
            if let Some((act, tx)) = act.take() {
                act(tx);
            }
            if ends {
                std::task::Poll::Ready(Ok(()))
            } else {
                std::task::Poll::Pending
            }
        }))));
        let counting = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(counting.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let step = std::pin::pin!(guest_step(&mut run, &mut rx, unanswered)).poll(&mut cx);
        run.stop();
        (step, counting.0.load(Ordering::SeqCst))
    }

    fn answered() -> impl FnOnce(tokio::sync::oneshot::Sender<HostResponse>) + Send {
        |tx| {
            let _ = tx.send(Err(ErrorCode::InternalError(None)));
        }
    }

    #[test]
    fn a_response_set_by_the_running_guest_is_taken_without_waking_its_own_task() {
        let (step, wakes) = step_once(answered(), false, false);
        assert!(matches!(
            step,
            std::task::Poll::Ready(Step::Answered(Err(_)))
        ));
        // A wake here would queue the request's task behind the others and wake an idle
        // worker to steal it, on every request.
        assert_eq!(wakes, 0, "the response woke the task that set it");
    }

    #[test]
    fn a_slot_dropped_unset_is_told_apart_from_a_guest_that_ended() {
        let (step, wakes) = step_once(drop, false, false);
        assert!(matches!(step, std::task::Poll::Ready(Step::Unanswered)));
        assert_eq!(wakes, 0);
        // Told once: after it, only the guest's end counts.
        let (step, _) = step_once(drop, false, true);
        assert!(step.is_pending());
        // A guest that ended is told by its result, which says why it set no response.
        let (step, _) = step_once(drop, true, false);
        assert!(matches!(
            step,
            std::task::Poll::Ready(Step::Finished(Ok(())))
        ));
        let (step, _) = step_once(std::mem::forget, false, false);
        assert!(step.is_pending(), "nothing set yet and the guest runs on");
        // A guest that answered and ended in the same poll gives its answer.
        let (step, _) = step_once(answered(), true, false);
        assert!(matches!(step, std::task::Poll::Ready(Step::Answered(_))));
    }

    #[tokio::test]
    async fn a_full_instance_pool_answers_503_and_is_not_the_guests_trap() {
        let engine = super::super::new_engine(1).expect("engine");
        let component = Component::new(&engine, EMPTY_COMPONENT).expect("empty component");
        let linker = Linker::<()>::new(&engine);
        let mut first = Store::new(&engine, ());
        let _held = linker
            .instantiate_async(&mut first, &component)
            .await
            .expect("the pool's one slot");
        let mut second = Store::new(&engine, ());
        let e = linker
            .instantiate_async(&mut second, &component)
            .await
            .expect_err("the pool holds one instance");
        let (status, reason, trapped) = trap_status(&e, Duration::from_secs(1));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!trapped, "not counted as a trap");
        assert!(reason.starts_with("no instance could be made"), "{reason}");
    }
}
