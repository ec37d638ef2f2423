//! `generated-users`: a command guest written against the WIT `dubbo-wasm-host wit generate`
//! writes for the test provider's `org.apache.dubbo.samples.UserService` (package
//! `generated:users`, generated with `--lenient --nullable UserService.findByName`). It calls
//! every method once and prints one line per call, `<function>: <result>`, which the
//! end-to-end test compares; an rpc error prints as `<function>: error <case>: <text>`.
//!
//! Nothing here is written by hand against Java: if the generator names a function, a
//! parameter or a type differently, this does not compile, and the round trip fails.

use std::io::Write;

wit_bindgen::generate!({
    world: "tests:generated-users/generated-users",
    path: "wit",
    generate_all,
});

use dubbo::host::generic;
use dubbo::host::types::RpcError;
use generated::users::user_service::{self as users, User};

fn main() {
    let mut out = std::io::stdout().lock();
    let mut line = |name: &str, text: String| {
        let _ = writeln!(out, "{name}: {text}");
    };
    line("get-user", shown(users::get_user(7).map(|u| user(&u))));
    line(
        "get-user-by-string",
        shown(users::get_user_by_string("alice").map(|u| user(&u))),
    );
    line(
        "list-users",
        shown(users::list_users(3).map(|us| {
            let ids: Vec<String> = us.iter().map(|u| u.id.to_string()).collect();
            ids.join(",")
        })),
    );
    line(
        "find-by-name alice",
        shown(users::find_by_name(Some("alice")).map(|u| u.map_or("none".into(), |u| user(&u)))),
    );
    line(
        "find-by-name bob",
        shown(users::find_by_name(Some("bob")).map(|u| u.map_or("none".into(), |u| user(&u)))),
    );
    let entries = vec![("z".to_string(), 1), ("a".to_string(), -2)];
    line(
        "echo-map",
        shown(users::echo_map(&entries).map(|m| {
            let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join(",")
        })),
    );
    line(
        "echo-long",
        shown(users::echo_long(9_007_199_254_740_993).map(|l| l.to_string())),
    );
    line("notify", shown(users::notify("hi").map(|()| "ok".to_string())));
    line("fail", shown(users::fail("no such user")));
    // `Object echo(Object)` has no WIT type: the generator left it to generic calls.
    line(
        "echo (generic)",
        shown(generic::invoke(
            "user-service",
            "echo",
            &["java.lang.Object".to_string()],
            r#"[{"k": [1, 2]}]"#,
        )),
    );
}

fn user(u: &User) -> String {
    format!("{} {} {} [{}]", u.id, u.name, u.age, u.tags.join(","))
}

fn shown(r: Result<String, RpcError>) -> String {
    match r {
        Ok(text) => text,
        Err(e) => {
            let (case, text) = match e {
                RpcError::Timeout(m) => ("timeout", m),
                RpcError::NoProvider(m) => ("no-provider", m),
                RpcError::Network(m) => ("network", m),
                RpcError::BizException(b) => {
                    ("biz-exception", format!("{}: {}", b.class_name, b.message))
                }
                RpcError::Forbidden(m) => ("forbidden", m),
                RpcError::Serialization(m) => ("serialization", m),
                RpcError::LimitExceeded(m) => ("limit-exceeded", m),
                RpcError::Other(m) => ("other", m),
            };
            format!("error {case}: {text}")
        }
    }
}
