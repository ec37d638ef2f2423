//! `test-provider`: a Dubbo provider of `org.apache.dubbo.demo.DemoService` for the demo and
//! the end-to-end tests. Prints `listening on HOST:PORT` once it accepts connections; takes
//! fault commands on stdin (see `dubbo_wasm_host_tests::faults`).

use std::sync::Arc;

use clap::Parser;
use dubbo_wasm_host_tests::faults::Control;
use dubbo_wasm_host_tests::provider::serve;

#[derive(Parser)]
#[command(about = "A Dubbo test provider serving org.apache.dubbo.demo.DemoService")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:20880")]
    listen: String,
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
    serve(listener, control).await?;
    Ok(())
}
