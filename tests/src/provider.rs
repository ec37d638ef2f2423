//! A small Dubbo provider speaking `dubbo://` with Hessian2, built on the host's own codec:
//! it serves `org.apache.dubbo.demo.DemoService#sayHello` like the Java demo provider and the
//! `org.apache.dubbo.samples.UserService` methods the typed and generic tests call, answers
//! heartbeats, counts accepted connections and misbehaves on request (see `faults`; the hostile
//! replies of `hostile` take the place of a reply, on the connection's writer). With
//! application-level registration it also serves Dubbo's `MetadataService` (see `metadata`),
//! on the services' port or on a port of its own. Tests and the demo run it as a process.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dubbo_wasm_host::hessian2::{DecodeError, List, Object, Value};
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, status, Frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{
    decode_request, encode_heartbeat_response, encode_response, DecodedRequest, Reply,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use crate::faults::{command_frame, CallFaults, Command, Control};
use crate::hostile::Hostile;
use crate::metadata::{
    MetadataInfo, GET_METADATA_INFO, METADATA_SERVICE, METADATA_SERVICE_VERSION,
};

/// The demo interface this provider implements.
pub const DEMO_SERVICE: &str = "org.apache.dubbo.demo.DemoService";

/// What one listener serves.
#[derive(Clone)]
pub struct Exports {
    /// Whether the demo and user services answer here (false on a metadata-only port).
    pub services: bool,
    /// Dubbo's `MetadataService`, if it is exported on this listener.
    pub metadata: Option<Arc<MetadataExport>>,
    /// The `token` every call of the services must carry (Dubbo's `TokenFilter`), if any.
    pub token: Option<String>,
}

impl Exports {
    /// The demo and user services only, as before application-level registration.
    pub fn services() -> Exports {
        Exports {
            services: true,
            metadata: None,
            token: None,
        }
    }
}

/// `MetadataService` (version 1.0.0, group = the application) answering `getMetadataInfo`.
pub struct MetadataExport {
    /// The metadata it hands out.
    pub info: MetadataInfo,
    /// What a call asking for another revision gets.
    pub unknown_revision: UnknownRevision,
    /// `info` as a Hessian value, built once.
    value: Value,
}

impl MetadataExport {
    /// The service handing out `info`.
    pub fn new(info: MetadataInfo, unknown_revision: UnknownRevision) -> MetadataExport {
        let value = info.to_value();
        MetadataExport {
            info,
            unknown_revision,
            value,
        }
    }
}

/// The answer to `getMetadataInfo` for a revision that is not this provider's (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownRevision {
    /// `null`, what Java 3.2's `MetadataServiceDelegation` returns (it logs "metadata not
    /// found for revision").
    Null,
    /// A SERVICE_ERROR status with a message.
    Error,
}

/// What a connection's writer task writes: a frame, or a hostile reply (see `hostile`).
enum Outgoing {
    Frame(BytesMut),
    Hostile(Hostile),
}

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
    serve_exports(listener, control, delay, Exports::services()).await
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a Control);

impl<'a> InFlight<'a> {
    fn start(control: &'a Control) -> InFlight<'a> {
        let now = control.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        control.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(control)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Like `serve_delayed`, serving what `exports` says on this listener. Connections to a
/// listener without the services (a metadata-only port) are not counted as `accepted`.
pub async fn serve_exports(
    listener: TcpListener,
    control: Arc<Control>,
    delay: Duration,
    exports: Exports,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let exports = Arc::new(exports);
    loop {
        let (stream, _) = listener.accept().await?;
        // Subscribe before counting: once `accepted` shows it, the connection gets commands.
        let commands = control.subscribe();
        if exports.services {
            control.accepted.fetch_add(1, Ordering::Relaxed);
        }
        let _ = stream.set_nodelay(true);
        let served = serve_connection(
            stream,
            local.to_string(),
            control.clone(),
            commands,
            delay,
            exports.clone(),
        );
        tokio::spawn(async move {
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
    exports: Arc<Exports>,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(1024);
    let sent = control.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let more = match out {
                Outgoing::Frame(frame) => wr.write_all(&frame).await.map(|()| true),
                Outgoing::Hostile(hostile) => {
                    sent.hostile_sent.fetch_add(1, Ordering::Relaxed);
                    hostile.write(&mut wr).await
                }
            };
            match more {
                Ok(true) => {}
                // A silent stall: what is queued from now on is never written.
                Ok(false) => while rx.recv().await.is_some() {},
                Err(_) => break,
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
                let request =
                    (h.is_request() && !h.is_event()).then(|| decode_request(&frame.body));
                let is_metadata = matches!(&request, Some(Ok(r)) if r.path == METADATA_SERVICE);
                if is_metadata {
                    control.metadata_calls.fetch_add(1, Ordering::Relaxed);
                } else if !h.is_event() {
                    control.requests.fetch_add(1, Ordering::Relaxed);
                }
                if is_metadata && control.mute_metadata.load(Ordering::Relaxed) {
                    continue;
                }
                let hostile = (h.is_request() && h.is_two_way() && !h.is_event() && !is_metadata)
                    .then(|| control.take_hostile())
                    .flatten();
                if let Some(mode) = hostile {
                    let _ = tx.send(Outgoing::Hostile(Hostile::reply(mode, h.id))).await;
                    continue;
                }
                let tx = tx.clone();
                let local = local.clone();
                let exports = exports.clone();
                let control = control.clone();
                tokio::spawn(async move {
                    let _counted = (!h.is_event()).then(|| InFlight::start(&control));
                    let faults = match &request {
                        Some(Ok(req)) => CallFaults::of_request(req),
                        _ => CallFaults::default(),
                    };
                    let wait = if h.is_event() {
                        faults.delay.unwrap_or_default()
                    } else {
                        faults.delay.unwrap_or_default() + delay
                    };
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    let reply = faults
                        .big_reply(h.id)
                        .or_else(|| answer(&frame, request, &local, &exports));
                    if let Some(reply) = reply {
                        let _ = tx.send(Outgoing::Frame(reply)).await;
                    }
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => break Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => {
                    control.peer_closed.fetch_add(1, Ordering::Relaxed);
                    break Ok(());
                }
                Ok(_) => {}
                Err(e) => {
                    // A reset is the consumer closing too (with unread data on its side).
                    control.peer_closed.fetch_add(1, Ordering::Relaxed);
                    break Err(e);
                }
            },
            command = commands.recv() => {
                let Ok(command) = command else { continue };
                event_id += 1;
                match command_frame(command, event_id) {
                    Some(frame) => {
                        let _ = tx.send(Outgoing::Frame(frame)).await;
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

/// The reply frame for one incoming frame (`request` is its decoded body when it is an
/// invocation), if it needs one.
fn answer(
    frame: &Frame,
    request: Option<Result<DecodedRequest, DecodeError>>,
    local: &str,
    exports: &Exports,
) -> Option<BytesMut> {
    let h = frame.header;
    let mut out = BytesMut::new();
    if h.is_event() {
        if h.is_request() && h.is_two_way() {
            encode_heartbeat_response(&mut out, h.id);
            return Some(out);
        }
        return None;
    }
    let req = match request? {
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
    match dispatch(&req, local, exports) {
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
        Err(Failure::ServiceError(msg)) => encode_response(
            &mut out,
            h.id,
            &Reply::Status(status::SERVICE_ERROR, &msg),
            None,
        ),
    }
    Some(out)
}

/// Routes a request to the service exported on this listener that it names.
fn dispatch(req: &DecodedRequest, local: &str, exports: &Exports) -> Result<Value, Failure> {
    if req.path == METADATA_SERVICE {
        if let Some(metadata) = &exports.metadata {
            return metadata_service(req, metadata, local);
        }
    } else if exports.services {
        if let Some(token) = &exports.token {
            let given = req.attachment("token").unwrap_or_default();
            if given != token {
                // Dubbo's TokenFilter throws this RpcException, which reaches the consumer.
                return Err(Failure::Thrown {
                    class_name: "org.apache.dubbo.rpc.RpcException".to_string(),
                    message: format!(
                        "Invalid token! Forbid invoke remote service interface {} method {}() from consumer to provider {local}, consumer incorrect token is {given}",
                        req.path, req.method
                    ),
                });
            }
        }
        return invoke(req, local);
    }
    Err(not_exported(req, local))
}

/// Java's answer to a call of a service that is not exported on this port (or not with this
/// group and version): `RemotingException` "Not found exported service", a SERVICE_ERROR.
fn not_exported(req: &DecodedRequest, local: &str) -> Failure {
    let group = req
        .attachment("group")
        .filter(|g| !g.is_empty())
        .map(|g| format!("{g}/"))
        .unwrap_or_default();
    let port = local.rsplit(':').next().unwrap_or_default();
    Failure::ServiceError(format!(
        "Not found exported service: {group}{}:{}:{port}, may be version or group mismatch",
        req.path, req.version
    ))
}

/// `MetadataService.getMetadataInfo(revision)`, group = the application, version 1.0.0.
fn metadata_service(
    req: &DecodedRequest,
    metadata: &MetadataExport,
    local: &str,
) -> Result<Value, Failure> {
    if req.attachment("group") != Some(metadata.info.app.as_str())
        || req.version != METADATA_SERVICE_VERSION
    {
        return Err(not_exported(req, local));
    }
    let (method, types) = GET_METADATA_INFO;
    if req.method != method || req.parameter_types != types {
        return Err(Failure::ServiceError(format!(
            "no method {}({}) in service {METADATA_SERVICE}:{METADATA_SERVICE_VERSION} on this provider",
            req.method, req.parameter_types
        )));
    }
    let asked = req.args.first().and_then(Value::as_str).unwrap_or_default();
    if asked == metadata.info.revision {
        return Ok(metadata.value.clone());
    }
    match metadata.unknown_revision {
        UnknownRevision::Null => Ok(Value::Null),
        UnknownRevision::Error => Err(Failure::ServiceError(format!(
            "metadata not found for revision: {asked} (this provider's is {})",
            metadata.info.revision
        ))),
    }
}

fn invoke(req: &DecodedRequest, local: &str) -> Result<Value, Failure> {
    let (path, method, types) = (
        req.path.as_str(),
        req.method.as_str(),
        req.parameter_types.as_str(),
    );
    // Like Java, a method is found by its name and its parameter descriptors.
    match (path, method, types, req.args.as_slice()) {
        // Dubbo's EchoFilter answers `$echo` of any exported service with its argument.
        (DEMO_SERVICE | USER_SERVICE, "$echo", _, [v]) => Ok(v.clone()),
        (USER_SERVICE, "notify", "Ljava/lang/String;", [_]) => Ok(Value::Null),
        (DEMO_SERVICE, "sayHello", _, [Value::String(name)]) => Ok(Value::String(format!(
            "Hello {name}, response from provider: {local}"
        ))),
        (USER_SERVICE, "getUser", "J", [id]) => Ok(user(id.as_i64().unwrap_or_default())),
        // The overload: a user of that name.
        (USER_SERVICE, "getUser", "Ljava/lang/String;", [Value::String(name)]) => {
            Ok(user_named(name))
        }
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
        _ => Err(Failure::ServiceError(format!(
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
    /// The provider cannot run the call (no such method or exported service, or an unknown
    /// metadata revision): answered with a SERVICE_ERROR status, as Java's exchange does.
    ServiceError(String),
}

/// `getUser(String name)`'s user: id the name's length, otherwise like [`user`].
fn user_named(name: &str) -> Value {
    let Value::Object(mut o) = user(name.chars().count() as i64) else {
        return Value::Null;
    };
    if let Some(slot) = o.class.fields.iter().position(|f| f == "name") {
        o.values[slot] = Value::String(name.to_string());
    }
    Value::Object(o)
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
