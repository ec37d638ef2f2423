//! `dubbo-wasm-host wit generate`: the command line over [`super::generate`]. Reads the
//! definitions (metadata report, file, or a configured reference's registry), writes
//! `DIR/{name}.wit`, prints the reference TOML on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{fetch, generate, Options, PackageName, Providers, Service, ServiceDefinition};
use crate::config::Config;
use crate::registry::{self, DefinitionKey, RegistryOptions};
use crate::url::Url;

/// `wit` subcommands.
#[derive(Subcommand)]
pub enum WitCommand {
    /// Write a WIT package (and print the [[reference]] TOML binding it) from Dubbo service
    /// definitions: a registry's metadata report, a JSON file, or a configured reference.
    #[command(after_help = GENERATE_HELP)]
    Generate(Box<GenerateArgs>),
}

const GENERATE_HELP: &str = r#"Type mapping: README's table, plus Map<K,V> -> list<tuple<K, V>>, Set/arrays -> list<T>,
boxed types -> plain scalars (null refused), BigDecimal/BigInteger/java.time.* -> string,
java.util.Date -> s64 (epoch ms). Overloads: the one with the fewest parameters (primitives first)
keeps the plain name, the others get -by-<parameter types> (get-user-by-string).

Examples:
  dubbo-wasm-host wit generate --registry zookeeper://127.0.0.1:2181 \
      --interface org.apache.dubbo.samples.UserService --version 1.0.0 \
      --package acme:users --out wit/users
  dubbo-wasm-host wit generate --file definition.json --package acme:users --out wit/users
  dubbo-wasm-host wit generate --config host.toml --reference users --out wit/users"#;

/// The options of `wit generate`.
#[derive(Args)]
pub struct GenerateArgs {
    /// Read the definitions from this registry's metadata report, zookeeper://HOST:PORT.
    #[arg(long, conflicts_with_all = ["files", "config"], requires = "interfaces")]
    registry: Option<String>,
    /// Java interface to generate (repeatable: several share one package and its records).
    #[arg(long = "interface", value_name = "INTERFACE")]
    interfaces: Vec<String>,
    /// Service version (of every --interface).
    #[arg(long, conflicts_with = "config")]
    version: Option<String>,
    /// Service group (of every --interface).
    #[arg(long, conflicts_with = "config")]
    group: Option<String>,
    /// Provider application whose definition to read [default: the first that published one].
    #[arg(long, conflicts_with = "files")]
    application: Option<String>,
    /// Read a service definition from this JSON file instead (repeatable).
    #[arg(long = "file", value_name = "DEFINITION_JSON", conflicts_with_all = ["registry", "config"])]
    files: Vec<PathBuf>,
    /// A host config: generate for --reference, through that reference's registry.
    #[arg(long, short, requires = "reference", conflicts_with = "interfaces")]
    config: Option<PathBuf>,
    /// Id of the [[reference]] in --config.
    #[arg(long, requires = "config")]
    reference: Option<String>,
    /// WIT package, namespace:name[@version] [default: the reference's `wit`, else from the
    /// Java package, e.g. org-apache-dubbo:samples].
    #[arg(long, value_name = "NS:NAME[@VERSION]")]
    package: Option<String>,
    /// Directory to write {name}.wit into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Interface.method whose object-typed result and parameters are option<..> (repeatable).
    #[arg(long, value_name = "CLASS.METHOD")]
    nullable: Vec<String>,
    /// Leave methods with types WIT cannot express to dubbo:host/generic (JSON) instead of
    /// failing.
    #[arg(long)]
    lenient: bool,
}

/// A usage problem (exit 2) or a failure (exit 1), as one message.
enum Failure {
    Usage(String),
    Failed(String),
}

/// Runs a `wit` subcommand: 0 when the package was written, 1 when it could not be, 2 on a
/// usage error.
pub async fn run(command: WitCommand) -> ExitCode {
    let WitCommand::Generate(args) = command;
    match generate_command(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}

async fn generate_command(args: &GenerateArgs) -> Result<(), Failure> {
    let failed = |e: &dyn std::fmt::Display| Failure::Failed(e.to_string());
    let (services, providers) = if let (Some(path), Some(id)) = (&args.config, &args.reference) {
        from_config(path, id, args.application.as_deref()).await?
    } else if let Some(address) = &args.registry {
        let services = from_registry(address, args).await?;
        let providers = Providers::NewRegistry {
            id: "zk".to_string(),
            address: address.clone(),
        };
        (services, providers)
    } else if !args.files.is_empty() {
        let mut services = Vec::new();
        for file in &args.files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let definition = ServiceDefinition::from_json(&text)
                .map_err(|e| failed(&e.from_source(file.display().to_string())))?;
            services.push(service(
                definition,
                args.version.clone(),
                args.group.clone(),
            ));
        }
        if !args.interfaces.is_empty() {
            services.retain(|s| args.interfaces.contains(&s.definition.interface));
            if services.len() != args.interfaces.len() {
                return Err(Failure::Usage(format!(
                    "--interface names {} interface(s), but the files describe only {} of them",
                    args.interfaces.len(),
                    services.len()
                )));
            }
        }
        let providers = Providers::Url("dubbo://127.0.0.1:20880".to_string());
        (services, providers)
    } else {
        return Err(Failure::Usage(
            "give --registry zookeeper://HOST:PORT with --interface, --file DEFINITION_JSON, or --config F --reference R".into(),
        ));
    };
    let package = match &args.package {
        Some(p) => p
            .parse::<PackageName>()
            .map_err(|e| Failure::Usage(e.to_string()))?,
        None => default_package(args, &services)?,
    };
    let options = Options {
        package,
        nullable: args.nullable.clone(),
        lenient: args.lenient,
    };
    let generated = generate(&services, &options).map_err(|e| failed(&e))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| failed(&format!("cannot create {}: {e}", args.out.display())))?;
    let file = args.out.join(&generated.file_name);
    std::fs::write(&file, &generated.wit)
        .map_err(|e| failed(&format!("cannot write {}: {e}", file.display())))?;
    for s in generated.skipped() {
        eprintln!(
            "warning: {}: `{}` is not typed (`{}`: {}); it is left to dubbo:host/generic",
            s.interface, s.java_signature, s.java_type, s.problem
        );
    }
    eprintln!("wrote {}", file.display());
    use std::io::Write;
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        generated.reference_toml(&services, &providers)
    );
    Ok(())
}

fn service(
    definition: ServiceDefinition,
    version: Option<String>,
    group: Option<String>,
) -> Service {
    Service {
        definition,
        version,
        group,
        reference_id: None,
        wit_name: None,
    }
}

/// `--package` left out: the reference's `wit`, else the first interface's Java package.
fn default_package(args: &GenerateArgs, services: &[Service]) -> Result<PackageName, Failure> {
    if let (Some(path), Some(id)) = (&args.config, &args.reference) {
        let config = Config::load(path).map_err(|e| Failure::Usage(e.to_string()))?;
        if let Some(wit) = config
            .references
            .iter()
            .find(|r| &r.id == id)
            .and_then(|r| r.wit.clone())
        {
            return PackageName::of_interface(&wit).map_err(|e| Failure::Usage(e.to_string()));
        }
    }
    let first = services
        .first()
        .map(|s| s.definition.interface.as_str())
        .unwrap_or_default();
    Ok(PackageName::of_java(first))
}

/// Opens a session to `address` for this command only: no cache file, fails fast when
/// ZooKeeper is not there; `timeouts` are a `[[registry]]` table's session and connect
/// timeouts (ms), where it has them.
async fn open_registry(
    address: &str,
    timeouts: (Option<u64>, Option<u64>),
) -> Result<std::sync::Arc<dyn crate::registry::Registry>, Failure> {
    let mut url = Url::parse(address).map_err(|e| {
        Failure::Usage(format!(
            "--registry `{address}`: {e} (write it as zookeeper://HOST:PORT)"
        ))
    })?;
    url.params
        .insert("file-cache".to_string(), "false".to_string());
    url.params.insert("check".to_string(), "true".to_string());
    let opts = RegistryOptions::from_address(url, "dubbo-wasm-host-wit", std::env::temp_dir())
        .with_timeouts(timeouts.0, timeouts.1);
    registry::connect(opts)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))
}

async fn from_registry(address: &str, args: &GenerateArgs) -> Result<Vec<Service>, Failure> {
    let registry = open_registry(address, (None, None)).await?;
    let mut services = Vec::new();
    for interface in &args.interfaces {
        let key = DefinitionKey {
            interface: interface.clone(),
            version: args.version.clone(),
            group: args.group.clone(),
            application: args.application.clone(),
        };
        let definition = fetch(registry.as_ref(), &key)
            .await
            .map_err(|e| Failure::Failed(e.to_string()))?;
        services.push(service(
            definition,
            args.version.clone(),
            args.group.clone(),
        ));
    }
    Ok(services)
}

/// The reference `id` of the config at `path`: its interface, version and group, read from
/// the first of its registries.
async fn from_config(
    path: &std::path::Path,
    id: &str,
    application: Option<&str>,
) -> Result<(Vec<Service>, Providers), Failure> {
    let config = Config::load(path).map_err(|e| Failure::Usage(e.to_string()))?;
    let Some(reference) = config.references.iter().find(|r| r.id == id) else {
        let ids: Vec<&str> = config.references.iter().map(|r| r.id.as_str()).collect();
        return Err(Failure::Usage(format!(
            "config file {} has no [[reference]] with id = \"{id}\" (ids: {})",
            path.display(),
            ids.join(", ")
        )));
    };
    let Some(registry) = reference
        .registry
        .iter()
        .find_map(|r| config.registries.iter().find(|g| &g.id == r))
    else {
        return Err(Failure::Usage(format!(
            "reference `{id}` has no registry (a direct url), so there is no metadata report to read; use --file"
        )));
    };
    let session = open_registry(
        &registry.address,
        (registry.session_timeout, registry.connect_timeout),
    )
    .await?;
    let key = DefinitionKey {
        interface: reference.interface.clone(),
        version: reference.version.clone(),
        group: reference.group.clone(),
        application: application.map(str::to_string),
    };
    let definition = fetch(session.as_ref(), &key)
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let mut s = service(
        definition,
        reference.version.clone(),
        reference.group.clone(),
    );
    s.reference_id = Some(id.to_string());
    s.wit_name = reference
        .wit
        .as_deref()
        .and_then(|w| w.split_once('/'))
        .map(|(_, i)| i.split('@').next().unwrap_or(i).to_string());
    Ok((vec![s], Providers::Registries(reference.registry.clone())))
}
