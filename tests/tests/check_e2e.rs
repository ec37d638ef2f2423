//! End to end: `dubbo-wasm-host check --config F` run as a user runs it. A good config passes
//! with `config OK`; every problem is reported with its field and a fix, several at once, and
//! an unreachable ZooKeeper is reported within seconds.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dubbo_wasm_host_tests::config::{
    demo_reference, dubbo_url, http_guest, http_listener, user_reference, zookeeper_registry,
};
use dubbo_wasm_host_tests::process::{
    example_guest, hello_guest, scratch_dir, start_provider, workspace_binary,
};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;

/// What one `check` run printed.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Checked {
    fn both(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Writes `text` as a config file and runs `check` on it.
fn check(tag: &str, text: &str) -> Checked {
    let path = scratch_dir(tag).join("host.toml");
    std::fs::write(&path, text).expect("write config");
    let started = Instant::now();
    let out = Command::new(workspace_binary("dubbo-wasm-host"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run dubbo-wasm-host check");
    Checked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// The demo reference at `provider`, `guests`, and listeners that cannot clash with anything.
fn config(provider: &str, guests: &str) -> String {
    format!(
        r#"
[application]
name = "check-e2e"

{demo}
timeout = 3000

{users}

{guests}

{http}

[admin]
enabled = false
"#,
        demo = demo_reference("demo", &dubbo_url(provider)),
        users = user_reference("users", &dubbo_url(provider)),
        http = http_listener("127.0.0.1:0"),
    )
}

/// The guest `name` at `path`, served at `/{name}` with the demo reference granted.
fn guest(name: &str, path: &Path) -> String {
    http_guest(name, path, &format!("/{name}"), &["demo"])
}

#[test]
fn demo_config_with_the_hello_guest_passes_and_says_what_it_bound() {
    let (_provider, addr) = start_provider();
    let out = check("check-ok", &config(&addr, &guest("hello", &hello_guest())));
    assert_eq!(out.code, Some(0), "{}", out.both());
    assert!(
        out.stdout.contains("ok: guest `hello` (")
            && out
                .stdout
                .contains("binds demo-service to reference `demo`"),
        "{}",
        out.both()
    );
    assert!(
        out.stdout
            .contains(&format!("accepts connections at {addr}")),
        "{}",
        out.both()
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("config OK")),
        "{}",
        out.both()
    );
    assert!(!out.stderr.contains("error:"), "{}", out.both());
}

#[test]
fn missing_guest_file_and_ungranted_import_are_both_reported_with_their_fields() {
    let missing = scratch_dir("check-missing").join("nope.wasm");
    let guests = format!(
        "{}\n{}",
        guest("gone", &missing),
        // user-api imports the user service; it is granted only the demo reference.
        guest("users", &example_guest("user_api")),
    );
    let out = check(
        "check-two",
        &config(&format!("127.0.0.1:{}", closed_port()), &guests),
    );
    assert_eq!(out.code, Some(1), "{}", out.both());
    assert!(
        out.stderr.contains(": guest[0].path: ") && out.stderr.contains("nope.wasm"),
        "{}",
        out.both()
    );
    assert!(
        out.stderr.contains(": guest[1].references: ")
            && out.stderr.contains("not granted")
            && out
                .stderr
                .contains("fix: add \"users\" to this guest's `references`"),
        "{}",
        out.both()
    );
    assert!(out.stderr.contains("2 problem(s) found"), "{}", out.both());
}

#[test]
fn guest_without_the_export_its_trigger_runs_is_reported_at_trigger() {
    let out = check(
        "check-trigger",
        &config(
            &format!("127.0.0.1:{}", closed_port()),
            &guest("cli", &example_guest("hello-cli")),
        ),
    );
    assert_eq!(out.code, Some(1), "{}", out.both());
    assert!(
        out.stderr.contains(": guest[0].trigger: ")
            && out.stderr.contains("wasi:http/incoming-handler")
            && out.stderr.contains("fix: export it")
            && out.stderr.contains("set trigger = \"cli\""),
        "{}",
        out.both()
    );
}

#[test]
fn unknown_key_is_an_error_naming_the_key_and_its_field() {
    let text = config("127.0.0.1:20880", "").replace("timeout = 3000", "timeuot = 3000");
    let out = check("check-key", &text);
    assert_eq!(out.code, Some(1), "{}", out.both());
    assert!(
        out.stderr.contains(": reference[0].timeuot: ")
            && out.stderr.contains("unknown field `timeuot`"),
        "{}",
        out.both()
    );
    assert!(out.stderr.contains("1 problem(s) found"), "{}", out.both());
}

/// A config whose one reference finds providers in ZooKeeper at `address`.
fn registry_config(address: &str, data_dir: &Path) -> String {
    format!(
        r#"
[application]
name = "check-e2e"
data-dir = "{}"

{registry}

[[reference]]
id = "demo"
interface = "org.apache.dubbo.demo.DemoService"
registry = ["zk"]
check = false

[admin]
enabled = false
"#,
        data_dir.display(),
        registry = zookeeper_registry("zk", address),
    )
}

#[test]
fn unreachable_zookeeper_is_named_with_its_registry_within_seconds() {
    let port = closed_port();
    let data = scratch_dir("check-zk-down");
    let out = check(
        "check-zk-down",
        &registry_config(&format!("zookeeper://127.0.0.1:{port}"), &data),
    );
    assert_eq!(out.code, Some(1), "{}", out.both());
    assert!(
        out.stderr.contains(": registry[0].address: ")
            && out.stderr.contains("registry `zk`")
            && out
                .stderr
                .contains(&format!("fix: start ZooKeeper at 127.0.0.1:{port}")),
        "{}",
        out.both()
    );
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?}; {}",
        out.elapsed,
        out.both()
    );
}

#[test]
fn running_zookeeper_passes_with_a_session_opened() {
    let zk = ZooKeeper::new();
    let data = scratch_dir("check-zk-up");
    let out = check("check-zk-up", &registry_config(&zk.address(), &data));
    assert_eq!(out.code, Some(0), "{}", out.both());
    assert!(
        out.stdout.contains("ok: registry `zk`") && out.stdout.contains("session opened"),
        "{}",
        out.both()
    );
}
