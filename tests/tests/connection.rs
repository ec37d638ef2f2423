//! The consumer's connection behaviour against a real provider process that misbehaves on
//! command: multiplexing, timeouts, heartbeats both ways, read-only events, closed and broken
//! connections, payload limits, and how references share or own their connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dubbo_wasm_host::config::ReferenceConfig;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::{ConnectionConfig, ConnectionPool, SharedClient};
use dubbo_wasm_host::reference::Reference;
use dubbo_wasm_host::rpc::{Invocation, RpcError, ServiceKey};
use dubbo_wasm_host_tests::process::start_provider;

fn demo() -> ServiceKey {
    ServiceKey {
        interface: "org.apache.dubbo.demo.DemoService".into(),
        version: Some("1.0.0".into()),
        group: None,
    }
}

fn say_hello(name: &str, attachments: &[(&str, &str)]) -> Invocation {
    Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String(name.into())],
        attachments: attachments
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn greeting(provider: &str, name: &str) -> Value {
    Value::String(format!("Hello {name}, response from provider: {provider}"))
}

fn client(addr: &str, cfg: ConnectionConfig) -> Arc<SharedClient> {
    Arc::new(SharedClient::new(addr.to_string(), cfg))
}

const SECOND: Duration = Duration::from_secs(1);

/// Polls `cond` for up to `limit`.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_matched_by_id_when_they_arrive_out_of_order() {
    let (_p, addr) = start_provider();
    let conn = client(&addr, ConnectionConfig::default())
        .connection()
        .await
        .expect("connect");
    let slow_inv = say_hello("slow", &[("test.delay", "400")]);
    let fast_inv = say_hello("fast", &[]);
    let started = Instant::now();
    let service = demo();
    let slow = conn.invoke(&service, None, &slow_inv, 5 * SECOND);
    let fast = async {
        let r = conn.invoke(&service, None, &fast_inv, 5 * SECOND).await;
        (r, started.elapsed())
    };
    let (slow, (fast, fast_took)) = tokio::join!(slow, fast);
    assert_eq!(slow.expect("slow call").value, greeting(&addr, "slow"));
    assert_eq!(fast.expect("fast call").value, greeting(&addr, "fast"));
    assert!(
        fast_took < Duration::from_millis(300),
        "fast reply waited for the slow one: {fast_took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_fails_only_that_call_and_the_connection_keeps_serving() {
    let (mut p, addr) = start_provider();
    let c = client(&addr, ConnectionConfig::default());
    let conn = c.connection().await.expect("connect");
    let late = conn
        .invoke(
            &demo(),
            None,
            &say_hello("late", &[("test.delay", "500")]),
            Duration::from_millis(100),
        )
        .await;
    assert!(
        matches!(&late, Err(RpcError::Timeout(m)) if m.contains("100 ms")),
        "{late:?}"
    );
    // The late reply arrives meanwhile and must be dropped, not handed to the next call.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let next = conn
        .invoke(&demo(), None, &say_hello("next", &[]), SECOND)
        .await;
    assert_eq!(next.expect("next call").value, greeting(&addr, "next"));
    assert_eq!(p.stat("accepted"), 1, "a timeout must not reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_answers_the_providers_heartbeats() {
    let (mut p, addr) = start_provider();
    let _conn = client(&addr, ConnectionConfig::default())
        .connection()
        .await
        .expect("connect");
    p.wait_accepted(1);
    p.command("heartbeat", "ok heartbeat");
    p.command("heartbeat", "ok heartbeat");
    let deadline = Instant::now() + 2 * SECOND;
    while p.stat("heartbeat-replies") < 2 {
        assert!(Instant::now() < deadline, "heartbeats were not answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_heartbeat() -> ConnectionConfig {
    ConnectionConfig {
        heartbeat: Duration::from_millis(100),
        ..ConnectionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_sends_heartbeats_and_stays_open() {
    let (mut p, addr) = start_provider();
    let c = client(&addr, fast_heartbeat());
    let conn = c.connection().await.expect("connect");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!conn.is_closed(), "answered heartbeats keep the connection");
    let r = c.connection().await.expect("same connection");
    assert!(Arc::ptr_eq(&conn, &r));
    assert!(p.stat("requests") == 0 && p.stat("accepted") == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_provider_is_dropped_after_three_heartbeats_and_the_client_reconnects() {
    let (mut p, addr) = start_provider();
    p.command("mute-heartbeats", "ok mute-heartbeats");
    let c = client(&addr, fast_heartbeat());
    let conn = c.connection().await.expect("connect");
    assert!(
        eventually(2 * SECOND, || conn.is_closed()).await,
        "a provider silent for 3 heartbeats must be dropped"
    );
    // Without a call, the client dials again in the background (Dubbo's reconnect timer).
    p.wait_accepted(2);
    // That connection is dropped in turn while heartbeats stay muted; a call gets a live one.
    let fresh = c.connection().await.expect("reconnect");
    let r = fresh
        .invoke(&demo(), None, &say_hello("again", &[]), SECOND)
        .await;
    assert_eq!(
        r.expect("call after reconnect").value,
        greeting(&addr, "again")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_event_makes_the_provider_unavailable_until_writable() {
    let (mut p, addr) = start_provider();
    let c = client(&addr, ConnectionConfig::default());
    let _conn = c.connection().await.expect("connect");
    assert!(c.is_available());
    p.wait_accepted(1);
    p.command("readonly", "ok readonly");
    assert!(
        eventually(SECOND, || !c.is_available()).await,
        "read-only must mark it unavailable"
    );
    p.command("writable", "ok writable");
    assert!(
        eventually(SECOND, || c.is_available()).await,
        "writable must undo it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_closing_fails_in_flight_calls_at_once_and_the_next_call_reconnects() {
    let (mut p, addr) = start_provider();
    let c = client(&addr, ConnectionConfig::default());
    let conn = c.connection().await.expect("connect");
    p.wait_accepted(1);
    let inv = say_hello("in-flight", &[("test.delay", "3000")]);
    let started = Instant::now();
    let service = demo();
    let (r, _) = tokio::join!(conn.invoke(&service, None, &inv, 5 * SECOND), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        p.send("close");
    });
    assert!(matches!(&r, Err(RpcError::Network(_))), "{r:?}");
    assert!(
        started.elapsed() < 2 * SECOND,
        "in-flight call waited for its timeout"
    );
    let again = c.connection().await.expect("reconnect");
    let r = again
        .invoke(&demo(), None, &say_hello("after", &[]), SECOND)
        .await;
    assert_eq!(
        r.expect("call after reconnect").value,
        greeting(&addr, "after")
    );
    assert_eq!(p.stat("accepted"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_one_provider_closes_only_its_connection() {
    let (mut bad, bad_addr) = start_provider();
    let (mut good, good_addr) = start_provider();
    let bad_conn = client(&bad_addr, ConnectionConfig::default())
        .connection()
        .await
        .expect("connect");
    let good_conn = client(&good_addr, ConnectionConfig::default())
        .connection()
        .await
        .expect("connect");
    bad.wait_accepted(1);
    bad.command("garbage", "ok garbage");
    assert!(
        eventually(SECOND, || bad_conn.is_closed()).await,
        "bad magic must close it"
    );
    let r = good_conn
        .invoke(&demo(), None, &say_hello("fine", &[]), SECOND)
        .await;
    assert_eq!(
        r.expect("other provider unaffected").value,
        greeting(&good_addr, "fine")
    );
    assert_eq!(good.stat("accepted"), 1);
}

fn small_payload() -> ConnectionConfig {
    ConnectionConfig {
        payload: 2048,
        ..ConnectionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_request_is_refused_before_sending_and_the_connection_stays() {
    let (mut p, addr) = start_provider();
    let conn = client(&addr, small_payload())
        .connection()
        .await
        .expect("connect");
    let r = conn
        .invoke(&demo(), None, &say_hello(&"x".repeat(4000), &[]), SECOND)
        .await;
    assert!(matches!(&r, Err(RpcError::LimitExceeded(_))), "{r:?}");
    assert!(!conn.is_closed());
    assert_eq!(p.stat("requests"), 0, "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_response_is_refused_from_its_header_and_closes_the_connection() {
    let (_p, addr) = start_provider();
    let conn = client(&addr, small_payload())
        .connection()
        .await
        .expect("connect");
    let r = conn
        .invoke(
            &demo(),
            None,
            &say_hello("big", &[("test.reply-bytes", "100000")]),
            5 * SECOND,
        )
        .await;
    assert!(
        matches!(&r, Err(RpcError::Network(m)) if m.contains("payload limit")),
        "{r:?}"
    );
    assert!(conn.is_closed());
}

fn reference(
    addr: &str,
    id: &str,
    connections: Option<u32>,
    lazy: Option<bool>,
) -> ReferenceConfig {
    ReferenceConfig {
        id: id.into(),
        interface: "org.apache.dubbo.demo.DemoService".into(),
        version: Some("1.0.0".into()),
        url: Some(format!("dubbo://{addr}")),
        timeout: Some(3000),
        connections,
        lazy,
        ..ReferenceConfig::default()
    }
}

async fn call(r: &Reference, addr: &str, name: &str) {
    let v = r.invoke(&say_hello(name, &[])).await.expect("call").value;
    assert_eq!(v, greeting(addr, name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_share_one_connection_per_address_by_default() {
    let (mut p, addr) = start_provider();
    let pool = Arc::new(ConnectionPool::default());
    let a = Reference::build(&reference(&addr, "a", None, Some(true)), &pool).expect("a");
    let b = Reference::build(&reference(&addr, "b", None, Some(true)), &pool).expect("b");
    for i in 0..4 {
        call(&a, &addr, &format!("a{i}")).await;
        call(&b, &addr, &format!("b{i}")).await;
    }
    assert_eq!(p.stat("accepted"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_n_gives_a_reference_its_own_n_connections() {
    let (mut p, addr) = start_provider();
    let pool = Arc::new(ConnectionPool::default());
    let own = Reference::build(&reference(&addr, "own", Some(3), Some(true)), &pool).expect("own");
    let shared =
        Reference::build(&reference(&addr, "shared", None, Some(true)), &pool).expect("shared");
    for i in 0..6 {
        call(&own, &addr, &format!("o{i}")).await;
    }
    call(&shared, &addr, "s").await;
    assert_eq!(p.stat("accepted"), 4, "3 own + 1 shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_reference_connects_on_first_call_and_eager_one_at_startup() {
    let (mut p, addr) = start_provider();
    let pool = Arc::new(ConnectionPool::default());
    let lazy =
        Reference::build(&reference(&addr, "lazy", Some(1), Some(true)), &pool).expect("lazy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.stat("accepted"), 0, "lazy must not connect before a call");
    call(&lazy, &addr, "first").await;
    assert_eq!(p.stat("accepted"), 1);

    let _eager = Reference::build(&reference(&addr, "eager", Some(1), None), &pool).expect("eager");
    let deadline = Instant::now() + 2 * SECOND;
    while p.stat("accepted") < 2 {
        assert!(
            Instant::now() < deadline,
            "eager reference did not connect at startup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
