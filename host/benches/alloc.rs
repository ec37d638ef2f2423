//! Allocations per operation on the hot paths, counted by a global allocator that counts only
//! on the thread that runs the operation (a current-thread runtime, so the connection's reader
//! and flusher tasks are counted with the caller; the provider runs on a thread of its own and
//! is not). Prints one line per path: allocations and bytes per operation.
//!
//! Run with `cargo bench -p dubbo-wasm-host --bench alloc` after building the example guests
//! (missing guests are skipped with a note).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use dubbo_wasm_host::config::Config;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{
    decode_request, decode_response, encode_request, encode_response, Reply,
};
use dubbo_wasm_host::protocol::dubbo::ConnectionPool;
use dubbo_wasm_host::reference::References;
use dubbo_wasm_host::rpc::{Invocation, ServiceKey};
use dubbo_wasm_host::wasm::{new_engine, Guest, MIN_POOL_INSTANCES};
use tokio::net::TcpListener;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn note(size: usize) {
    if ON.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `op` `n` times with counting on and prints allocations and bytes per run.
fn count<F: FnMut()>(what: &str, n: u64, mut op: F) {
    op(); // warm: caches, first-call setup
    ALLOCS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    ON.with(|c| c.set(true));
    for _ in 0..n {
        op();
    }
    ON.with(|c| c.set(false));
    let (a, b) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    println!(
        "{what:<44} {:>8.1} allocations {:>10.0} bytes per operation",
        a as f64 / n as f64,
        b as f64 / n as f64
    );
}

mod support;
use support::{repo_root, serve_null};

/// A null provider on its own thread and runtime, so its allocations are not counted.
fn null_provider() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("provider runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = tx.send(listener.local_addr().expect("addr").to_string());
            serve_null(listener).await;
        });
    });
    rx.recv().expect("provider address")
}

fn main() {
    let inv = Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String("world".into())],
        attachments: Vec::new(),
    };
    let service = ServiceKey {
        interface: "org.apache.dubbo.demo.DemoService".into(),
        version: Some("1.0.0".into()),
        group: None,
    };

    // The codec alone: a request encoded into a reused buffer, and a reply decoded.
    let mut frame = BytesMut::with_capacity(1024);
    count("codec: encode request (reused buffer)", 100_000, || {
        frame.clear();
        encode_request(&mut frame, 1, true, &service, None, &inv, 3000);
    });
    let mut reply = BytesMut::new();
    encode_response(
        &mut reply,
        1,
        &Reply::Value(&Value::String("Hello world".into())),
        None,
    );
    let header = split_frame(&mut reply, DEFAULT_PAYLOAD)
        .ok()
        .flatten()
        .expect("reply frame");
    count("codec: decode reply to a Value", 100_000, || {
        std::hint::black_box(decode_response(&header.header, &header.body).is_ok());
    });
    let body = frame.split_off(16);
    count("codec: decode request (provider side)", 100_000, || {
        std::hint::black_box(decode_request(&body).is_ok());
    });

    let provider = null_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let release = repo_root().join("guest-examples/target/wasm32-wasip2/release");
    let candidates = [
        ("hello-http", release.join("hello_http.wasm")),
        (
            "hello-py",
            repo_root().join("guest-examples/hello-py/hello_py.wasm"),
        ),
        (
            "hello-js",
            repo_root().join("guest-examples/hello-js/hello_js.wasm"),
        ),
    ];
    let mut text = format!(
        "[[reference]]\nid = \"demo\"\ninterface = \"org.apache.dubbo.demo.DemoService\"\nversion = \"1.0.0\"\nurl = \"dubbo://{provider}\"\nwit = \"org-apache-dubbo:demo/demo-service\"\n"
    );
    for (name, path) in &candidates {
        if path.exists() {
            text.push_str(&format!(
                "[[guest]]\nname = \"{name}\"\npath = \"{}\"\ntrigger = \"http\"\nroute = \"/{name}\"\nreferences = [\"demo\"]\n",
                path.display()
            ));
        } else {
            eprintln!("skipping {name}: {} is not built", path.display());
        }
    }
    let cfg = Config::parse(&text, Path::new("alloc.toml")).expect("bench config");
    let pool = Arc::new(ConnectionPool::default());
    let refs = rt
        .block_on(References::build(&cfg, &pool, &Default::default()))
        .expect("references");
    let demo = refs.get("demo").expect("demo").clone();
    count("native call: Reference::invoke, sayHello", 20_000, || {
        rt.block_on(async {
            std::hint::black_box(demo.invoke(&inv).await.is_ok());
        })
    });

    let engine = new_engine(MIN_POOL_INSTANCES).expect("engine");
    for g in &cfg.guests {
        let guest = Guest::load(&engine, g, &cfg.guest_path(g), &refs).expect("load guest");
        count(
            &format!("store for {} (no instance)", g.name),
            2_000,
            || {
                std::hint::black_box(guest.new_store());
            },
        );
        count(
            &format!("instantiate {} (fresh instance)", g.name),
            200,
            || {
                rt.block_on(async {
                    let mut store = guest.new_store();
                    std::hint::black_box(guest.pre().instantiate_async(&mut store).await.is_ok());
                })
            },
        );
    }
}
