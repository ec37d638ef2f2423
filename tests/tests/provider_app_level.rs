//! The test provider registering at application level (`--register-mode instance`) against a
//! real ZooKeeper, checked against what a real Java Dubbo 3.2.16 provider wrote and answered
//! (`shared/vectors/dubbo3`): the instance node has the captured JSON keys and metadata, the
//! service-name mappings list the application (a second application appends itself),
//! `getMetadataInfo` over dubbo:// returns a value of the captured structure (classes, field
//! order, map type), remote storage writes the metadata JSON instead, the metadata faults
//! behave, and the nodes go on SIGTERM (at once) and on SIGKILL (with the session).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::decode_response;
use dubbo_wasm_host::protocol::dubbo::{ConnectionConfig, Exchange};
use dubbo_wasm_host::rpc::{Invocation, RpcError, RpcResult, ServiceKey};
use dubbo_wasm_host_tests::config::{DEMO_INTERFACE, USER_INTERFACE};
use dubbo_wasm_host_tests::process::{workspace_binary, Running};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;
use serde_json::Value as Json;
use zookeeper_client as zk;

const METADATA_SERVICE: &str = "org.apache.dubbo.metadata.MetadataService";

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn vectors() -> PathBuf {
    dubbo_wasm_host::testing::vectors_dir(Path::new(env!("CARGO_MANIFEST_DIR")), "dubbo3")
}

fn captured_instance() -> Json {
    let path = vectors().join("zookeeper/services__users-app__127.0.0.1:20995.json");
    serde_json::from_slice(&std::fs::read(path).expect("read the captured instance"))
        .expect("captured instance JSON")
}

/// The captured `getMetadataInfo` reply, decoded by the host's codec.
fn captured_reply() -> RpcResult {
    let wire = std::fs::read(vectors().join("resp_getMetadataInfo_3.2.16.bin")).expect("read");
    let mut buf = BytesMut::from(&wire[..]);
    let frame = split_frame(&mut buf, DEFAULT_PAYLOAD)
        .expect("a frame")
        .expect("a whole frame");
    decode_response(&frame.header, &frame.body).expect("the captured reply decodes")
}

/// A running test provider registered at application level.
struct AppProvider {
    process: Running,
    /// Port of the services.
    port: u16,
    /// The instance node.
    path: String,
    revision: String,
}

/// Starts the test provider for `app` with `--register-mode instance` and `args`, and waits
/// until its instance is registered.
fn start(zk_address: &str, app: &str, args: &[&str]) -> AppProvider {
    let mut all = vec![
        "--listen",
        "127.0.0.1:0",
        "--registry",
        zk_address,
        "--register-mode",
        "instance",
        "--application",
        app,
        "--version",
        "1.0.0",
    ];
    all.extend_from_slice(args);
    let mut process = Running::start(&workspace_binary("test-provider"), &all);
    let listening = process.wait_for_line("listening on ", Duration::from_secs(20));
    let port = listening
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in `listening on {listening}`"));
    let line = process.wait_for_line("registered instance ", Duration::from_secs(20));
    let (path, revision) = line
        .split_once(" revision ")
        .unwrap_or_else(|| panic!("`registered instance {line}` names no revision"));
    AppProvider {
        process,
        port,
        path: path.to_string(),
        revision: revision.to_string(),
    }
}

async fn client(zk: &ZooKeeper) -> zk::Client {
    zk::Client::connect(&zk.connect_string())
        .await
        .expect("connect to the test ZooKeeper")
}

async fn read(client: &zk::Client, path: &str) -> String {
    let (data, _) = client
        .get_data(path)
        .await
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    String::from_utf8(data).unwrap_or_else(|e| panic!("{path} is not UTF-8: {e}"))
}

async fn read_json(client: &zk::Client, path: &str) -> Json {
    let text = read(client, path).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {text}"))
}

/// The keys of a JSON object, in order.
fn keys(v: &Json) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// A JSON string that holds JSON itself (the instance metadata values).
fn inner_json(v: &Json) -> Json {
    let text = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

async fn wait_gone(client: &zk::Client, path: &str, within: Duration) -> Duration {
    let start = Instant::now();
    while client.check_stat(path).await.expect("stat").is_some() {
        assert!(
            start.elapsed() < within,
            "{path} still there after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn get_metadata_info(
    addr: &str,
    app: &str,
    revision: &str,
    timeout: Duration,
) -> Result<RpcResult, RpcError> {
    let exchange = Exchange::connect(addr, &ConnectionConfig::default()).await?;
    let key = ServiceKey {
        interface: METADATA_SERVICE.to_string(),
        version: Some("1.0.0".to_string()),
        group: Some(app.to_string()),
    };
    let inv = Invocation {
        method: Arc::from("getMetadataInfo"),
        parameter_types: Arc::from("Ljava/lang/String;"),
        args: vec![Value::String(revision.to_string())],
        attachments: Vec::new(),
    };
    exchange.invoke(&key, None, &inv, timeout).await
}

/// The structure of a decoded value: classes with their fields in order, map and list types,
/// the keys of typed maps (`services`), and value kinds, but no scalar values and no keys of
/// untyped maps (the parameters differ from the Java provider's).
fn shape(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let fields: Vec<String> = o
                .class
                .fields
                .iter()
                .zip(&o.values)
                .map(|(f, v)| format!("{f}: {}", shape(v)))
                .collect();
            format!("{} {{{}}}", o.class.name, fields.join(", "))
        }
        Value::Map(m) => match &m.type_name {
            Some(t) => {
                let entries: Vec<String> = m
                    .entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.as_str().unwrap_or("?"), shape(v)))
                    .collect();
                format!("map {t} {{{}}}", entries.join(", "))
            }
            None => {
                let kinds: std::collections::BTreeSet<String> = m
                    .entries
                    .iter()
                    .map(|(k, v)| format!("{}->{}", shape(k), shape(v)))
                    .collect();
                format!(
                    "map untyped [{}]",
                    kinds.into_iter().collect::<Vec<_>>().join(",")
                )
            }
        },
        Value::List(l) => format!("list {:?}", l.type_name),
        other => other.type_name_for_display().to_string(),
    }
}

/// The `services` entry `key` of a decoded `MetadataInfo`.
fn service<'a>(info: &'a Value, key: &str) -> &'a dubbo_wasm_host::hessian2::Object {
    let Value::Object(info) = info else {
        panic!("not an object: {info:?}")
    };
    let Some(Value::Map(services)) = info.get("services") else {
        panic!("no services map")
    };
    match services.get_str(key) {
        Some(Value::Object(s)) => s,
        other => panic!("services[{key}] is {other:?}"),
    }
}

fn param<'a>(service: &'a dubbo_wasm_host::hessian2::Object, key: &str) -> Option<&'a str> {
    match service.get("params") {
        Some(Value::Map(m)) => m.get_str(key).and_then(Value::as_str),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_node_mapping_and_metadata_service_look_like_java_3_2() {
    let zk = blocking(ZooKeeper::new);
    let mut provider = blocking(|| {
        start(
            &zk.address(),
            "users-app",
            &["--metadata-port", "0", "--extra", "token=secret"],
        )
    });
    let port = provider.port;
    assert_eq!(
        provider.path,
        format!("/services/users-app/127.0.0.1:{port}")
    );
    let client = client(&zk).await;

    // The instance node: ephemeral, the captured keys in the captured order.
    let stat = client.check_stat(&provider.path).await.expect("stat");
    assert!(
        stat.is_some_and(|s| s.ephemeral_owner != 0),
        "the instance node is ephemeral"
    );
    let node = read_json(&client, &provider.path).await;
    let captured = captured_instance();
    assert_eq!(keys(&node), keys(&captured));
    assert_eq!(keys(&node["payload"]), keys(&captured["payload"]));
    assert_eq!(
        keys(&node["payload"]["metadata"]),
        keys(&captured["payload"]["metadata"])
    );
    let id = format!("127.0.0.1:{port}");
    assert_eq!(node["name"], "users-app");
    assert_eq!(node["id"], id.as_str());
    assert_eq!(node["address"], "127.0.0.1");
    assert_eq!(node["port"], port);
    assert!(node["sslPort"].is_null() && node["uriSpec"].is_null());
    assert_eq!(node["serviceType"], "DYNAMIC");
    assert!(node["registrationTimeUTC"].is_u64());
    assert_eq!(node["payload"]["@class"], captured["payload"]["@class"]);
    assert_eq!(node["payload"]["id"], id.as_str());
    assert_eq!(node["payload"]["name"], "users-app");
    let metadata = &node["payload"]["metadata"];
    assert_eq!(
        inner_json(&metadata["dubbo.endpoints"]),
        serde_json::json!([{"port": port, "protocol": "dubbo"}])
    );
    let url_params = inner_json(&metadata["dubbo.metadata-service.url-params"]);
    let captured_params =
        inner_json(&captured["payload"]["metadata"]["dubbo.metadata-service.url-params"]);
    assert_eq!(keys(&url_params), keys(&captured_params));
    for key in [
        "protocol",
        "version",
        "dubbo",
        "release",
        "side",
        "prefer.serialization",
    ] {
        assert_eq!(url_params[key], captured_params[key], "url-params {key}");
    }
    let metadata_port: u16 = url_params["port"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("url-params port is a number in a string");
    assert_ne!(
        metadata_port, port,
        "--metadata-port 0 is a port of its own"
    );
    assert_eq!(
        metadata["dubbo.metadata.revision"],
        provider.revision.as_str()
    );
    assert_eq!(metadata["dubbo.metadata.storage-type"], "local");
    assert!(metadata["timestamp"]
        .as_str()
        .is_some_and(|t| t.parse::<u64>().is_ok()));

    // The mappings.
    for interface in [DEMO_INTERFACE, USER_INTERFACE] {
        assert_eq!(
            read(&client, &format!("/dubbo/mapping/{interface}")).await,
            "users-app"
        );
    }

    // getMetadataInfo on the advertised port: the captured structure, this provider's values.
    let addr = format!("127.0.0.1:{metadata_port}");
    let reply = get_metadata_info(
        &addr,
        "users-app",
        &provider.revision,
        Duration::from_secs(5),
    )
    .await
    .expect("getMetadataInfo answers");
    let captured = captured_reply();
    assert_eq!(shape(&reply.value), shape(&captured.value));
    assert_eq!(reply.attachments, captured.attachments);
    let Value::Object(info) = &reply.value else {
        panic!("not an object")
    };
    assert_eq!(
        info.get("revision").and_then(Value::as_str),
        Some(provider.revision.as_str())
    );
    assert_eq!(info.get("app").and_then(Value::as_str), Some("users-app"));
    for (interface, methods) in [
        (DEMO_INTERFACE, "sayHello"),
        (
            USER_INTERFACE,
            "echo,echoLong,echoMap,fail,findByName,getUser,listUsers,notify",
        ),
    ] {
        let s = service(&reply.value, &format!("{interface}:1.0.0:dubbo"));
        assert_eq!(s.get("port").and_then(Value::as_i64), Some(i64::from(port)));
        assert_eq!(s.get("path").and_then(Value::as_str), Some(interface));
        assert_eq!(s.get("name").and_then(Value::as_str), Some(interface));
        assert_eq!(s.get("protocol").and_then(Value::as_str), Some("dubbo"));
        assert_eq!(s.get("version").and_then(Value::as_str), Some("1.0.0"));
        assert!(s.get("group").is_some_and(Value::is_null));
        let want = [
            ("application", "users-app"),
            ("interface", interface),
            ("methods", methods),
            ("release", "3.2.16"),
            ("side", "provider"),
            ("version", "1.0.0"),
            ("dubbo", "2.0.2"),
            ("token", "secret"),
        ];
        for (k, v) in want {
            assert_eq!(param(s, k), Some(v), "{interface} param {k}");
        }
        let metadata_port = metadata_port.to_string();
        assert_eq!(
            param(s, "metadata-service-port"),
            Some(metadata_port.as_str())
        );
        assert_eq!(
            param(s, "timestamp"),
            None,
            "instance-level, not a service param"
        );
    }

    // Another revision: null, as Java 3.2 answers it.
    let other = get_metadata_info(&addr, "users-app", "0123", Duration::from_secs(5))
        .await
        .expect("an unknown revision is not an error");
    assert!(other.value.is_null());
    // Another group, or the services' port: not exported there.
    for (addr, group) in [
        (addr.clone(), "other-app"),
        (format!("127.0.0.1:{port}"), "users-app"),
    ] {
        let err = get_metadata_info(&addr, group, &provider.revision, Duration::from_secs(5))
            .await
            .expect_err("not exported");
        assert!(
            err.to_string().contains("Not found exported service"),
            "{addr} {group}: {err}"
        );
    }
    assert_eq!(provider.process.stat("metadata-calls"), 4);
    assert_eq!(
        provider.process.stat("accepted"),
        1,
        "only the services' port counts"
    );

    // SIGTERM: the instance node goes at once, the mappings stay.
    provider.process.signal("TERM");
    let (code, stderr) = blocking(|| provider.process.wait_exit(Duration::from_secs(10)));
    assert_eq!(code, Some(0), "exit after SIGTERM; stderr:\n{stderr}");
    assert!(client
        .check_stat(&provider.path)
        .await
        .expect("stat")
        .is_none());
    assert!(client
        .check_stat(&format!("/dubbo/mapping/{DEMO_INTERFACE}"))
        .await
        .expect("stat")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_application_appends_itself_to_the_mapping() {
    let zk = blocking(ZooKeeper::new);
    let client = client(&zk).await;
    let first = blocking(|| start(&zk.address(), "users-app", &[]));
    let second = blocking(|| start(&zk.address(), "other-app", &[]));
    // The same application again (another instance) is listed once.
    let third = blocking(|| start(&zk.address(), "users-app", &[]));
    for interface in [DEMO_INTERFACE, USER_INTERFACE] {
        assert_eq!(
            read(&client, &format!("/dubbo/mapping/{interface}")).await,
            "users-app,other-app"
        );
    }
    let mut users = client
        .list_children("/services/users-app")
        .await
        .expect("users-app instances");
    users.sort();
    let mut want = vec![
        format!("127.0.0.1:{}", first.port),
        format!("127.0.0.1:{}", third.port),
    ];
    want.sort();
    assert_eq!(users, want);
    assert_eq!(
        client
            .list_children("/services/other-app")
            .await
            .expect("other-app"),
        vec![format!("127.0.0.1:{}", second.port)]
    );
    for p in [&first, &second, &third] {
        assert!(
            p.revision.len() == 32 && p.revision.chars().all(|c| c.is_ascii_hexdigit()),
            "an md5 in hex: {}",
            p.revision
        );
    }
    assert_ne!(
        first.revision, third.revision,
        "the port is part of the revision"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_storage_writes_the_metadata_json_instead_of_serving_it() {
    let zk = blocking(ZooKeeper::new);
    let client = client(&zk).await;
    let provider = blocking(|| {
        start(
            &zk.address(),
            "users-app",
            &["--metadata-storage", "remote", "--group", "gray"],
        )
    });
    let node = read_json(&client, &provider.path).await;
    let metadata = &node["payload"]["metadata"];
    assert_eq!(metadata["dubbo.metadata.storage-type"], "remote");
    assert_eq!(
        keys(metadata),
        [
            "dubbo.endpoints",
            "dubbo.metadata.revision",
            "dubbo.metadata.storage-type",
            "timestamp"
        ],
        "no MetadataService to name"
    );
    let path = format!("/dubbo/metadata/users-app/{}", provider.revision);
    let stat = client.check_stat(&path).await.expect("stat");
    assert!(
        stat.is_some_and(|s| s.ephemeral_owner == 0),
        "{path} is persistent"
    );
    let json = read_json(&client, &path).await;
    assert_eq!(keys(&json), ["app", "revision", "services"]);
    assert_eq!(json["app"], "users-app");
    assert_eq!(json["revision"], provider.revision.as_str());
    assert_eq!(
        keys(&json["services"]),
        [
            format!("gray/{DEMO_INTERFACE}:1.0.0:dubbo"),
            format!("gray/{USER_INTERFACE}:1.0.0:dubbo")
        ]
    );
    for (key, s) in json["services"].as_object().expect("services") {
        assert_eq!(
            keys(s),
            ["name", "group", "version", "protocol", "port", "path", "params"],
            "{key}"
        );
        assert_eq!(s["group"], "gray");
        assert_eq!(s["port"], provider.port);
        assert_eq!(s["params"]["group"], "gray");
        assert_eq!(s["params"]["application"], "users-app");
    }
    // Nothing serves the metadata over dubbo://.
    let addr = format!("127.0.0.1:{}", provider.port);
    let err = get_metadata_info(
        &addr,
        "users-app",
        &provider.revision,
        Duration::from_secs(5),
    )
    .await
    .expect_err("MetadataService is not exported");
    assert!(
        err.to_string().contains("Not found exported service"),
        "{err}"
    );
    // The metadata outlives the provider, as Java leaves it.
    drop(provider);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(client.check_stat(&path).await.expect("stat").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_faults_refuse_mute_and_unknown_revision_errors() {
    let zk = blocking(ZooKeeper::new);
    let client = client(&zk).await;
    let url_params =
        |node: &Json| inner_json(&node["payload"]["metadata"]["dubbo.metadata-service.url-params"]);
    let advertised = |node: &Json| -> String {
        format!(
            "127.0.0.1:{}",
            url_params(node)["port"].as_str().expect("port")
        )
    };

    // refuse: the advertised port accepts nothing.
    let refusing = blocking(|| {
        start(
            &zk.address(),
            "refusing-app",
            &["--metadata-fault", "refuse"],
        )
    });
    let node = read_json(&client, &refusing.path).await;
    let addr = advertised(&node);
    assert_ne!(addr, format!("127.0.0.1:{}", refusing.port));
    let err = get_metadata_info(
        &addr,
        "refusing-app",
        &refusing.revision,
        Duration::from_secs(2),
    )
    .await
    .expect_err("nothing accepts on the metadata port");
    assert!(matches!(err, RpcError::Network(_)), "{err}");

    // mute: MetadataService on the services' port never answers, sayHello still does.
    let mut muted = blocking(|| start(&zk.address(), "muted-app", &["--metadata-fault", "mute"]));
    let node = read_json(&client, &muted.path).await;
    let addr = advertised(&node);
    assert_eq!(
        addr,
        format!("127.0.0.1:{}", muted.port),
        "the services' port by default"
    );
    let err = get_metadata_info(
        &addr,
        "muted-app",
        &muted.revision,
        Duration::from_millis(500),
    )
    .await
    .expect_err("muted");
    assert!(matches!(err, RpcError::Timeout(_)), "{err}");
    let exchange = Exchange::connect(&addr, &ConnectionConfig::default())
        .await
        .expect("connect");
    let hello = Invocation {
        method: Arc::from("sayHello"),
        parameter_types: Arc::from("Ljava/lang/String;"),
        args: vec![Value::from("world")],
        attachments: Vec::new(),
    };
    let demo = ServiceKey {
        interface: DEMO_INTERFACE.to_string(),
        version: Some("1.0.0".to_string()),
        group: None,
    };
    let said = exchange
        .invoke(&demo, None, &hello, Duration::from_secs(5))
        .await
        .expect("sayHello answers while the metadata is muted");
    assert!(said
        .value
        .as_str()
        .is_some_and(|s| s.starts_with("Hello world")));
    blocking(|| {
        muted
            .process
            .command("answer-metadata", "ok answer-metadata")
    });
    get_metadata_info(&addr, "muted-app", &muted.revision, Duration::from_secs(5))
        .await
        .expect("answered again");

    // --unknown-revision error: a SERVICE_ERROR naming the revision.
    let strict = blocking(|| {
        start(
            &zk.address(),
            "strict-app",
            &["--unknown-revision", "error"],
        )
    });
    let addr = format!("127.0.0.1:{}", strict.port);
    let err = get_metadata_info(&addr, "strict-app", "0123", Duration::from_secs(5))
        .await
        .expect_err("unknown revision");
    let text = err.to_string();
    assert!(
        text.contains("SERVICE_ERROR") && text.contains("metadata not found for revision: 0123"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_mode_registers_both_and_a_killed_provider_leaves_with_its_session() {
    let zk = blocking(ZooKeeper::new);
    let client = client(&zk).await;
    let registry = format!("{}?session=1000&group=grp", zk.address());
    let mut provider = blocking(|| {
        let mut p = Running::start(
            &workspace_binary("test-provider"),
            &[
                "--listen",
                "127.0.0.1:0",
                "--registry",
                &registry,
                "--register-mode",
                "all",
                "--application",
                "both-app",
            ],
        );
        p.wait_for_line("listening on ", Duration::from_secs(20));
        let url = p.wait_for_line("registered ", Duration::from_secs(20));
        assert!(url.starts_with("dubbo://"), "interface level first: {url}");
        let instance = p.wait_for_line("registered instance ", Duration::from_secs(20));
        (p, instance)
    });
    let path = provider
        .1
        .split_once(" revision ")
        .map(|(p, _)| p.to_string())
        .expect("a revision");
    assert!(path.starts_with("/grp/both-app/127.0.0.1:"), "{path}");
    let providers = client
        .list_children(&format!("/grp/{DEMO_INTERFACE}/providers"))
        .await
        .expect("interface-level providers");
    assert_eq!(providers.len(), 1, "{providers:?}");
    assert_eq!(
        read(&client, &format!("/grp/mapping/{DEMO_INTERFACE}")).await,
        "both-app"
    );

    provider.0.kill();
    let took = wait_gone(&client, &path, Duration::from_secs(15)).await;
    assert!(
        took > Duration::from_millis(300),
        "removed by session expiry, not at once: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_is_registered_again_after_its_session_expired() {
    let mut zk = blocking(ZooKeeper::new);
    let registry = format!("{}?session=1000", zk.address());
    let provider = blocking(|| start(&registry, "users-app", &[]));
    let owner = |stat: Option<zk::Stat>| stat.map(|s| s.ephemeral_owner);
    let before = {
        let client = client(&zk).await;
        owner(client.check_stat(&provider.path).await.expect("stat")).expect("registered")
    };

    // Longer than the session: the provider's client gives the session up.
    blocking(|| zk.stop());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    blocking(|| zk.start());

    let client = client(&zk).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = owner(client.check_stat(&provider.path).await.expect("stat"));
        if now.is_some_and(|o| o != before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance not registered again in a new session (owner {now:?}, was {before}); stderr:\n{}",
            provider.process.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let node = read_json(&client, &provider.path).await;
    assert_eq!(
        node["payload"]["metadata"]["dubbo.metadata.revision"],
        provider.revision.as_str()
    );
}
