//! The admin API, on `[admin] listen`: health, Prometheus metrics, references and providers,
//! a reference's generated WIT, guests, and guest upload (a hot swap). Loopback by default; with `token` set, every request
//! must carry `Authorization: Bearer <token>`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::host::Host;

mod prometheus;
mod views;

pub use prometheus::{render_references, write_family, write_histogram, write_sample};
pub use views::{references_json, unready};

/// The largest component `PUT /admin/guests/{name}` takes (Python guests are ~40 MiB).
pub const MAX_UPLOAD: usize = 256 << 20;

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, host: Arc<Host>, token: Option<String>) {
    let token: Option<Arc<str>> = token.filter(|t| !t.is_empty()).map(Arc::from);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (host, token) = (host.clone(), token.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (host, token) = (host.clone(), token.clone());
                async move { Ok::<_, Infallible>(handle(&host, token.as_deref(), req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}

/// Whether `req` carries the bearer token (compared in constant time).
fn authorized<B>(req: &Request<B>, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(host: &Host, token: Option<&str>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Some(token) = token {
        if !authorized(&req, token) {
            let mut resp = json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({"error": "missing or wrong bearer token; send `Authorization: Bearer <[admin] token>`"}),
            );
            resp.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["health"]) => health(host),
        (&Method::GET, ["metrics"]) => {
            let mut out = String::with_capacity(16 << 10);
            prometheus::render_metrics(host, &mut out);
            let mut resp = Response::new(Full::new(Bytes::from(out)));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        (&Method::GET, ["admin", "references"]) => {
            json(StatusCode::OK, &views::references_json(&host.references()))
        }
        (&Method::GET, ["admin", "references", id, "wit"]) => reference_wit(host, id).await,
        (&Method::GET, ["admin", "guests"]) => {
            let guests: Vec<serde_json::Value> =
                host.slots_sorted().iter().map(|s| s.to_json()).collect();
            json(StatusCode::OK, &serde_json::json!({ "guests": guests }))
        }
        (&Method::GET, ["admin", "guests", name]) => match host.slot(name) {
            Some(slot) => json(StatusCode::OK, &slot.to_json()),
            None => unknown_guest(name),
        },
        (&Method::PUT, ["admin", "guests", name]) => {
            let name = name.to_string();
            upload(host, &name, req).await
        }
        (
            _,
            ["health"]
            | ["metrics"]
            | ["admin", "references"]
            | ["admin", "references", _, "wit"]
            | ["admin", "guests", ..],
        ) => json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": format!("{} is not allowed on {path}", req.method())}),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": format!("no admin endpoint at {path}; try /health, /metrics, /admin/references, /admin/guests")}),
        ),
    }
}

/// `GET /admin/references/{id}/wit`: the WIT `wit generate` writes for the reference, from
/// its registry's metadata report (methods without a WIT type left to `dubbo:host/generic`, as
/// `--lenient` does). 404 when the reference or its definition is unknown.
async fn reference_wit(host: &Host, id: &str) -> Response<Full<Bytes>> {
    use crate::registry::RegistryError;
    use crate::witgen::SourceError;
    match crate::witgen::reference_wit(&host.references(), id).await {
        Ok(wit) => {
            let mut resp = Response::new(Full::new(Bytes::from(wit)));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
        Err(e) => {
            let status = match &e {
                SourceError::Unknown(_)
                | SourceError::Registry(RegistryError::NoDefinition { .. }) => {
                    StatusCode::NOT_FOUND
                }
                SourceError::Definition(_) | SourceError::Generate(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                SourceError::Registry(_) => StatusCode::BAD_GATEWAY,
            };
            json(status, &serde_json::json!({"error": e.to_string()}))
        }
    }
}

fn unknown_guest(name: &str) -> Response<Full<Bytes>> {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": format!("no http guest named `{name}`")}),
    )
}

fn health(host: &Host) -> Response<Full<Bytes>> {
    let mut problems = views::unready(&host.references());
    if host.is_stopping() {
        problems.insert(0, "shutting down".to_string());
    }
    if problems.is_empty() {
        json(StatusCode::OK, &serde_json::json!({"status": "UP"}))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "DOWN", "problems": problems}),
        )
    }
}

async fn upload(host: &Host, name: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if host.slot(name).is_none() {
        return unknown_guest(name);
    }
    let bytes = match Limited::new(req.into_body(), MAX_UPLOAD).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &serde_json::json!({"error": format!("cannot read the component (at most {MAX_UPLOAD} bytes): {e}")}),
            )
        }
    };
    match host.swap_upload(name, Arc::from(&bytes[..])).await {
        Ok(slot) => json(StatusCode::OK, &slot),
        Err(Some((error, slot))) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &serde_json::json!({"error": error, "guest": slot}),
        ),
        Err(None) => unknown_guest(name),
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::authorized;

    fn req(header: Option<&str>) -> hyper::Request<()> {
        let mut b = hyper::Request::builder();
        if let Some(h) = header {
            b = b.header("authorization", h);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        assert!(authorized(&req(Some("Bearer s3cret")), "s3cret"));
        assert!(!authorized(&req(Some("Bearer s3cre")), "s3cret"));
        assert!(!authorized(&req(Some("Bearer s3cret2")), "s3cret"));
        assert!(!authorized(&req(Some("Basic s3cret")), "s3cret"));
        assert!(!authorized(&req(None), "s3cret"));
    }
}
