//! `test-provider`: a Dubbo provider of `org.apache.dubbo.demo.DemoService` for the demo and
//! the end-to-end tests. Prints `listening on HOST:PORT` once it accepts connections; takes
//! fault commands on stdin (see `dubbo_wasm_host_tests::faults`).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dubbo_wasm_host_tests::faults::Control;
use dubbo_wasm_host_tests::provider::serve_delayed;
use dubbo_wasm_host_tests::registration::{ProviderRecord, Registration};

#[derive(Parser)]
#[command(about = "A Dubbo test provider serving org.apache.dubbo.demo.DemoService")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:20880")]
    listen: String,
    /// Register this provider in ZooKeeper (`zookeeper://HOST:PORT[?session=MS]`); the node is
    /// removed on SIGTERM/SIGINT, or when the session expires after a kill.
    #[arg(long)]
    registry: Option<String>,
    /// `version` of the registered URL.
    #[arg(long)]
    version: Option<String>,
    /// `group` of the registered URL.
    #[arg(long)]
    group: Option<String>,
    /// `weight` of the registered URL.
    #[arg(long)]
    weight: Option<u32>,
    /// `application` of the registered URL.
    #[arg(long, default_value = "demo-provider")]
    application: String,
    /// Another `key=value` parameter of the registered URL (repeatable).
    #[arg(long = "extra", value_parser = parse_key_value)]
    extra: Vec<(String, String)>,
    /// Delay every reply to a request by this many milliseconds (keeps calls in flight).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    println!("listening on {}", listener.local_addr()?);
    let control = Arc::new(Control::default());
    let commands = control.clone();
    tokio::spawn(async move { commands.read_stdin().await });
    let delay = Duration::from_millis(args.delay_ms);
    let Some(registry) = args.registry else {
        serve_delayed(listener, control, delay).await?;
        return Ok(());
    };
    let record = ProviderRecord {
        host: "127.0.0.1".to_string(),
        port: listener.local_addr()?.port(),
        application: args.application,
        version: args.version,
        group: args.group,
        weight: args.weight,
        extra: args.extra,
    };
    let registration = Registration::register(&registry, record.url()).await?;
    println!("registered {}", registration.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        served = serve_delayed(listener, control, delay) => served?,
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    registration.unregister().await?;
    Ok(())
}
