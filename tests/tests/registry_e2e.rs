//! End to end with a real ZooKeeper: the host finds test providers that register themselves,
//! follows them as they join, leave, are disabled or routed by rules written to ZooKeeper, and
//! loses no request when one is SIGKILLed under load (failover).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use dubbo_wasm_host::url::{encode_component, Url};
use dubbo_wasm_host_tests::config::{
    demo_reference, http_guest, http_listener, zookeeper_registry,
};
use dubbo_wasm_host_tests::process::{
    hello_guest, http_get, scratch_dir, workspace_binary, Running,
};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;
use zookeeper_client as zk;

const SERVICE_DIR: &str = "/dubbo/org.apache.dubbo.demo.DemoService";

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A test provider that registers itself in `zk`; returns it and its `host:port`.
fn registered_provider(zk: &ZooKeeper) -> (Running, String) {
    let mut p = Running::start(
        &workspace_binary("test-provider"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--registry",
            &format!("{}?session=4000", zk.address()),
            "--version",
            "1.0.0",
            "--application",
            "demo-provider",
        ],
    );
    let addr = p.wait_for_line("listening on ", Duration::from_secs(20));
    p.wait_for_line("registered ", Duration::from_secs(20));
    (p, addr)
}

fn host_config(zk: &ZooKeeper, guest: &Path, data_dir: &Path) -> String {
    format!(
        r#"
[application]
name = "e2e-consumer"
data-dir = "{data}"

{registry}

{reference}
timeout = 3000
retries = 2
loadbalance = "roundrobin"

{guest}

{http}
"#,
        registry = zookeeper_registry("zk", &zk.address()),
        reference = demo_reference("demo", "registry = [\"zk\"]"),
        guest = http_guest("hello", guest, "/hello", &["demo"]),
        http = http_listener("127.0.0.1:0"),
        data = data_dir.display(),
    )
}

fn start_host(zk: &ZooKeeper) -> (Running, String) {
    let dir = scratch_dir("zk-host");
    let config = host_config(zk, &hello_guest(), &dir);
    serve_config(&dir, config)
}

/// Writes `config` into `dir` and serves it; returns the host and its HTTP address.
fn serve_config(dir: &Path, config: String) -> (Running, String) {
    let path = dir.join("host.toml");
    std::fs::write(&path, config).expect("write config");
    let mut host = Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", &path.display().to_string()],
    );
    let base = host.wait_for_line("serving guest `hello` at http://", Duration::from_secs(120));
    (host, base.trim_end_matches("/hello").to_string())
}

/// Two providers registered in `zk`, with their addresses.
fn two_providers(zk: &ZooKeeper) -> (Running, String, Running, String) {
    let (a, a_addr) = registered_provider(zk);
    let (b, b_addr) = registered_provider(zk);
    (a, a_addr, b, b_addr)
}

/// A batch of requests reaches both providers.
fn expect_both(http: &str, a_addr: &str, b_addr: &str) {
    let seen = spread(http, 10);
    assert!(
        seen.contains_key(a_addr) && seen.contains_key(b_addr),
        "{seen:?}"
    );
}

/// Sends `n` requests and counts the answers by provider address; any failure panics.
fn spread(addr: &str, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for i in 0..n {
        let (status, body) = http_get(addr, &format!("/hello?name=n{i}"));
        assert_eq!(status, 200, "request {i}: {body}");
        let provider = body
            .rsplit("provider: ")
            .next()
            .unwrap_or_default()
            .to_string();
        *seen.entry(provider).or_insert(0) += 1;
    }
    seen
}

/// Polls until the answers of a batch satisfy `ok`, for up to `limit`.
fn until(addr: &str, limit: Duration, what: &str, ok: impl Fn(&HashMap<String, usize>) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let seen = spread(addr, 10);
        if ok(&seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {limit:?}; last batch: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn create_persistent(client: &zk::Client, category: &str, url: &str) {
    let path = format!("{SERVICE_DIR}/{category}/{}", encode_component(url));
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .create(&path, &[], &persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_follows_providers_in_zookeeper_and_loses_nothing_when_one_is_killed() {
    let zk = blocking(ZooKeeper::new);
    let (mut a, a_addr) = blocking(|| registered_provider(&zk));
    let (_b, b_addr) = blocking(|| registered_provider(&zk));
    let (_host, http) = blocking(|| start_host(&zk));

    // Both registered providers take calls (round robin).
    let seen = blocking(|| spread(&http, 20));
    assert!(
        seen.get(&a_addr) > Some(&0) && seen.get(&b_addr) > Some(&0),
        "{seen:?}"
    );

    // The consumer registered itself where Dubbo Admin looks.
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("zk client");
    let consumers = client
        .list_children(&format!("{SERVICE_DIR}/consumers"))
        .await
        .expect("consumers dir");
    assert!(
        consumers.iter().any(|c| c.starts_with("consumer%3A%2F%2F")),
        "{consumers:?}; host stderr:\n{}",
        _host.stderr()
    );

    // A third provider joins and gets traffic within a second.
    let (_c, c_addr) = blocking(|| registered_provider(&zk));
    blocking(|| {
        until(
            &http,
            Duration::from_secs(1) + Duration::from_millis(500),
            "the new provider gets calls",
            |s| s.contains_key(&c_addr),
        )
    });

    // SIGKILL one under load: its node stays until its session expires, failover hides it.
    let load = {
        let http = http.clone();
        std::thread::spawn(move || spread(&http, 200))
    };
    std::thread::sleep(Duration::from_millis(100));
    a.kill();
    let seen = blocking(|| load.join().expect("load thread"));
    assert_eq!(
        seen.values().sum::<usize>(),
        200,
        "every request answered 200"
    );

    // A disabled provider receives nothing.
    create_persistent(
        &client,
        "configurators",
        &format!("override://{b_addr}/org.apache.dubbo.demo.DemoService?category=configurators&disabled=true&dynamic=false&version=1.0.0"),
    )
    .await;
    blocking(|| {
        until(
            &http,
            Duration::from_secs(2),
            "the disabled provider gets nothing",
            |s| !s.contains_key(&b_addr),
        )
    });
    let seen = blocking(|| spread(&http, 20));
    assert!(!seen.contains_key(&b_addr), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_rule_written_to_zookeeper_moves_the_traffic() {
    let zk = blocking(ZooKeeper::new);
    let (_a, a_addr, _b, b_addr) = blocking(|| two_providers(&zk));
    let (_host, http) = blocking(|| start_host(&zk));
    blocking(|| expect_both(&http, &a_addr, &b_addr));

    let rule = format!("=> port = {}", port_of(&b_addr));
    let router = Url::parse(&format!(
        "condition://0.0.0.0/org.apache.dubbo.demo.DemoService?category=routers&dynamic=false&force=true&version=1.0.0&rule={}",
        encode_component(&rule)
    ))
    .expect("router url");
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("zk client");
    create_persistent(&client, "routers", &router.to_string()).await;
    blocking(|| {
        until(
            &http,
            Duration::from_secs(2),
            "all traffic on the routed provider",
            |s| s.len() == 1 && s.contains_key(&b_addr),
        )
    });
}

/// `host_config` with a short registry session (`?session=4000`), so the host's session can
/// expire during a ZooKeeper outage and its registry has to register the consumer again.
fn host_config_short_session(zk: &ZooKeeper, guest: &Path, data_dir: &Path) -> String {
    host_config(zk, guest, data_dir).replace(
        &format!("address = \"{}\"", zk.address()),
        &format!("address = \"{}?session=4000\"", zk.address()),
    )
}

/// `start_host` with [`host_config_short_session`].
fn start_host_short_session(zk: &ZooKeeper) -> (Running, String) {
    let dir = scratch_dir("zk-host-short");
    let config = host_config_short_session(zk, &hello_guest(), &dir);
    assert!(config.contains("?session=4000"), "{config}");
    serve_config(&dir, config)
}

/// The consumer nodes under the demo service, or the error of listing them.
async fn consumer_nodes(zk: &ZooKeeper) -> Result<Vec<String>, String> {
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    client
        .list_children(&format!("{SERVICE_DIR}/consumers"))
        .await
        .map_err(|e| format!("list consumers: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_stopped_and_restarted_under_load_loses_no_request_and_the_consumer_node_reappears(
) {
    let mut zk = blocking(ZooKeeper::new);
    let (_a, a_addr, _b, b_addr) = blocking(|| two_providers(&zk));
    let (host, http) = blocking(|| start_host_short_session(&zk));
    blocking(|| expect_both(&http, &a_addr, &b_addr));

    // Paced load that spans the outage: at least 300 requests, and on until told to stop.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (http, done) = (http.clone(), done.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut sent = 0usize;
            while sent < 300 || !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, body) = http_get(&http, &format!("/hello?name=z{sent}"));
                if status != 200 {
                    failures.push(format!("request {sent}: {status} {body}"));
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            (sent, failures)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    blocking(|| zk.stop());
    std::thread::sleep(Duration::from_secs(2));
    blocking(|| zk.start());
    // Some load after ZooKeeper is back, while sessions are recovered or re-created.
    std::thread::sleep(Duration::from_secs(1));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failures) = blocking(|| load.join().expect("load thread"));
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:#?}\nhost stderr:\n{}",
        failures.len(),
        host.stderr()
    );

    // The consumer node is back (same session, or registered again on a new one).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = consumer_nodes(&zk).await;
        if nodes
            .as_ref()
            .is_ok_and(|n| n.iter().any(|c| c.starts_with("consumer%3A%2F%2F")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no consumer node 10 s after ZooKeeper restarted: {nodes:?}\nhost stderr:\n{}\nZooKeeper log:\n{}",
            host.stderr(),
            zk.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = blocking(|| spread(&http, 10));
    assert_eq!(seen.values().sum::<usize>(), 10, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_configurator_written_to_zookeeper_disables_one_provider() {
    let zk = blocking(ZooKeeper::new);
    let (_a, a_addr, _b, b_addr) = blocking(|| two_providers(&zk));
    let (_host, http) = blocking(|| start_host(&zk));
    blocking(|| expect_both(&http, &a_addr, &b_addr));

    // What Dubbo Admin writes for "disable this provider" in 2.7+ dynamic config.
    let rule = format!(
        "configVersion: v2.7\n\
         scope: service\n\
         key: org.apache.dubbo.demo.DemoService:1.0.0\n\
         enabled: true\n\
         configs:\n\
         - side: provider\n  addresses: [\"{b_addr}\"]\n  parameters:\n    disabled: true\n"
    );
    let client = zk::Client::connect(&zk.connect_string())
        .await
        .expect("zk client");
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client
        .mkdir("/dubbo/config/dubbo", &persistent)
        .await
        .or_else(|e| match e {
            zk::Error::NodeExists => Ok(()),
            e => Err(e),
        })
        .expect("create /dubbo/config/dubbo");
    let path = "/dubbo/config/dubbo/org.apache.dubbo.demo.DemoService:1.0.0:.configurators";
    client
        .create(path, rule.as_bytes(), &persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
    blocking(|| {
        until(
            &http,
            Duration::from_secs(2),
            "the provider the YAML rule disables gets nothing",
            |s| s.len() == 1 && s.contains_key(&a_addr),
        )
    });

    // Deleting the rule brings the provider back.
    client
        .delete(path, None)
        .await
        .unwrap_or_else(|e| panic!("delete {path}: {e}"));
    blocking(|| {
        until(
            &http,
            Duration::from_secs(2),
            "the provider is back once the rule is deleted",
            |s| s.contains_key(&b_addr),
        )
    });
}
