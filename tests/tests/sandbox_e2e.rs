//! End to end: the sandbox around a guest. The `sandbox-probe` guest traps, spins, exhausts
//! its memory and overflows its stack on request; each must fail only that request, with the
//! host still serving the next ones. The `hello-cli` guest runs under `run`, which passes its
//! arguments, output and exit code through.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dubbo_wasm_host_tests::config::{demo_reference, dubbo_url, http_guest, http_listener};
use dubbo_wasm_host_tests::process::{
    example_guest, http_get, scratch_dir, start_provider, start_provider_with, workspace_binary,
    Running,
};

/// The probe's wall-time limit per request (`timeout` of its [[guest]]), in ms.
const PROBE_TIMEOUT_MS: u64 = 1000;
/// Compiling a guest in a debug host on a busy machine is slow; the compile cache makes later
/// starts quick.
const STARTUP: Duration = Duration::from_secs(300);

/// A config with the demo reference at `provider` and the given [[guest]] tables.
fn config(provider: &str, guests: &str) -> String {
    format!(
        r#"
[application]
name = "sandbox-e2e"

{reference}
timeout = 3000

{guests}

{http}
"#,
        reference = demo_reference("demo", &dubbo_url(provider)),
        http = http_listener("127.0.0.1:0"),
    )
}

/// The probe at `/probe`, with 16 MiB of memory and one second per request, plus `extra`
/// settings.
fn probe(extra: &str) -> String {
    probe_with_timeout(PROBE_TIMEOUT_MS, extra)
}

/// The probe with a time limit of `timeout_ms` per request.
fn probe_with_timeout(timeout_ms: u64, extra: &str) -> String {
    format!(
        "{}\nmax-memory-mib = 16\ntimeout = {timeout_ms}\n{extra}\n",
        http_guest(
            "probe",
            &example_guest("sandbox_probe"),
            "/probe",
            &["demo"]
        )
    )
}

/// `hello-cli` as a `trigger = "cli"` guest.
fn hello_cli() -> String {
    format!(
        r#"[[guest]]
name = "hello-cli"
path = "{}"
trigger = "cli"
references = ["demo"]
timeout = 10000
"#,
        example_guest("hello-cli").display()
    )
}

fn write_config(tag: &str, text: &str) -> String {
    let path = scratch_dir(tag).join("host.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

/// Starts `serve` on `text` and returns the host and its `host:port`.
fn serve(tag: &str, text: &str) -> (Running, String) {
    let cfg = write_config(tag, text);
    let mut host = Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", &cfg],
    );
    let line = host.wait_for_line("serving guest `probe` at http://", STARTUP);
    let addr = line.split('/').next().unwrap_or_default().to_string();
    (host, addr)
}

/// Asserts `/probe/ok` answers 200 `ok`: the host still serves the guest.
fn assert_serves(addr: &str, host: &Running) {
    let (status, body) = http_get(addr, "/probe/ok");
    assert_eq!(
        (status, body.as_str()),
        (200, "ok"),
        "host stderr:\n{}",
        host.stderr()
    );
}

/// What a finished `dubbo-wasm-host run` left: exit code, stdout, stderr.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `dubbo-wasm-host run --config <cfg> <args...>` to completion (killed after `limit`).
fn run_host(cfg: &str, args: &[&str], limit: Duration) -> Outcome {
    let mut child = Command::new(workspace_binary("dubbo-wasm-host"))
        .args(["run", "--config", cfg])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dubbo-wasm-host run");
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for run") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "run {args:?} did not finish within {limit:?}; stderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

#[test]
fn a_trapping_guest_fails_only_its_request() {
    let (_provider, provider) = start_provider();
    let (host, addr) = serve("trap", &config(&provider, &probe("")));

    // `/deep` recurses with 4 KiB frames on its stack in linear memory. Running past the
    // stack's end must trap too (the stack is first in memory, so the frame past it is out of
    // bounds), not overwrite the guest's data.
    for (route, trap) in [
        ("/probe/trap", "unreachable"),
        ("/probe/deep", "out of bounds"),
    ] {
        let (status, body) = http_get(&addr, route);
        assert_eq!(status, 500, "{route}: {body}");
        assert!(
            body.starts_with("guest `probe` failed: trapped: ") && body.contains(trap),
            "{route}: the reason names the trap: {body:?}"
        );
        assert!(
            body.trim_end().lines().count() == 1 && body.len() < 300,
            "{route}: the reason is one short line, no backtrace: {body:?}"
        );
        assert_serves(&addr, &host);
    }

    let (status, body) = http_get(&addr, "/probe/hello?name=alice");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("Hello alice, response from provider: {provider}")
    );
}

#[test]
fn a_looping_guest_is_stopped_at_its_time_limit() {
    let (_provider, provider) = start_provider();
    let (host, addr) = serve("loop", &config(&provider, &probe("")));

    let started = Instant::now();
    let (status, body) = http_get(&addr, "/probe/loop");
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("time limit of 1000 ms"), "{body:?}");
    let limit = Duration::from_millis(PROBE_TIMEOUT_MS);
    assert!(
        took >= limit - Duration::from_millis(50),
        "stopped after {took:?}, before its limit of {limit:?}"
    );
    // Slack for a busy 2-core machine; an unbounded loop would hit the client's 30 s timeout.
    assert!(
        took < limit + Duration::from_millis(2000),
        "stopped only after {took:?}"
    );

    assert_serves(&addr, &host);
}

#[test]
fn a_looping_guest_does_not_hold_up_other_requests() {
    // A longer limit than the other tests: the loops must still be running when /ok is
    // answered, even on a loaded machine.
    let limit = Duration::from_millis(3000);
    let (_provider, provider) = start_provider();
    let (host, addr) = serve(
        "stall",
        &config(&provider, &probe_with_timeout(limit.as_millis() as u64, "")),
    );

    // As many spinning guests as the host has runtime workers (one per core): a guest that
    // never yields to the executor would leave no thread to accept or answer anything else.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let loops: Vec<_> = (0..workers)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || http_get(&addr, "/probe/loop"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    assert_serves(&addr, &host);
    let answered = started.elapsed();
    assert!(
        answered < limit - Duration::from_millis(1000),
        "/ok was answered only {answered:?} after {workers} looping requests started: it waited \
         for their time limit of {limit:?}"
    );
    for l in loops {
        let (status, body) = l.join().expect("looping request");
        assert_eq!(status, 503, "{body}");
    }
}

#[test]
fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    let (_provider, provider) = start_provider();
    let (host, addr) = serve("alloc", &config(&provider, &probe("")));

    for _ in 0..2 {
        let (status, body) = http_get(&addr, "/probe/alloc");
        // 500 and a trap, not the 503 of the time limit: memory ran out first.
        assert_eq!(status, 500, "{body}");
        assert!(
            body.starts_with("guest `probe` failed: trapped: ") && body.contains("memory"),
            "{body:?}"
        );
    }

    // The host process survived (a guest's memory is not the host's) and still serves.
    assert_serves(&addr, &host);
    let stderr = host.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn too_many_concurrent_requests_get_503() {
    let (_provider, provider) = start_provider();
    // A long limit for the loop: on a busy machine it may take a while to be admitted, and it
    // must still hold the only instance when /ok arrives.
    let loop_limit_ms = 8000;
    let (host, addr) = serve(
        "instances",
        &config(
            &provider,
            &probe_with_timeout(loop_limit_ms, "max-instances = 1"),
        ),
    );

    let looping = {
        let addr = addr.clone();
        // The probing /ok requests below hold the only instance for a moment each: a loop
        // arriving then is refused, so it asks again until it is admitted.
        std::thread::spawn(move || loop {
            let (status, body) = http_get(&addr, "/probe/loop");
            if !body.contains("max-instances") {
                break (status, body);
            }
            std::thread::sleep(Duration::from_millis(5));
        })
    };
    // Until the loop holds the only instance, /ok may still be admitted.
    let deadline = Instant::now() + Duration::from_millis(loop_limit_ms / 2);
    let (status, body) = loop {
        let (status, body) = http_get(&addr, "/probe/ok");
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status, 503,
        "a concurrent request must be refused while the loop holds the only instance: {body}"
    );
    assert!(body.contains("max-instances"), "{body:?}");

    let (status, body) = looping.join().expect("looping request");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("time limit"), "{body:?}");

    // The looping instance gives its slot back once the engine has interrupted it, which may
    // be a tick after its request was answered.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, body) = http_get(&addr, "/probe/ok");
        if status == 200 {
            assert_eq!(body, "ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {status} {body}; host stderr:\n{}",
            host.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_greets_each_argument_and_returns_the_exit_code() {
    let (mut provider_process, provider) = start_provider();
    let cfg = write_config("run", &config(&provider, &hello_cli()));

    let out = run_host(&cfg, &["hello-cli", "--", "alice", "bob"], STARTUP);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "Hello alice, response from provider: {provider}\n\
             Hello bob, response from provider: {provider}\n"
        )
    );

    let out = run_host(&cfg, &["hello-cli"], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("Hello world, response from provider: {provider}\n"),
        "no arguments greet the world"
    );

    provider_process.kill();
    let out = run_host(&cfg, &["hello-cli", "--", "alice"], Duration::from_secs(60));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("check = true"),
        "check = true refuses to run without a provider: {}",
        out.stderr
    );

    // With `check = false` the guest runs and sees the call fail.
    let unchecked =
        config(&provider, &hello_cli()).replace("timeout = 3000", "timeout = 3000\ncheck = false");
    let cfg = write_config("run-unchecked", &unchecked);
    let out = run_host(&cfg, &["hello-cli", "--", "alice"], Duration::from_secs(60));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "", "no greeting without a provider");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("rpc error: network: ") && l.contains("sayHello")),
        "{}",
        out.stderr
    );
}

#[test]
fn run_refuses_an_unknown_guest_with_the_names_it_knows() {
    let guests = format!("{}\n{}", probe(""), hello_cli());
    // No provider needed: the guest is looked up before any reference is built.
    let cfg = write_config("unknown", &config("127.0.0.1:9", &guests));

    let out = run_host(&cfg, &["hello-clii"], Duration::from_secs(60));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("`hello-clii` is neither a [[guest]]")
            && out.stderr.contains("guests: probe, hello-cli")
            && out.stderr.contains(&cfg),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

/// The request count the probe's instance reports for each of `n` sequential requests. An
/// instance goes back to the idle pool just after its response is sent, so the requests are
/// spaced out a little to find it there (this is not a timing assertion: a late return would
/// show as a fresh instance and fail the test's counts, never pass a wrong one).
fn counts(addr: &str, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let (status, body) = http_get(addr, "/probe/count");
            assert_eq!(status, 200, "{body}");
            body.trim().parse().expect("a count")
        })
        .collect()
}

#[test]
fn by_default_every_request_gets_a_fresh_instance() {
    let (_provider, provider) = start_provider();
    let (_host, addr) = serve("fresh", &config(&provider, &probe("")));
    assert_eq!(counts(&addr, 5), vec![1; 5], "global state carried over");
}

#[test]
fn by_default_a_request_starts_on_a_fresh_instance_made_ahead_of_it() {
    let (_provider, provider) = start_provider();
    let text = config(&provider, &probe("")).replace(
        &http_listener("127.0.0.1:0"),
        &dubbo_wasm_host_tests::config::listeners(),
    );
    let path = scratch_dir("made-ahead").join("host.toml");
    std::fs::write(&path, text).expect("write config");
    let host = dubbo_wasm_host_tests::admin::serve(&path, "probe");
    // After the first request, each finds the instance made while the host was idle: still
    // one that no request ran on.
    assert_eq!(
        counts(&host.http, 5),
        vec![1; 5],
        "global state carried over"
    );
    let slot = dubbo_wasm_host_tests::admin::slot(&host.admin, "probe");
    let made_ahead = dubbo_wasm_host_tests::admin::count(&slot, "made_ahead");
    assert!(
        (3..=4).contains(&made_ahead),
        "{made_ahead} of 5 requests started on an instance made ahead; {slot}"
    );
}

#[test]
fn instance_reuse_serves_n_requests_from_one_instance_then_recycles() {
    let (_provider, provider) = start_provider();
    let (_host, addr) = serve("reuse-n", &config(&provider, &probe("instance-reuse = 3")));
    // Sequential requests take the one idle instance: 1, 2, 3, then a fresh one.
    assert_eq!(counts(&addr, 7), vec![1, 2, 3, 1, 2, 3, 1]);
}

#[test]
fn a_guest_whose_client_went_away_still_finishes_its_request() {
    // The provider answers after 600 ms; the client hangs up after 150 ms, while the guest
    // waits for that reply. The guest must finish anyway (its call's effects are the user's),
    // and only a guest that finished returns its instance to the idle pool: the next request
    // then counts 2. Had the host dropped the guest with its client, it would count 1.
    let (_provider, provider) = start_provider_with(&["--delay-ms", "600"]);
    let (_host, addr) = serve(
        "client-gone",
        &config(&provider, &probe("instance-reuse = 10")),
    );
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "GET /probe/hello?name=gone HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        std::thread::sleep(Duration::from_millis(150));
    }
    // Wait out the provider's delay; `counts` spaces its requests too.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        counts(&addr, 1),
        vec![2],
        "the abandoned request's guest was dropped"
    );
}

#[test]
fn instance_reuse_recycles_after_a_trap_a_time_limit_and_a_memory_limit() {
    let (_provider, provider) = start_provider();
    let (host, addr) = serve(
        "reuse-faults",
        &config(&provider, &probe("instance-reuse = 100")),
    );
    assert_eq!(counts(&addr, 2), vec![1, 2]);
    for (route, status) in [
        ("/probe/trap", 500),
        ("/probe/deep", 500),
        ("/probe/loop", 503),
        ("/probe/alloc", 500),
    ] {
        // The faulting request takes the one idle instance; it must not serve again, so the
        // next requests start over on a fresh instance (a returned one would count 3, 4).
        std::thread::sleep(Duration::from_millis(100));
        let (got, body) = http_get(&addr, route);
        assert_eq!(got, status, "{route}: {body}");
        assert_eq!(counts(&addr, 2), vec![1, 2], "after {route}");
    }
    assert_serves(&addr, &host);
}
