//! A small Dubbo provider speaking `dubbo://` with Hessian2, built on the host's own codec:
//! it serves `org.apache.dubbo.demo.DemoService#sayHello` like the Java demo provider and the
//! `org.apache.dubbo.samples.UserService` methods the typed and generic tests call, answers
//! heartbeats, counts accepted connections and misbehaves on request (see `faults`). Tests
//! and the demo run it as a process.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dubbo_wasm_host::hessian2::{List, Object, Value};
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, status, Frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{
    decode_request, encode_heartbeat_response, encode_response, DecodedRequest, Reply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use crate::faults::{command_frame, CallFaults, Command, Control};

/// The demo interface this provider implements.
pub const DEMO_SERVICE: &str = "org.apache.dubbo.demo.DemoService";

/// Serves connections from `listener` forever, under the fault switches of `control`.
pub async fn serve(listener: TcpListener, control: Arc<Control>) -> std::io::Result<()> {
    serve_delayed(listener, control, Duration::ZERO).await
}

/// Like `serve`, but every request is answered `delay` later than it would be (on top of any
/// `test.delay` it asks for), so that calls stay in flight long enough to watch them.
pub async fn serve_delayed(
    listener: TcpListener,
    control: Arc<Control>,
    delay: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    loop {
        let (stream, _) = listener.accept().await?;
        // Subscribe before counting: once `accepted` shows it, the connection gets commands.
        let commands = control.subscribe();
        control.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let control = control.clone();
        tokio::spawn(async move {
            let served = serve_connection(stream, local.to_string(), control, commands, delay);
            if let Err(e) = served.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    local: String,
    control: Arc<Control>,
    mut commands: broadcast::Receiver<Command>,
    delay: Duration,
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
    let mut event_id = 1u64 << 40;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let result = loop {
        match split_frame(&mut buf, DEFAULT_PAYLOAD) {
            Ok(Some(frame)) => {
                let h = frame.header;
                if h.is_event() && !h.is_request() {
                    control.heartbeat_replies.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if h.is_event() && control.mute_heartbeats.load(Ordering::Relaxed) {
                    continue;
                }
                if !h.is_event() {
                    control.requests.fetch_add(1, Ordering::Relaxed);
                }
                let tx = tx.clone();
                let local = local.clone();
                tokio::spawn(async move {
                    let faults = CallFaults::of(&frame);
                    let wait = if h.is_event() {
                        faults.delay.unwrap_or_default()
                    } else {
                        faults.delay.unwrap_or_default() + delay
                    };
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    if let Some(reply) = faults.big_reply(h.id).or_else(|| answer(&frame, &local)) {
                        let _ = tx.send(reply).await;
                    }
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => break Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        tokio::select! {
            read = rd.read_buf(&mut buf) => {
                if read? == 0 {
                    break Ok(());
                }
            }
            command = commands.recv() => {
                let Ok(command) = command else { continue };
                event_id += 1;
                match command_frame(command, event_id) {
                    Some(frame) => {
                        let _ = tx.send(frame).await;
                    }
                    None => {
                        // Close now, even with replies still pending on this connection.
                        writer.abort();
                        return Ok(());
                    }
                }
            }
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
        Ok(Value::Null) => encode_response(&mut out, h.id, &Reply::Null, Some(attachments)),
        Ok(v) => encode_response(&mut out, h.id, &Reply::Value(&v), Some(attachments)),
        Err(Failure::Thrown {
            class_name,
            message,
        }) => {
            let thrown = Reply::Exception {
                class_name: &class_name,
                message: &message,
            };
            encode_response(&mut out, h.id, &thrown, Some(attachments))
        }
        Err(Failure::NoMethod(msg)) => encode_response(
            &mut out,
            h.id,
            &Reply::Status(status::SERVICE_ERROR, &msg),
            None,
        ),
    }
    Some(out)
}

fn invoke(req: &DecodedRequest, local: &str) -> Result<Value, Failure> {
    let (path, method, types) = (
        req.path.as_str(),
        req.method.as_str(),
        req.parameter_types.as_str(),
    );
    // Like Java, a method is found by its name and its parameter descriptors.
    match (path, method, types, req.args.as_slice()) {
        (DEMO_SERVICE, "sayHello", _, [Value::String(name)]) => Ok(Value::String(format!(
            "Hello {name}, response from provider: {local}"
        ))),
        (USER_SERVICE, "getUser", "J", [id]) => Ok(user(id.as_i64().unwrap_or_default())),
        (USER_SERVICE, "listUsers", "I", [n]) => {
            let n = n.as_i64().unwrap_or_default().clamp(0, 100_000);
            Ok(Value::List(List::untyped((1..=n).map(user).collect())))
        }
        (USER_SERVICE, "findByName", "Ljava/lang/String;", [name]) => Ok(match name.as_str() {
            Some("alice") => user(1),
            _ => Value::Null,
        }),
        (USER_SERVICE, "fail", "Ljava/lang/String;", [message]) => Err(Failure::Thrown {
            class_name: USER_NOT_FOUND.to_string(),
            message: message.as_str().unwrap_or_default().to_string(),
        }),
        (USER_SERVICE, "echoMap", "Ljava/util/Map;", [m @ (Value::Map(_) | Value::Null)])
        | (USER_SERVICE, "echo", "Ljava/lang/Object;", [m]) => Ok(m.clone()),
        (USER_SERVICE, "echoLong", "J", [Value::Long(l)]) => Ok(Value::Long(*l)),
        _ => Err(Failure::NoMethod(format!(
            "no method {method}({types}) in service {path}:{} on this provider",
            req.version
        ))),
    }
}

/// The users interface this provider implements (any version), for generic calls and JSON.
pub const USER_SERVICE: &str = "org.apache.dubbo.samples.UserService";

/// The class of the users `UserService` returns.
pub const USER_CLASS: &str = "org.apache.dubbo.samples.User";

/// The business exception `UserService.fail` throws.
pub const USER_NOT_FOUND: &str = "org.apache.dubbo.samples.UserNotFoundException";

/// Why a demo method returned no value.
enum Failure {
    /// The method threw (a business exception): Java class and message.
    Thrown { class_name: String, message: String },
    /// The provider has no such method: answered with a SERVICE_ERROR status.
    NoMethod(String),
}

/// User `id`: every user of a reply shares one class definition, and the tags hold a
/// character outside the BMP.
fn user(id: i64) -> Value {
    Value::Object(Object::new(
        USER_CLASS,
        vec![
            ("id".to_string(), Value::Long(id)),
            ("name".to_string(), Value::String(format!("user-{id}"))),
            ("age".to_string(), Value::Int(20 + (id % 50) as i32)),
            (
                "tags".to_string(),
                Value::List(List::untyped(vec!["dubbo".into(), "😀".into()])),
            ),
        ],
    ))
}
