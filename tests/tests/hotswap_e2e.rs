//! Hot swap end to end: the host swaps the hello-http guest between its two versions, from a
//! file renamed into place and from uploads to the admin API, under continuous HTTP load,
//! without failing a request or touching the provider connection; refuses broken modules while
//! the old version keeps serving; applies a changed config on SIGHUP; and checks the admin
//! token. Each test runs its own provider and host on port 0, with the guest copied into a
//! scratch directory so that the host's file watch only sees the test's own file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dubbo_wasm_host_tests::admin::{
    count, digest_of, get, get_with, json, metric, put, replace_atomically, serve, sha256_hex,
    slot, version_of, wait_for_slot, Host, Load,
};
use dubbo_wasm_host_tests::config::{demo_reference, dubbo_url, http_guest, listeners};
use dubbo_wasm_host_tests::process::{
    example_guest, hello_guest, hello_guest_v2, scratch_dir, start_provider, Running,
};

/// The contract: a guest file renamed into place is loaded well within this.
const FILE_SWAP_BOUND: Duration = Duration::from_millis(2500);

/// Swaps of the swap test: 100, or `DWH_SOAK_SWAPS` for a soak run (e.g. 5000).
fn swaps() -> u64 {
    std::env::var("DWH_SOAK_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &u64| *n >= 2)
        .unwrap_or(100)
}

/// Generous bound for things that have no timing contract (a loaded 2-core machine).
const PATIENCE: Duration = Duration::from_secs(30);

/// A guest of a test config: name, file, route.
struct GuestEntry<'a> {
    name: &'a str,
    path: &'a Path,
    route: &'a str,
}

fn config_text(provider: &str, guests: &[GuestEntry], token: Option<&str>) -> String {
    config_text_with(provider, guests, token, "")
}

/// [`config_text`] with `extra` lines in every guest's table.
fn config_text_with(
    provider: &str,
    guests: &[GuestEntry],
    token: Option<&str>,
    extra: &str,
) -> String {
    let mut text = format!(
        r#"
[application]
name = "hotswap-consumer"

{reference}
timeout = 3000

{listeners}
"#,
        reference = demo_reference("demo", &dubbo_url(provider)),
        listeners = listeners(),
    );
    if let Some(token) = token {
        text.push_str(&format!("token = \"{token}\"\n"));
    }
    for g in guests {
        text.push('\n');
        text.push_str(&http_guest(g.name, g.path, g.route, &["demo"]));
        text.push('\n');
        text.push_str(extra);
        text.push('\n');
    }
    text
}

/// A provider and a host serving guest `hello` (version 1) at `/hello` from a scratch copy.
struct Setup {
    provider: Running,
    provider_addr: String,
    host: Host,
    dir: PathBuf,
    guest: PathBuf,
    config: PathBuf,
    v1: Vec<u8>,
    v2: Vec<u8>,
}

impl Setup {
    fn new(tag: &str, token: Option<&str>) -> Setup {
        Setup::with_guest_extra(tag, token, "")
    }

    /// A setup whose guest table has `extra` lines (e.g. `instance-reuse = 50`).
    fn with_guest_extra(tag: &str, token: Option<&str>, extra: &str) -> Setup {
        let (mut provider, provider_addr) = start_provider();
        let dir = scratch_dir(tag);
        let v1 = read(&hello_guest());
        let v2 = read(&hello_guest_v2());
        assert_ne!(
            v1, v2,
            "hello_http_v2.wasm must differ from hello_http.wasm"
        );
        let guest = dir.join("hello.wasm");
        std::fs::write(&guest, &v1).expect("copy the guest");
        let config = dir.join("host.toml");
        let entry = GuestEntry {
            name: "hello",
            path: &guest,
            route: "/hello",
        };
        std::fs::write(
            &config,
            config_text_with(&provider_addr, &[entry], token, extra),
        )
        .expect("write config");
        let host = serve(&config, "hello");
        provider.wait_accepted(1);
        Setup {
            provider,
            provider_addr,
            host,
            dir,
            guest,
            config,
            v1,
            v2,
        }
    }

    fn admin(&self) -> &str {
        &self.host.admin
    }

    fn http(&self) -> &str {
        &self.host.http
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `GET /hello` answers 200 from `version`.
fn expect_version(http: &str, route: &str, version: &str) {
    let (status, body) = get(http, &format!("{route}?name=check"));
    assert_eq!(status, 200, "{route}: {body}");
    assert_eq!(version_of(&body), version, "{route}: {body}");
}

#[test]
fn hundred_swaps_by_file_and_upload_under_load_fail_no_request_and_keep_the_connection() {
    let mut s = Setup::new("swaps", None);
    let (d1, d2) = (sha256_hex(&s.v1), sha256_hex(&s.v2));
    let first = slot(s.admin(), "hello");
    assert_eq!(count(&first, "generation"), 1, "{first}");
    assert_eq!(digest_of(&first), d1, "{first}");
    assert_eq!(first["source"], "file", "{first}");
    assert_eq!(first["route"], "/hello", "{first}");
    assert_eq!(first["trigger"], "http", "{first}");

    let load = Load::start(s.http(), "/hello?name=swap", 4);
    load.wait_for_ok(0, 20, PATIENCE);
    let accepted = s.provider.stat("accepted");

    let mut slowest_file_swap = Duration::ZERO;
    let n = swaps();
    for i in 1..=n {
        let (bytes, digest, version) = if i % 2 == 1 {
            (&s.v2, &d2, "v2")
        } else {
            (&s.v1, &d1, "v1")
        };
        // F P P F F P P F ...: each mechanism swaps to each version.
        let by_file = (i / 2) % 2 == 0;
        let generation = i + 1;
        if by_file {
            let renamed = Instant::now();
            replace_atomically(&s.guest, bytes);
            let (now, _) =
                wait_for_slot(s.admin(), "hello", PATIENCE, "load the renamed file", |g| {
                    g["digest"] == digest.as_str()
                });
            let took = renamed.elapsed();
            slowest_file_swap = slowest_file_swap.max(took);
            assert!(
                took < FILE_SWAP_BOUND,
                "swap {i}: the renamed file was loaded after {took:?}"
            );
            assert_eq!(count(&now, "generation"), generation, "swap {i}: {now}");
            assert_eq!(now["source"], "file", "swap {i}: {now}");
        } else {
            let (status, body) = put(s.admin(), "/admin/guests/hello", bytes, None);
            assert_eq!(status, 200, "swap {i}: PUT: {body}");
            let now = json(&body);
            assert_eq!(digest_of(&now), *digest, "swap {i}: {now}");
            assert_eq!(count(&now, "generation"), generation, "swap {i}: {now}");
            assert_eq!(now["source"], "upload", "swap {i}: {now}");
        }
        load.wait_for_version(version, Instant::now(), PATIENCE);
    }

    let tally = load.stop();
    let last = slot(s.admin(), "hello");
    assert_eq!(
        tally.failed, 0,
        "requests failed during the swaps: {:?}",
        tally.failures
    );
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert_eq!(count(&last, "generation"), n + 1, "{last}");
    assert_eq!(count(&last, "swaps"), n, "{last}");
    assert_eq!(count(&last, "refused"), 0, "{last}");
    assert!(last["last_error"].is_null(), "{last}");
    let final_digest = if n.is_multiple_of(2) { &d1 } else { &d2 };
    assert_eq!(digest_of(&last), *final_digest, "{last}");
    assert!(count(&last, "requests") >= tally.ok, "{last}; {tally:?}");
    assert_eq!(
        s.provider.stat("accepted"),
        accepted,
        "a swap touched the provider connection"
    );
    eprintln!(
        "{n} swaps: {} requests ok ({:?}), {} version changes seen, slowest file swap {slowest_file_swap:?}",
        tally.ok,
        tally.versions,
        tally.changes.len()
    );

    let (status, metrics) = get(s.admin(), "/metrics");
    assert_eq!(status, 200, "{metrics}");
    let hello = "guest=\"hello\"";
    assert_eq!(
        metric(&metrics, "dubbo_guest_generation", hello),
        Some((n + 1) as f64),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "dubbo_guest_swaps_total", hello),
        Some(n as f64),
        "{metrics}"
    );
    assert!(
        metric(&metrics, "dubbo_guest_requests_total", hello) >= Some(tally.ok as f64),
        "{metrics}"
    );
    let (status, health) = get(s.admin(), "/health");
    assert_eq!(
        (status, json(&health)["status"].as_str()),
        (200, Some("UP")),
        "{health}"
    );
}

#[test]
fn swaps_under_load_with_instance_reuse_fail_no_request() {
    // Reused instances belong to the version that made them: after a swap, requests take
    // instances of the new version only, and those of the old one go when its requests end.
    let s = Setup::with_guest_extra("swaps-reuse", None, "instance-reuse = 50");
    let (d1, d2) = (sha256_hex(&s.v1), sha256_hex(&s.v2));
    let load = Load::start(s.http(), "/hello?name=reuse", 4);
    load.wait_for_ok(0, 20, PATIENCE);
    for i in 1..=20u64 {
        let (bytes, digest, version) = if i % 2 == 1 {
            (&s.v2, &d2, "v2")
        } else {
            (&s.v1, &d1, "v1")
        };
        let (status, body) = put(s.admin(), "/admin/guests/hello", bytes, None);
        assert_eq!(status, 200, "swap {i}: PUT: {body}");
        assert_eq!(digest_of(&json(&body)), *digest, "swap {i}: {body}");
        load.wait_for_version(version, Instant::now(), PATIENCE);
    }
    let tally = load.stop();
    assert_eq!(
        tally.failed, 0,
        "requests failed during the swaps: {:?}",
        tally.failures
    );
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert!(tally.ok > 20, "{tally:?}");
}

#[test]
fn broken_modules_are_refused_while_the_old_version_keeps_serving() {
    let s = Setup::new("refused", None);
    let (d1, d2) = (sha256_hex(&s.v1), sha256_hex(&s.v2));
    let load = Load::start(s.http(), "/hello?name=broken", 2);
    load.wait_for_ok(0, 10, PATIENCE);

    // Garbage renamed into place: refused, version 1 keeps answering.
    let garbage = b"not a WebAssembly component\n".repeat(64);
    let bad = sha256_hex(&garbage);
    replace_atomically(&s.guest, &garbage);
    let (now, _) = wait_for_slot(
        s.admin(),
        "hello",
        PATIENCE,
        "refuse the garbage file",
        |g| g["last_error"]["digest"] == bad.as_str(),
    );
    assert_eq!(count(&now, "generation"), 1, "{now}");
    assert_eq!(count(&now, "refused"), 1, "{now}");
    assert_eq!(digest_of(&now), d1, "{now}");
    assert!(now["last_error"]["at_ms"].as_u64().is_some(), "{now}");
    assert!(
        now["last_error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{now}"
    );
    let after = load.tally().ok;
    load.wait_for_ok(after, 10, PATIENCE);
    expect_version(s.http(), "/hello", "v1");

    // Version 2 written in place in two halves 50 ms apart: only the whole file is loaded.
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&s.guest)
            .expect("open the guest file");
        let half = s.v2.len() / 2;
        f.write_all(&s.v2[..half]).expect("write the first half");
        f.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(50));
        f.write_all(&s.v2[half..]).expect("write the rest");
    }
    let (now, _) = wait_for_slot(
        s.admin(),
        "hello",
        PATIENCE,
        "load the rewritten file",
        |g| g["digest"] == d2.as_str(),
    );
    assert_eq!(count(&now, "generation"), 2, "{now}");
    // Longer than any debounce: a late event for the partial file would show by now.
    std::thread::sleep(Duration::from_millis(1500));
    let now = slot(s.admin(), "hello");
    assert_eq!(
        count(&now, "refused"),
        1,
        "the half-written file was loaded and refused: {now}"
    );
    assert_eq!(count(&now, "generation"), 2, "{now}");
    assert_eq!(digest_of(&now), d2, "{now}");
    load.wait_for_version("v2", Instant::now(), PATIENCE);

    // Uploads the host must refuse, each with 422 and the unchanged slot.
    let refused_upload = |bytes: &[u8], what: &str| -> String {
        let (status, body) = put(s.admin(), "/admin/guests/hello", bytes, None);
        assert_eq!(status, 422, "{what}: {body}");
        let answer = json(&body);
        assert_eq!(count(&answer["guest"], "generation"), 2, "{what}: {body}");
        assert_eq!(digest_of(&answer["guest"]), d2, "{what}: {body}");
        let message = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no `error` in {body}"))
            .to_string();
        assert!(!message.is_empty(), "{what}: {body}");
        message
    };
    refused_upload(&garbage, "garbage");
    // user-api imports UserService; only the DemoService reference is granted.
    let unbound = refused_upload(&read(&example_guest("user_api")), "user-api");
    assert!(
        unbound.contains("org-apache-dubbo:samples/user-service"),
        "the refusal must name the ungranted import: {unbound}"
    );
    // hello-cli is a wasi:cli command: it exports no http handler.
    let no_export = refused_upload(&read(&example_guest("hello-cli")), "hello-cli");
    eprintln!("refusals: unbound import: {unbound}\nno http export: {no_export}");

    let (status, body) = put(s.admin(), "/admin/guests/nobody", &s.v1, None);
    assert_eq!(status, 404, "unknown guest: {body}");

    // The current bytes again: accepted, no new generation.
    let (status, body) = put(s.admin(), "/admin/guests/hello", &s.v2, None);
    assert_eq!(status, 200, "same bytes: {body}");
    assert_eq!(count(&json(&body), "generation"), 2, "{body}");

    let tally = load.stop();
    assert_eq!(tally.failed, 0, "{:?}", tally.failures);
    let last = slot(s.admin(), "hello");
    assert_eq!(count(&last, "generation"), 2, "{last}");
    assert_eq!(digest_of(&last), d2, "{last}");
    expect_version(s.http(), "/hello", "v2");
}

#[test]
fn sighup_applies_a_changed_route_and_a_new_guest_without_reconnecting() {
    let mut s = Setup::new("sighup", None);
    expect_version(s.http(), "/hello", "v1");
    let accepted = s.provider.stat("accepted");

    let second = s.dir.join("hello2.wasm");
    std::fs::write(&second, &s.v2).expect("copy the second guest");
    let guests = [
        GuestEntry {
            name: "hello",
            path: &s.guest,
            route: "/greet",
        },
        GuestEntry {
            name: "hello2",
            path: &second,
            route: "/hello2",
        },
    ];
    replace_atomically(
        &s.config,
        config_text(&s.provider_addr, &guests, None).as_bytes(),
    );
    s.host.process.signal("HUP");

    let deadline = Instant::now() + PATIENCE;
    loop {
        let greet = get(s.http(), "/greet?name=hup");
        let hello2 = get(s.http(), "/hello2?name=hup");
        if greet.0 == 200 && hello2.0 == 200 {
            assert_eq!(version_of(&greet.1), "v1", "{}", greet.1);
            assert_eq!(version_of(&hello2.1), "v2", "{}", hello2.1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after SIGHUP: /greet {greet:?}, /hello2 {hello2:?}; stderr:\n{}",
            s.host.process.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(s.http(), "/hello?name=hup");
    assert_eq!(status, 404, "the old route must be gone: {body}");

    let hello = slot(s.admin(), "hello");
    assert_eq!(hello["route"], "/greet", "{hello}");
    let hello2 = slot(s.admin(), "hello2");
    assert_eq!(hello2["route"], "/hello2", "{hello2}");
    assert_eq!(digest_of(&hello2), sha256_hex(&s.v2), "{hello2}");
    assert_eq!(
        s.provider.stat("accepted"),
        accepted,
        "SIGHUP reconnected to an unchanged provider"
    );
    assert_eq!(s.host.process.try_exit(), None, "the host exited on SIGHUP");
}

#[test]
fn sighup_rebuilds_a_changed_reference_on_the_same_connection_and_rebinds_its_guest() {
    let mut s = Setup::new("sighup-ref", None);
    expect_version(s.http(), "/hello", "v1");
    let accepted = s.provider.stat("accepted");
    let consumer = |admin: &str| {
        let (status, body) = get(admin, "/admin/references");
        assert_eq!(status, 200, "{body}");
        json(&body)["references"][0]["consumer"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(consumer(s.admin()).contains("timeout=3000"));

    let guests = [GuestEntry {
        name: "hello",
        path: &s.guest,
        route: "/hello",
    }];
    let text =
        config_text(&s.provider_addr, &guests, None).replace("timeout = 3000", "timeout = 2500");
    replace_atomically(&s.config, text.as_bytes());
    s.host.process.signal("HUP");

    let deadline = Instant::now() + PATIENCE;
    while !consumer(s.admin()).contains("timeout=2500") {
        assert!(
            Instant::now() < deadline,
            "the reference kept its old settings; stderr:\n{}",
            s.host.process.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The guest is bound again to the rebuilt reference (a new generation of the same module)
    // and calls go through it, over the connection the old reference opened.
    let hello = slot(s.admin(), "hello");
    assert_eq!(count(&hello, "generation"), 2, "{hello}");
    assert_eq!(digest_of(&hello), sha256_hex(&s.v1), "{hello}");
    expect_version(s.http(), "/hello", "v1");
    assert_eq!(
        s.provider.stat("accepted"),
        accepted,
        "a changed reference to the same provider must reuse its connection"
    );
}

#[test]
fn with_a_token_uploads_need_the_bearer_header() {
    let s = Setup::new("token", Some("s3cret"));
    let path = "/admin/guests/hello";
    let (status, body) = put(s.admin(), path, &s.v2, None);
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = put(s.admin(), path, &s.v2, Some("wrong"));
    assert_eq!(status, 401, "wrong token: {body}");
    let (status, body) = get_with(s.admin(), "/admin/guests", Some("s3cret"));
    assert_eq!(status, 200, "GET with the token: {body}");
    assert_eq!(count(&json(&body)["guests"][0], "generation"), 1, "{body}");

    let (status, body) = put(s.admin(), path, &s.v2, Some("s3cret"));
    assert_eq!(status, 200, "with the token: {body}");
    assert_eq!(count(&json(&body), "generation"), 2, "{body}");
    expect_version(s.http(), "/hello", "v2");
}
