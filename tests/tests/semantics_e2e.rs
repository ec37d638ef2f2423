//! Dubbo's invocation semantics end to end, through the host binary with a real ZooKeeper and
//! test providers: Dubbo Admin's mock switch (an override written to ZooKeeper) turns mock on
//! and off under load; `fail:return` answers when the only provider is stopped; a provider
//! with a `token` is called; `group = "*"` reaches providers of two groups and `merger`
//! merges their lists; an override of `retries` is honoured; `actives = 1` serializes calls;
//! oneway calls reach the provider and the guest gets no error; `check = true` refuses to
//! start without a connected provider and names the address.

use std::path::Path;
use std::time::{Duration, Instant};

use dubbo_wasm_host::url::encode_component;
use dubbo_wasm_host_tests::admin::{get, json, serve, Host, Load};
use dubbo_wasm_host_tests::config::{
    demo_reference, dubbo_url, http_guest, listeners, user_reference, zookeeper_registry,
};
use dubbo_wasm_host_tests::process::{
    example_guest, hello_guest, http_get, scratch_dir, workspace_binary, Running,
};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;
use zookeeper_client as zk;

const DEMO: &str = "org.apache.dubbo.demo.DemoService";
const PATIENCE: Duration = Duration::from_secs(10);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A test provider registered in `zk` at interface level with `extra` arguments.
fn provider(zk: &ZooKeeper, extra: &[&str]) -> (Running, String) {
    let registry = format!("{}?session=4000", zk.address());
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--registry",
        &registry,
        "--version",
        "1.0.0",
    ];
    args.extend_from_slice(extra);
    let mut p = Running::start(&workspace_binary("test-provider"), &args);
    let addr = p.wait_for_line("listening on ", Duration::from_secs(20));
    p.wait_for_line("registered ", Duration::from_secs(20));
    (p, addr)
}

/// Serves `tables` (references and guests) with `[application]` and listeners.
fn host(dir: &Path, tables: &str) -> Host {
    let config = format!(
        "[application]\nname = \"semantics\"\ndata-dir = \"{}\"\n\n{tables}\n\n{}\n",
        dir.display(),
        listeners()
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, config).expect("write config");
    serve(&path, "app")
}

fn demo_tables(zk: &ZooKeeper, reference_keys: &str) -> String {
    format!(
        "{}\n\n{}\ntimeout = 2000\n{reference_keys}\n\n{}",
        zookeeper_registry("zk", &zk.address()),
        demo_reference("demo", "registry = [\"zk\"]"),
        http_guest("app", &hello_guest(), "/hello", &["demo"])
    )
}

fn user_tables(provider_line: &str, reference_keys: &str) -> String {
    format!(
        "{}\ntimeout = 2000\n{reference_keys}\n\n{}",
        user_reference("users", provider_line),
        http_guest("app", &example_guest("user_api"), "/api", &["users"])
    )
}

async fn zk_client(zk: &ZooKeeper) -> zk::Client {
    zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect to ZooKeeper")
}

/// Writes an `override://` rule for version 1.0.0 of `interface` under its configurators, as
/// Dubbo Admin does (a rule without the version would not match a versioned consumer, as in
/// Java's `UrlUtils.isMatch`); returns its node path.
async fn write_override(client: &zk::Client, interface: &str, query: &str) -> String {
    let url = format!(
        "override://0.0.0.0/{interface}?category=configurators&dynamic=false&enabled=true&version=1.0.0&{query}"
    );
    let dir = format!("/dubbo/{interface}/configurators");
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .mkdir(&dir, &options)
        .await
        .expect("configurators directory");
    let path = format!("{dir}/{}", encode_component(&url));
    client
        .create(&path, &[], &options)
        .await
        .expect("create override");
    path
}

/// Sends GETs until one answers with exactly `body` (200).
fn until_body(http: &str, path: &str, body: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, got) = http_get(http, path);
        if status == 200 && got == body {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} {got:?}, not {body:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dubbo_admins_mock_switch_turns_mock_on_and_off_under_load() {
    let zk = blocking(ZooKeeper::new);
    let (mut p, addr) = blocking(|| provider(&zk, &[]));
    let dir = scratch_dir("mock-switch");
    let h = blocking(|| host(&dir, &demo_tables(&zk, "")));
    let greeting = format!("Hello m, response from provider: {addr}");
    blocking(|| until_body(&h.http, "/hello?name=m", &greeting));
    let load = Load::start(&h.http, "/hello?name=load", 4);
    load.wait_for_ok(0, 20, PATIENCE);
    let client = zk_client(&zk).await;

    let switched = Instant::now();
    let node = write_override(&client, DEMO, "mock=force:return+%22mocked%22").await;
    blocking(|| until_body(&h.http, "/hello?name=m", "mocked"));
    let took = switched.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the mock took {took:?} to answer"
    );
    let before = blocking(|| p.stat("requests"));
    for _ in 0..20 {
        let (status, body) = blocking(|| http_get(&h.http, "/hello?name=m"));
        assert_eq!((status, body.as_str()), (200, "mocked"));
    }
    // Load threads' calls in flight when the mock went on may still land; none after.
    std::thread::sleep(Duration::from_millis(100));
    let during = blocking(|| p.stat("requests"));
    assert!(
        during - before <= 4,
        "force mock still called the provider: {before} -> {during}"
    );
    let (_, refs) = blocking(|| get(&h.admin, "/admin/references"));
    assert_eq!(
        json(&refs)["references"][0]["mock"]["*"],
        "force:return \"mocked\"",
        "{refs}"
    );
    let (_, metrics) = blocking(|| get(&h.admin, "/metrics"));
    assert!(metrics.contains("dubbo_consumer_mock_total{"), "{metrics}");

    client.delete(&node, None).await.expect("delete override");
    blocking(|| until_body(&h.http, "/hello?name=m", &greeting));
    let tally = blocking(|| load.stop());
    assert_eq!(tally.failed, 0, "{:?}", tally.failures);
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_mock_answers_when_the_only_provider_is_stopped() {
    let zk = blocking(ZooKeeper::new);
    let (mut p, addr) = blocking(|| provider(&zk, &[]));
    let dir = scratch_dir("mock-fail");
    let h = blocking(|| host(&dir, &demo_tables(&zk, "mock = \"fail:return 'degraded'\"")));
    blocking(|| {
        until_body(
            &h.http,
            "/hello?name=f",
            &format!("Hello f, response from provider: {addr}"),
        )
    });
    blocking(|| p.kill());
    blocking(|| until_body(&h.http, "/hello?name=f", "degraded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_with_a_token_is_called_with_it() {
    let zk = blocking(ZooKeeper::new);
    let token = "3e8b1d9c-6c5e-4f3a-9a51-7f2d2f0c1b44";
    let (_p, addr) = blocking(|| provider(&zk, &["--token", token]));
    let dir = scratch_dir("token");
    let h = blocking(|| host(&dir, &demo_tables(&zk, "")));
    let (status, body) = blocking(|| http_get(&h.http, "/hello?name=t"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("Hello t, response from provider: {addr}"));
    // Called directly, without the registered URL, the provider refuses.
    let dir = scratch_dir("token-direct");
    let config = format!(
        "[application]\nname = \"semantics\"\n\n{}\ntimeout = 2000\n\n{}\n\n{}\n",
        demo_reference("demo", &dubbo_url(&addr)),
        http_guest("app", &hello_guest(), "/hello", &["demo"]),
        listeners()
    );
    std::fs::write(dir.join("host.toml"), config).expect("write config");
    let direct = blocking(|| serve(&dir.join("host.toml"), "app"));
    let (status, body) = blocking(|| http_get(&direct.http, "/hello?name=t"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Invalid token"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn any_group_reaches_both_groups_and_merger_concatenates_their_lists() {
    let zk = blocking(ZooKeeper::new);
    let (_a, _) = blocking(|| provider(&zk, &["--group", "a"]));
    let (_b, _) = blocking(|| provider(&zk, &["--group", "b"]));
    let registry = zookeeper_registry("zk", &zk.address());
    let users = |group_keys: &str| {
        format!(
            "{registry}\n\n{}",
            user_tables("registry = [\"zk\"]", group_keys)
        )
    };
    let count = |h: &Host| {
        let (status, body) = blocking(|| http_get(&h.http, "/api/users?count=3"));
        assert_eq!(status, 200, "{body}");
        json(&body).as_array().map_or(0, Vec::len)
    };
    let merged = blocking(|| {
        host(
            &scratch_dir("merge"),
            &users("group = \"*\"\nmerger = \"true\""),
        )
    });
    let deadline = Instant::now() + PATIENCE;
    while count(&merged) != 6 {
        assert!(
            Instant::now() < deadline,
            "the two groups' lists are not merged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let one = blocking(|| host(&scratch_dir("one-group"), &users("group = \"a,b\"")));
    assert_eq!(count(&one), 3, "without merger one group answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_of_retries_is_honoured() {
    let zk = blocking(ZooKeeper::new);
    let (mut p, _) = blocking(|| provider(&zk, &["--delay-ms", "400"]));
    let dir = scratch_dir("retries");
    let h = blocking(|| {
        host(
            &dir,
            &demo_tables(&zk, "").replace("timeout = 2000", "timeout = 100"),
        )
    });
    let tries_of_one_call = |p: &mut Running| {
        let before = p.stat("requests");
        let (status, body) = http_get(&h.http, "/hello?name=r");
        assert_eq!(status, 502, "{body}");
        std::thread::sleep(Duration::from_millis(50));
        p.stat("requests") - before
    };
    assert_eq!(
        blocking(|| tries_of_one_call(&mut p)),
        3,
        "retries = 2 by default"
    );
    let client = zk_client(&zk).await;
    write_override(&client, DEMO, "retries=0").await;
    let deadline = Instant::now() + PATIENCE;
    while blocking(|| tries_of_one_call(&mut p)) != 1 {
        assert!(
            Instant::now() < deadline,
            "the retries override is not honoured"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn actives_one_serializes_the_calls_to_a_provider() {
    let zk = blocking(ZooKeeper::new);
    let (mut p, _) = blocking(|| provider(&zk, &["--delay-ms", "150"]));
    let dir = scratch_dir("actives");
    let h = blocking(|| host(&dir, &demo_tables(&zk, "actives = 1")));
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let http = h.http.clone();
            std::thread::spawn(move || http_get(&http, &format!("/hello?name=a{i}")))
        })
        .collect();
    for c in calls {
        let (status, body) = c.join().expect("call");
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(blocking(|| p.stat("max-in-flight")), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn oneway_calls_reach_the_provider_and_the_guest_gets_no_error() {
    let (mut p, addr) = blocking(dubbo_wasm_host_tests::process::start_provider);
    let dir = scratch_dir("oneway");
    let h = blocking(|| {
        host(
            &dir,
            &user_tables(
                &dubbo_url(&addr),
                "[reference.methods.notify]\nreturn = false",
            ),
        )
    });
    let before = blocking(|| p.stat("requests"));
    let (status, body) = blocking(|| http_get(&h.http, "/api/notify?message=hi"));
    assert_eq!((status, body.as_str()), (200, "null"));
    let deadline = Instant::now() + PATIENCE;
    while blocking(|| p.stat("requests")) == before {
        assert!(
            Instant::now() < deadline,
            "the oneway request never reached the provider"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_refuses_to_start_without_a_connected_provider_naming_the_address() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let dir = scratch_dir("check-down");
    let config = format!(
        "[application]\nname = \"semantics\"\n\n{}\ntimeout = 300\n\n{}\n\n{}\n",
        demo_reference("demo", &dubbo_url(&closed)),
        http_guest("app", &hello_guest(), "/hello", &["demo"]),
        listeners()
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, &config).expect("write config");
    let out = std::process::Command::new(workspace_binary("dubbo-wasm-host"))
        .args(["serve", "--config", &path.display().to_string()])
        .output()
        .expect("run the host");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&closed) && stderr.contains("check = false"),
        "{stderr}"
    );
}
