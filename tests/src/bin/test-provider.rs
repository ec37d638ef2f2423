//! `test-provider`: a Dubbo provider of `org.apache.dubbo.demo.DemoService` (and
//! `org.apache.dubbo.samples.UserService`) for the demo and the end-to-end tests. Prints
//! `listening on HOST:PORT` once it accepts connections; takes fault commands on stdin (see
//! `dubbo_wasm_host_tests::faults`), among them `hostile MODE [N|always]`, which answers
//! requests with the hostile replies of `dubbo_wasm_host_tests::hostile`.
//!
//! With `--registry` it registers the way Java Dubbo 3.2 does for `--register-mode`:
//! `interface` (a provider URL under `/dubbo/{interface}/providers`, printing `registered URL`),
//! `instance` (application-level: an instance under `/services/{application}`, the service-name
//! mappings, and the metadata served by `MetadataService` or written to the metadata report,
//! printing `registered instance PATH revision REV`; see `dubbo_wasm_host_tests::discovery`), or
//! `all` (both). Nodes are removed on SIGTERM/SIGINT, or when the session expires after a kill.
//! `--publish-definition dubbo3|dubbo27` also writes `UserService`'s service definition to the
//! metadata report (see `dubbo_wasm_host_tests::definition`), for `wit generate`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, ValueEnum};
use dubbo_wasm_host_tests::definition;
use dubbo_wasm_host_tests::discovery::{
    now_ms, service_infos, Instance, InstanceRegistration, MetadataStorage, SERVED,
};
use dubbo_wasm_host_tests::faults::Control;
use dubbo_wasm_host_tests::metadata::MetadataInfo;
use dubbo_wasm_host_tests::provider::USER_SERVICE;
use dubbo_wasm_host_tests::provider::{serve_exports, Exports, MetadataExport, UnknownRevision};
use dubbo_wasm_host_tests::registration::{ProviderRecord, Registration};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(about = "A Dubbo test provider serving org.apache.dubbo.demo.DemoService")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:20880")]
    listen: String,
    /// Register this provider in ZooKeeper (`zookeeper://HOST:PORT[?session=MS&group=G]`); the
    /// nodes are removed on SIGTERM/SIGINT, or when the session expires after a kill.
    #[arg(long)]
    registry: Option<String>,
    /// What to register: provider URLs per interface, the application instance, or both.
    #[arg(long, value_enum, default_value_t = RegisterMode::Interface)]
    register_mode: RegisterMode,
    /// Where consumers get the instance's metadata: its `MetadataService` (`local`) or the
    /// metadata report in ZooKeeper (`remote`).
    #[arg(long, value_enum, default_value_t = Storage::Local)]
    metadata_storage: Storage,
    /// Serve `MetadataService` on this port of its own (0: a free one) instead of the services'
    /// port; it is the port the instance advertises.
    #[arg(long)]
    metadata_port: Option<u16>,
    /// Make `MetadataService` misbehave: `refuse` advertises a port nothing accepts on, `mute`
    /// accepts and never answers it (stdin `answer-metadata` ends that).
    #[arg(long, value_enum)]
    metadata_fault: Option<MetadataFault>,
    /// What `getMetadataInfo` answers for a revision that is not this provider's: `null`, as
    /// Java 3.2 does, or a SERVICE_ERROR status.
    #[arg(long, value_enum, default_value_t = Unknown::Null)]
    unknown_revision: Unknown,
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
    /// The `token` calls must carry (Dubbo's provider `token`); registered as a parameter.
    #[arg(long)]
    token: Option<String>,
    /// Publish `UserService`'s service definition in the metadata report, in Dubbo 3's flat
    /// or Dubbo 2.7's nested shape (needs --registry); prints `published definition PATH`.
    #[arg(long, value_enum)]
    publish_definition: Option<DefinitionShape>,
    /// Delay every reply to a request by this many milliseconds (keeps calls in flight).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RegisterMode {
    Interface,
    Instance,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DefinitionShape {
    Dubbo3,
    Dubbo27,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Storage {
    Local,
    Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MetadataFault {
    Refuse,
    Mute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Unknown {
    Null,
    Error,
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
    let mut exports = Exports::services();
    exports.token = args.token.clone();
    let Some(registry) = args.registry.clone() else {
        if args.register_mode != RegisterMode::Interface {
            bail!(
                "application-level registration (--register-mode instance or all) needs --registry"
            );
        }
        if args.publish_definition.is_some() {
            bail!("--publish-definition needs --registry (the metadata report is in ZooKeeper)");
        }
        serve_exports(listener, control, delay, exports).await?;
        return Ok(());
    };
    let mut extra = args.extra.clone();
    if let Some(token) = &args.token {
        extra.push(("token".to_string(), token.clone()));
    }
    let record = ProviderRecord {
        host: "127.0.0.1".to_string(),
        port: listener.local_addr()?.port(),
        application: args.application.clone(),
        version: args.version.clone(),
        group: args.group.clone(),
        weight: args.weight,
        extra,
    };
    if let Some(shape) = args.publish_definition {
        let shape = match shape {
            DefinitionShape::Dubbo3 => definition::Shape::Dubbo3,
            DefinitionShape::Dubbo27 => definition::Shape::Dubbo27,
        };
        let path = definition::publish(&registry, &record, shape).await?;
        println!("published definition {path}");
    }
    let registration = match args.register_mode {
        RegisterMode::Interface | RegisterMode::All => {
            let users_methods = SERVED
                .iter()
                .find(|(i, _)| *i == USER_SERVICE)
                .map_or("", |(_, m)| m);
            let registration = Registration::register(&registry, record.url()).await?;
            println!("registered {}", registration.url());
            // UserService too, so references to it find this provider at interface level.
            let users = record.url_of(USER_SERVICE, users_methods);
            let users = Registration::register(&registry, users).await?;
            Some((registration, users))
        }
        RegisterMode::Instance => None,
    };
    let mut metadata = None;
    let mut instance = None;
    if args.register_mode != RegisterMode::Interface {
        let app = AppLevel::start(&args, &registry, &record, &listener, &control).await?;
        exports.metadata = app.on_services_port;
        metadata = app.own_port;
        instance = Some(app.registration);
    }
    let serve_metadata = async {
        match metadata {
            Some((listener, exports)) => {
                serve_exports(listener, control.clone(), delay, exports).await
            }
            None => std::future::pending().await,
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        served = serve_exports(listener, control.clone(), delay, exports) => served?,
        served = serve_metadata => served?,
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Every node goes, even if removing one fails; the demo service's first, since
    // consumers (and tests) watch it.
    let mut removed: anyhow::Result<()> = Ok(());
    if let Some((demo, users)) = registration {
        let demo = demo.unregister().await;
        let users = users.unregister().await;
        removed = demo.and(users).map_err(Into::into);
    }
    if let Some(i) = instance {
        removed = removed.and(i.unregister().await);
    }
    removed
}

/// The application-level side of a provider: its metadata, where `MetadataService` is served
/// (on the services' port, on its own, or nowhere), and the registered instance.
struct AppLevel {
    /// `MetadataService`, when it answers on the services' port.
    on_services_port: Option<Arc<MetadataExport>>,
    /// `MetadataService`'s own listener and what it serves, when it has one.
    own_port: Option<(TcpListener, Exports)>,
    registration: InstanceRegistration,
}

impl AppLevel {
    async fn start(
        args: &Args,
        registry: &str,
        record: &ProviderRecord,
        services: &TcpListener,
        control: &Control,
    ) -> anyhow::Result<AppLevel> {
        let ip = services.local_addr()?.ip();
        let storage = match args.metadata_storage {
            Storage::Local => MetadataStorage::Local,
            Storage::Remote => MetadataStorage::Remote,
        };
        // Where MetadataService is advertised, and its own listener if it has one.
        let (advertised, listener) = match (storage, args.metadata_fault, args.metadata_port) {
            (MetadataStorage::Remote, ..) => (None, None),
            (_, Some(MetadataFault::Refuse), Some(p)) if p != 0 && p != record.port => {
                (Some(p), None)
            }
            (_, Some(MetadataFault::Refuse), _) => {
                // A port that was free a moment ago: nothing accepts there.
                let closed = TcpListener::bind((ip, 0)).await?.local_addr()?.port();
                (Some(closed), None)
            }
            (_, _, Some(p)) if p != record.port => {
                let listener = TcpListener::bind((ip, p)).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {ip}:{p} for MetadataService: {e}")
                })?;
                let port = listener.local_addr()?.port();
                println!("metadata listening on {}", listener.local_addr()?);
                (Some(port), Some(listener))
            }
            _ => (Some(record.port), None),
        };
        if args.metadata_fault == Some(MetadataFault::Mute) {
            control.mute_metadata.store(true, Ordering::Relaxed);
        }
        let configured = args.metadata_port.and(advertised);
        let info = MetadataInfo::new(&record.application, service_infos(record, configured));
        let unknown_revision = match args.unknown_revision {
            Unknown::Null => UnknownRevision::Null,
            Unknown::Error => UnknownRevision::Error,
        };
        let served = (storage == MetadataStorage::Local
            && args.metadata_fault != Some(MetadataFault::Refuse))
        .then(|| Arc::new(MetadataExport::new(info.clone(), unknown_revision)));
        let (on_services_port, own_port) = match listener {
            Some(listener) => {
                let exports = Exports {
                    services: false,
                    metadata: served,
                    token: None,
                };
                (None, Some((listener, exports)))
            }
            None => (served, None),
        };
        let instance = Instance {
            host: record.host.clone(),
            port: record.port,
            application: record.application.clone(),
            revision: info.revision.clone(),
            storage,
            metadata_port: advertised,
            timestamp_ms: now_ms(),
        };
        let registration = InstanceRegistration::register(registry, &instance, &info).await?;
        println!(
            "registered instance {} revision {}",
            registration.path(),
            info.revision
        );
        Ok(AppLevel {
            on_services_port,
            own_port,
            registration,
        })
    }
}
