//! The ZooKeeper registry against a real ZooKeeper (one private server per test): providers
//! joining and leaving reach subscribers within a second, the consumer registers itself and
//! registers again after session expiry, outages keep the last providers, empty lists follow
//! `empty-protection`, disabled providers are filtered, and a registry started while
//! ZooKeeper is down serves the cache file an earlier run wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dubbo_wasm_host::registry::{self, Registry, RegistryOptions, Snapshot};
use dubbo_wasm_host::url::{decode_component, Url};
use dubbo_wasm_host_tests::process::{scratch_dir, workspace_binary};
use dubbo_wasm_host_tests::registration::{ProviderRecord, Registration};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;
use tokio::sync::watch;
use zookeeper_client as zk;

const SERVICE_DIR: &str = "/dubbo/org.apache.dubbo.demo.DemoService";
/// How fast a ZooKeeper change must reach a subscriber.
const NOTIFY: Duration = Duration::from_secs(1);

fn consumer_url(query: &str) -> Url {
    Url::parse(&format!(
        "consumer://127.0.0.1/org.apache.dubbo.demo.DemoService?application=registry-test&category=consumers&check=false&dubbo=2.0.2&interface=org.apache.dubbo.demo.DemoService&methods=sayHello&side=consumer&version=1.0.0{query}"
    ))
    .expect("consumer url")
}

fn options(zk: &ZooKeeper, data_dir: &Path, session: Duration) -> RegistryOptions {
    RegistryOptions {
        address: Url::parse(&zk.address()).expect("registry url"),
        application: "registry-test".to_string(),
        data_dir: data_dir.to_path_buf(),
        session_timeout: session,
        connect_timeout: Duration::from_secs(2),
    }
}

/// A scratch directory removed at the end of the test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        Scratch(scratch_dir(tag))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn consumer_registry(zk: &ZooKeeper, session: Duration) -> (Arc<dyn Registry>, Scratch) {
    let dir = Scratch::new("registry");
    let reg = registry::connect(options(zk, &dir.0, session))
        .await
        .expect("connect to the test ZooKeeper");
    (reg, dir)
}

/// Registers a 1.0.0 demo provider on `port` in its own session (4 s timeout).
async fn provider(zk: &ZooKeeper, port: u16, extra: &[(&str, &str)]) -> Registration {
    let mut record = ProviderRecord::demo(port);
    record.version = Some("1.0.0".to_string());
    record.extra = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Registration::register(&format!("{}?session=4000", zk.address()), record.url())
        .await
        .expect("register a provider")
}

fn ports(snap: &Snapshot) -> Vec<u16> {
    snap.providers.iter().map(|p| p.port).collect()
}

/// Waits until the snapshot satisfies `pred`; returns it and how long that took.
async fn wait_for(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    within: Duration,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let snap = rx.borrow_and_update().clone();
        if pred(&snap) {
            return start.elapsed();
        }
        let left = within.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("subscription ended while waiting for {what}"),
            Err(_) => panic!("no snapshot with {what} within {within:?}; last: {snap:?}"),
        }
    }
}

async fn raw_client(zk: &ZooKeeper) -> zk::Client {
    zk::Client::connect(&zk.connect_string())
        .await
        .expect("raw ZooKeeper client")
}

/// Decoded URLs under `/dubbo/{iface}/{category}`, with each node's ephemeral owner.
async fn nodes(client: &zk::Client, category: &str) -> Vec<(Url, i64)> {
    let dir = format!("{SERVICE_DIR}/{category}");
    let children = match client.list_children(&dir).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Vec::new(),
        Err(e) => panic!("list {dir}: {e}"),
    };
    let mut out = Vec::new();
    for name in children {
        let text = decode_component(&name).expect("node names are URL-encoded");
        let url = Url::parse(&text).expect("node names are URLs");
        if let Ok(Some(stat)) = client.check_stat(&format!("{dir}/{name}")).await {
            out.push((url, stat.ephemeral_owner));
        }
    }
    out
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_joining_and_leaving_reach_the_subscriber_within_a_second() {
    let zk = blocking(ZooKeeper::new);
    let (reg, _dir) = consumer_registry(&zk, Duration::from_secs(4)).await;
    let mut rx = reg.subscribe(&consumer_url("")).await.expect("subscribe");
    assert!(rx.borrow().providers.is_empty());
    assert_eq!(reg.state(), "connected");

    let a = provider(&zk, 20001, &[]).await;
    let took = wait_for(&mut rx, NOTIFY, "provider A", |s| ports(s) == [20001]).await;
    eprintln!("join seen after {took:?}");

    let b = provider(&zk, 20002, &[]).await;
    wait_for(&mut rx, NOTIFY, "providers A and B", |s| {
        ports(s) == [20001, 20002]
    })
    .await;

    a.unregister().await.expect("unregister A");
    let took = wait_for(&mut rx, NOTIFY, "only B", |s| ports(s) == [20002]).await;
    eprintln!("leave seen after {took:?}");
    let snap = rx.borrow().clone();
    assert_eq!(
        snap.providers[0].param("application"),
        Some("demo-provider")
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn register_puts_the_consumer_under_consumers_as_an_ephemeral_node() {
    let zk = blocking(ZooKeeper::new);
    let (reg, _dir) = consumer_registry(&zk, Duration::from_secs(4)).await;
    let consumer = consumer_url("");
    reg.register(&consumer).await.expect("register consumer");
    let client = raw_client(&zk).await;
    let found = nodes(&client, "consumers").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, consumer);
    assert_ne!(found[0].1, 0, "consumer node must be ephemeral");
    reg.unregister(&consumer)
        .await
        .expect("unregister consumer");
    assert!(nodes(&client, "consumers").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn outage_keeps_providers_and_the_consumer_registers_again_after_session_expiry() {
    let mut zk = blocking(ZooKeeper::new);
    let session = Duration::from_millis(1000);
    let (reg, _dir) = consumer_registry(&zk, session).await;
    let consumer = consumer_url("");
    reg.register(&consumer).await.expect("register consumer");
    let mut rx = reg.subscribe(&consumer).await.expect("subscribe");
    let _p = provider(&zk, 20001, &[]).await;
    wait_for(&mut rx, NOTIFY, "the provider", |s| ports(s) == [20001]).await;
    let old_owner = nodes(&raw_client(&zk).await, "consumers").await[0].1;

    blocking(|| zk.stop());
    // The client gives the session up after 7/5 of its timeout without the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(reg.state(), "expired" | "reconnecting") {
        assert!(
            Instant::now() < deadline,
            "session never expired; state {}",
            reg.state()
        );
        assert_eq!(
            ports(&rx.borrow()),
            [20001],
            "providers kept while suspended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ports(&rx.borrow()), [20001], "providers kept after expiry");

    blocking(|| zk.start());
    let client = raw_client(&zk).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let found = nodes(&client, "consumers").await;
        if found
            .iter()
            .any(|(u, owner)| *u == consumer && *owner != old_owner)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumer not registered again: {found:?}"
        );
        assert_eq!(
            ports(&rx.borrow()),
            [20001],
            "providers kept while reconnecting"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reg.state(), "connected");
    assert_eq!(ports(&rx.borrow()), [20001]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_provider_list_is_ignored_with_empty_protection_and_published_without() {
    let zk = blocking(ZooKeeper::new);
    let (reg, _dir) = consumer_registry(&zk, Duration::from_secs(4)).await;
    let mut protected = reg.subscribe(&consumer_url("")).await.expect("subscribe");
    let mut open = reg
        .subscribe(&consumer_url("&empty-protection=false"))
        .await
        .expect("subscribe");
    let p = provider(&zk, 20001, &[]).await;
    wait_for(&mut protected, NOTIFY, "the provider", |s| {
        ports(s) == [20001]
    })
    .await;
    wait_for(&mut open, NOTIFY, "the provider", |s| ports(s) == [20001]).await;

    p.unregister().await.expect("unregister");
    wait_for(&mut open, NOTIFY, "no providers", |s| {
        s.providers.is_empty()
    })
    .await;
    // The same change has reached the protected subscription by now; it must have kept the list.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ports(&protected.borrow()), [20001]);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_and_mismatched_providers_are_filtered() {
    let zk = blocking(ZooKeeper::new);
    let (reg, _dir) = consumer_registry(&zk, Duration::from_secs(4)).await;
    let _on = provider(&zk, 20001, &[]).await;
    let _off = provider(&zk, 20002, &[("enabled", "false")]).await;
    let _v2 = provider(&zk, 20003, &[("version", "2.0.0")]).await;
    let _grouped = provider(&zk, 20004, &[("group", "blue")]).await;
    let rx = reg.subscribe(&consumer_url("")).await.expect("subscribe");
    assert_eq!(ports(&rx.borrow()), [20001]);
    let any = reg
        .subscribe(&consumer_url("&group=*&enabled=*"))
        .await
        .expect("subscribe");
    assert_eq!(ports(&any.borrow()), [20001, 20002, 20004]);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_with_zookeeper_down_serves_the_cache_file_of_an_earlier_run() {
    let mut zk = blocking(ZooKeeper::new);
    let scratch = Scratch::new("registry-cache");
    let dir = &scratch.0;
    let consumer = consumer_url("");
    let p = provider(&zk, 20001, &[]).await;
    {
        let reg = registry::connect(options(&zk, dir, Duration::from_secs(4)))
            .await
            .expect("connect");
        let mut rx = reg.subscribe(&consumer).await.expect("subscribe");
        wait_for(&mut rx, NOTIFY, "the provider", |s| ports(s) == [20001]).await;
    }
    let cache = options(&zk, dir, Duration::from_secs(4))
        .cache_file()
        .expect("cache enabled");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !std::fs::read_to_string(&cache).is_ok_and(|t| t.contains("20001")) {
        assert!(
            Instant::now() < deadline,
            "cache file {} never written",
            cache.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&cache).expect("read cache");
    assert!(text.starts_with("#Dubbo Registry Cache\n"), "{text}");
    assert!(
        text.contains("org.apache.dubbo.demo.DemoService\\:1.0.0=dubbo\\://127.0.0.1\\:20001/"),
        "{text}"
    );
    drop(p);

    blocking(|| zk.stop());
    let mut opts = options(&zk, dir, Duration::from_secs(4));
    opts.connect_timeout = Duration::from_millis(500);
    let reg = registry::connect(opts)
        .await
        .expect("a cache file lets the registry start without ZooKeeper");
    assert_eq!(reg.state(), "reconnecting");
    let mut rx = reg
        .subscribe(&consumer)
        .await
        .expect("subscribe from cache");
    assert_eq!(ports(&rx.borrow()), [20001]);

    // Once ZooKeeper is back the subscription follows it again.
    blocking(|| zk.start());
    let _q = provider(&zk, 20002, &[]).await;
    wait_for(&mut rx, Duration::from_secs(6), "the live provider", |s| {
        ports(s).contains(&20002)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_with_zookeeper_down_and_no_cache_fails_with_a_clear_message() {
    let mut zk = blocking(ZooKeeper::new);
    blocking(|| zk.stop());
    let scratch = Scratch::new("registry-nocache");
    let dir = &scratch.0;
    let mut opts = options(&zk, dir, Duration::from_secs(4));
    opts.connect_timeout = Duration::from_millis(500);
    let err = registry::connect(opts.clone())
        .await
        .err()
        .expect("no ZooKeeper and no cache: connect fails")
        .to_string();
    assert!(
        err.contains(&zk.address()) && err.contains("check=false"),
        "{err}"
    );

    opts.address.params.insert("check".into(), "false".into());
    let reg = registry::connect(opts)
        .await
        .expect("check=false starts anyway");
    let err = reg
        .subscribe(&consumer_url(""))
        .await
        .expect_err("nothing to serve")
        .to_string();
    assert!(err.contains("holds no providers"), "{err}");
}

/// `test-provider --registry` registers itself; SIGTERM removes the node at once, SIGKILL
/// only when the session expires.
#[tokio::test(flavor = "multi_thread")]
async fn test_provider_registers_itself_and_leaves_on_exit() {
    let zk = blocking(ZooKeeper::new);
    let client = raw_client(&zk).await;
    // The graceful provider's session outlives the test, so its node can only go by being
    // unregistered; the killed one's is short, so it goes by expiry.
    let start = |tag: &str, session_ms: u64| {
        Command::new(workspace_binary("test-provider"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--registry",
                &format!("{}?session={session_ms}", zk.address()),
                "--version",
                "1.0.0",
                "--application",
                tag,
                "--extra",
                "tag=gray",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start test-provider")
    };
    async fn wait_nodes(client: &zk::Client, n: usize) -> Vec<(Url, i64)> {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let found = nodes(client, "providers").await;
            if found.len() == n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} provider nodes: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let mut graceful = start("graceful", 60_000);
    let found = wait_nodes(&client, 1).await;
    let url = &found[0].0;
    assert_eq!(url.param("application"), Some("graceful"));
    assert_eq!(url.param("version"), Some("1.0.0"));
    assert_eq!(url.param("tag"), Some("gray"));
    assert_eq!(url.param("side"), Some("provider"));
    let status = Command::new("kill")
        .args(["-TERM", &graceful.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let _ = graceful.wait();
    let gone = Instant::now();
    wait_nodes(&client, 0).await;
    // Long before the 60 s session could expire: the exit unregistered it (the bound is
    // slack for a loaded machine, not a latency contract).
    assert!(
        gone.elapsed() < Duration::from_secs(5),
        "graceful exit removes the node at once"
    );

    let mut killed = start("killed", 1000);
    wait_nodes(&client, 1).await;
    let _ = killed.kill();
    let _ = killed.wait();
    wait_nodes(&client, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn routers_configurators_and_yaml_rules_reach_the_subscriber_even_when_created_later() {
    let zk = blocking(ZooKeeper::new);
    let (reg, _dir) = consumer_registry(&zk, Duration::from_secs(4)).await;
    let mut rx = reg.subscribe(&consumer_url("")).await.expect("subscribe");
    let client = raw_client(&zk).await;
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

    let router = Url::parse("condition://0.0.0.0/org.apache.dubbo.demo.DemoService?category=routers&dynamic=false&rule=%3D%3E+host+%21%3D+10.0.0.1&version=1.0.0").expect("url");
    let path = format!(
        "{SERVICE_DIR}/routers/{}",
        dubbo_wasm_host::url::encode_component(&router.to_string())
    );
    client
        .create(&path, &[], &persistent)
        .await
        .expect("create router");
    wait_for(&mut rx, NOTIFY, "the router", |s| {
        s.routers == [router.clone()]
    })
    .await;
    let over = Url::parse("override://0.0.0.0/org.apache.dubbo.demo.DemoService?category=configurators&dynamic=false&timeout=500&version=1.0.0").expect("url");
    let path = format!(
        "{SERVICE_DIR}/configurators/{}",
        dubbo_wasm_host::url::encode_component(&over.to_string())
    );
    client
        .create(&path, &[], &persistent)
        .await
        .expect("create override");
    wait_for(&mut rx, NOTIFY, "the override", |s| {
        s.configurators == [over.clone()]
    })
    .await;

    // The dynamic-config nodes do not exist yet: their creation must be noticed.
    client
        .mkdir("/dubbo/config/dubbo", &persistent)
        .await
        .expect("config dir");
    let rule = "/dubbo/config/dubbo/org.apache.dubbo.demo.DemoService:1.0.0:.condition-router";
    client
        .create(rule, b"scope: service\n", &persistent)
        .await
        .expect("create rule");
    wait_for(&mut rx, NOTIFY, "the condition-router rule", |s| {
        s.condition_router_yaml.as_deref() == Some("scope: service\n")
    })
    .await;
    client
        .set_data(rule, b"scope: service\nforce: true\n", None)
        .await
        .expect("update rule");
    wait_for(&mut rx, NOTIFY, "the updated rule", |s| {
        s.condition_router_yaml
            .as_deref()
            .is_some_and(|y| y.contains("force"))
    })
    .await;

    // The tag-router rule follows the providers' application.
    let tag = "/dubbo/config/dubbo/demo-provider.tag-router";
    client
        .create(tag, b"tags: []\n", &persistent)
        .await
        .expect("create tag rule");
    let _p = provider(&zk, 20001, &[]).await;
    wait_for(&mut rx, NOTIFY, "the tag-router rule", |s| {
        s.tag_router_yaml.as_deref() == Some("tags: []\n")
    })
    .await;
    client.delete(rule, None).await.expect("delete rule");
    wait_for(&mut rx, NOTIFY, "the rule gone", |s| {
        s.condition_router_yaml.is_none()
    })
    .await;
}
