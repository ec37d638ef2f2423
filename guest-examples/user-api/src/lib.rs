//! `user-api`: an example guest of dubbo-wasm-host.
//!
//! A Wasm component that serves `wasi:http/incoming-handler` as a small JSON API over the
//! Dubbo service `org.apache.dubbo.samples.UserService`, which it imports as
//! `org-apache-dubbo:samples/user-service@1.0.0`. Routes match the last segments of the
//! path, so they work under any route prefix the host gives the guest:
//!
//! * `GET .../users/{id}` calls `get-user(id)` and answers the user;
//! * `GET .../users?count=N` calls `list-users(N)` (`count` defaults to 10) and answers an array;
//! * `GET .../users/by-name/{name}` calls `find-by-name(name)`, 404 when there is none;
//! * `GET .../fail?message=...` calls `fail(message)`, which always fails;
//! * `GET .../notify?message=...` calls the void `notify(message)` and answers `null`;
//! * anything else answers 404 `{"error":"not found"}`.
//!
//! A failed call answers 502 with `{"error":"<case>","message":"..."}`, or for a business
//! exception `{"error":"biz-exception","class":"<class-name>","message":"..."}`. An
//! `x-trace-id` request header is sent with the calls as the Dubbo attachment `traceId`.

use std::io::Write;

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

// Bindings for the Dubbo imports only. The WIT packages are read in place from the
// repository's shared `wit/` folder, dependencies first, so no copies of them live here;
// `generate_all` generates them too instead of expecting them from another crate. The
// `wasi:http` side comes pregenerated from `wasip2`.
wit_bindgen::generate!({
    world: "dubbo-examples:user-api/user-api",
    path: ["../../wit/dubbo-host", "../../wit/samples", "wit"],
    generate_all,
});

use dubbo::host::context;
use dubbo::host::types::RpcError;
use org_apache_dubbo::samples::user_service::{self, User};

/// `count` of `GET .../users` when the query has none.
const DEFAULT_COUNT: i32 = 10;

struct Component;

wasip2::http::proxy::export!(Component);

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        // Attachments set here go with every Dubbo call of this request.
        let trace_id = request.headers().get("x-trace-id").into_iter().next();
        if let Some(id) = trace_id.and_then(|v| String::from_utf8(v).ok()) {
            context::set_attachment("traceId", &id);
        }

        let is_get = matches!(request.method(), Method::Get);
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (status, body) = match route(is_get, &path_with_query) {
            Route::GetUser(id) => answer(user_service::get_user(id), user_json),
            Route::ListUsers(count) => answer(user_service::list_users(count), |users, out| {
                out.push('[');
                for (i, u) in users.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    user_json(u, out);
                }
                out.push(']');
            }),
            Route::FindByName(name) => match user_service::find_by_name(&name).transpose() {
                None => not_found(),
                Some(found) => answer(found, user_json),
            },
            Route::Fail(message) => {
                answer(user_service::fail(&message), |s, out| json_string(s, out))
            }
            Route::Notify(message) => answer(user_service::notify(&message), |(), out| {
                out.push_str("null")
            }),
            Route::BadRequest(message) => {
                let mut out = String::from(r#"{"error":"bad-request","message":"#);
                json_string(message, &mut out);
                out.push('}');
                (400, out)
            }
            Route::NotFound => not_found(),
        };
        respond(response_out, status, &body);
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq)]
enum Route {
    GetUser(i64),
    ListUsers(i32),
    FindByName(String),
    Fail(String),
    Notify(String),
    BadRequest(&'static str),
    NotFound,
}

/// Routes a request by the last segments of its path (percent-decoded, empty segments
/// skipped), so `/users/7` and `/api/v1/users/7` both reach `get-user(7)`.
fn route(is_get: bool, path_with_query: &str) -> Route {
    if !is_get {
        return Route::NotFound;
    }
    let path = path_with_query.split('?').next().unwrap_or_default();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let tail: Vec<&str> = segments.iter().rev().take(3).map(String::as_str).collect();
    match tail.as_slice() {
        [name, "by-name", "users", ..] => Route::FindByName((*name).to_owned()),
        ["users", ..] => match query_param(path_with_query, "count") {
            None => Route::ListUsers(DEFAULT_COUNT),
            Some(n) => match n.parse() {
                Ok(n) => Route::ListUsers(n),
                Err(_) => Route::BadRequest("count must be a 32-bit integer"),
            },
        },
        [id, "users", ..] => match id.parse() {
            Ok(id) => Route::GetUser(id),
            Err(_) => Route::NotFound,
        },
        ["fail", ..] => Route::Fail(query_param(path_with_query, "message").unwrap_or_default()),
        ["notify", ..] => {
            Route::Notify(query_param(path_with_query, "message").unwrap_or_default())
        }
        _ => Route::NotFound,
    }
}

/// 200 with the JSON `write` makes of the value, or 502 with the error as JSON.
fn answer<T>(result: Result<T, RpcError>, write: impl FnOnce(&T, &mut String)) -> (u16, String) {
    let mut out = String::new();
    match result {
        Ok(value) => {
            write(&value, &mut out);
            (200, out)
        }
        Err(err) => {
            rpc_error_json(&err, &mut out);
            (502, out)
        }
    }
}

fn not_found() -> (u16, String) {
    (404, r#"{"error":"not found"}"#.to_owned())
}

/// `{"id":7,"name":"user-7","age":27,"tags":["dubbo"]}`.
fn user_json(user: &User, out: &mut String) {
    out.push_str(&format!(r#"{{"id":{},"name":"#, user.id));
    json_string(&user.name, out);
    out.push_str(&format!(r#","age":{},"tags":["#, user.age));
    for (i, tag) in user.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(tag, out);
    }
    out.push_str("]}");
}

/// `{"error":"<case>","message":"..."}`, with `"class"` for a business exception.
fn rpc_error_json(err: &RpcError, out: &mut String) {
    let (case, message) = match err {
        RpcError::Timeout(m) => ("timeout", m),
        RpcError::NoProvider(m) => ("no-provider", m),
        RpcError::Network(m) => ("network", m),
        RpcError::BizException(e) => {
            out.push_str(r#"{"error":"biz-exception","class":"#);
            json_string(&e.class_name, out);
            out.push_str(r#","message":"#);
            json_string(&e.message, out);
            out.push('}');
            return;
        }
        RpcError::Forbidden(m) => ("forbidden", m),
        RpcError::Serialization(m) => ("serialization", m),
        RpcError::LimitExceeded(m) => ("limit-exceeded", m),
        RpcError::Other(m) => ("other", m),
    };
    out.push_str(&format!(r#"{{"error":"{case}","message":"#));
    json_string(message, out);
    out.push('}');
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped,
/// everything else (non-ASCII included) kept as UTF-8.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Sends `body` as an `application/json` response with the given status.
fn respond(response_out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .expect("content-type is a valid header");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("status is a valid HTTP status");
    let outgoing = response.body().expect("body is taken only once");

    // Hand the response head to the host before streaming the body: the host starts
    // sending it as soon as it is set.
    ResponseOutparam::set(response_out, Ok(response));

    // The stream must be dropped before the body is finished. A write error means the
    // client went away; there is nobody left to tell.
    {
        let mut stream = outgoing.write().expect("body stream is taken only once");
        // `Write::flush`, not the stream's own non-blocking `flush`.
        let _ = stream
            .write_all(body.as_bytes())
            .and_then(|()| Write::flush(&mut stream));
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// The first value of `key` in the query of `path_with_query` (`/path?a=1&b=2`),
/// form-decoded; `None` when the key is absent.
fn query_param(path_with_query: &str, key: &str) -> Option<String> {
    let (_, query) = path_with_query.split_once('?')?;
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| percent_decode(k, true) == key)
        .map(|(_, v)| percent_decode(v, true))
}

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space` (form encoding, for
/// queries; a `+` in a path is itself). A malformed escape is kept as written, and bytes
/// that are not UTF-8 become U+FFFD rather than failing the request.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
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
    use dubbo::host::types::BizException;

    fn get(path: &str) -> Route {
        route(true, path)
    }

    #[test]
    fn routes_by_the_last_segments() {
        assert_eq!(get("/users/7"), Route::GetUser(7));
        assert_eq!(get("/api/users/-3/"), Route::GetUser(-3));
        assert_eq!(get("/users/7?x=1"), Route::GetUser(7));
        assert_eq!(get("/users/seven"), Route::NotFound);
        assert_eq!(get("/users/99999999999999999999"), Route::NotFound);
        assert_eq!(get("/users"), Route::ListUsers(DEFAULT_COUNT));
        assert_eq!(get("/x/users/?count=3"), Route::ListUsers(3));
        assert_eq!(
            get("/users?count=3x"),
            Route::BadRequest("count must be a 32-bit integer")
        );
        assert_eq!(
            get("/users/by-name/J%C3%BCrgen+M%2Fx"),
            Route::FindByName("Jürgen+M/x".to_owned())
        );
        assert_eq!(
            get("/users/by-name/users"),
            Route::FindByName("users".into())
        );
        assert_eq!(get("/users/by-name"), Route::NotFound);
        assert_eq!(get("/users/by-name/"), Route::NotFound);
        assert_eq!(get("/fail?message=boom+%21"), Route::Fail("boom !".into()));
        assert_eq!(get("/a/fail"), Route::Fail(String::new()));
        assert_eq!(get("/"), Route::NotFound);
        assert_eq!(get(""), Route::NotFound);
        assert_eq!(get("/users/7/orders"), Route::NotFound);
        assert_eq!(route(false, "/users/7"), Route::NotFound);
    }

    #[test]
    fn decodes_query_values() {
        assert_eq!(query_param("/?count=5", "count").as_deref(), Some("5"));
        assert_eq!(
            query_param("/f?x=1&message=J%C3%BCrgen+M%2B", "message").as_deref(),
            Some("Jürgen M+")
        );
        assert_eq!(query_param("/?message", "message").as_deref(), Some(""));
        assert_eq!(query_param("/?a=%zz%", "a").as_deref(), Some("%zz%"));
        assert_eq!(query_param("/?other=1", "count"), None);
        assert_eq!(query_param("/", "count"), None);
    }

    fn json(s: &str) -> String {
        let mut out = String::new();
        json_string(s, &mut out);
        out
    }

    #[test]
    fn escapes_json_strings() {
        assert_eq!(json(""), r#""""#);
        assert_eq!(json(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(json("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(
            json("\u{0}\u{8}\u{1f}\u{7f}"),
            "\"\\u0000\\u0008\\u001f\u{7f}\""
        );
        assert_eq!(json("Jürgen 😀 </script>"), "\"Jürgen 😀 </script>\"");
    }

    #[test]
    fn writes_users_and_errors() {
        let user = User {
            id: 7,
            name: "user-7".into(),
            age: 27,
            tags: vec!["dubbo".into(), "😀".into()],
        };
        let mut out = String::new();
        user_json(&user, &mut out);
        assert_eq!(
            out,
            r#"{"id":7,"name":"user-7","age":27,"tags":["dubbo","😀"]}"#
        );

        let mut out = String::new();
        rpc_error_json(
            &RpcError::BizException(BizException {
                class_name: "java.lang.IllegalStateException".into(),
                message: "said \"no\"".into(),
            }),
            &mut out,
        );
        assert_eq!(
            out,
            r#"{"error":"biz-exception","class":"java.lang.IllegalStateException","message":"said \"no\""}"#
        );

        let mut out = String::new();
        rpc_error_json(&RpcError::LimitExceeded("3 > 2".into()), &mut out);
        assert_eq!(out, r#"{"error":"limit-exceeded","message":"3 > 2"}"#);
    }
}
