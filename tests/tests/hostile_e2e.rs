//! Hostile providers end to end, through the host binary (issue 16): for each hostile reply
//! the test provider can send (`dubbo_wasm_host_tests::hostile`), a host serves the demo guest
//! with a reference to two providers of `DemoService`, one good and one hostile, and the
//! user-api guest with another reference to a third provider. Under load from a few threads,
//! the hostile provider is switched on; only calls the hostile provider was given fail, every
//! call the good provider got succeeds, and the other reference has 0 failures.
//!
//! A whole frame with a bad value costs that call (a `serialization` error naming the byte
//! offset) and the connection stays; a stalled, dripping or protocol-breaking reply costs that
//! connection, which the host closes, and the provider answers again on the next one. The
//! `call` command is checked on its own for the bad values, and for the peak memory of the
//! 2 MB self-referencing list.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dubbo_wasm_host_tests::admin::{exchange, serve, Host};
use dubbo_wasm_host_tests::config::{
    demo_reference, dubbo_url, http_guest, listeners, user_reference, DEMO_INTERFACE,
};
use dubbo_wasm_host_tests::hostile::Mode;
use dubbo_wasm_host_tests::process::{
    example_guest, hello_guest, scratch_dir, start_provider, workspace_binary, Running,
};

/// How long an episode may take to play out (a stall is closed after at most `read-stall`,
/// 3 s by default).
const PATIENCE: Duration = Duration::from_secs(10);

/// Scenes running at once: each is a host and three providers, on a small shared machine.
const SCENES_AT_ONCE: usize = 4;

/// A place among the scenes running at once; freed when dropped.
struct Slot;

static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl Slot {
    fn take() -> Slot {
        let (count, freed) = &RUNNING;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= SCENES_AT_ONCE {
            n = freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        freed.notify_one();
    }
}

/// One HTTP call of a load: when it was sent, and its status (0: no response) and body.
#[derive(Debug, Clone)]
struct Call {
    sent: Instant,
    status: u16,
    body: String,
}

impl Call {
    fn ok(&self) -> bool {
        self.status == 200
    }
}

/// Threads sending `GET path` back to back, keeping every call.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(addr: &str, path: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|_| {
                let (stop, calls) = (stop.clone(), calls.clone());
                let (addr, path) = (addr.to_string(), path.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let (status, body) = match exchange(&addr, "GET", &path, &[], &[]) {
                            Ok((s, b)) => (s, String::from_utf8_lossy(&b).into_owned()),
                            Err(e) => (0, e.to_string()),
                        };
                        if let Ok(mut c) = calls.lock() {
                            c.push(Call { sent, status, body });
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            calls,
            threads,
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Waits until a call sent after `since` satisfies `ok`; panics after `PATIENCE`.
    fn wait_for(&self, since: Instant, what: &str, ok: impl Fn(&Call) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !self.calls().iter().any(|c| c.sent >= since && ok(c)) {
            assert!(
                Instant::now() < deadline,
                "no call {what} within {PATIENCE:?}; last calls: {:?}",
                self.calls().iter().rev().take(5).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `n` calls sent after `since` have been answered (whatever the answer).
    fn wait_for_calls(&self, since: Instant, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let done = self.calls().iter().filter(|c| c.sent >= since).count();
            if done >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {done} of {n} calls answered within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the threads (each finishes its call in flight) and returns every call.
    fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A host with `demo` on a good and a hostile provider and `users` on a third.
struct Scene {
    host: Host,
    good: Running,
    good_addr: String,
    hostile: Running,
    hostile_addr: String,
    _users: Running,
    _slot: Slot,
}

impl Scene {
    /// Starts the providers and the host; `demo` calls time out after `timeout_ms` and are
    /// not retried, so each failure of a call shows.
    fn start(tag: &str, timeout_ms: u64) -> Scene {
        let slot = Slot::take();
        let (good, good_addr) = start_provider();
        let (hostile, hostile_addr) = start_provider();
        let (users, users_addr) = start_provider();
        let dir = scratch_dir(&format!("hostile-{tag}"));
        let both = format!("url = \"dubbo://{good_addr};dubbo://{hostile_addr}\"");
        let config = format!(
            "[application]\nname = \"hostile-{tag}\"\n\n{}\ntimeout = {timeout_ms}\nretries = 0\n\n{}\ntimeout = 5000\n\n{}\n\n{}\n\n{}\n",
            demo_reference("demo", &both),
            user_reference("users", &dubbo_url(&users_addr)),
            http_guest("hello", &hello_guest(), "/hello", &["demo"]),
            http_guest("users", &example_guest("user_api"), "/api", &["users"]),
            listeners()
        );
        let path = dir.join("host.toml");
        std::fs::write(&path, config).expect("write config");
        let host = serve(&path, "hello");
        let scene = Scene {
            host,
            good,
            good_addr,
            hostile,
            hostile_addr,
            _users: users,
            _slot: slot,
        };
        // Both providers of `demo` answer, and `users` does, before anything is measured.
        for addr in [&scene.good_addr, &scene.hostile_addr] {
            scene.until(
                "/hello?name=warm",
                &format!("answered by {addr}"),
                |s, b| s == 200 && b.ends_with(addr.as_str()),
            );
        }
        scene.until("/api/users/7", "answered", |s, _| s == 200);
        scene
    }

    /// Sends `GET path` until the answer satisfies `ok` (`what` says how, for the message).
    fn until(&self, path: &str, what: &str, ok: impl Fn(u16, &str) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = match exchange(&self.host.http, "GET", path, &[], &[]) {
                Ok((s, b)) => (s, String::from_utf8_lossy(&b).into_owned()),
                Err(e) => (0, e.to_string()),
            };
            if ok(status, &body) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path}: not {what}, still {status} {body:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a `/hello` answer came from the hostile provider.
    fn answered_by_hostile(&self, c: &Call) -> bool {
        c.ok() && c.body.ends_with(&self.hostile_addr)
    }

    /// Waits until the hostile provider's counter `name` reaches `n`; returns when it did.
    fn wait_stat(&mut self, name: &str, n: u64) -> Instant {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = Instant::now();
            let got = self.hostile.stat(name);
            if got >= n {
                return now;
            }
            assert!(
                now < deadline,
                "hostile provider: {name} = {got}, not {n}, within {PATIENCE:?}; host stderr:\n{}",
                tail(&self.host.process.stderr())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The last lines of a log, for messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// What a hostile reply may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// Only the call it answers: a `serialization` error, the connection stays.
    Call,
    /// The connection it came on: the host closes it, calls on it fail with `network` (or,
    /// for a stall, time out first), and the host connects again.
    Connection,
}

/// Runs one hostile episode under load and checks that it cost only `cost`.
fn episode(mode: Mode, cost: Cost) {
    let timeout_ms = match mode {
        // A stall is closed after the longest timeout of the calls waiting on it, and a drip
        // sends a byte a second: the calls must give up sooner than that.
        Mode::Stall | Mode::StallSilent | Mode::Drip => 500,
        _ => 2000,
    };
    let mut s = Scene::start(mode.name(), timeout_ms);
    // The warm-up calls are not the load's.
    let good_before = s.good.stat("requests");
    let hello = Load::start(&s.host.http, "/hello?name=load", 2);
    let users = Load::start(&s.host.http, "/api/users/7", 1);
    let started = Instant::now();
    hello.wait_for(
        started,
        "answered by the hostile provider before it turns",
        |c| s.answered_by_hostile(c),
    );

    let times = match cost {
        Cost::Call => "always",
        Cost::Connection => "1",
    };
    let on = Instant::now();
    s.hostile.command(
        &format!("hostile {mode} {times}"),
        &format!("ok hostile {mode}"),
    );
    let after = match cost {
        Cost::Call => {
            // Several bad replies, under load on both references, then good ones again on
            // the same connection.
            s.wait_stat("hostile-sent", 5);
            hello.wait_for_calls(on, 20);
            users.wait_for_calls(on, 20);
            s.hostile.command("hostile off", "ok hostile off");
            Instant::now()
        }
        Cost::Connection => {
            s.wait_stat("hostile-sent", 1);
            s.wait_stat("peer-closed", 1)
        }
    };
    hello.wait_for(after, "answered by the hostile provider again", |c| {
        s.answered_by_hostile(c)
    });
    hello.wait_for_calls(on, 20);
    users.wait_for_calls(on, 20);
    let hello = hello.stop();
    let users = users.stop();

    let good_requests = s.good.stat("requests") - good_before;
    let sent = s.hostile.stat("hostile-sent");
    let accepted = s.hostile.stat("accepted");
    let closed = s.hostile.stat("peer-closed");
    let log = s.host.process.stderr();
    let counts = format!("hostile-sent={sent} accepted={accepted} peer-closed={closed}");
    let context = format!("mode {mode}: {counts}; host stderr:\n{}", tail(&log));

    let mut kinds: Vec<String> = hello
        .iter()
        .filter(|c| !c.ok())
        .map(|c| c.body.split(':').take(2).collect::<Vec<_>>().join(":"))
        .collect();
    kinds.sort();
    kinds.dedup();
    eprintln!(
        "{mode}: {} /hello calls, {} failed ({kinds:?}, first: {:?}), {} /api calls; {counts}",
        hello.len(),
        hello.iter().filter(|c| !c.ok()).count(),
        hello.iter().find(|c| !c.ok()).map(|c| c.body.as_str()),
        users.len()
    );

    let failed_users: Vec<&Call> = users.iter().filter(|c| !c.ok()).collect();
    assert!(
        failed_users.is_empty(),
        "the other reference failed {} of {} calls: {:?}\n{context}",
        failed_users.len(),
        users.len(),
        &failed_users[..failed_users.len().min(5)]
    );
    let from_good = hello
        .iter()
        .filter(|c| c.ok() && c.body.ends_with(&s.good_addr))
        .count() as u64;
    assert_eq!(
        from_good, good_requests,
        "every call the good provider got must succeed\n{context}"
    );
    let failed: Vec<&Call> = hello.iter().filter(|c| !c.ok()).collect();
    assert!(
        !failed.is_empty(),
        "the hostile replies cost no call at all\n{context}"
    );
    for c in &failed {
        assert_eq!(c.status, 502, "{c:?}\n{context}");
        assert!(!c.body.contains(&s.good_addr), "{c:?}\n{context}");
    }
    // An error that does not name the provider is a bad reply decoded for its own call.
    let unnamed: Vec<&&Call> = failed
        .iter()
        .filter(|c| !c.body.contains(&s.hostile_addr))
        .collect();
    assert!(
        unnamed.len() as u64 <= sent,
        "{} failures name no provider, more than the {sent} hostile replies: {:?}\n{context}",
        unnamed.len(),
        &unnamed[..unnamed.len().min(5)]
    );
    for c in &unnamed {
        assert!(
            c.body.starts_with("rpc error: serialization"),
            "{c:?}\n{context}"
        );
    }

    match cost {
        Cost::Call => {
            assert_eq!(
                failed.len() as u64,
                sent,
                "each bad reply must cost exactly its call\n{context}"
            );
            // The self-references may also decode to a bounded value, which is no string.
            let offset = mode != Mode::SelfRefs;
            for c in &failed {
                assert!(
                    c.body.starts_with("rpc error: serialization")
                        && (!offset || c.body.contains("byte")),
                    "a bad value must be a serialization error naming the byte offset: {c:?}\n{context}"
                );
            }
            assert_eq!(
                (accepted, closed),
                (1, 0),
                "the connection must stay open\n{context}"
            );
        }
        Cost::Connection => {
            assert!(
                accepted >= 2 && closed >= 1 && accepted == closed + 1,
                "the host must close that connection and open another\n{context}"
            );
            let stall = matches!(mode, Mode::Stall | Mode::StallSilent | Mode::Drip);
            for c in failed.iter().filter(|c| c.body.contains(&s.hostile_addr)) {
                let network = c.body.starts_with("rpc error: network");
                let timeout = c.body.starts_with("rpc error: timeout");
                assert!(
                    network || (stall && timeout),
                    "calls on the closed connection must fail with network: {c:?}\n{context}"
                );
            }
            if mode.is_protocol_violation() {
                let warned = log
                    .lines()
                    .filter(|l| l.contains("WARN") && l.contains(&s.hostile_addr))
                    .count() as u64;
                assert!(
                    (1..=sent).contains(&warned),
                    "a protocol violation is logged once with the provider address, not {warned} times\n{context}"
                );
            }
        }
    }
}

macro_rules! episodes {
    ($($name:ident: $mode:expr, $cost:expr;)*) => {$(
        #[test]
        fn $name() {
            episode($mode, $cost);
        }
    )*};
}

episodes! {
    a_stalled_frame_costs_its_connection_and_the_provider_answers_on_the_next: Mode::Stall, Cost::Connection;
    a_stalled_frame_on_a_silent_connection_costs_that_connection: Mode::StallSilent, Cost::Connection;
    a_reply_dripped_a_byte_a_second_costs_its_connection: Mode::Drip, Cost::Connection;
    a_million_references_to_the_list_itself_cost_only_that_call: Mode::SelfRefs, Cost::Call;
    a_dangling_reference_costs_only_that_call: Mode::Dangling, Cost::Call;
    an_undefined_class_definition_costs_only_that_call: Mode::DanglingClass, Cost::Call;
    an_undefined_list_type_costs_only_that_call: Mode::DanglingType, Cost::Call;
    lists_nested_100_000_deep_cost_only_that_call: Mode::Deep, Cost::Call;
    a_fixed_list_claiming_2_pow_31_entries_costs_only_that_call: Mode::HugeList, Cost::Call;
    a_class_claiming_2_pow_31_fields_costs_only_that_call: Mode::HugeClass, Cost::Call;
    a_bad_magic_costs_its_connection: Mode::BadMagic, Cost::Connection;
    a_reply_to_an_id_never_sent_costs_its_connection: Mode::UnknownId, Cost::Connection;
    a_request_from_the_provider_costs_its_connection: Mode::ProviderRequest, Cost::Connection;
    an_unexpected_event_costs_its_connection: Mode::UnknownEvent, Cost::Connection;
    a_body_over_the_payload_limit_costs_its_connection: Mode::Oversize, Cost::Connection;
    a_body_ending_mid_value_costs_its_connection: Mode::Truncated, Cost::Connection;
}

/// The stall without load, as the issue's check runs it: a reference to the hostile provider
/// alone, `timeout = 500`, `retries = 0`. The stalled call fails; the host closes that
/// connection without any further call (after at most `read-stall`); the next call succeeds
/// against the same provider on a new connection.
fn lone_stall(mode: Mode) {
    let _slot = Slot::take();
    let (mut p, addr) = start_provider();
    let dir = scratch_dir(&format!("hostile-lone-{mode}"));
    let config = format!(
        "[application]\nname = \"hostile-lone\"\n\n{}\ntimeout = 500\nretries = 0\n\n{}\n\n{}\n",
        demo_reference("demo", &dubbo_url(&addr)),
        http_guest("hello", &hello_guest(), "/hello", &["demo"]),
        listeners()
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, config).expect("write config");
    let host = serve(&path, "hello");
    let hello = |name: &str| {
        let path = format!("/hello?name={name}");
        match exchange(&host.http, "GET", &path, &[], &[]) {
            Ok((s, b)) => (s, String::from_utf8_lossy(&b).into_owned()),
            Err(e) => panic!("GET {path}: {e}"),
        }
    };
    let greeting = |name: &str| format!("Hello {name}, response from provider: {addr}");
    assert_eq!(hello("before"), (200, greeting("before")));
    p.command(&format!("hostile {mode}"), &format!("ok hostile {mode}"));
    let (status, body) = hello("stalled");
    assert_eq!(status, 502, "{body}");
    assert!(
        (body.starts_with("rpc error: timeout") || body.starts_with("rpc error: network"))
            && body.contains(&addr),
        "{body}"
    );
    let deadline = Instant::now() + PATIENCE;
    while p.stat("peer-closed") == 0 {
        assert!(
            Instant::now() < deadline,
            "{mode}: the host kept the stalled connection open for {PATIENCE:?}; host stderr:\n{}",
            tail(&host.process.stderr())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(hello("after"), (200, greeting("after")));
    assert_eq!(
        p.stat("accepted"),
        2,
        "a new connection serves the next call"
    );
}

#[test]
fn a_stall_without_load_is_closed_and_the_next_call_succeeds_on_the_same_provider() {
    lone_stall(Mode::Stall);
}

#[test]
fn a_silent_stall_without_load_is_closed_and_the_next_call_succeeds_on_the_same_provider() {
    lone_stall(Mode::StallSilent);
}

#[test]
fn a_drip_without_load_is_closed_and_the_next_call_succeeds_on_the_same_provider() {
    lone_stall(Mode::Drip);
}

/// Runs `dubbo-wasm-host call sayHello` against `addr` under `/usr/bin/time -v`; returns the
/// exit code, stdout, stderr and the peak resident set size in KiB.
fn call_measured(addr: &str) -> (Option<i32>, String, String, u64) {
    let host = workspace_binary("dubbo-wasm-host");
    let url = format!("dubbo://{addr}");
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&host)
        .args([
            "call",
            "--url",
            &url,
            "--interface",
            DEMO_INTERFACE,
            "--timeout",
            "10000",
            "sayHello",
            r#"["x"]"#,
        ])
        .output()
        .expect("run /usr/bin/time -v dubbo-wasm-host call");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time -v:\n{stderr}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), stdout, stderr, peak)
}

#[test]
fn call_of_a_2_mb_self_referencing_list_peaks_under_100_mb() {
    let (mut p, addr) = start_provider();
    p.command("hostile self-refs always", "ok hostile self-refs");
    let (code, stdout, stderr, peak_kib) = call_measured(&addr);
    assert_eq!(p.stat("hostile-sent"), 1, "{stderr}");
    eprintln!("call of self-refs: exit {code:?}, peak RSS {peak_kib} KiB");
    assert!(
        peak_kib < 100 * 1024,
        "call peaked at {peak_kib} KiB for a 2 MB reply; exit {code:?}; stderr:\n{}",
        tail(&stderr)
    );
    // A clear error, or a result that is bounded too.
    match code {
        Some(1) => assert!(stderr.contains("serialization"), "{}", tail(&stderr)),
        Some(0) => assert!(stdout.len() < 16 * 1024 * 1024, "{} bytes", stdout.len()),
        other => panic!("exit {other:?}; stderr:\n{}", tail(&stderr)),
    }
}

/// Asserts that `call` refuses the reply of `mode` with a serialization error naming the byte
/// offset, and that the same provider then answers the next call.
fn call_refuses(mode: Mode) {
    let (mut p, addr) = start_provider();
    p.command(&format!("hostile {mode}"), &format!("ok hostile {mode}"));
    let (code, stdout, stderr, _) = call_measured(&addr);
    assert_eq!(p.stat("hostile-sent"), 1, "{stderr}");
    assert_eq!(
        code,
        Some(1),
        "mode {mode}: stdout {stdout:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("serialization") && stderr.contains("byte"),
        "mode {mode}: the error must say serialization and name the byte offset:\n{stderr}"
    );
    let (code, stdout, stderr, _) = call_measured(&addr);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Hello x"), "{stdout}");
}

macro_rules! refusals {
    ($($name:ident: $mode:expr;)*) => {$(
        #[test]
        fn $name() {
            call_refuses($mode);
        }
    )*};
}

refusals! {
    call_refuses_a_dangling_reference_naming_the_offset: Mode::Dangling;
    call_refuses_an_undefined_class_definition_naming_the_offset: Mode::DanglingClass;
    call_refuses_an_undefined_list_type_naming_the_offset: Mode::DanglingType;
    call_refuses_lists_nested_100_000_deep_naming_the_offset: Mode::Deep;
    call_refuses_a_fixed_list_claiming_2_pow_31_entries_naming_the_offset: Mode::HugeList;
    call_refuses_a_class_claiming_2_pow_31_fields_naming_the_offset: Mode::HugeClass;
}
