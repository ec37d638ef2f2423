//! `hello-cli`: a command guest of dubbo-wasm-host.
//!
//! A Wasm component exporting `wasi:cli/run` (Rust's `main`), run once by
//! `dubbo-wasm-host run --config host.toml hello-cli -- alice bob`. It greets each argument
//! after its name by calling `say-hello` on the Dubbo service `org.apache.dubbo.demo.DemoService`
//! (imported as `org-apache-dubbo:demo/demo-service@1.0.0`) and prints each greeting on a line
//! of stdout; with no arguments it greets `world`.
//!
//! The first failed call prints `rpc error: <case>: <text>` on stderr and exits with code 3
//! (through `wasi:cli/exit.exit-with-code`: Rust's `process::exit` can only say 0 or 1 on
//! WASI 0.2).

use std::io::Write;

// Bindings for the Dubbo import only, read in place from the repository's `wit/` (see
// `hello-http`). The world exports nothing: `wasi:cli/run` comes from `main`.
wit_bindgen::generate!({
    world: "dubbo-examples:hello-cli/hello-cli",
    path: ["../../wit/dubbo-host", "../../wit/demo", "wit"],
    generate_all,
});

use dubbo::host::types::RpcError;
use org_apache_dubbo::demo::demo_service;

/// Exit code when a call fails.
const EXIT_RPC_ERROR: u8 = 3;

fn main() {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names.push("world".to_owned());
    }
    let mut stdout = std::io::stdout().lock();
    for name in &names {
        match demo_service::say_hello(name) {
            Ok(greeting) => {
                // A closed stdout (`| head`) is no reason to stop greeting or to panic.
                let _ = writeln!(stdout, "{greeting}");
            }
            Err(err) => {
                let _ = stdout.flush();
                eprintln!("rpc error: {}", describe(&err));
                wasip2::cli::exit::exit_with_code(EXIT_RPC_ERROR);
            }
        }
    }
}

/// `rpc-error` as `<case>: <text>`, the case name spelled as in the WIT.
fn describe(err: &RpcError) -> String {
    let (case, text) = match err {
        RpcError::Timeout(m) => ("timeout", m),
        RpcError::NoProvider(m) => ("no-provider", m),
        RpcError::Network(m) => ("network", m),
        RpcError::BizException(e) => {
            return format!("biz-exception: {}: {}", e.class_name, e.message)
        }
        RpcError::Forbidden(m) => ("forbidden", m),
        RpcError::Serialization(m) => ("serialization", m),
        RpcError::LimitExceeded(m) => ("limit-exceeded", m),
        RpcError::Other(m) => ("other", m),
    };
    format!("{case}: {text}")
}
