//! `sandbox-probe`: a guest that misbehaves on request, for the host's sandbox tests.
//!
//! A Wasm component that serves `wasi:http/incoming-handler` and picks what to do by the last
//! segment of the path, so it works under any route prefix:
//!
//! * `.../ok` answers 200 `ok`;
//! * `.../trap` executes `unreachable`, a trap;
//! * `.../loop` spins forever, until the host interrupts it at its time limit;
//! * `.../alloc` allocates and touches memory 1 MiB at a time until growing memory fails;
//! * `.../deep` recurses with 4 KiB of stack per call until the stack runs out;
//! * `.../hello?name=x` calls `say-hello(x)` on the Dubbo DemoService like `hello-http`;
//! * `.../count` answers how many requests this instance has served, counted in a global
//!   (1 every time when each request gets a fresh instance);
//! * anything else answers 404.
//!
//! None of the misbehaving routes ever answers: the host must fail only that request and keep
//! serving the next ones.

use std::io::Write;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

// Bindings for the Dubbo import only, read in place from the repository's `wit/` (see
// `hello-http`); the `wasi:http` side comes pregenerated from `wasip2`.
wit_bindgen::generate!({
    world: "dubbo-examples:sandbox-probe/sandbox-probe",
    path: ["../../wit/dubbo-host", "../../wit/demo", "wit"],
    generate_all,
});

use org_apache_dubbo::demo::demo_service;

/// Requests this instance has handled, for `.../count`.
static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Size of one allocation of `.../alloc`.
const CHUNK: usize = 1 << 20;

struct Component;

wasip2::http::proxy::export!(Component);

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((&path_with_query, ""));
        match path.rsplit('/').next().unwrap_or_default() {
            "ok" => respond(response_out, 200, "ok"),
            "count" => respond(response_out, 200, &served.to_string()),
            "trap" => trap(),
            "loop" => spin(),
            "alloc" => exhaust_memory(),
            "deep" => {
                deep(0);
            }
            "hello" => {
                let name = query_param(query, "name").unwrap_or("world");
                match demo_service::say_hello(name) {
                    Ok(greeting) => respond(response_out, 200, &greeting),
                    Err(err) => respond(response_out, 502, &format!("rpc error: {err:?}")),
                }
            }
            other => respond(response_out, 404, &format!("no probe named `{other}`")),
        }
    }
}

/// Traps at once, as a guest bug would.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Never returns. `black_box` keeps the optimizer from proving the loop has no effect.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Recurses with 4 KiB of stack per call until the stack runs out. A Rust guest's stack is the
/// start of its linear memory, growing down, so the frame past its end is below address 0: the
/// first write there wraps around to the top of the 4 GiB address space and traps as out of
/// bounds, instead of overwriting the guest's data.
#[inline(never)]
fn deep(depth: u32) -> u32 {
    let mut frame = [0u8; 4096];
    frame[depth as usize % frame.len()] = depth as u8;
    let frame = std::hint::black_box(&mut frame);
    // Never true before the stack runs out; it keeps the recursion from being unconditional.
    if depth == u32::MAX {
        return 0;
    }
    deep(depth + 1).wrapping_add(u32::from(frame[0]))
}

/// Keeps every chunk alive and writes to each page of it, so memory really grows, until an
/// allocation fails (Rust aborts, a trap) or the host traps the failed `memory.grow` itself.
fn exhaust_memory() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for page in chunk.chunks_mut(4096) {
            page[0] = chunks.len() as u8;
        }
        chunks.push(std::hint::black_box(chunk));
    }
}

/// Sends `body` as a `text/plain` response with the given status.
fn respond(response_out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::from_list(&[(
        "content-type".to_owned(),
        b"text/plain; charset=utf-8".to_vec(),
    )])
    .expect("content-type is a valid header");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("status is a valid HTTP status");
    let outgoing = response.body().expect("body is taken only once");
    ResponseOutparam::set(response_out, Ok(response));
    // The stream must be dropped before the body is finished; a write error means the client
    // went away.
    {
        let mut stream = outgoing.write().expect("body stream is taken only once");
        let _ = stream
            .write_all(body.as_bytes())
            .and_then(|()| Write::flush(&mut stream));
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

/// The raw value of `key` in `query` (`a=1&b=2`); the probe's names need no decoding.
fn query_param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}
