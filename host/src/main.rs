//! The `dubbo-wasm-host` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use dubbo_wasm_host::config::{Config, GuestConfig, ReferenceConfig, Trigger};
use dubbo_wasm_host::generic;
use dubbo_wasm_host::hessian2::{Map, Value};
use dubbo_wasm_host::host::build_references;
use dubbo_wasm_host::protocol::dubbo::ConnectionPool;
use dubbo_wasm_host::reference::Reference;
use dubbo_wasm_host::rpc::{Invocation, RpcError};
use dubbo_wasm_host::url::Url;
use dubbo_wasm_host::wasm::{new_engine, MIN_POOL_INSTANCES};
use serde::Deserialize;

/// mimalloc: a guest request makes a few hundred small allocations (store, instances, wasi-http
/// resources, hyper buffers); glibc's malloc spent about 10 % of the host's CPU on them under
/// load, and the job serves about 15 % more requests with this one (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dubbo-wasm-host",
    version,
    about = "Run WebAssembly guests against Apache Dubbo services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the configured guests until interrupted.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration without serving: config fields, guest files, each guest's
    /// imports against its references, and registry reachability.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Call one method of a Dubbo service with JSON arguments and print the result as JSON
    /// (like Dubbo's telnet `invoke`).
    #[command(after_help = CALL_HELP)]
    Call(Box<CallArgs>),
    /// Load a Dubbo service with calls of one method and report calls/s, latency
    /// percentiles and errors by kind, through the same reference a guest uses.
    #[command(after_help = BENCH_HELP)]
    Bench(Box<BenchArgs>),
    /// WIT from Dubbo service definitions: `wit generate`.
    Wit {
        #[command(subcommand)]
        command: dubbo_wasm_host::witgen::command::WitCommand,
    },
    /// Run a `wasi:cli/run` guest once and exit with its exit code.
    Run {
        /// The TOML configuration file (references, and the guest's settings if named there).
        #[arg(long, short)]
        config: PathBuf,
        /// A [[guest]] name from the config, or the path of a component (which is then
        /// granted every reference of the config).
        guest: String,
        /// Arguments passed to the guest (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

const BENCH_HELP: &str = r#"Arguments and types follow `call` (see `dubbo-wasm-host call --help`).

Examples:
  dubbo-wasm-host bench --url dubbo://127.0.0.1:20880 \
      --interface org.apache.dubbo.demo.DemoService --version 1.0.0 \
      -c 64 -d 10s sayHello '["world"]'
  dubbo-wasm-host bench --config host.toml --reference users --rate 5000 \
      getUser --types long '[7]' --json"#;

const CALL_HELP: &str = r#"Without --types, each parameter type is inferred from its JSON argument:
  string -> java.lang.String, integer -> int (long if it does not fit an int),
  other number -> double, true/false -> boolean, null -> java.lang.Object,
  array -> java.util.List, object -> java.util.Map (or the class its "class" key names).
Give --types when the method declares anything else.

JSON follows Dubbo's generic conventions: a POJO is an object, optionally naming its Java
class under "class"; results always carry "class" first. Longs are exact. An enum constant
may be given as a string. A java.util.Date is epoch milliseconds; byte[] is an array of numbers.

Exit status: 0 with the result as one line of JSON on stdout; 1 on an rpc error, printed on
stderr as `<kind>: <message>` (a business exception as `biz-exception: <class>: <message>`);
2 on a usage error or an argument that does not fit its type.

Examples:
  dubbo-wasm-host call --url dubbo://127.0.0.1:20880 \
      --interface org.apache.dubbo.demo.DemoService sayHello '["world"]'
  dubbo-wasm-host call --config host.toml --reference users \
      getUser --types long '[9007199254740993]'"#;

/// What to call: a reference (from `--config`) or a provider URL and interface, and the
/// method with its arguments. Shared by `call` and `bench`.
#[derive(Args)]
struct Target {
    /// Provider address, dubbo://HOST:PORT (several separated by `;`).
    #[arg(
        long,
        required_unless_present = "config",
        conflicts_with = "config",
        requires = "interface"
    )]
    url: Option<String>,
    /// Java interface of the service, e.g. org.apache.dubbo.demo.DemoService.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    interface: Option<String>,
    /// Service version.
    #[arg(long, conflicts_with = "config")]
    version: Option<String>,
    /// Service group.
    #[arg(long, conflicts_with = "config")]
    group: Option<String>,
    /// Call timeout in milliseconds [default: 3000, or the reference's own with --config].
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// TOML configuration file holding the reference to call, instead of --url/--interface.
    /// (No `-c`: that is `bench`'s --concurrency.)
    #[arg(long, requires = "reference")]
    config: Option<PathBuf>,
    /// Id of the [[reference]] in --config to call.
    #[arg(long, requires = "config")]
    reference: Option<String>,
    /// Parameter types as Java names, comma-separated, e.g. long,java.lang.String,org.x.User.
    #[arg(long, value_name = "T1,T2,...")]
    types: Option<String>,
    /// Method name, e.g. sayHello.
    method: String,
    /// The arguments as one JSON array, e.g. '["world", 42]' [default: no arguments].
    #[arg(value_name = "ARGS_JSON_ARRAY")]
    args: Option<String>,
}

/// The options of `call`.
#[derive(Args)]
struct CallArgs {
    #[command(flatten)]
    target: Target,
    /// Also print the attachments the provider sent back, as JSON on stderr.
    #[arg(long)]
    attachments: bool,
}

/// The options of `bench`.
#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    target: Target,
    /// Callers (closed loop), or calls in flight at most (with --rate).
    #[arg(short = 'c', long, default_value_t = 16)]
    concurrency: usize,
    /// How long to call, e.g. 10s, 500ms, 2m.
    #[arg(short = 'd', long, default_value = "10s", value_parser = dubbo_wasm_host::bench::parse_duration)]
    duration: std::time::Duration,
    /// Calls before counting starts (connections, caches), e.g. 1s; 0s for none.
    #[arg(long, default_value = "1s", value_parser = parse_warmup)]
    warmup: std::time::Duration,
    /// Connections of its own per provider (Dubbo's `connections`) [default: one shared].
    #[arg(long, value_name = "N")]
    connections: Option<u32>,
    /// Calls started per second, whatever the latency (open loop) [default: closed loop].
    #[arg(long, value_name = "CALLS_PER_SEC")]
    rate: Option<f64>,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_warmup(text: &str) -> Result<std::time::Duration, String> {
    if text.trim().trim_end_matches(['s', 'm']).trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    dubbo_wasm_host::bench::parse_duration(text)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => dubbo_wasm_host::server::serve(&config)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(anyhow::Error::from),
            Command::Check { config } => Ok(dubbo_wasm_host::check::run(&config).await),
            Command::Call(args) => call(*args).await,
            Command::Bench(args) => bench(*args).await,
            Command::Wit { command } => Ok(dubbo_wasm_host::witgen::command::run(command).await),
            Command::Run {
                config,
                guest,
                args,
            } => run(config, guest, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and the causes its message does not already include, joined by `: `.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// A usage error: printed as one line, exit status 2.
struct Usage(String);

/// The reference and the invocation `target` names. The reference registers no consumer and
/// needs no provider at startup; `connections` gives it its own per provider.
async fn prepare(
    target: &Target,
    connections: Option<u32>,
) -> anyhow::Result<Result<(Arc<Reference>, Invocation), Usage>> {
    let usage = |message: String| Ok(Err(Usage(message)));
    let json_args = match serde_json::from_str(target.args.as_deref().unwrap_or("[]")) {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(other) => {
            return usage(format!(
                "ARGS_JSON_ARRAY must be a JSON array of the arguments, e.g. '[\"world\", 42]'; got {other}"
            ))
        }
        Err(e) => {
            return usage(format!(
                "ARGS_JSON_ARRAY is not valid JSON: {e}\n  fix: quote it for the shell, e.g. '[\"world\", 42]'"
            ))
        }
    };
    let types = match &target.types {
        Some(t) => dubbo_wasm_host::java::split_type_list(t),
        // `$echo(Object)`, as Dubbo's EchoService declares it.
        None if target.method == generic::ECHO => {
            vec!["java.lang.Object".to_string(); json_args.len()]
        }
        None => json_args.iter().map(generic::infer_java_type).collect(),
    };
    let invocation = match generic::invocation(&target.method, &types, &json_args) {
        Ok(inv) => inv,
        Err(e) => return usage(e.to_string()),
    };
    let reference = match (&target.config, &target.reference) {
        (Some(path), Some(id)) => {
            let config = match Config::load(path) {
                Ok(c) => c,
                Err(e) => return usage(e.to_string()),
            };
            let mut config = config.clone();
            config.references.retain(|r| &r.id == id);
            let Some(cfg) = config.references.first_mut() else {
                let ids: Vec<&str> = config.references.iter().map(|r| r.id.as_str()).collect();
                return usage(format!(
                    "config file {} has no [[reference]] with id = \"{id}\" (ids: {})",
                    path.display(),
                    ids.join(", ")
                ));
            };
            if target.timeout.is_some() {
                cfg.timeout = target.timeout;
            }
            if connections.is_some() {
                cfg.connections = connections;
            }
            cfg.register = Some(false);
            cfg.check = Some(false);
            match build_references(&config).await {
                Ok(refs) => refs.get(id).cloned().context("reference just built")?,
                Err(e) => return usage(format!("{e:#}")),
            }
        }
        _ => {
            let (Some(raw), Some(interface)) = (&target.url, &target.interface) else {
                return usage("give --url and --interface, or --config and --reference".into());
            };
            let url = if raw.contains("://") {
                raw.clone()
            } else {
                format!("dubbo://{raw}")
            };
            for u in url.split(';').map(str::trim).filter(|u| !u.is_empty()) {
                match Url::parse(u) {
                    Ok(p) if p.protocol == "dubbo" && p.port != 0 => {}
                    _ => return usage(format!("--url `{u}` is not a dubbo://HOST:PORT address")),
                }
            }
            // Read as a [[reference]] table is, so every other setting keeps its file default.
            let cfg = ReferenceConfig::deserialize(serde_json::json!({
                "id": "call",
                "interface": interface,
                "version": target.version,
                "group": target.group,
                "url": url,
                "timeout": target.timeout.unwrap_or(3000),
                "connections": connections,
            }))
            .context("reference from the command line")?;
            match Reference::build(&cfg, &Arc::new(ConnectionPool::default())) {
                Ok(r) => Arc::new(r),
                Err(e) => return usage(e.to_string()),
            }
        }
    };
    Ok(Ok((reference, invocation)))
}

/// One generic call: exit 0 with the JSON result on stdout, 1 on an rpc error, 2 on a usage
/// error, each error as one line on stderr.
async fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let (reference, invocation) = match prepare(&args.target, None).await? {
        Ok(ready) => ready,
        Err(Usage(message)) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    match reference.invoke(&invocation).await {
        Ok(result) => {
            if args.attachments {
                // Attachments follow the value in the same Hessian stream, so refs count on.
                let map = Value::Map(Map::untyped(
                    result
                        .attachments
                        .iter()
                        .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                        .collect(),
                ));
                let roots = [result.value.clone(), map];
                match generic::hessian_to_json_text(&roots[1], &roots) {
                    Ok(text) => eprintln!("{text}"),
                    Err(e) => eprintln!("attachments: {e}"),
                }
            }
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            // Streamed, and checked against the budget before anything is written: a reply
            // whose references expand too far is a serialization error, not gigabytes.
            let roots = std::slice::from_ref(&result.value);
            match generic::write_hessian_json(&result.value, roots, &mut out) {
                Err(e @ generic::JsonError::OverBudget { .. }) => {
                    let e = RpcError::Serialization(e.to_string());
                    eprintln!("{}", rpc_error_line(&e));
                    Ok(ExitCode::from(1))
                }
                Err(generic::JsonError::Io(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::Error::new(e).context("cannot write the result to stdout"))
                }
                // A closed pipe (`| head`) is what the reader wanted, not an error.
                Ok(()) | Err(generic::JsonError::Io(_)) => {
                    match writeln!(out).and_then(|()| out.flush()) {
                        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                            Err(anyhow::Error::new(e).context("cannot write the result to stdout"))
                        }
                        _ => Ok(ExitCode::SUCCESS),
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("{}", rpc_error_line(&e));
            Ok(ExitCode::from(1))
        }
    }
}

/// `bench`: calls as the options say, a progress line a second on stderr, then the report
/// (text, or `--json` on stdout); exit 1 when every call failed, 2 on a usage error.
async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let (reference, invocation) = match prepare(&args.target, args.connections).await? {
        Ok(ready) => ready,
        Err(Usage(message)) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        eprintln!("error: --rate must be a number of calls per second above 0");
        return Ok(ExitCode::from(2));
    }
    let opts = dubbo_wasm_host::bench::BenchOptions {
        concurrency: args.concurrency.max(1),
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        progress: true,
    };
    let report = dubbo_wasm_host::bench::run(reference, invocation, &opts).await;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = if args.json {
        writeln!(out, "{}", report.json())
    } else {
        write!(out, "{}", report.text())
    };
    Ok(if report.calls > 0 && report.failed() == report.calls {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `<kind>: <message>`, with a business exception's message as `<class>: <message>`.
fn rpc_error_line(e: &RpcError) -> String {
    format!("{}: {}", e.kind(), e.message())
}

/// `run`: one CLI guest, stdout and stderr passed through, its exit code returned.
async fn run(config_path: PathBuf, guest: String, args: Vec<String>) -> anyhow::Result<ExitCode> {
    let config = Config::load(&config_path)?;
    let (cfg, path) = match config.guests.iter().find(|g| g.name == guest) {
        Some(g) => (g.clone(), config.guest_path(g)),
        None => {
            let path = PathBuf::from(&guest);
            if !path.exists() {
                let names: Vec<&str> = config.guests.iter().map(|g| g.name.as_str()).collect();
                bail!(
                    "`{guest}` is neither a [[guest]] in {} (guests: {}) nor a file\n  fix: name a configured guest or give the path of a .wasm component",
                    config_path.display(),
                    names.join(", ")
                );
            }
            let name = path
                .file_stem()
                .map_or_else(|| "guest".to_string(), |s| s.to_string_lossy().into_owned());
            let cfg = GuestConfig {
                name,
                path: path.clone(),
                trigger: Trigger::Cli,
                route: None,
                references: config.references.iter().map(|r| r.id.clone()).collect(),
                max_memory_mib: None,
                timeout: None,
                max_instances: None,
                instance_reuse: None,
            };
            (cfg, path)
        }
    };
    let refs = build_references(&config).await?;
    let engine = new_engine(MIN_POOL_INSTANCES)?;
    let code = dubbo_wasm_host::wasm::cli::run(&engine, &cfg, &path, &refs, &args).await?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks flag clashes (e.g. two `-c`) only in debug builds and at parse time; a
    /// release binary would silently pick one. This runs the check on every subcommand.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn bench_takes_c_as_concurrency() {
        let cli = <super::Cli as clap::Parser>::try_parse_from([
            "dubbo-wasm-host",
            "bench",
            "--url",
            "dubbo://127.0.0.1:1",
            "--interface",
            "I",
            "-c",
            "64",
            "m",
        ]);
        match cli.map(|c| c.command) {
            Ok(super::Command::Bench(b)) => assert_eq!(b.concurrency, 64),
            Ok(_) => panic!("not bench"),
            Err(e) => panic!("{e}"),
        }
    }
}
