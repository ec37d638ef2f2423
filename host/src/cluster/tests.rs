//! Cluster behaviour pinned with scripted providers: which errors are retried, which providers
//! are tried, and what each strategy answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::directory::{Directory, DirectoryState};
use crate::rpc::{BoxFuture, CallStats, ServiceKey};
use crate::url::Url;

/// A provider that answers from a script and counts its calls.
struct Scripted {
    url: Url,
    stats: CallStats,
    calls: AtomicUsize,
    available: bool,
    answer: Box<dyn Fn() -> Result<RpcResult, RpcError> + Send + Sync>,
    delay: Duration,
}

impl Invoker for Scripted {
    fn url(&self) -> &Url {
        &self.url
    }
    fn is_available(&self) -> bool {
        self.available
    }
    fn stats(&self) -> &CallStats {
        &self.stats
    }
    fn invoke<'a>(&'a self, _: &'a Invocation) -> BoxFuture<'a, Result<RpcResult, RpcError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            (self.answer)()
        })
    }
}

fn ok(text: &str) -> Result<RpcResult, RpcError> {
    Ok(RpcResult {
        value: Value::String(text.into()),
        attachments: Vec::new(),
    })
}

fn provider(
    host: &str,
    answer: impl Fn() -> Result<RpcResult, RpcError> + Send + Sync + 'static,
) -> Arc<Scripted> {
    Arc::new(Scripted {
        url: Url::parse(&format!("dubbo://{host}:20880/I")).expect("valid url"),
        stats: CallStats::default(),
        calls: AtomicUsize::new(0),
        available: true,
        answer: Box::new(answer),
        delay: Duration::ZERO,
    })
}

/// Always the first listed provider: makes the tries' order deterministic.
struct First;

impl LoadBalance for First {
    fn select(&self, _: &[Arc<dyn Invoker>], _: &crate::url::Url, _: &Invocation) -> usize {
        0
    }
}

fn directory(providers: &[Arc<Scripted>]) -> Arc<Directory> {
    let dir = Directory::new(
        ServiceKey {
            interface: "I".into(),
            version: None,
            group: None,
        },
        Url::parse("consumer://10.0.0.9/I").expect("valid url"),
    );
    dir.replace(DirectoryState {
        invokers: providers
            .iter()
            .map(|p| p.clone() as Arc<dyn Invoker>)
            .collect(),
        routers: Vec::new(),
        consumer: None,
        ..Default::default()
    });
    Arc::new(dir)
}

fn policy(cluster: ClusterKind, retries: u32) -> MethodPolicy {
    MethodPolicy::new(cluster, Arc::new(First), retries, 2, false)
}

fn inv() -> Invocation {
    Invocation {
        method: "m".into(),
        parameter_types: "".into(),
        args: Vec::new(),
        attachments: Vec::new(),
    }
}

fn calls(p: &Scripted) -> usize {
    p.calls.load(Ordering::SeqCst)
}

fn timeout() -> Result<RpcResult, RpcError> {
    Err(RpcError::Timeout("slow".into()))
}

#[tokio::test]
async fn failover_retries_on_timeout_on_other_providers_but_not_on_biz_exception() {
    let a = provider("10.0.0.1", timeout);
    let b = provider("10.0.0.2", timeout);
    let c = provider("10.0.0.3", || ok("c"));
    let dir = directory(&[a.clone(), b.clone(), c.clone()]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Failover, 2),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert_eq!(
        r.expect("third try succeeds").value,
        Value::String("c".into())
    );
    assert_eq!(
        (calls(&a), calls(&b), calls(&c)),
        (1, 1, 1),
        "each provider tried once"
    );

    let biz = provider("10.0.0.4", || {
        Err(RpcError::BizException {
            class_name: "E".into(),
            message: "no".into(),
        })
    });
    let spare = provider("10.0.0.5", || ok("spare"));
    let dir = directory(&[biz.clone(), spare.clone()]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Failover, 2),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert!(matches!(r, Err(RpcError::BizException { .. })));
    assert_eq!(
        (calls(&biz), calls(&spare)),
        (1, 0),
        "a business exception is not retried"
    );
}

#[tokio::test]
async fn failover_gives_up_after_retries_plus_one_tries_naming_the_providers() {
    let a = provider("10.0.0.1", timeout);
    let b = provider("10.0.0.2", timeout);
    let dir = directory(&[a.clone(), b.clone()]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Failover, 1),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    match r {
        Err(RpcError::Timeout(m)) => {
            assert!(
                m.contains("2 tries") && m.contains("10.0.0.1") && m.contains("10.0.0.2"),
                "{m}"
            )
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(calls(&a) + calls(&b), 2);
}

#[tokio::test]
async fn empty_directory_is_a_no_provider_error() {
    let dir = directory(&[]);
    for kind in [
        ClusterKind::Failover,
        ClusterKind::Failfast,
        ClusterKind::Forking,
        ClusterKind::Broadcast,
        ClusterKind::Available,
    ] {
        let r = invoke(&dir, &policy(kind, 2), &FailbackQueue::default(), &inv()).await;
        assert!(matches!(r, Err(RpcError::NoProvider(_))), "{kind:?}: {r:?}");
    }
}

#[tokio::test]
async fn failfast_tries_once() {
    let a = provider("10.0.0.1", timeout);
    let b = provider("10.0.0.2", || ok("b"));
    let dir = directory(&[a.clone(), b.clone()]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Failfast, 2),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert!(matches!(r, Err(RpcError::Timeout(_))));
    assert_eq!((calls(&a), calls(&b)), (1, 0));
}

#[tokio::test]
async fn failsafe_swallows_the_error_and_answers_null() {
    let a = provider("10.0.0.1", timeout);
    let dir = directory(&[a]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Failsafe, 2),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert_eq!(r.expect("failsafe never fails").value, Value::Null);
}

#[tokio::test]
async fn failback_answers_null_and_retries_in_the_background_on_another_provider() {
    let a = provider("10.0.0.1", timeout);
    let b = provider("10.0.0.2", || ok("b"));
    let dir = directory(&[a.clone(), b.clone()]);
    let queue = FailbackQueue::new(10, Duration::from_millis(20));
    let r = invoke(&dir, &policy(ClusterKind::Failback, 3), &queue, &inv()).await;
    assert_eq!(r.expect("failback answers at once").value, Value::Null);
    assert_eq!(queue.pending(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        calls(&b),
        1,
        "retried once on the other provider, then done"
    );
    assert_eq!(calls(&a), 1);
    assert_eq!(queue.pending(), 0);
}

#[tokio::test]
async fn failback_drops_retries_beyond_its_queue_limit() {
    let a = provider("10.0.0.1", timeout);
    let dir = directory(&[a]);
    let queue = FailbackQueue::new(2, Duration::from_secs(60));
    for _ in 0..5 {
        let _ = invoke(&dir, &policy(ClusterKind::Failback, 3), &queue, &inv()).await;
    }
    assert_eq!(queue.pending(), 2);
}

#[tokio::test]
async fn forking_takes_the_first_success_and_fails_only_if_all_fail() {
    let slow = Arc::new(Scripted {
        delay: Duration::from_millis(300),
        ..Arc::into_inner(provider("10.0.0.1", || ok("slow"))).expect("sole owner")
    });
    let fast = provider("10.0.0.2", || ok("fast"));
    let dir = directory(&[slow.clone(), fast.clone()]);
    let started = std::time::Instant::now();
    let r = invoke(
        &dir,
        &policy(ClusterKind::Forking, 0),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert_eq!(r.expect("fast wins").value, Value::String("fast".into()));
    assert!(started.elapsed() < Duration::from_millis(250));

    let dir = directory(&[provider("10.0.0.3", timeout), provider("10.0.0.4", timeout)]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Forking, 0),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert!(matches!(r, Err(RpcError::Timeout(_))));
}

#[tokio::test]
async fn broadcast_calls_every_provider_and_reports_a_failure() {
    let a = provider("10.0.0.1", || ok("a"));
    let b = provider("10.0.0.2", timeout);
    let c = provider("10.0.0.3", || ok("c"));
    let dir = directory(&[a.clone(), b.clone(), c.clone()]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Broadcast, 0),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert!(matches!(r, Err(RpcError::Timeout(_))));
    assert_eq!((calls(&a), calls(&b), calls(&c)), (1, 1, 1));
}

#[tokio::test]
async fn available_picks_the_first_available_provider() {
    let down = Arc::new(Scripted {
        available: false,
        ..Arc::into_inner(provider("10.0.0.1", || ok("down"))).expect("sole owner")
    });
    let up = provider("10.0.0.2", || ok("up"));
    let dir = directory(&[down.clone(), up.clone()]);
    let r = invoke(
        &dir,
        &policy(ClusterKind::Available, 0),
        &FailbackQueue::default(),
        &inv(),
    )
    .await;
    assert_eq!(r.expect("up answers").value, Value::String("up".into()));
    assert_eq!(calls(&down), 0);
}

/// Picks providers in turn, so stickiness is visible.
struct Turns(Mutex<usize>);

impl LoadBalance for Turns {
    fn select(&self, invokers: &[Arc<dyn Invoker>], _: &crate::url::Url, _: &Invocation) -> usize {
        let mut n = self.0.lock().expect("not poisoned");
        *n += 1;
        *n % invokers.len()
    }
}

#[tokio::test]
async fn sticky_keeps_the_same_provider_while_it_is_available() {
    let a = provider("10.0.0.1", || ok("a"));
    let b = provider("10.0.0.2", || ok("b"));
    let dir = directory(&[a.clone(), b.clone()]);
    let sticky = MethodPolicy::new(
        ClusterKind::Failover,
        Arc::new(Turns(Mutex::new(0))),
        2,
        2,
        true,
    );
    for _ in 0..6 {
        invoke(&dir, &sticky, &FailbackQueue::default(), &inv())
            .await
            .expect("ok");
    }
    assert!(
        calls(&a) == 6 || calls(&b) == 6,
        "all calls on one provider: {} / {}",
        calls(&a),
        calls(&b)
    );
    let turns = MethodPolicy::new(
        ClusterKind::Failover,
        Arc::new(Turns(Mutex::new(0))),
        2,
        2,
        false,
    );
    for _ in 0..6 {
        invoke(&dir, &turns, &FailbackQueue::default(), &inv())
            .await
            .expect("ok");
    }
    assert!(
        calls(&a) >= 3 && calls(&b) >= 3,
        "non-sticky spreads the calls"
    );
}

#[test]
fn by_name_knows_every_cluster() {
    for name in ClusterKind::NAMES {
        assert!(ClusterKind::by_name(name).is_some(), "{name}");
    }
    assert!(ClusterKind::by_name("mergeable").is_none());
}
