//! Criterion benchmarks of the directory: refreshing it from a 10 000-provider registry
//! snapshot (URL parsing plus `build_state`, first with no invokers to reuse and then with the
//! previous refresh's, as a repeated notification does), the memory that state holds, and the
//! per-call cost of `Directory::list` (through the tag router every reference has) followed by
//! each load balancer's `select` over 10 and 100 providers. Invokers are cheap fakes, so only
//! directory work is measured, never connections.
//!
//! Application level (Dubbo 3): 1 000 instances of an application exporting 10 services,
//! from their Curator JSON records to the directory of a reference to one of the services
//! (instance records parsed, provider URLs made from one shared `MetadataInfo`, state built).
//!
//! Run with `cargo bench -p dubbo-wasm-host --bench directory`. Memory figures come from a
//! counting global allocator and are printed once, before the timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dubbo_wasm_host::directory::configurator::{self, Configurator};
use dubbo_wasm_host::directory::{build_state, Directory, DirectoryState};
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::loadbalance::{by_name, NAMES};
use dubbo_wasm_host::registry::metadata::{provider_urls, Instance, MetadataInfo, ServiceInfo};
use dubbo_wasm_host::router::{Router, TagRouter};
use dubbo_wasm_host::rpc::{Invocation, Invoker, ServiceKey};
use dubbo_wasm_host::testing::ListedInvoker;
use dubbo_wasm_host::url::Url;

/// Counts live and peak heap bytes so the bench can say what a refresh keeps and needs.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const INTERFACE: &str = "org.apache.dubbo.demo.DemoService";

/// The cheap invoker factory: no connection, just the merged URL.
fn make(url: Url) -> Arc<dyn Invoker> {
    Arc::new(ListedInvoker::new(url))
}

/// Registry entries of `n` providers, as a Java provider registers them (decoded).
fn provider_texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "dubbo://10.{}.{}.{}:20880/{INTERFACE}?anyhost=true&application=demo-provider\
                 &deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface={INTERFACE}\
                 &methods=sayHello,sayHelloAsync&pid={}&release=3.2.0&service-name-mapping=true\
                 &side=provider&timestamp=1700000000000&version=1.0.0",
                i / 62_500,
                i / 250 % 250,
                i % 250 + 1,
                1000 + i
            )
        })
        .collect()
}

fn parse_all(texts: &[String]) -> Vec<Url> {
    texts
        .iter()
        .map(|t| Url::parse(t).expect("bench URL parses"))
        .collect()
}

fn consumer() -> Url {
    Url::parse(&format!(
        "consumer://10.200.0.1/{INTERFACE}?application=bench-consumer&check=false&dubbo=2.0.2\
         &interface={INTERFACE}&loadbalance=roundrobin&retries=2&side=consumer&timeout=3000\
         &version=1.0.0"
    ))
    .expect("bench URL parses")
}

/// Two rules every provider is checked against: an old-style override for all and a YAML
/// rule for one provider, so refresh pays for configurators as a configured service does.
fn rules(consumer: &Url) -> Vec<Configurator> {
    let mut rules = configurator::from_urls(&[Url::parse(&format!(
        "override://0.0.0.0/{INTERFACE}?category=configurators&dynamic=false&timeout=5000"
    ))
    .expect("bench URL parses")]);
    rules.extend(
        configurator::from_yaml(
            "configVersion: v2.7\nscope: service\nconfigs:\n- side: provider\n  \
             addresses: [\"10.0.0.1:20880\"]\n  parameters: {weight: 50}\n",
            consumer,
        )
        .expect("bench rule parses"),
    );
    rules
}

fn routers() -> Vec<Arc<dyn Router>> {
    vec![Arc::new(TagRouter::static_tags())]
}

type Cache = HashMap<String, Arc<dyn Invoker>>;

fn refresh(
    texts: &[String],
    consumer: &Url,
    rules: &[Configurator],
    previous: &Cache,
) -> (DirectoryState, Cache) {
    let providers = parse_all(texts);
    build_state(consumer, &providers, rules, routers(), previous, &make)
}

/// Prints what a 10 000-provider refresh allocates and keeps, measured once.
fn report_memory(n: usize) {
    let texts = provider_texts(n);
    let consumer = consumer();
    let rules = rules(&consumer);
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let providers = parse_all(&texts);
    let parsed = LIVE.load(Ordering::Relaxed) - base;
    let (state, cache) = build_state(
        &consumer,
        &providers,
        &rules,
        routers(),
        &HashMap::new(),
        &make,
    );
    let built = LIVE.load(Ordering::Relaxed) - base - parsed;
    let cold_peak = PEAK.load(Ordering::Relaxed) - base;
    drop(providers);

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (state2, cache2) = refresh(&texts, &consumer, &rules, &cache);
    let reuse_kept = LIVE.load(Ordering::Relaxed) - before;
    let reuse_peak = PEAK.load(Ordering::Relaxed) - before;
    let reused = state2
        .invokers
        .iter()
        .zip(&state.invokers)
        .filter(|(a, b)| Arc::ptr_eq(a, b))
        .count();

    println!("memory, {n} providers (counting allocator, live heap bytes):");
    println!(
        "  parsed snapshot URLs: {:.1} MiB ({} B/provider)",
        mib(parsed),
        parsed / n
    );
    println!(
        "  cold refresh keeps (invokers + cache): {:.1} MiB ({} B/provider); peak incl. parsed URLs {:.1} MiB",
        mib(built),
        built / n,
        mib(cold_peak)
    );
    println!(
        "  second refresh, same URLs: {reused}/{n} invokers reused; new state {:.1} MiB ({} B/provider); peak {:.1} MiB",
        mib(reuse_kept),
        reuse_kept / n,
        mib(reuse_peak)
    );
    drop((state, cache, state2, cache2));
}

fn directory_refresh(c: &mut Criterion) {
    const N: usize = 10_000;
    report_memory(N);
    let texts = provider_texts(N);
    let consumer = consumer();
    let rules = rules(&consumer);
    let (_, warm_cache) = refresh(&texts, &consumer, &rules, &HashMap::new());
    let mut group = c.benchmark_group("directory_refresh");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function(BenchmarkId::new("parse_only", N), |b| {
        b.iter(|| parse_all(black_box(&texts)))
    });
    group.bench_function(BenchmarkId::new("cold", N), |b| {
        b.iter(|| refresh(black_box(&texts), &consumer, &rules, &HashMap::new()))
    });
    group.bench_function(BenchmarkId::new("reuse", N), |b| {
        b.iter(|| refresh(black_box(&texts), &consumer, &rules, &warm_cache))
    });
    group.finish();
}

fn list_and_select(c: &mut Criterion) {
    let consumer = consumer();
    let inv = Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String("world".into())],
        attachments: Vec::new(),
    };
    let service = ServiceKey {
        interface: INTERFACE.to_string(),
        version: Some("1.0.0".to_string()),
        group: None,
    };
    let mut group = c.benchmark_group("list_select");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in [10, 100] {
        let dir = Directory::new(service.clone(), consumer.clone());
        let providers = parse_all(&provider_texts(n));
        let (state, _) = build_state(
            &consumer,
            &providers,
            &[],
            routers(),
            &HashMap::new(),
            &make,
        );
        dir.replace(state);
        // The routing half alone, to tell it from the balancer's share.
        group.bench_with_input(BenchmarkId::new("list_only", n), &dir, |b, dir| {
            b.iter(|| dir.list(black_box(&inv)))
        });
        for name in NAMES {
            let lb = by_name(name).expect("listed names are known");
            group.bench_with_input(BenchmarkId::new(*name, n), &dir, |b, dir| {
                b.iter(|| {
                    let list = dir.list(black_box(&inv));
                    lb.select(&list, &consumer, &inv)
                })
            });
        }
    }
    group.finish();
}

/// The Curator JSON records of `n` instances of `users-app`, as Java Dubbo 3 writes them.
fn instance_records(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let host = format!("10.{}.{}.{}", i / 62_500, i / 250 % 250, i % 250 + 1);
            format!(
                r#"{{"name":"users-app","id":"{host}:20880","address":"{host}","port":20880,"sslPort":null,"payload":{{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"{host}:20880","name":"users-app","metadata":{{"dubbo.endpoints":"[{{\"port\":20880,\"protocol\":\"dubbo\"}}]","dubbo.metadata-service.url-params":"{{\"version\":\"1.0.0\",\"dubbo\":\"2.0.2\",\"release\":\"3.2.16\",\"side\":\"provider\",\"port\":\"20881\",\"protocol\":\"dubbo\"}}","dubbo.metadata.revision":"af0c75f8478316ccc383d74c81099f95","dubbo.metadata.storage-type":"local","timestamp":"1796152250631"}}}},"registrationTimeUTC":1796152251127,"serviceType":"DYNAMIC","uriSpec":null}}"#
            )
        })
        .collect()
}

/// The metadata of `users-app`'s one revision: `services` services, the first the consumer's.
fn app_metadata(services: usize) -> MetadataInfo {
    let services = (0..services)
        .map(|s| {
            let name = if s == 0 {
                INTERFACE.to_string()
            } else {
                format!("org.apache.dubbo.samples.Service{s}")
            };
            let params = [
                ("application", "users-app"),
                ("deprecated", "false"),
                ("dubbo", "2.0.2"),
                ("interface", name.as_str()),
                ("methods", "sayHello,sayHelloAsync"),
                ("release", "3.2.16"),
                ("serialization", "hessian2"),
                ("side", "provider"),
                ("timeout", "3000"),
                ("version", "1.0.0"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let info = ServiceInfo {
                name: name.clone(),
                group: None,
                version: Some("1.0.0".to_string()),
                protocol: "dubbo".to_string(),
                port: 20880,
                path: name.clone(),
                params,
            };
            (format!("{name}:1.0.0:dubbo"), info)
        })
        .collect();
    MetadataInfo {
        app: "users-app".to_string(),
        revision: "af0c75f8478316ccc383d74c81099f95".to_string(),
        services,
    }
}

/// Instance records to directory state, as an application-level notification does.
fn app_refresh(
    records: &[String],
    info: &MetadataInfo,
    consumer: &Url,
    previous: &Cache,
) -> (DirectoryState, Cache) {
    let mut providers = Vec::with_capacity(records.len());
    for r in records {
        let instance = Instance::from_json("users-app", r.as_bytes()).expect("bench record parses");
        providers.extend(provider_urls(consumer, &instance, info));
    }
    build_state(consumer, &providers, &[], routers(), previous, &make)
}

fn application_refresh(c: &mut Criterion) {
    const INSTANCES: usize = 1_000;
    const SERVICES: usize = 10;
    let records = instance_records(INSTANCES);
    let info = app_metadata(SERVICES);
    let consumer = consumer();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (state, cache) = app_refresh(&records, &info, &consumer, &HashMap::new());
    let kept = LIVE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    println!(
        "memory, {INSTANCES} instances x {SERVICES} services (1 referenced): state keeps {:.2} MiB ({} B/instance), peak {:.2} MiB; {} providers",
        kept as f64 / (1024.0 * 1024.0),
        kept / INSTANCES,
        peak as f64 / (1024.0 * 1024.0),
        state.invokers.len()
    );
    drop(state);
    let mut group = c.benchmark_group("application_refresh");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function(BenchmarkId::new("cold", INSTANCES), |b| {
        b.iter(|| app_refresh(black_box(&records), &info, &consumer, &HashMap::new()))
    });
    group.bench_function(BenchmarkId::new("reuse", INSTANCES), |b| {
        b.iter(|| app_refresh(black_box(&records), &info, &consumer, &cache))
    });
    group.finish();
}

criterion_group!(
    benches,
    directory_refresh,
    application_refresh,
    list_and_select
);
criterion_main!(benches);
