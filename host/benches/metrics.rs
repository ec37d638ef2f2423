//! Criterion benchmarks of call metrics: what `Reference::invoke` adds to every call (the
//! method's series looked up without a lock, then request and error counters and the latency
//! histogram; a guest's import or `bench` holds the series and skips the lookup) against an
//! empty closure measured in the same run, and the cost of one Prometheus scrape and one
//! `/admin/references` body over ten references.
//!
//! Run with `cargo bench -p dubbo-wasm-host --bench metrics`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dubbo_wasm_host::admin::{references_json, render_references};
use dubbo_wasm_host::config::Config;
use dubbo_wasm_host::metrics::{Histogram, ReferenceMetrics};
use dubbo_wasm_host::protocol::dubbo::ConnectionPool;
use dubbo_wasm_host::reference::References;
use dubbo_wasm_host::rpc::RpcError;

/// Java methods of a typical interface; each is called once first, as in a warm process.
const METHODS: [&str; 6] = [
    "sayHello",
    "sayHelloAsync",
    "getUser",
    "listUsers",
    "updateUser",
    "deleteUser",
];

fn record(c: &mut Criterion) {
    let metrics = ReferenceMetrics::default();
    let methods: Vec<Arc<str>> = METHODS.iter().map(|m| Arc::from(*m)).collect();
    for m in &methods {
        metrics.entry(m).begin().finish(&Ok::<(), RpcError>(()));
    }
    let method = methods[2].clone();
    let ok: Result<(), RpcError> = Ok(());
    let err: Result<(), RpcError> = Err(RpcError::Timeout("slow".to_string()));
    let histogram = Histogram::new();

    let mut group = c.benchmark_group("metrics");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("baseline/empty-closure", |b| b.iter(|| black_box(())));
    // The clock reads every latency measurement needs, whatever records it.
    group.bench_function("baseline/instant-now-and-elapsed", |b| {
        b.iter(|| black_box(std::time::Instant::now()).elapsed())
    });
    group.bench_function("histogram/observe", |b| {
        b.iter(|| histogram.observe(black_box(Duration::from_micros(700))))
    });
    group.bench_function("record/ok", |b| {
        b.iter(|| {
            metrics
                .entry(black_box(&method))
                .begin()
                .finish(black_box(&ok))
        })
    });
    group.bench_function("record/error", |b| {
        b.iter(|| {
            metrics
                .entry(black_box(&method))
                .begin()
                .finish(black_box(&err))
        })
    });
    // The lookup alone, as an untyped caller (the generic `$invoke`) makes it on every call:
    // on one thread, and on two threads at once (the host's two workers), per lookup each.
    group.bench_function("lookup/one-thread", |b| {
        b.iter(|| black_box(metrics.entry(black_box(&method))))
    });
    group.bench_function("lookup/two-threads", |b| {
        b.iter_custom(|iters| {
            let start = std::sync::Barrier::new(2);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    start.wait();
                    for _ in 0..iters {
                        black_box(metrics.entry(black_box(&method)));
                    }
                });
                start.wait();
                let began = std::time::Instant::now();
                for _ in 0..iters {
                    black_box(metrics.entry(black_box(&method)));
                }
                let spent = began.elapsed();
                let _ = other.join();
                spent
            })
        })
    });
    let held = metrics.entry(&method);
    group.bench_function("record/ok-series-held", |b| {
        b.iter(|| black_box(&held).begin().finish(black_box(&ok)))
    });
    group.finish();
}

/// Ten lazy references to a closed port (nothing connects), each with every method called.
fn references(rt: &tokio::runtime::Runtime) -> References {
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!(
            "[[reference]]\nid = \"r{i}\"\ninterface = \"org.example.Service{i}\"\n\
             version = \"1.0.0\"\nurl = \"dubbo://127.0.0.1:1;dubbo://127.0.0.2:1\"\n\
             check = false\nlazy = true\n"
        ));
    }
    let config = Config::parse(&text, Path::new("bench.toml")).expect("bench config");
    let pool = Arc::new(ConnectionPool::default());
    let refs = rt
        .block_on(References::build(&config, &pool, &Default::default()))
        .expect("references");
    let methods: Vec<Arc<str>> = METHODS.iter().map(|m| Arc::from(*m)).collect();
    for r in refs.iter() {
        for m in &methods {
            r.metrics()
                .entry(m)
                .begin()
                .finish(&Err::<(), _>(RpcError::Network("down".into())));
        }
    }
    refs
}

fn scrape(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let refs = references(&rt);
    let mut out = String::new();

    let mut group = c.benchmark_group("metrics");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("render/10-references-6-methods", |b| {
        b.iter(|| {
            out.clear();
            render_references(&mut out, &refs);
            black_box(out.len())
        })
    });
    group.bench_function("json/10-references", |b| {
        b.iter(|| black_box(references_json(&refs)))
    });
    group.finish();
}

criterion_group!(benches, record, scrape);
criterion_main!(benches);
