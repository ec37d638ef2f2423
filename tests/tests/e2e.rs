//! End to end: the example guest, served by the host binary, calls the test provider over
//! `dubbo://` (from the shared runtime, or from serving threads over a connection each), and
//! the host refuses bad setups with a message that says what to fix.

use std::path::Path;
use std::time::Duration;

use dubbo_wasm_host_tests::config::{
    dubbo_url, http_guest, http_listener, reference, DEMO_INTERFACE, DEMO_WIT,
};
use dubbo_wasm_host_tests::process::{
    hello_guest, http_get, scratch_dir, start_provider, workspace_binary, Running,
};

const STARTUP: Duration = Duration::from_secs(120);

fn demo_config(provider: &str, guest: &Path, listen: &str, wit: &str) -> String {
    format!(
        r#"
[application]
name = "e2e-consumer"

{reference}
timeout = 3000

{guest}

{http}
"#,
        reference = reference("demo", DEMO_INTERFACE, &dubbo_url(provider), wit),
        guest = http_guest("hello", guest, "/hello", &["demo"]),
        http = http_listener(listen),
    )
}

fn write_config(tag: &str, text: &str) -> String {
    let path = scratch_dir(tag).join("host.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

fn serve(config: &str) -> Running {
    Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", config],
    )
}

#[test]
fn guest_greets_through_the_provider_and_reports_rpc_errors_as_502() {
    let (mut provider, provider_addr) = start_provider();
    let cfg = write_config(
        "greet",
        &demo_config(&provider_addr, &hello_guest(), "127.0.0.1:0", DEMO_WIT),
    );
    let mut host = serve(&cfg);
    let base = host.wait_for_line("serving guest `hello` at http://", STARTUP);
    let addr = base.trim_end_matches("/hello");

    let (status, body) = http_get(addr, "/hello?name=world");
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(
        body,
        format!("Hello world, response from provider: {provider_addr}")
    );

    // Percent-decoded by the guest, carried as Hessian2 (a non-BMP char is two UTF-16 units).
    let (status, body) = http_get(addr, "/hello?name=J%C3%BCrgen%20%F0%9F%98%80");
    assert_eq!(status, 200, "body: {body}");
    assert!(body.starts_with("Hello Jürgen 😀, response"), "{body}");

    let (status, body) = http_get(addr, "/elsewhere");
    assert_eq!(status, 404, "unrouted path: {body}");

    provider.kill();
    let (status, body) = http_get(addr, "/hello?name=gone");
    assert_eq!(status, 502, "provider down must be an rpc error: {body}");
    assert!(body.starts_with("rpc error: network"), "{body}");
}

fn serve_fails(config: &str) -> String {
    let mut host = serve(config);
    let (code, stderr) = host.wait_exit(STARTUP);
    assert_eq!(code, Some(1), "serve must fail; stderr:\n{stderr}");
    stderr
}

#[test]
fn serve_refuses_a_missing_config_file_naming_it() {
    let stderr = serve_fails("/nonexistent/dubbo-wasm-host.toml");
    assert!(
        stderr.contains("/nonexistent/dubbo-wasm-host.toml"),
        "{stderr}"
    );
    assert!(stderr.contains("fix:"), "{stderr}");
}

#[test]
fn serve_refuses_an_invalid_config_naming_the_key() {
    let text = demo_config("127.0.0.1:1", &hello_guest(), "127.0.0.1:0", DEMO_WIT)
        .replace("timeout = 3000", "timeuot = 3000");
    let stderr = serve_fails(&write_config("badkey", &text));
    assert!(stderr.contains("timeuot"), "{stderr}");
}

#[test]
fn serve_refuses_a_missing_guest_file_naming_the_guest_and_path() {
    let text = demo_config(
        "127.0.0.1:1",
        Path::new("/nonexistent/hello.wasm"),
        "127.0.0.1:0",
        DEMO_WIT,
    );
    let stderr = serve_fails(&write_config("noguest", &text));
    assert!(
        stderr.contains("guest `hello`") && stderr.contains("/nonexistent/hello.wasm"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_guest_import_that_no_reference_provides() {
    let text = demo_config(
        "127.0.0.1:1",
        &hello_guest(),
        "127.0.0.1:0",
        "org-apache-dubbo:demo/other-service",
    );
    let stderr = serve_fails(&write_config("unbound", &text));
    assert!(
        stderr.contains("org-apache-dubbo:demo/demo-service")
            && stderr.contains("no reference provides")
            && stderr.contains("fix:"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_port_in_use_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let text = demo_config("127.0.0.1:1", &hello_guest(), &addr, DEMO_WIT);
    let stderr = serve_fails(&write_config("portinuse", &text));
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// With `[http] threads = 2`, requests are served on two threads, each calling the provider
/// over a connection of its own (besides the one opened at startup), which it keeps; when the
/// provider drops every connection, each thread opens its own again and requests are answered
/// as before.
#[test]
fn serving_threads_each_call_over_a_connection_of_their_own_and_get_it_back_when_dropped() {
    let (mut provider, provider_addr) = start_provider();
    let text = demo_config(&provider_addr, &hello_guest(), "127.0.0.1:0", DEMO_WIT)
        .replace("[http]\n", "[http]\nthreads = 2\n");
    assert!(text.contains("threads = 2"), "{text}");
    let mut host = serve(&write_config("lanes", &text));
    let base = host.wait_for_line("serving guest `hello` at http://", STARTUP);
    let addr = base.trim_end_matches("/hello");
    let want = format!("Hello world, response from provider: {provider_addr}");
    let greet = |n: usize| {
        // A connection per request: the host hands connections to its threads in turn.
        for _ in 0..n {
            let (status, body) = http_get(addr, "/hello?name=world");
            assert_eq!(status, 200, "body: {body}");
            assert_eq!(body, want);
        }
    };

    greet(8);
    assert_eq!(
        provider.stat("accepted"),
        3,
        "one connection at startup and one per serving thread"
    );
    greet(8);
    assert_eq!(
        provider.stat("accepted"),
        3,
        "each thread keeps its connection"
    );

    // The provider closes every connection: each thread notices and opens its own again
    // (the first requests after the close may find theirs gone: 502, network).
    provider.send("close");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut ok_in_a_row = 0;
    let mut reopened = provider.stat("accepted");
    while ok_in_a_row < 8 || reopened < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery after the provider closed its connections: {reopened} accepted"
        );
        let (status, body) = http_get(addr, "/hello?name=world");
        if status == 200 {
            assert_eq!(body, want);
            ok_in_a_row += 1;
        } else {
            assert!(body.starts_with("rpc error: network"), "{status} {body}");
            ok_in_a_row = 0;
            std::thread::sleep(Duration::from_millis(20));
        }
        reopened = provider.stat("accepted");
    }
    greet(8);
    assert_eq!(
        provider.stat("accepted"),
        reopened,
        "the reopened connections are kept"
    );
}
