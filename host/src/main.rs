//! The `dubbo-wasm-host` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use dubbo_wasm_host::config::{Config, Trigger};
use dubbo_wasm_host::protocol::dubbo::ConnectionPool;
use dubbo_wasm_host::reference::References;
use dubbo_wasm_host::wasm::http::HttpTrigger;
use dubbo_wasm_host::wasm::{new_engine, Guest};

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
            Command::Serve { config } => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config_path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&config_path)?;
    let pool = ConnectionPool::default();
    let refs = References::build(&config.references, &pool)?;
    refs.connect_eagerly();
    let engine = new_engine()?;
    let mut routes = Vec::new();
    for g in &config.guests {
        if g.trigger != Trigger::Http {
            continue;
        }
        let path = config.guest_path(g);
        let started = std::time::Instant::now();
        let guest = Guest::load(&engine, g, &path, &refs)?;
        tracing::info!(guest = %g.name, path = %path.display(), ms = started.elapsed().as_millis() as u64, "guest loaded");
        let route = g.route.clone().unwrap_or_else(|| "/".to_string());
        routes.push((route, Arc::new(guest)));
    }
    if routes.is_empty() {
        bail!(
            "config file {}: no [[guest]] with trigger = \"http\" to serve\n  fix: add one (see guest-examples/demo.toml)",
            config_path.display()
        );
    }
    let listen = &config.http.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen} ([http] listen in {})\n  fix: stop the process using that port or choose another address",
            config_path.display()
        )
    })?;
    let addr = listener.local_addr()?;
    for (route, guest) in &routes {
        println!("serving guest `{}` at http://{addr}{route}", guest.name());
    }
    let trigger = Arc::new(HttpTrigger::new(routes));
    let server = tokio::spawn(trigger.serve(listener));
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.abort();
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
