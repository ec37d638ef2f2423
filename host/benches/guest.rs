//! Criterion benchmarks of the guest side: creating one instance of a guest from its
//! pre-instantiated component (what every HTTP request pays), and, as the yardstick, one Dubbo
//! call made natively through a reference against an in-process provider that answers every
//! request with a fixed reply.
//!
//! Run with `cargo bench -p dubbo-wasm-host --bench guest` after building the example guests
//! (`cd guest-examples && cargo build --release --target wasm32-wasip2`; the Python guest with
//! `guest-examples/hello-py/build.sh`, the JavaScript one with `guest-examples/hello-js/build.sh`).
//! Missing guests are skipped with a note.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dubbo_wasm_host::config::Config;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::ConnectionPool;
use dubbo_wasm_host::reference::References;
use dubbo_wasm_host::rpc::Invocation;
use dubbo_wasm_host::wasm::{new_engine, Guest, MIN_POOL_INSTANCES};
use tokio::net::TcpListener;

mod support;
use support::{repo_root, serve_null};

/// A null provider on the bench's runtime.
async fn null_provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(serve_null(listener));
    addr
}

fn config(provider: &str, guests: &[(&str, PathBuf)]) -> Config {
    let mut text = format!(
        r#"
[[reference]]
id = "demo"
interface = "org.apache.dubbo.demo.DemoService"
version = "1.0.0"
url = "dubbo://{provider}"
wit = "org-apache-dubbo:demo/demo-service"

[[reference]]
id = "users"
interface = "org.apache.dubbo.samples.UserService"
version = "1.0.0"
url = "dubbo://{provider}"
wit = "org-apache-dubbo:samples/user-service"
"#
    );
    for (name, path) in guests {
        text.push_str(&format!(
            "[[guest]]\nname = \"{name}\"\npath = \"{}\"\ntrigger = \"http\"\nroute = \"/{name}\"\nreferences = [\"demo\", \"users\"]\n",
            path.display()
        ));
    }
    Config::parse(&text, Path::new("bench.toml")).expect("bench config")
}

fn guests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let provider = rt.block_on(null_provider());
    let release = repo_root().join("guest-examples/target/wasm32-wasip2/release");
    let candidates = [
        ("hello-http", release.join("hello_http.wasm")),
        ("user-api", release.join("user_api.wasm")),
        (
            "hello-py",
            repo_root().join("guest-examples/hello-py/hello_py.wasm"),
        ),
        (
            "hello-js",
            repo_root().join("guest-examples/hello-js/hello_js.wasm"),
        ),
    ];
    let present: Vec<(&str, PathBuf)> = candidates
        .into_iter()
        .filter(|(name, p)| {
            let ok = p.exists();
            if !ok {
                eprintln!("skipping {name}: {} is not built", p.display());
            }
            ok
        })
        .collect();
    let cfg = config(&provider, &present);
    let pool = Arc::new(ConnectionPool::default());
    let refs = rt
        .block_on(References::build(&cfg, &pool, &Default::default()))
        .expect("references");
    let engine = new_engine(MIN_POOL_INSTANCES).expect("engine");

    let mut group = c.benchmark_group("guest");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for g in &cfg.guests {
        let guest = Guest::load(&engine, g, &cfg.guest_path(g), &refs).expect("load guest");
        group.bench_function(format!("instantiate/{}", g.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        let mut store = guest.new_store();
                        black_box(guest.pre().instantiate_async(&mut store).await.is_ok());
                    }
                    start.elapsed()
                })
            })
        });
        // The end of a fresh instance's life alone: the store dropped, its slot reset.
        group.bench_function(format!("drop/{}", g.name), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let mut store = guest.new_store();
                        black_box(guest.pre().instantiate_async(&mut store).await.is_ok());
                        let start = std::time::Instant::now();
                        drop(store);
                        spent += start.elapsed();
                    }
                    spent
                })
            })
        });
    }

    let demo = refs.get("demo").expect("demo reference").clone();
    let inv = Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String("world".into())],
        attachments: Vec::new(),
    };
    // The calls run on the runtime, back to back, as a guest's calls do.
    group.bench_function("native_call/sayHello", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    black_box(demo.invoke(&inv).await.is_ok());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, guests);
criterion_main!(benches);
