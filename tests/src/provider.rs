//! A small Dubbo provider speaking `dubbo://` with Hessian2, built on the host's own codec:
//! it serves `org.apache.dubbo.demo.DemoService#sayHello` like the Java demo provider, answers
//! heartbeats, and counts accepted connections. Tests and the demo run it as a process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, status, Frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{
    decode_request, encode_heartbeat_response, encode_response, DecodedRequest, Reply,
};
use dubbo_wasm_host::protocol::hessian2::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The demo interface this provider implements.
pub const DEMO_SERVICE: &str = "org.apache.dubbo.demo.DemoService";

/// A running provider's counters.
#[derive(Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub requests: AtomicU64,
}

/// Serves connections from `listener` forever.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    loop {
        let (stream, _) = listener.accept().await?;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, local.to_string(), stats).await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    local: String,
    stats: Arc<Stats>,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<BytesMut>(1024);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    });
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let result = loop {
        match split_frame(&mut buf, DEFAULT_PAYLOAD) {
            Ok(Some(frame)) => {
                let tx = tx.clone();
                let local = local.clone();
                stats.requests.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if let Some(reply) = answer(&frame, &local) {
                        let _ = tx.send(reply).await;
                    }
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => break Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        if rd.read_buf(&mut buf).await? == 0 {
            break Ok(());
        }
    };
    drop(tx);
    let _ = writer.await;
    result
}

/// The reply frame for one incoming frame, if it needs one.
fn answer(frame: &Frame, local: &str) -> Option<BytesMut> {
    let h = frame.header;
    let mut out = BytesMut::new();
    if h.is_event() {
        if h.is_request() && h.is_two_way() {
            encode_heartbeat_response(&mut out, h.id);
            return Some(out);
        }
        return None;
    }
    if !h.is_request() {
        return None;
    }
    let req = match decode_request(&frame.body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("cannot decode request: {e}");
            encode_response(
                &mut out,
                h.id,
                &Reply::Status(status::BAD_REQUEST, &msg),
                None,
            );
            return h.is_two_way().then_some(out);
        }
    };
    if !h.is_two_way() {
        return None;
    }
    // Java providers answer 2.0.2 peers with response attachments.
    let attachments: &[(&str, &str)] = &[("dubbo", "2.0.2")];
    match invoke(&req, local) {
        Ok(v) => encode_response(&mut out, h.id, &Reply::Value(&v), Some(attachments)),
        Err(msg) => encode_response(
            &mut out,
            h.id,
            &Reply::Status(status::SERVICE_ERROR, &msg),
            None,
        ),
    }
    Some(out)
}

fn invoke(req: &DecodedRequest, local: &str) -> Result<Value, String> {
    match (req.path.as_str(), req.method.as_str(), req.args.as_slice()) {
        (DEMO_SERVICE, "sayHello", [Value::String(name)]) => Ok(Value::String(format!(
            "Hello {name}, response from provider: {local}"
        ))),
        (path, method, _) => Err(format!(
            "no method {method}({}) in service {path}:{} on this provider",
            req.parameter_types, req.version
        )),
    }
}
