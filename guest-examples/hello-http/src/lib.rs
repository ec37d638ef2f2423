//! `hello-http`: the example guest of dubbo-wasm-host.
//!
//! A Wasm component that serves `wasi:http/incoming-handler` and answers every
//! request by calling the Dubbo service `org.apache.dubbo.demo.DemoService`,
//! which it imports as `org-apache-dubbo:demo/demo-service@1.0.0`:
//!
//! * `GET /?name=Bob` calls `say-hello("Bob")` (`name` defaults to `world`);
//! * `Ok(greeting)` answers 200 with the greeting as a `text/plain` body;
//! * `Err(rpc-error)` answers 502 with e.g. `rpc error: timeout: <message>`.
//!
//! The host binds the import to a Dubbo reference at load time; the guest
//! only sees a plain function returning `result<string, rpc-error>`.
//!
//! The cargo feature `v2` builds a second version of this guest that differs
//! only in that every response body starts with `v2: `. It exists for the
//! host's hot-swap tests and swap bench, which swap the two versions under
//! load and tell from a body which one answered.

use std::io::Write;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

// Bindings for the Dubbo import only. The WIT packages are read in place from
// the repository's shared `wit/` folder, dependencies first, so no copies of
// them live here; `generate_all` generates them too instead of expecting them
// from another crate. The `wasi:http` side comes pregenerated from `wasip2`.
wit_bindgen::generate!({
    world: "dubbo-examples:hello-http/hello-http",
    path: ["../../wit/dubbo-host", "../../wit/demo", "wit"],
    generate_all,
});

use dubbo::host::types::RpcError;
use org_apache_dubbo::demo::demo_service;

struct Component;

wasip2::http::proxy::export!(Component);

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let query = request.path_with_query().unwrap_or_default();
        let name = query_param(&query, "name").unwrap_or_else(|| "world".to_owned());

        let (status, body) = match demo_service::say_hello(&name) {
            Ok(greeting) => (200, greeting),
            Err(err) => (502, format!("rpc error: {}", describe(&err))),
        };
        respond(response_out, status, &body);
    }
}

/// What every response body starts with: `v2: ` in the second version (feature
/// `v2`), so that a client can tell the versions apart.
const BODY_PREFIX: &str = if cfg!(feature = "v2") { "v2: " } else { "" };

/// Sends `body` as a `text/plain` response with the given status.
fn respond(response_out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::from_list(&[(
        "content-type".to_owned(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .expect("content-type is a valid header");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("status is a valid HTTP status");
    let outgoing = response.body().expect("body is taken only once");

    // Hand the response head to the host before streaming the body: the host
    // starts sending it as soon as it is set.
    ResponseOutparam::set(response_out, Ok(response));

    // The stream must be dropped before the body is finished. A write error
    // means the client went away; there is nobody left to tell.
    {
        let mut stream = outgoing.write().expect("body stream is taken only once");
        // `Write::flush`, not the stream's own non-blocking `flush`.
        let _ = stream
            .write_all(BODY_PREFIX.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .and_then(|()| Write::flush(&mut stream));
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// `rpc-error` as `<case>: <text>`, the case name spelled as in the WIT.
fn describe(err: &RpcError) -> String {
    let (case, text) = match err {
        RpcError::Timeout(m) => ("timeout", m),
        RpcError::NoProvider(m) => ("no-provider", m),
        RpcError::Network(m) => ("network", m),
        RpcError::BizException(e) => {
            return format!("biz-exception: {}: {}", e.class_name, e.message)
        }
        RpcError::Forbidden(m) => ("forbidden", m),
        RpcError::Serialization(m) => ("serialization", m),
        RpcError::LimitExceeded(m) => ("limit-exceeded", m),
        RpcError::Other(m) => ("other", m),
    };
    format!("{case}: {text}")
}

/// The first value of `key` in the query of `path_with_query`
/// (`/path?a=1&b=2`), form-decoded; `None` when the key is absent.
fn query_param(path_with_query: &str, key: &str) -> Option<String> {
    let (_, query) = path_with_query.split_once('?')?;
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| form_decode(k) == key)
        .map(|(_, v)| form_decode(v))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space and `%XX`
/// a byte. A malformed escape is kept as written, and bytes that are not
/// UTF-8 become U+FFFD rather than failing the request.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(hex_byte) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte written as two hex digits, e.g. `b"2F"` -> `0x2F`.
fn hex_byte(digits: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(digits).ok()?;
    // `from_str_radix` accepts a leading `+`, which is not a hex digit here.
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_values() {
        assert_eq!(query_param("/?name=Bob", "name").as_deref(), Some("Bob"));
        assert_eq!(
            query_param("/hi?x=1&name=J%C3%BCrgen+M%2B", "name").as_deref(),
            Some("Jürgen M+")
        );
        assert_eq!(query_param("/?name", "name").as_deref(), Some(""));
        assert_eq!(
            query_param("/?n%61me=a%zz%", "name").as_deref(),
            Some("a%zz%")
        );
        assert_eq!(query_param("/?other=1", "name"), None);
        assert_eq!(query_param("/", "name"), None);
    }
}
