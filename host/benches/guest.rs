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

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use dubbo_wasm_host::config::Config;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{encode_response, Reply};
use dubbo_wasm_host::protocol::dubbo::ConnectionPool;
use dubbo_wasm_host::reference::References;
use dubbo_wasm_host::rpc::Invocation;
use dubbo_wasm_host::wasm::{new_engine, Guest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every two-way request frame with `"Hello world"`, decoding nothing.
async fn null_provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let reply = Value::String("Hello world".into());
                let mut buf = BytesMut::with_capacity(16 * 1024);
                let mut out = BytesMut::new();
                loop {
                    while let Ok(Some(frame)) = split_frame(&mut buf, DEFAULT_PAYLOAD) {
                        let h = frame.header;
                        if h.is_request() && h.is_two_way() && !h.is_event() {
                            encode_response(&mut out, h.id, &Reply::Value(&reply), None);
                        }
                    }
                    if !out.is_empty() {
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
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
    let engine = new_engine().expect("engine");

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
