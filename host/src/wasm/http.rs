//! The `http` trigger: serves `wasi:http/incoming-handler` guests on one listener, routed by
//! path prefix, with one fresh instance per request from the guest's pre-instantiated
//! component. A guest that traps, runs out of time or never answers fails only its request.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use wasmtime::Trap;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use super::Guest;

/// Guests by route prefix, longest prefix first.
pub struct HttpTrigger {
    routes: Vec<(String, Arc<Guest>)>,
}

impl HttpTrigger {
    /// Routes each `(prefix, guest)` pair.
    pub fn new(mut routes: Vec<(String, Arc<Guest>)>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        HttpTrigger { routes }
    }

    fn route(&self, path: &str) -> Option<&Arc<Guest>> {
        self.routes.iter().find_map(|(prefix, guest)| {
            let rest = path.strip_prefix(prefix.trim_end_matches('/'))?;
            (rest.is_empty() || rest.starts_with('/') || prefix == "/").then_some(guest)
        })
    }

    /// Accepts connections until the task is dropped, serving each on its own task.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let this = this.clone();
                    async move { Ok::<_, Infallible>(this.handle(req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                }
            });
        }
    }

    /// Runs the routed guest for one request.
    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<HyperOutgoingBody> {
        let Some(guest) = self.route(req.uri().path()).cloned() else {
            return text(
                StatusCode::NOT_FOUND,
                format!("no guest is routed at {}\n", req.uri().path()),
            );
        };
        match run_guest(&guest, req).await {
            Ok(resp) => resp,
            Err((status, reason)) => {
                tracing::warn!(guest = guest.name(), %status, reason = %reason, "request failed");
                text(
                    status,
                    format!("guest `{}` failed: {reason}\n", guest.name()),
                )
            }
        }
    }
}

async fn run_guest(
    guest: &Arc<Guest>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<HyperOutgoingBody>, (StatusCode, String)> {
    let internal = |e: wasmtime::Error| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    let Some(permit) = guest.admit() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight (max-instances)".to_string(),
        ));
    };
    let mut store = guest.new_store();
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
    let pre = guest.pre().clone();
    let task = tokio::spawn(async move {
        // Held until the guest is done, including any body it streams after the response.
        let _permit = permit;
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    });
    let limit = guest.timeout();
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(Ok(resp))) => Ok(resp),
        Ok(Ok(Err(code))) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{code:?}"))),
        Ok(Err(_)) => Err(match task.await {
            Ok(Ok(())) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "it returned without setting a response".to_string(),
            ),
            Ok(Err(e)) => trap_status(&e, limit),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("guest task failed: {e}"),
            ),
        }),
        Err(_) => {
            task.abort();
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no response within its time limit of {} ms",
                    limit.as_millis()
                ),
            ))
        }
    }
}

fn trap_status(e: &wasmtime::Error, limit: std::time::Duration) -> (StatusCode, String) {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ran past its time limit of {} ms", limit.as_millis()),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("trapped: {}", short(e)),
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
