//! End to end through typed WIT imports: the user-api guest calls `UserService` with records,
//! lists, options and business exceptions; the Python and JavaScript guests call the demo
//! service; a CLI guest runs under `run`. All against the test provider, through the host binary.

use std::time::Duration;

use dubbo_wasm_host_tests::config::{
    demo_reference, dubbo_url, http_guest, http_listener, user_reference,
};
use dubbo_wasm_host_tests::process::{
    example_guest, http_get, repo_root, scratch_dir, start_provider, workspace_binary, Running,
};

fn config(provider: &str, guests: &str) -> String {
    format!(
        r#"
{users}
timeout = 5000

{demo}
timeout = 5000

{guests}

{http}
"#,
        users = user_reference("users", &dubbo_url(provider)),
        demo = demo_reference("demo", &dubbo_url(provider)),
        http = http_listener("127.0.0.1:0"),
    )
}

fn serve(text: &str, first_guest: &str) -> (Running, String) {
    let path = scratch_dir("typed").join("host.toml");
    std::fs::write(&path, text).expect("write config");
    let mut host = Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", &path.display().to_string()],
    );
    let line = host.wait_for_line(
        &format!("serving guest `{first_guest}` at http://"),
        Duration::from_secs(300),
    );
    let addr = line.split('/').next().unwrap_or_default().to_string();
    (host, addr)
}

#[test]
fn user_api_maps_records_lists_options_and_business_exceptions() {
    let (_p, provider) = start_provider();
    let guests = http_guest("users", &example_guest("user_api"), "/api", &["users"]);
    let (_host, addr) = serve(&config(&provider, &guests), "users");

    let (status, body) = http_get(&addr, "/api/users/7");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"id":7,"name":"user-7","age":27,"tags":["dubbo","😀"]}"#
    );

    let (status, body) = http_get(&addr, "/api/users?count=1000");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.matches("\"name\":\"user-").count(), 1000);
    assert!(
        body.ends_with(r#"{"id":1000,"name":"user-1000","age":20,"tags":["dubbo","😀"]}]"#),
        "{}",
        &body[body.len().saturating_sub(200)..]
    );

    let (status, body) = http_get(&addr, "/api/users/by-name/alice");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"id\":1"), "{body}");
    let (status, _) = http_get(&addr, "/api/users/by-name/nobody");
    assert_eq!(status, 404, "none maps to 404");

    let (status, body) = http_get(&addr, "/api/fail?message=boom");
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body,
        r#"{"error":"biz-exception","class":"org.apache.dubbo.samples.UserNotFoundException","message":"boom"}"#
    );
}

#[test]
fn a_guest_importing_a_reference_it_is_not_granted_is_refused_at_load() {
    let (_p, provider) = start_provider();
    let guests = http_guest("users", &example_guest("user_api"), "/api", &["demo"]);
    let path = scratch_dir("ungranted").join("host.toml");
    std::fs::write(&path, config(&provider, &guests)).expect("write config");
    let mut host = Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", &path.display().to_string()],
    );
    let (code, stderr) = host.wait_exit(Duration::from_secs(120));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not granted") && stderr.contains("add \"users\""),
        "{stderr}"
    );
}

#[test]
fn python_guest_greets_through_the_provider() {
    let wasm = repo_root().join("guest-examples/hello-py/hello_py.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run guest-examples/hello-py/build.sh (./test.sh does)",
        wasm.display()
    );
    let (_p, provider) = start_provider();
    let guests = http_guest("hello-py", &wasm, "/py", &["demo"]);
    let (_host, addr) = serve(&config(&provider, &guests), "hello-py");
    let (status, body) = http_get(&addr, "/py?name=J%C3%BCrgen");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("Hello Jürgen, response from provider: {provider}")
    );
}

#[test]
fn javascript_guest_greets_through_the_provider() {
    let wasm = repo_root().join("guest-examples/hello-js/hello_js.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run guest-examples/hello-js/build.sh (./test.sh does)",
        wasm.display()
    );
    let (_p, provider) = start_provider();
    let guests = http_guest("hello-js", &wasm, "/js", &["demo"]);
    let (_host, addr) = serve(&config(&provider, &guests), "hello-js");
    let (status, body) = http_get(&addr, "/js?name=J%C3%BCrgen");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("Hello Jürgen, response from provider: {provider}")
    );
}
