//! Graceful shutdown end to end: on SIGTERM or SIGINT the host stops accepting, lets the
//! requests in flight finish (up to `shutdown-wait`), removes its consumer node from ZooKeeper
//! at once rather than leaving it to session expiry, and exits 0. The provider answers every
//! call 300 ms late so that requests are in flight when the signal comes.

use std::path::Path;
use std::time::{Duration, Instant};

use dubbo_wasm_host_tests::admin::{serve, Load, Pending, Tally};
use dubbo_wasm_host_tests::config::{
    demo_reference, dubbo_url, http_guest, listeners, zookeeper_registry,
};
use dubbo_wasm_host_tests::process::{hello_guest, scratch_dir, start_provider_with, Running};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;
use zookeeper_client as zk;

/// How late the provider answers every call.
const PROVIDER_DELAY_MS: &str = "300";

/// `[application] shutdown-wait` of the test configs.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What exiting may take beyond `shutdown-wait` (unregistering, closing, a busy machine).
const EXIT_MARGIN: Duration = Duration::from_secs(5);

/// Requests in flight when the signal comes.
const IN_FLIGHT: usize = 8;

const CONSUMERS: &str = "/dubbo/org.apache.dubbo.demo.DemoService/consumers";

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The config of a host calling DemoService from `provider` (its `url` or `registry` line),
/// with any `[[registry]]` table in `registry`, serving hello-http at `/hello`.
fn config_text(registry: &str, provider: &str, data_dir: &Path) -> String {
    format!(
        r#"
[application]
name = "shutdown-consumer"
data-dir = "{data}"
shutdown-wait = {wait}
{registry}
{reference}
timeout = 10000

{guest}

{listeners}
"#,
        data = data_dir.display(),
        wait = SHUTDOWN_WAIT.as_millis(),
        reference = demo_reference("demo", provider),
        guest = http_guest("hello", &hello_guest(), "/hello", &["demo"]),
        listeners = listeners(),
    )
}

/// What happened around the signal.
struct Shutdown {
    code: Option<i32>,
    stderr: String,
    /// From the signal to the exit.
    took: Duration,
    exited_at: Instant,
    load: Tally,
    /// How many of the in-flight requests were answered after the signal.
    answered_after_signal: usize,
}

/// Puts the host under load, sends `IN_FLIGHT` more requests, signals it with `signal` while
/// they wait for the provider, and checks that every answered request got 200 and that each
/// in-flight request was answered 200.
fn signal_under_load(host: &mut Running, http: &str, signal: &str) -> Shutdown {
    let load = Load::start(http, "/hello?name=load", 4);
    load.wait_for_ok(0, 4, Duration::from_secs(30));
    let pending: Vec<Pending> = (0..IN_FLIGHT)
        .map(|i| Pending::get(http, &format!("/hello?name=in-flight-{i}")))
        .collect();
    // Long enough for the host to take them, well short of the provider's 300 ms.
    std::thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    host.signal(signal);
    let (code, stderr) = host.wait_exit(SHUTDOWN_WAIT + EXIT_MARGIN);
    let exited_at = Instant::now();
    let took = signalled.elapsed();

    let mut answered_after_signal = 0;
    for (i, p) in pending.into_iter().enumerate() {
        let (result, answered_at) = p.wait();
        match result {
            Ok((200, body)) => assert!(body.contains("in-flight-"), "request {i}: {body}"),
            other => panic!(
                "in-flight request {i} was not answered 200: {other:?}; host stderr:\n{stderr}"
            ),
        }
        if answered_at > signalled {
            answered_after_signal += 1;
        }
    }
    let load = load.stop();
    assert_eq!(
        load.failed, 0,
        "requests accepted but not answered 200: {:?}; host stderr:\n{stderr}",
        load.failures
    );
    Shutdown {
        code,
        stderr,
        took,
        exited_at,
        load,
        answered_after_signal,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_removes_the_consumer_node_at_once() {
    let zk = blocking(ZooKeeper::new);
    let mut provider = blocking(|| {
        let (mut p, _) = start_provider_with(&[
            "--delay-ms",
            PROVIDER_DELAY_MS,
            "--registry",
            &format!("{}?session=4000", zk.address()),
            "--version",
            "1.0.0",
        ]);
        p.wait_for_line("registered ", Duration::from_secs(20));
        p
    });
    let dir = scratch_dir("shutdown-zk");
    // The test server caps sessions at 4 s (`zookeeper::MAX_SESSION`): a node left to expire
    // would outlive the 1 s checked below.
    let registry = format!(
        "\n{}\nsession-timeout = 30000\n",
        zookeeper_registry("zk", &zk.address())
    );
    let config = dir.join("host.toml");
    std::fs::write(&config, config_text(&registry, "registry = [\"zk\"]", &dir))
        .expect("write config");
    let mut host = blocking(|| serve(&config, "hello"));

    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("zk client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = client.list_children(CONSUMERS).await.unwrap_or_default();
        if nodes.iter().any(|c| c.starts_with("consumer%3A%2F%2F")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the host never registered under {CONSUMERS}: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocking(|| provider.wait_accepted(1));

    let http = host.http.clone();
    let done = blocking(|| signal_under_load(&mut host.process, &http, "TERM"));
    assert_eq!(
        done.code,
        Some(0),
        "exit after SIGTERM; stderr:\n{}",
        done.stderr
    );

    loop {
        let nodes = client.list_children(CONSUMERS).await.unwrap_or_default();
        if !nodes.iter().any(|c| c.starts_with("consumer%3A%2F%2F")) {
            break;
        }
        assert!(
            done.exited_at.elapsed() < Duration::from_secs(1),
            "the consumer node outlived the host by 1 s (left to session expiry?): {nodes:?}; stderr:\n{}",
            done.stderr
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "SIGTERM: exit after {:?}; {}/{IN_FLIGHT} in-flight requests answered after the signal; load: {} ok, {} refused",
        done.took, done.answered_after_signal, done.load.ok, done.load.refused
    );
    assert!(
        done.answered_after_signal > 0,
        "no request was in flight at the signal"
    );
    // The provider's registration is untouched by the consumer leaving.
    let providers = client
        .list_children("/dubbo/org.apache.dubbo.demo.DemoService/providers")
        .await
        .expect("providers dir");
    assert_eq!(providers.len(), 1, "{providers:?}");
}

#[test]
fn sigint_with_a_direct_url_finishes_requests_in_flight_and_exits_0() {
    let (mut provider, addr) = start_provider_with(&["--delay-ms", PROVIDER_DELAY_MS]);
    let dir = scratch_dir("shutdown-direct");
    let config = dir.join("host.toml");
    std::fs::write(&config, config_text("", &dubbo_url(&addr), &dir)).expect("write config");
    let mut host = serve(&config, "hello");
    provider.wait_accepted(1);

    let done = signal_under_load(&mut host.process, &host.http.clone(), "INT");
    assert_eq!(
        done.code,
        Some(0),
        "exit after SIGINT; stderr:\n{}",
        done.stderr
    );
    eprintln!(
        "SIGINT: exit after {:?}; {}/{IN_FLIGHT} answered after the signal; load: {} ok, {} refused",
        done.took, done.answered_after_signal, done.load.ok, done.load.refused
    );
    assert!(done.answered_after_signal > 0, "no request was in flight");
}

#[test]
fn shutdown_wait_bounds_how_long_a_slow_request_holds_the_exit() {
    // Calls take 20 s, shutdown-wait is 2 s: the host waits for them, but only that long.
    let wait = Duration::from_secs(2);
    let (_provider, addr) = start_provider_with(&["--delay-ms", "20000"]);
    let dir = scratch_dir("shutdown-bound");
    let config = dir.join("host.toml");
    let text = config_text("", &dubbo_url(&addr), &dir)
        .replace("timeout = 10000", "timeout = 60000")
        .replace(
            &format!("shutdown-wait = {}", SHUTDOWN_WAIT.as_millis()),
            &format!("shutdown-wait = {}", wait.as_millis()),
        );
    std::fs::write(&config, text).expect("write config");
    let mut host = serve(&config, "hello");
    let slow = Pending::get(&host.http, "/hello?name=slow");
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    host.process.signal("TERM");
    let (code, stderr) = host.process.wait_exit(wait + EXIT_MARGIN);
    let took = signalled.elapsed();
    assert!(
        took >= wait - Duration::from_millis(200),
        "exited after {took:?}, before shutdown-wait, with a request in flight; stderr:\n{stderr}"
    );
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let (result, _) = slow.wait();
    eprintln!("shutdown-wait: exit {code:?} after {took:?}; the slow request got {result:?}");
    let (status, body) = result.expect("a request cut at shutdown-wait still gets a response");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("shutting down"), "{body}");
}
