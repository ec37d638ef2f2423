//! End to end: `dubbo-wasm-host call`, run as a user runs it, against the test provider's
//! `UserService`: JSON in, Hessian2 on the wire, JSON out, and exit codes that say what failed.

use std::process::{Command, Output};

use dubbo_wasm_host_tests::process::{scratch_dir, start_provider, workspace_binary};
use dubbo_wasm_host_tests::provider::{DEMO_SERVICE, USER_CLASS, USER_NOT_FOUND, USER_SERVICE};

/// Runs `call` against `interface` at `provider` with `rest` after the connection flags.
fn call(provider: &str, interface: &str, rest: &[&str]) -> Output {
    let url = format!("dubbo://{provider}");
    let mut args = vec!["call", "--url", &url, "--interface", interface];
    args.extend_from_slice(rest);
    run(&args)
}

fn run(args: &[&str]) -> Output {
    Command::new(workspace_binary("dubbo-wasm-host"))
        .args(args)
        .output()
        .expect("run dubbo-wasm-host")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit 0 and returns stdout without its newline.
fn ok(out: Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "one line: {text:?}"
    );
    text.trim_end().to_string()
}

#[test]
fn string_result_prints_as_a_json_string_with_types_inferred() {
    let (_provider, addr) = start_provider();
    let out = ok(call(&addr, DEMO_SERVICE, &["sayHello", r#"["Jürgen 😀"]"#]));
    assert_eq!(
        out,
        format!("\"Hello Jürgen 😀, response from provider: {addr}\"")
    );
}

#[test]
fn long_beyond_2_pow_53_comes_back_exact() {
    let (_provider, addr) = start_provider();
    let out = ok(call(
        &addr,
        USER_SERVICE,
        &["echoLong", "--types", "long", "[9007199254740993]"],
    ));
    assert_eq!(out, "9007199254740993");
}

#[test]
fn object_prints_with_its_class_first_and_non_bmp_text_intact() {
    let (_provider, addr) = start_provider();
    let out = ok(call(
        &addr,
        USER_SERVICE,
        &["getUser", "--types", "long", "[9007199254740993]"],
    ));
    assert_eq!(
        out,
        format!(
            r#"{{"class":"{USER_CLASS}","id":9007199254740993,"name":"user-9007199254740993","age":63,"tags":["dubbo","😀"]}}"#
        )
    );
}

#[test]
fn thousand_users_sharing_one_class_definition_all_print_with_their_class() {
    let (_provider, addr) = start_provider();
    let out = ok(call(
        &addr,
        USER_SERVICE,
        &["listUsers", "--types", "int", "[1000]"],
    ));
    assert!(out.starts_with('[') && out.ends_with(']'), "{}", &out[..80]);
    let class = format!(r#"{{"class":"{USER_CLASS}","id":"#);
    assert_eq!(out.matches(&class).count(), 1000);
    assert!(out.contains(r#""id":1000,"name":"user-1000""#));
    assert_eq!(out.matches("😀").count(), 1000);
}

#[test]
fn null_result_prints_null() {
    let (_provider, addr) = start_provider();
    let out = ok(call(&addr, USER_SERVICE, &["findByName", r#"["nobody"]"#]));
    assert_eq!(out, "null");
}

#[test]
fn business_exception_exits_1_with_class_and_message_on_stderr() {
    let (_provider, addr) = start_provider();
    let out = call(&addr, USER_SERVICE, &["fail", r#"["no user 7 ✗"]"#]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains(&format!("biz-exception: {USER_NOT_FOUND}: no user 7 ✗")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn map_round_trips_with_nested_objects_and_exact_longs() {
    let (_provider, addr) = start_provider();
    let map = r#"{"name":"alice","big":9007199254740993,"ratio":0.5,"ok":true,"none":null,"tags":["a","😀"],"user":{"class":"org.apache.dubbo.samples.User","id":7}}"#;
    let arg = format!("[{map}]");
    let out = ok(call(
        &addr,
        USER_SERVICE,
        &["echoMap", "--types", "java.util.Map", &arg],
    ));
    assert_eq!(out, map);
}

#[test]
fn response_attachments_are_printed_on_request() {
    let (_provider, addr) = start_provider();
    let out = call(
        &addr,
        USER_SERVICE,
        &["echoLong", "--attachments", "--types", "long", "[1]"],
    );
    assert_eq!(stdout(&out), "1\n", "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"{"dubbo":"2.0.2"}"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reference_from_a_config_file_is_called_by_its_id() {
    let (_provider, addr) = start_provider();
    let path = scratch_dir("call-config").join("host.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[reference]]
id = "users"
interface = "{USER_SERVICE}"
version = "1.0.0"
url = "dubbo://{addr}"
timeout = 3000
"#
        ),
    )
    .expect("write config");
    let config = path.display().to_string();
    let out = ok(run(&[
        "call",
        "--config",
        &config,
        "--reference",
        "users",
        "getUser",
        "--types",
        "long",
        "[2]",
    ]));
    assert!(
        out.starts_with(&format!(r#"{{"class":"{USER_CLASS}","id":2,"#)),
        "{out}"
    );

    let out = run(&[
        "call",
        "--config",
        &config,
        "--reference",
        "nope",
        "getUser",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("id = \"nope\""), "{}", stderr(&out));
}

#[test]
fn argument_that_does_not_fit_its_type_exits_2_naming_the_argument() {
    let (_provider, addr) = start_provider();
    let out = call(
        &addr,
        USER_SERVICE,
        &["getUser", "--types", "long", r#"["seven"]"#],
    );
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("argument 0 (long)") && err.contains("\"seven\""),
        "{err}"
    );

    let out = call(&addr, USER_SERVICE, &["getUser", "[1"]);
    assert_eq!(out.status.code(), Some(2), "invalid JSON: {}", stderr(&out));
}

#[test]
fn unknown_method_exits_1_with_the_error_kind() {
    let (_provider, addr) = start_provider();
    let out = call(&addr, USER_SERVICE, &["noSuchMethod", "[]"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("other: ") && l.contains("noSuchMethod")),
        "{err}"
    );
}

#[test]
fn unreachable_provider_exits_1_as_a_network_error() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = call(
        &format!("127.0.0.1:{port}"),
        USER_SERVICE,
        &["echoLong", "[1]"],
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).lines().any(|l| l.starts_with("network: ")),
        "{}",
        stderr(&out)
    );
}
