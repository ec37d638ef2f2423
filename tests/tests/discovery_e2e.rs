//! Dubbo 3 application-level discovery end to end, with a real ZooKeeper and test providers
//! that register as a Java 3.2 provider with `register-mode=instance` does: the host calls
//! providers that exist only at application level, a migration rule written to ZooKeeper moves
//! the traffic between interface-level and application-level providers and back under load
//! with no failed request, an instance killed under load costs nothing, an instance whose
//! metadata cannot be had does not hold the others up, and a restart with ZooKeeper down serves
//! from the cache file, metadata included.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dubbo_wasm_host_tests::admin::{get, json, serve, Host, Load};
use dubbo_wasm_host_tests::config::{demo_reference, http_guest, listeners, zookeeper_registry};
use dubbo_wasm_host_tests::process::{
    hello_guest, http_get, scratch_dir, workspace_binary, Running,
};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;
use serde_json::Value;
use zookeeper_client as zk;

/// The host's application name, whose migration rule the tests write.
const APPLICATION: &str = "e2e-consumer";
const RULE: &str = "/dubbo/config/DUBBO_SERVICEDISCOVERY_MIGRATION/e2e-consumer.migration";
/// How long a switch or a membership change may take to show.
const PATIENCE: Duration = Duration::from_secs(15);

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A test provider of `app` registered at application level (`extra` more arguments), its
/// MetadataService on a port of its own; returns it and its `host:port`.
fn instance_provider(zk: &ZooKeeper, app: &str, extra: &[&str]) -> (Running, String) {
    provider_registered(zk, "instance", app, extra)
}

fn provider_registered(zk: &ZooKeeper, mode: &str, app: &str, extra: &[&str]) -> (Running, String) {
    let registry = format!("{}?session=4000", zk.address());
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--registry",
        &registry,
        "--register-mode",
        mode,
        "--application",
        app,
        "--version",
        "1.0.0",
        "--metadata-port",
        "0",
    ];
    args.extend_from_slice(extra);
    let mut p = Running::start(&workspace_binary("test-provider"), &args);
    let addr = p.wait_for_line("listening on ", Duration::from_secs(20));
    p.wait_for_line("registered instance ", Duration::from_secs(20));
    (p, addr)
}

/// A test provider registered at interface level only.
fn interface_provider(zk: &ZooKeeper) -> (Running, String) {
    let registry = format!("{}?session=4000", zk.address());
    let mut p = Running::start(
        &workspace_binary("test-provider"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--registry",
            &registry,
            "--application",
            "old-app",
            "--version",
            "1.0.0",
        ],
    );
    let addr = p.wait_for_line("listening on ", Duration::from_secs(20));
    p.wait_for_line("registered ", Duration::from_secs(20));
    (p, addr)
}

/// Writes a host config following `zk` into `dir` and serves it.
fn start_host(zk: &ZooKeeper, dir: &Path, more: &str) -> Host {
    let config = format!(
        "[application]\nname = \"{APPLICATION}\"\ndata-dir = \"{data}\"\n\n{registry}\n\n{reference}\ntimeout = 3000\nretries = 2\n{more}\n\n{guest}\n\n{listeners}\n",
        data = dir.display(),
        registry = zookeeper_registry("zk", &zk.address()),
        reference = demo_reference("demo", "registry = [\"zk\"]"),
        guest = http_guest("hello", &hello_guest(), "/hello", &["demo"]),
        listeners = listeners(),
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, config).expect("write config");
    serve(&path, "hello")
}

/// The provider that answered a greeting.
fn provider_of(body: &str) -> &str {
    body.rsplit("provider: ").next().unwrap_or_default()
}

/// The demo reference's discovery view of registry `zk`.
fn discovery(host: &Host) -> Value {
    let (status, body) = get(&host.admin, "/admin/references");
    assert_eq!(status, 200, "{body}");
    json(&body)["references"][0]["discovery"][0].clone()
}

async fn zk_client(zk: &ZooKeeper) -> zk::Client {
    zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect to ZooKeeper")
}

/// Writes (or replaces) the host application's migration rule.
async fn write_rule(client: &zk::Client, yaml: &str) {
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    match client.create(RULE, yaml.as_bytes(), &options).await {
        Ok(_) => {}
        Err(zk::Error::NodeExists) => {
            client
                .set_data(RULE, yaml.as_bytes(), None)
                .await
                .expect("set rule");
        }
        Err(zk::Error::NoNode) => {
            let parent = RULE.rsplit_once('/').map_or("/", |(p, _)| p);
            client
                .mkdir(parent, &options)
                .await
                .expect("rule directory");
            client
                .create(RULE, yaml.as_bytes(), &options)
                .await
                .expect("create rule");
        }
        Err(e) => panic!("cannot write the migration rule: {e}"),
    }
}

/// Waits until every answer of a short batch comes from `want`.
fn until_all_from(http: &str, want: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let from: Vec<String> = (0..6)
            .map(|i| {
                let (status, body) = http_get(http, &format!("/hello?name=n{i}"));
                assert_eq!(status, 200, "{body}");
                provider_of(&body).to_string()
            })
            .collect();
        if from.iter().all(|p| p == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "answers still from {from:?}, not only {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_registered_only_at_application_level_are_called() {
    let zk = blocking(ZooKeeper::new);
    let (_p, addr) = blocking(|| instance_provider(&zk, "users-app", &[]));
    let dir = scratch_dir("app-only");
    let host = blocking(|| start_host(&zk, &dir, ""));
    let (status, body) = blocking(|| http_get(&host.http, "/hello?name=dubbo3"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("Hello dubbo3, response from provider: {addr}")
    );
    let d = blocking(|| discovery(&host));
    assert_eq!(d["step"], "APPLICATION_FIRST", "{d}");
    assert_eq!(d["set"], "application", "{d}");
    assert_eq!(d["application_providers"], 1, "{d}");
    assert_eq!(d["interface_providers"], 0, "{d}");
    assert_eq!(d["applications"], serde_json::json!(["users-app"]), "{d}");
    // A consumer registers at interface level and writes no instance.
    let client = zk_client(&zk).await;
    let consumers = client
        .list_children("/dubbo/org.apache.dubbo.demo.DemoService/consumers")
        .await
        .expect("consumers");
    assert_eq!(consumers.len(), 1, "{consumers:?}");
    let apps = client.list_children("/services").await.expect("/services");
    assert_eq!(
        apps,
        ["users-app"],
        "the consumer wrote nothing under /services"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_rule_moves_the_traffic_between_the_levels_and_back_under_load() {
    let zk = blocking(ZooKeeper::new);
    let (mut app_p, app_addr) = blocking(|| instance_provider(&zk, "users-app", &[]));
    let (mut iface_p, iface_addr) = blocking(|| interface_provider(&zk));
    let dir = scratch_dir("migration");
    let host = blocking(|| start_host(&zk, &dir, ""));
    blocking(|| until_all_from(&host.http, &app_addr));

    let (a, i) = (app_addr.clone(), iface_addr.clone());
    let classify = Arc::new(move |body: &str| match provider_of(body) {
        p if p == a => "application",
        p if p == i => "interface",
        _ => "other",
    });
    let load = Load::start_with(&host.http, "/hello?name=load", 4, classify);
    load.wait_for_ok(0, 50, PATIENCE);
    let client = zk_client(&zk).await;

    let since = Instant::now();
    write_rule(&client, "key: e2e-consumer\nstep: FORCE_INTERFACE\n").await;
    let took = blocking(|| load.wait_for_version("interface", since, PATIENCE));
    blocking(|| until_all_from(&host.http, &iface_addr));
    let d = blocking(|| discovery(&host));
    assert_eq!(
        (d["step"].as_str(), d["set"].as_str()),
        (Some("FORCE_INTERFACE"), Some("interface")),
        "{d}"
    );
    eprintln!("FORCE_INTERFACE moved the traffic in {took:?}");

    let since = Instant::now();
    write_rule(&client, "key: e2e-consumer\nstep: FORCE_APPLICATION\n").await;
    let took = blocking(|| load.wait_for_version("application", since, PATIENCE));
    blocking(|| until_all_from(&host.http, &app_addr));
    eprintln!("FORCE_APPLICATION moved it back in {took:?}");
    blocking(|| load.wait_for_ok(load.tally().ok, 50, PATIENCE));

    let tally = blocking(|| load.stop());
    assert_eq!(
        tally.failed, 0,
        "requests failed during the switches: {:?}",
        tally.failures
    );
    assert!(
        !tally.versions.contains_key("other"),
        "{:?}",
        tally.versions
    );
    let _ = (&mut app_p, &mut iface_p);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_registered_at_both_levels_keeps_its_connection_across_switches() {
    let zk = blocking(ZooKeeper::new);
    let (mut both, both_addr) = blocking(|| provider_registered(&zk, "all", "users-app", &[]));
    let (_iface, iface_addr) = blocking(|| interface_provider(&zk));
    let dir = scratch_dir("migration-both");
    let host = blocking(|| start_host(&zk, &dir, ""));
    blocking(|| until_all_from(&host.http, &both_addr));
    let client = zk_client(&zk).await;
    write_rule(&client, "step: FORCE_INTERFACE\n").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = blocking(|| http_get(&host.http, "/hello?name=x"));
        assert_eq!(status, 200, "{body}");
        if provider_of(&body) == iface_addr {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "FORCE_INTERFACE did not reach {iface_addr}"
        );
    }
    write_rule(&client, "step: FORCE_APPLICATION\n").await;
    blocking(|| until_all_from(&host.http, &both_addr));
    assert_eq!(
        blocking(|| both.stat("accepted")),
        1,
        "a provider in both sets is called over the same connection whatever the step"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_killed_under_load_costs_no_failed_request() {
    let zk = blocking(ZooKeeper::new);
    let (mut doomed, doomed_addr) = blocking(|| instance_provider(&zk, "users-app", &[]));
    let (_kept, kept_addr) = blocking(|| instance_provider(&zk, "users-app", &[]));
    let dir = scratch_dir("app-kill");
    let host = blocking(|| start_host(&zk, &dir, "loadbalance = \"roundrobin\""));
    let deadline = Instant::now() + PATIENCE;
    while blocking(|| discovery(&host))["application_providers"] != 2 {
        assert!(
            Instant::now() < deadline,
            "{}",
            blocking(|| discovery(&host))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let load = Load::start(&host.http, "/hello?name=kill", 4);
    load.wait_for_ok(0, 50, PATIENCE);
    blocking(|| doomed.kill());
    // The instance node outlives the kill until its session expires (4 s); failover covers.
    let deadline = Instant::now() + PATIENCE;
    while blocking(|| discovery(&host))["application_providers"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the killed instance is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blocking(|| load.wait_for_ok(load.tally().ok, 50, PATIENCE));
    let tally = blocking(|| load.stop());
    assert_eq!(tally.failed, 0, "{:?}", tally.failures);
    blocking(|| until_all_from(&host.http, &kept_addr));
    let _ = doomed_addr;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_whose_metadata_cannot_be_had_does_not_hold_the_others_up() {
    let zk = blocking(ZooKeeper::new);
    let (_good, good_addr) = blocking(|| instance_provider(&zk, "users-app", &[]));
    // Another revision (one more parameter) whose MetadataService port is closed.
    let (_bad, _bad_addr) = blocking(|| {
        instance_provider(
            &zk,
            "users-app",
            &["--extra", "zone=b", "--metadata-fault", "refuse"],
        )
    });
    let dir = scratch_dir("app-metadata-fault");
    let host = blocking(|| start_host(&zk, &dir, ""));
    blocking(|| until_all_from(&host.http, &good_addr));
    let d = blocking(|| discovery(&host));
    assert_eq!(d["application_providers"], 1, "{d}");
    assert_eq!(d["pending_instances"], 1, "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_down_at_startup_serves_from_the_cache_file_metadata_included() {
    let mut zk = blocking(ZooKeeper::new);
    let (mut p, addr) = blocking(|| instance_provider(&zk, "users-app", &[]));
    let dir = scratch_dir("app-cache");
    {
        let host = blocking(|| start_host(&zk, &dir, ""));
        blocking(|| until_all_from(&host.http, &addr));
        // The cache file is written shortly after changes.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let fetched = blocking(|| p.stat("metadata-calls"));
    assert!(fetched >= 1, "the first run fetched the metadata");
    blocking(|| p.command("mute-metadata", "ok mute-metadata"));
    blocking(|| zk.stop());
    let host = blocking(|| start_host(&zk, &dir, ""));
    let (status, body) = blocking(|| http_get(&host.http, "/hello?name=cached"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("Hello cached, response from provider: {addr}")
    );
    assert_eq!(
        blocking(|| p.stat("metadata-calls")),
        fetched,
        "the metadata came from the cache file, not from the provider"
    );
}
