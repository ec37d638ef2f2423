//! Criterion benchmarks of provider selection: the per-call cost of every `loadbalance`
//! strategy over 10 and 100 providers whose URLs look like real registry entries (a dozen
//! parameters, a `timestamp` past warmup), with no network involved.
//!
//! Run with `cargo bench -p dubbo-wasm-host --bench select`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::loadbalance::{by_name, NAMES};
use dubbo_wasm_host::rpc::{CallStats, Invocation, Invoker};
use dubbo_wasm_host::testing::ListedInvoker;
use dubbo_wasm_host::url::Url;

/// `n` providers registered an hour ago, with a little traffic recorded so the
/// statistics-driven strategies have something to compare.
fn providers(n: usize) -> Vec<Arc<dyn Invoker>> {
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .saturating_sub(3_600_000);
    (0..n)
        .map(|i| {
            let url = Url::parse(&format!(
                "dubbo://10.0.{}.{}:20880/org.apache.dubbo.demo.DemoService?anyhost=true\
                 &application=demo-provider&deprecated=false&dubbo=2.0.2&dynamic=true\
                 &generic=false&interface=org.apache.dubbo.demo.DemoService\
                 &methods=sayHello,sayHelloAsync&pid={}&release=3.2.0&service-name-mapping=true\
                 &side=provider&timestamp={hour_ago}",
                i / 250,
                i % 250 + 1,
                1000 + i
            ))
            .expect("bench URL parses");
            let stats = CallStats::default();
            for _ in 0..(i % 3) {
                stats.begin().finish(true);
            }
            Arc::new(ListedInvoker { url, stats }) as Arc<dyn Invoker>
        })
        .collect()
}

fn select(c: &mut Criterion) {
    let consumer =
        Url::parse("consumer://10.1.0.1/org.apache.dubbo.demo.DemoService?side=consumer")
            .expect("bench URL parses");
    let inv = Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String("world".into())],
        attachments: Vec::new(),
    };
    let mut group = c.benchmark_group("select");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in [10, 100] {
        let invokers = providers(n);
        for name in NAMES {
            let lb = by_name(name).expect("listed names are known");
            group.bench_with_input(BenchmarkId::new(*name, n), &invokers, |b, invokers| {
                b.iter(|| lb.select(black_box(invokers), &consumer, black_box(&inv)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, select);
criterion_main!(benches);
