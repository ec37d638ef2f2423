//! Bodies of `dubbo://` frames with Hessian2: invocation requests, responses (value, null,
//! exception, each with or without attachments), error statuses and events (heartbeat,
//! read-only). Both directions are here so the test provider and the host share one codec.

use bytes::BytesMut;

use super::frame::{
    patch_body_len, status, Header, FLAG_EVENT, FLAG_REQUEST, FLAG_TWO_WAY, HEADER_LEN, HESSIAN2,
};
use crate::hessian2::{ref_table, DecodeError, Decoder, Encoder, Object, Value};
use crate::rpc::{Invocation, RpcError, RpcResult, ServiceKey};

/// The Dubbo protocol version written in requests; providers send response attachments only
/// to peers in [2.0.2, 2.0.99].
pub const DUBBO_VERSION: &str = "2.0.2";

/// Response body flags (`DecodeableRpcResult`).
mod flag {
    pub const WITH_EXCEPTION: i32 = 0;
    pub const VALUE: i32 = 1;
    pub const NULL_VALUE: i32 = 2;
    pub const WITH_EXCEPTION_WITH_ATTACHMENTS: i32 = 3;
    pub const VALUE_WITH_ATTACHMENTS: i32 = 4;
    pub const NULL_VALUE_WITH_ATTACHMENTS: i32 = 5;
}

fn start_frame(out: &mut BytesMut, flags: u8, status: u8, id: u64) -> usize {
    let start = out.len();
    out.reserve(HEADER_LEN + 64);
    Header {
        flags: flags | HESSIAN2,
        status,
        id,
        body_len: 0,
    }
    .write(out);
    start
}

/// Appends a request frame for `inv` on `service`, with the attachments Java Dubbo sends
/// (`path`, `interface`, `group`, `version`, `timeout`, and the provider's `token` when it has
/// one) followed by the invocation's own.
pub fn encode_request(
    out: &mut BytesMut,
    id: u64,
    two_way: bool,
    service: &ServiceKey,
    token: Option<&str>,
    inv: &Invocation,
    timeout_ms: u64,
) {
    let flags = FLAG_REQUEST | if two_way { FLAG_TWO_WAY } else { 0 };
    let start = start_frame(out, flags, 0, id);
    let mut digits = [0u8; 20];
    let timeout = decimal(timeout_ms, &mut digits);
    {
        let mut enc = Encoder::new(out);
        enc.write_string(DUBBO_VERSION);
        enc.write_string(&service.interface);
        enc.write_string(service.wire_version());
        enc.write_string(&inv.method);
        enc.write_string(&inv.parameter_types);
        for arg in &inv.args {
            enc.write_value(arg);
        }
        let fixed = [
            ("path", service.interface.as_str()),
            ("interface", service.interface.as_str()),
        ];
        let group = service.group.as_deref().map(|g| ("group", g));
        let rest = [("version", service.wire_version()), ("timeout", timeout)];
        let token = token.map(|t| ("token", t));
        let extra = inv
            .attachments
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        enc.write_string_map(
            fixed
                .into_iter()
                .chain(group)
                .chain(rest)
                .chain(token)
                .chain(extra),
        );
    }
    patch_body_len(out, start);
}

/// `n` in decimal, written into `buf`: the timeout attachment costs no allocation per call.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Appends a heartbeat request (event, two-way, body `null`).
pub fn encode_heartbeat_request(out: &mut BytesMut, id: u64) {
    let start = start_frame(out, FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT, 0, id);
    Encoder::new(out).write_null();
    patch_body_len(out, start);
}

/// Appends the reply to a peer's heartbeat request `id`.
pub fn encode_heartbeat_response(out: &mut BytesMut, id: u64) {
    let start = start_frame(out, FLAG_EVENT, status::OK, id);
    Encoder::new(out).write_null();
    patch_body_len(out, start);
}

/// Appends a one-way event request carrying `data` (`"R"` read-only, `"W"` writable).
pub fn encode_event(out: &mut BytesMut, id: u64, data: &str) {
    let start = start_frame(out, FLAG_REQUEST | FLAG_EVENT, 0, id);
    Encoder::new(out).write_string(data);
    patch_body_len(out, start);
}

/// An event frame's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Heartbeat,
    /// The provider is shutting down: send it no new calls.
    ReadOnly,
    /// The provider takes calls again.
    Writable,
    Other(String),
}

/// Decodes an event body: `null` (or empty) is a heartbeat, otherwise a short string.
pub fn decode_event(body: &[u8]) -> Result<Event, DecodeError> {
    if body.is_empty() {
        return Ok(Event::Heartbeat);
    }
    Ok(match Decoder::new(body).read_value()? {
        Value::Null => Event::Heartbeat,
        Value::String(s) if s == "R" => Event::ReadOnly,
        Value::String(s) if s == "W" => Event::Writable,
        Value::String(s) => Event::Other(s),
        other => Event::Other(format!("{other:?}")),
    })
}

/// Decodes the body of a non-event response into the call's outcome.
pub fn decode_response(header: &Header, body: &[u8]) -> Result<RpcResult, RpcError> {
    decode_reply(header, body).map_err(|e| match e {
        ReplyError::Call(e) | ReplyError::Broken(e) => e,
    })
}

/// Why a reply frame gave no result: the call failed, or the frame itself is broken.
#[derive(Debug)]
pub enum ReplyError {
    /// The call's own error (a status, an exception, a value the host refuses).
    Call(RpcError),
    /// The body ends in the middle of a value although the header's length was honoured: the
    /// provider's stream cannot be trusted, so the connection must close. Still a
    /// `serialization` error for the call.
    Broken(RpcError),
}

/// [`decode_response`], telling a broken frame from a failed call.
pub fn decode_reply(header: &Header, body: &[u8]) -> Result<RpcResult, ReplyError> {
    let call = ReplyError::Call;
    let mut dec = Decoder::new(body);
    if header.status != status::OK {
        let msg = dec
            .read_value()
            .ok()
            .and_then(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .unwrap_or_default();
        return Err(call(status_error(header.status, msg)));
    }
    let bad = |e: DecodeError| {
        let truncated = matches!(e, DecodeError::UnexpectedEnd { .. });
        let e = RpcError::Serialization(format!("response {}: {e}", header.id));
        if truncated {
            ReplyError::Broken(e)
        } else {
            ReplyError::Call(e)
        }
    };
    let flag = dec.read_int().map_err(bad)?;
    let with_attachments = (3..=5).contains(&flag);
    let value = match flag {
        flag::VALUE | flag::VALUE_WITH_ATTACHMENTS => Some(dec.read_value().map_err(bad)?),
        flag::NULL_VALUE | flag::NULL_VALUE_WITH_ATTACHMENTS => None,
        flag::WITH_EXCEPTION | flag::WITH_EXCEPTION_WITH_ATTACHMENTS => {
            let exception = dec.read_value().map_err(bad)?;
            return Err(call(biz_exception(&exception)));
        }
        other => {
            return Err(call(RpcError::Serialization(format!(
                "response {}: unknown response flag {other}",
                header.id
            ))))
        }
    };
    let attachments = if with_attachments {
        match dec.read_value().map_err(bad)? {
            Value::Map(m) => m
                .entries
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Value::String(k) => Some((k, v)),
                    _ => None,
                })
                .collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(call(RpcError::Serialization(format!(
                    "response {}: attachments are not a map: {other:?}",
                    header.id
                ))))
            }
        }
    } else {
        Vec::new()
    };
    Ok(RpcResult {
        value: value.unwrap_or(Value::Null),
        attachments,
    })
}

/// Dubbo's name of a response status, for messages.
pub fn status_name(code: u8) -> &'static str {
    match code {
        status::OK => "OK",
        status::SERIALIZATION_ERROR => "SERIALIZATION_ERROR",
        status::CLIENT_TIMEOUT => "CLIENT_TIMEOUT",
        status::SERVER_TIMEOUT => "SERVER_TIMEOUT",
        status::CHANNEL_INACTIVE => "CHANNEL_INACTIVE",
        status::BAD_REQUEST => "BAD_REQUEST",
        status::BAD_RESPONSE => "BAD_RESPONSE",
        status::SERVICE_NOT_FOUND => "SERVICE_NOT_FOUND",
        status::SERVICE_ERROR => "SERVICE_ERROR",
        status::SERVER_ERROR => "SERVER_ERROR",
        status::CLIENT_ERROR => "CLIENT_ERROR",
        status::SERVER_THREADPOOL_EXHAUSTED_ERROR => "SERVER_THREADPOOL_EXHAUSTED_ERROR",
        _ => "UNKNOWN_STATUS",
    }
}

/// Maps a non-OK status to the rpc-error case a guest sees. Timeouts keep the bare message
/// (the status is implied); other cases name the status so that each stays distinguishable.
pub fn status_error(code: u8, msg: String) -> RpcError {
    let named = || {
        if msg.is_empty() {
            format!("{} ({code})", status_name(code))
        } else {
            format!("{} ({code}): {msg}", status_name(code))
        }
    };
    match code {
        status::CLIENT_TIMEOUT | status::SERVER_TIMEOUT if !msg.is_empty() => {
            RpcError::Timeout(msg)
        }
        status::CLIENT_TIMEOUT | status::SERVER_TIMEOUT => RpcError::Timeout(named()),
        status::SERIALIZATION_ERROR | status::BAD_REQUEST | status::BAD_RESPONSE => {
            RpcError::Serialization(named())
        }
        status::CHANNEL_INACTIVE => RpcError::Network(named()),
        status::SERVER_THREADPOOL_EXHAUSTED_ERROR => RpcError::LimitExceeded(named()),
        status::SERVICE_NOT_FOUND => RpcError::NoProvider(named()),
        _ => RpcError::Other(named()),
    }
}

/// Reads the Java class and message of a thrown exception object.
fn biz_exception(exception: &Value) -> RpcError {
    match exception {
        Value::Object(o) => RpcError::BizException {
            class_name: o.class.name.clone(),
            message: exception_message(o, std::slice::from_ref(exception)),
        },
        other => RpcError::BizException {
            class_name: "java.lang.Throwable".to_string(),
            message: format!("{other:?}"),
        },
    }
}

fn exception_message(o: &Object, roots: &[Value]) -> String {
    match o.get("detailMessage") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Ref(n)) => match ref_table(roots).get(*n as usize) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// A request as a provider reads it (used by the test provider).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    pub dubbo_version: String,
    pub path: String,
    pub version: String,
    pub method: String,
    pub parameter_types: String,
    pub args: Vec<Value>,
    pub attachments: Vec<(String, Value)>,
}

impl DecodedRequest {
    /// A string attachment's value.
    pub fn attachment(&self, key: &str) -> Option<&str> {
        self.attachments
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_str())
    }
}

/// Decodes an invocation request body.
pub fn decode_request(body: &[u8]) -> Result<DecodedRequest, DecodeError> {
    let mut dec = Decoder::new(body);
    let dubbo_version = dec.read_string()?;
    let path = dec.read_string()?;
    // Java writes a missing version as null.
    let version = match dec.read_value()? {
        Value::String(s) => s,
        _ => String::new(),
    };
    let method = dec.read_string()?;
    let parameter_types = dec.read_string()?;
    let arity = descriptor_arity(&parameter_types).unwrap_or(0);
    let mut args = Vec::with_capacity(arity.min(256));
    for _ in 0..arity {
        args.push(dec.read_value()?);
    }
    let attachments = if dec.is_at_end() {
        Vec::new()
    } else {
        match dec.read_value()? {
            Value::Map(m) => m
                .entries
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Value::String(k) => Some((k, v)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    Ok(DecodedRequest {
        dubbo_version,
        path,
        version,
        method,
        parameter_types,
        args,
        attachments,
    })
}

/// Number of parameters in a JVM descriptor list such as `Ljava/lang/String;I[J`.
pub fn descriptor_arity(desc: &str) -> Option<usize> {
    let b = desc.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        while b.get(i) == Some(&b'[') {
            i += 1;
        }
        match b.get(i)? {
            b'L' => i += desc[i..].find(';')? + 1,
            b'Z' | b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' => i += 1,
            _ => return None,
        }
        n += 1;
    }
    Some(n)
}

/// What a provider answers to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<'a> {
    Value(&'a Value),
    Null,
    /// A thrown exception: Java class name and message.
    Exception {
        class_name: &'a str,
        message: &'a str,
    },
    /// A non-OK status with its error message.
    Status(u8, &'a str),
}

/// Appends a response frame; `attachments` are written (flags 3–5) only when given.
pub fn encode_response(
    out: &mut BytesMut,
    id: u64,
    reply: &Reply<'_>,
    attachments: Option<&[(&str, &str)]>,
) {
    let code = match reply {
        Reply::Status(code, _) => *code,
        _ => status::OK,
    };
    let start = start_frame(out, 0, code, id);
    {
        let mut enc = Encoder::new(out);
        let att = if attachments.is_some() { 3 } else { 0 };
        match reply {
            Reply::Value(v) => {
                enc.write_int(flag::VALUE + att);
                enc.write_value(v);
            }
            Reply::Null => enc.write_int(flag::NULL_VALUE + att),
            Reply::Exception {
                class_name,
                message,
            } => {
                enc.write_int(flag::WITH_EXCEPTION + att);
                enc.write_value(&Value::Object(Object::new(
                    *class_name,
                    vec![
                        (
                            "detailMessage".to_string(),
                            Value::String(message.to_string()),
                        ),
                        ("cause".to_string(), Value::Null),
                    ],
                )));
            }
            Reply::Status(_, msg) => enc.write_string(msg),
        }
        if let (Some(a), false) = (attachments, matches!(reply, Reply::Status(..))) {
            enc.write_string_map(a.iter().copied());
        }
    }
    patch_body_len(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_status_maps_to_one_rpc_error_naming_the_status() {
        let cases = [
            (status::SERIALIZATION_ERROR, "serialization"),
            (status::CLIENT_TIMEOUT, "timeout"),
            (status::SERVER_TIMEOUT, "timeout"),
            (status::CHANNEL_INACTIVE, "network"),
            (status::BAD_REQUEST, "serialization"),
            (status::BAD_RESPONSE, "serialization"),
            (status::SERVICE_NOT_FOUND, "no-provider"),
            (status::SERVICE_ERROR, "other"),
            (status::SERVER_ERROR, "other"),
            (status::CLIENT_ERROR, "other"),
            (status::SERVER_THREADPOOL_EXHAUSTED_ERROR, "limit-exceeded"),
        ];
        for (code, kind) in cases {
            let e = status_error(code, "why".into());
            assert_eq!(e.kind(), kind, "status {code}");
            if code != status::CLIENT_TIMEOUT && code != status::SERVER_TIMEOUT {
                assert!(e.to_string().contains(status_name(code)), "{e}");
            }
        }
    }

    #[test]
    fn decimal_prints_like_to_string() {
        for n in [0, 7, 3000, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }

    #[test]
    fn descriptor_arity_counts_primitives_arrays_and_classes() {
        assert_eq!(descriptor_arity(""), Some(0));
        assert_eq!(descriptor_arity("Ljava/lang/String;I[J"), Some(3));
        assert_eq!(descriptor_arity("[[Lx/Y;Z"), Some(2));
        assert_eq!(descriptor_arity("Lbroken"), None);
    }
}
