//! `dubbo-wasm-host check --config F`: validates everything it can without serving — the
//! config's fields, each guest's file, its compilation and the binding of its imports to its
//! granted references, the registries' reachability and the listen addresses — and prints every
//! problem with the field it concerns and a fix.
//!
//! Nothing is registered and no provider is called: guests are bound against placeholder
//! references that never connect (binding reads only a reference's interface, WIT name, method
//! settings and Java types), and a registry is only opened as a ZooKeeper session and closed.
//! Compiling goes through the engine's on-disk cache, so a `serve` after a `check` starts fast.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::Engine;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::config::{Config, ConfigError, GuestConfig, RegistryConfig, Trigger};
use crate::protocol::dubbo::ConnectionPool;
use crate::reference::{ReferenceError, References};
use crate::registry::{self, RegistryError, RegistryOptions};
use crate::url::Url;
use crate::wasm::bind::interface_matches;
use crate::wasm::guest::{compile, linker_for};
use crate::wasm::{new_engine, WasmError};

/// How long a registry or a provider gets to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the placeholder references guests are bound against point; never connected.
const PLACEHOLDER_URL: &str = "dubbo://127.0.0.1:9";

/// Checks the configuration at `path`, prints each problem with its field and a fix, and
/// returns the exit code (0 when nothing is wrong).
pub async fn run(path: &Path) -> ExitCode {
    let mut report = Report::new(path);
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            report.add(Finding::Error(config_problem(e)));
            return report.finish();
        }
    };
    report.add(Finding::Ok(format!(
        "config {} is valid: {}, {}, {}",
        path.display(),
        count(config.references.len(), "reference", "references"),
        count(config.guests.len(), "guest", "guests"),
        count(config.registries.len(), "registry", "registries")
    )));
    // The network probes run while the guests compile; their findings are printed after.
    let registries = start_registry_checks(&config);
    let providers = start_provider_checks(&config);
    check_guests(&config, &mut report).await;
    for pending in registries.into_iter().chain(providers) {
        report.add(pending.finding().await);
    }
    for finding in check_listeners(&config).await {
        report.add(finding);
    }
    report.finish()
}

/// `1 guest`, `2 guests`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `reference `a` needs`, `references `a`, `b` need`.
fn who_needs(ids: &[String]) -> String {
    match ids {
        [one] => format!("reference {one} needs"),
        many => format!("references {} need", many.join(", ")),
    }
}

/// What one check found.
enum Finding {
    Ok(String),
    Warning(Problem),
    Error(Problem),
}

/// Something wrong with one field of the config, worded for the person who wrote it.
struct Problem {
    /// `guest[0].path`, or empty when the problem is the file as a whole.
    field: String,
    problem: String,
    fix: String,
}

impl Problem {
    fn new(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A problem whose message may end with its own `\n  fix: ...` (as binding errors do);
    /// `fix` is used when it does not.
    fn with_embedded_fix(field: String, message: &str, fix: &str) -> Self {
        match message.split_once("\n  fix: ") {
            Some((problem, own_fix)) => Problem::new(field, problem, own_fix),
            None => Problem::new(field, message, fix),
        }
    }
}

/// Prints findings as they come (passed checks on stdout, problems on stderr) and counts them.
struct Report {
    file: String,
    errors: usize,
    warnings: usize,
}

impl Report {
    fn new(path: &Path) -> Report {
        Report {
            file: path.display().to_string(),
            errors: 0,
            warnings: 0,
        }
    }

    fn add(&mut self, finding: Finding) {
        // A closed pipe (`| head`) must not turn into a panic.
        match finding {
            Finding::Ok(line) => {
                let _ = writeln!(std::io::stdout().lock(), "ok: {line}");
            }
            Finding::Warning(p) => {
                self.warnings += 1;
                self.print("warning", &p);
            }
            Finding::Error(p) => {
                self.errors += 1;
                self.print("error", &p);
            }
        }
    }

    fn print(&self, label: &str, p: &Problem) {
        let at = if p.field.is_empty() {
            String::new()
        } else {
            format!(" {}:", p.field)
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{label}: {}:{at} {}\n  fix: {}",
            self.file,
            p.problem,
            p.fix
        );
    }

    fn finish(self) -> ExitCode {
        let warnings = match self.warnings {
            0 => String::new(),
            1 => " (1 warning)".to_string(),
            n => format!(" ({n} warnings)"),
        };
        if self.errors == 0 {
            let _ = writeln!(std::io::stdout().lock(), "config OK{warnings}");
            ExitCode::SUCCESS
        } else {
            let _ = writeln!(
                std::io::stderr().lock(),
                "{} problem(s) found{warnings}",
                self.errors
            );
            ExitCode::FAILURE
        }
    }
}

/// A check running in the background, or its finding when there was nothing to wait for.
enum Pending {
    Ready(Finding),
    Running {
        task: tokio::task::JoinHandle<Finding>,
        field: String,
    },
}

impl Pending {
    async fn finding(self) -> Finding {
        match self {
            Pending::Ready(f) => f,
            Pending::Running { task, field } => task.await.unwrap_or_else(|e| {
                Finding::Error(Problem::new(
                    field,
                    format!("the check itself failed: {e}"),
                    "report this as a bug in dubbo-wasm-host",
                ))
            }),
        }
    }
}

/// A config that cannot be loaded, as a problem with the field it names when it names one.
fn config_problem(e: ConfigError) -> Problem {
    match e {
        ConfigError::Invalid {
            field,
            problem,
            fix,
            ..
        } => Problem::new(field, problem, fix),
        ConfigError::Read { source, .. } => Problem::new(
            "",
            format!("cannot read the file: {source}"),
            "pass an existing file with --config",
        ),
        ConfigError::Parse { path, message } => {
            // The TOML error knows the byte span but not the key path; read it again for both.
            let parsed = std::fs::read_to_string(&path).ok().and_then(|text| {
                let err = toml::from_str::<Config>(&text).err()?;
                let span = err.span()?;
                Some((field_at(&text, span.start), line_of(&text, span.start), err))
            });
            match parsed {
                Some((field, line, err)) => {
                    let message = err.message().trim().to_string();
                    let fix = parse_fix(&message);
                    Problem::new(field, format!("{message} (line {line})"), fix)
                }
                None => Problem::new(
                    "",
                    format!("is not valid: {message}"),
                    "correct the TOML (see README, Configuration)",
                ),
            }
        }
    }
}

/// What to do about a TOML parse or type error, by what serde said.
fn parse_fix(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "remove the key or correct its spelling (keys are kebab-case); the known keys are listed above"
    } else if message.starts_with("missing field") {
        "add the field to this table (see README, Configuration)"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed above"
    } else {
        "correct the value at that line (see README, Configuration)"
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// The config field at byte `offset` of `text`, as the config's own messages name fields:
/// `reference[1].timeout`, `reference[0].methods.say-hello.retries`, `http.listen`, or the
/// table (`guest[2]`) when the offset is on a table header.
fn field_at(text: &str, offset: usize) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    // The last array-of-tables header: its name and the index of the current entry.
    let mut array: Option<(String, usize)> = None;
    let mut table = String::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let trimmed = line.trim();
        let header = if let Some(name) = trimmed
            .strip_prefix("[[")
            .and_then(|r| r.split_once("]]"))
            .map(|(n, _)| n.trim().to_string())
        {
            let n = counts.entry(name.clone()).or_insert(0);
            array = Some((name.clone(), *n));
            *n += 1;
            table = format!("{name}[{}]", *n - 1);
            true
        } else if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(n, _)| n.trim().to_string())
        {
            table = match &array {
                Some((a, i)) if name.starts_with(&format!("{a}.")) => {
                    format!("{a}[{i}]{}", &name[a.len()..])
                }
                _ => name,
            };
            true
        } else {
            false
        };
        if offset < end || end == text.len() {
            if header {
                return table;
            }
            let key = trimmed.split_once('=').map_or(trimmed, |(k, _)| k).trim();
            let key = key.trim_matches('"');
            return match (table.is_empty(), key.is_empty()) {
                (true, _) => key.to_string(),
                (false, true) => table,
                (false, false) => format!("{table}.{key}"),
            };
        }
        start = end;
    }
    table
}

/// Compiles and binds every guest, one after the other, printing each result.
async fn check_guests(config: &Config, report: &mut Report) {
    if config.guests.is_empty() {
        report.add(Finding::Warning(Problem::new(
            "guest",
            "there is no [[guest]]: `serve` and `run` have nothing to run",
            "add a [[guest]] (see guest-examples/demo.toml)",
        )));
        return;
    }
    let engine = match new_engine() {
        Ok(e) => e,
        Err(e) => {
            report.add(Finding::Error(Problem::new(
                "guest",
                format!("guests cannot be compiled here: {e}"),
                "run the check on a machine that can run the host (see README)",
            )));
            return;
        }
    };
    let refs = match offline_references(config).await {
        Ok(r) => r,
        Err(p) => {
            report.add(Finding::Error(p));
            return;
        }
    };
    // (reference id, WIT interface), to say which import went to which reference.
    let wits: Arc<[(String, String)]> = config
        .references
        .iter()
        .filter_map(|r| Some((r.id.clone(), r.wit.clone()?)))
        .collect();
    for (i, g) in config.guests.iter().enumerate() {
        let (engine, cfg, refs, wits) = (engine.clone(), g.clone(), refs.clone(), wits.clone());
        let path = config.guest_path(g);
        // Compiling a large (Python) component takes seconds of CPU.
        let task =
            tokio::task::spawn_blocking(move || check_guest(&engine, i, &cfg, &path, &refs, &wits));
        let pending = Pending::Running {
            task,
            field: format!("guest[{i}]"),
        };
        report.add(pending.finding().await);
    }
}

/// The references with every provider replaced by a lazy placeholder that never connects, and
/// no registry: what binding needs, and nothing that touches the network.
async fn offline_references(config: &Config) -> Result<References, Problem> {
    let mut offline = config.clone();
    offline.registries.clear();
    for r in &mut offline.references {
        r.url = Some(PLACEHOLDER_URL.to_string());
        r.registry.clear();
        r.lazy = Some(true);
        r.check = Some(false);
        r.register = Some(false);
        r.connections = Some(0);
    }
    let pool = Arc::new(ConnectionPool::default());
    References::build(&offline, &pool, &HashMap::new())
        .await
        .map_err(|e| {
            let field = match &e {
                ReferenceError::Invalid { id, .. }
                | ReferenceError::NoProvider { id, .. }
                | ReferenceError::Registry { id, .. } => config
                    .references
                    .iter()
                    .position(|r| &r.id == id)
                    .map_or_else(|| "reference".to_string(), |i| format!("reference[{i}]")),
            };
            Problem::with_embedded_fix(
                field,
                &e.to_string(),
                "correct this [[reference]] (see README, Configuration)",
            )
        })
}

/// One guest: readable, a component, its imports bound to its granted references, and the
/// export its trigger runs.
fn check_guest(
    engine: &Engine,
    i: usize,
    cfg: &GuestConfig,
    path: &Path,
    refs: &References,
    wits: &[(String, String)],
) -> Finding {
    let at = |f: &str| format!("guest[{i}].{f}");
    let component = match compile(engine, cfg, path) {
        Ok(c) => c,
        Err(WasmError::Read { source, .. }) => {
            return Finding::Error(Problem::new(
                at("path"),
                format!("guest `{}`: cannot read {}: {source}", cfg.name, path.display()),
                "build the guest (see README) or correct `path` (relative to the config file's directory)",
            ))
        }
        Err(WasmError::Compile { message, .. }) => {
            return Finding::Error(Problem::new(
                at("path"),
                format!(
                    "guest `{}`: {} is not a valid WebAssembly component: {message}",
                    cfg.name,
                    path.display()
                ),
                "build it as a component for wasm32-wasip2 (cargo build --target wasm32-wasip2, or componentize-py for Python)",
            ))
        }
        Err(e) => {
            return Finding::Error(Problem::with_embedded_fix(
                at("path"),
                &e.to_string(),
                "build the guest for wasm32-wasip2",
            ))
        }
    };
    let linker = match linker_for(engine, &component, cfg, refs) {
        Ok(l) => l,
        Err(e) => {
            return Finding::Error(Problem::with_embedded_fix(
                at("references"),
                &e.to_string(),
                "make the guest's imports match the WIT of the references it is granted",
            ))
        }
    };
    let pre = match linker.instantiate_pre(&component) {
        Ok(p) => p,
        Err(e) => {
            return Finding::Error(Problem::new(
                at("path"),
                format!(
                    "guest `{}`: imports something this host does not provide: {e:#}",
                    cfg.name
                ),
                "import only WASI 0.2 interfaces, dubbo:host and the Dubbo interfaces of the granted references",
            ))
        }
    };
    let exported = match cfg.trigger {
        Trigger::Http => ProxyPre::new(pre).map(drop).map_err(|e| {
            Problem::new(
                at("trigger"),
                format!(
                    "is \"http\" but guest `{}` does not export wasi:http/incoming-handler ({e:#})",
                    cfg.name
                ),
                "export it (see guest-examples/hello-http) or set trigger = \"cli\"",
            )
        }),
        Trigger::Cli => CommandPre::new(pre).map(drop).map_err(|e| {
            Problem::new(
                at("trigger"),
                format!(
                    "is \"cli\" but guest `{}` does not export wasi:cli/run ({e:#})",
                    cfg.name
                ),
                "build it as a binary (a `main` function) or set trigger = \"http\"",
            )
        }),
    };
    if let Err(p) = exported {
        return Finding::Error(p);
    }
    let bound = bindings(engine, &component, &cfg.references, wits);
    let what = if bound.is_empty() {
        "compiles and binds; it imports no Dubbo interface".to_string()
    } else {
        format!("binds {}", bound.join(", "))
    };
    Finding::Ok(format!("guest `{}` ({}) {what}", cfg.name, path.display()))
}

/// `demo-service to reference `demo`` for each Dubbo interface the component imports.
fn bindings(
    engine: &Engine,
    component: &Component,
    granted: &[String],
    wits: &[(String, String)],
) -> Vec<String> {
    let mut bound = Vec::new();
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:") || name.starts_with("dubbo:host/") {
            continue;
        }
        let Some((id, _)) = wits
            .iter()
            .find(|(id, wit)| granted.contains(id) && interface_matches(name, wit))
        else {
            continue;
        };
        let short = name.rsplit_once('/').map_or(name, |(_, i)| i);
        let short = short.split_once('@').map_or(short, |(i, _)| i);
        bound.push(format!("{short} to reference `{id}`"));
    }
    bound
}

/// Starts a ZooKeeper session check for each registry some reference uses.
fn start_registry_checks(config: &Config) -> Vec<Pending> {
    let mut checks = Vec::new();
    for (i, r) in config.registries.iter().enumerate() {
        let users: Vec<String> = config
            .references
            .iter()
            .filter(|c| c.url.is_none() && c.registry.contains(&r.id))
            .map(|c| format!("`{}`", c.id))
            .collect();
        if users.is_empty() {
            checks.push(Pending::Ready(Finding::Warning(Problem::new(
                format!("registry[{i}]"),
                format!(
                    "`{}` is used by no reference, so it was not contacted",
                    r.id
                ),
                format!(
                    "remove it, or list \"{}\" in the `registry` of a [[reference]] without `url`",
                    r.id
                ),
            ))));
            continue;
        }
        let task = tokio::spawn(check_registry(
            i,
            r.clone(),
            users,
            config.application.name.clone(),
            config.data_dir(),
        ));
        checks.push(Pending::Running {
            task,
            field: format!("registry[{i}]"),
        });
    }
    checks
}

/// Opens and closes a real ZooKeeper session with the registry, within [`PROBE_TIMEOUT`].
async fn check_registry(
    i: usize,
    r: RegistryConfig,
    users: Vec<String>,
    application: String,
    data_dir: PathBuf,
) -> Finding {
    let field = format!("registry[{i}].address");
    let address = match Url::parse(&r.address) {
        Ok(a) => a,
        Err(e) => {
            return Finding::Error(Problem::new(
                field,
                e.to_string(),
                "write it as zookeeper://host:port",
            ))
        }
    };
    if address.port == 0 {
        return Finding::Error(Problem::new(
            field,
            format!("`{}` has no port", r.address),
            "write it as zookeeper://host:port, e.g. zookeeper://127.0.0.1:2181",
        ));
    }
    let mut servers = address.address();
    if let Some(backup) = address.param("backup").filter(|b| !b.is_empty()) {
        servers.push(',');
        servers.push_str(backup);
    }
    let cache = RegistryOptions::from_address(address.clone(), &application, data_dir.clone())
        .cache_file()
        .filter(|p| p.exists());
    // A session or nothing: no falling back to the cache file, no starting without ZooKeeper.
    let mut probe = address;
    probe
        .params
        .insert("file-cache".to_string(), "false".to_string());
    probe.params.remove("check");
    let mut opts = RegistryOptions::from_address(probe, &application, data_dir);
    opts.connect_timeout = PROBE_TIMEOUT;
    if let Some(ms) = r.session_timeout {
        opts.session_timeout = Duration::from_millis(ms);
    }
    let started = Instant::now();
    let outcome = tokio::time::timeout(PROBE_TIMEOUT * 2, registry::connect(opts)).await;
    let reason = match outcome {
        Ok(Ok(session)) => {
            drop(session);
            return Finding::Ok(format!(
                "registry `{}` ({}) is reachable: ZooKeeper session opened in {} ms ({} it)",
                r.id,
                r.address,
                started.elapsed().as_millis(),
                who_needs(&users)
            ));
        }
        Ok(Err(RegistryError::Unreachable { reason, .. })) => reason,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no session within {:?}", PROBE_TIMEOUT * 2),
    };
    let fallback = cache.map_or_else(String::new, |c| {
        format!(
            "; until it is, `serve` starts from the cache file {} and keeps reconnecting",
            c.display()
        )
    });
    Finding::Error(Problem::new(
        field,
        format!(
            "cannot open a ZooKeeper session with registry `{}` at {} ({reason}); {} it{fallback}",
            r.id,
            r.address,
            who_needs(&users)
        ),
        format!("start ZooKeeper at {servers}, or correct `registry[{i}].address`"),
    ))
}

/// Starts a TCP connect to each direct provider address. An absent provider is only a
/// warning: `serve` starts without it and calls fail until it is up.
fn start_provider_checks(config: &Config) -> Vec<Pending> {
    let mut checks = Vec::new();
    for (i, r) in config.references.iter().enumerate() {
        let Some(urls) = &r.url else { continue };
        for u in urls.split(';').map(str::trim).filter(|u| !u.is_empty()) {
            let Ok(url) = Url::parse(u) else { continue };
            let field = format!("reference[{i}].url");
            let (id, address, at) = (r.id.clone(), url.address(), field.clone());
            let task = tokio::spawn(async move {
                let connect = tokio::net::TcpStream::connect(address.as_str());
                let reason = match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
                    Ok(Ok(_)) => {
                        return Finding::Ok(format!(
                            "reference `{id}`: a provider accepts connections at {address}"
                        ))
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
                };
                Finding::Warning(Problem::new(
                    at,
                    format!(
                        "reference `{id}`: no provider accepts connections at {address} ({reason}); `serve` starts anyway and calls fail until one does"
                    ),
                    format!("start the provider, or correct `reference[{i}].url`"),
                ))
            });
            checks.push(Pending::Running { task, field });
        }
    }
    checks
}

/// The `[http]` and `[admin]` listen addresses: they must be addresses; a port already in use
/// here is only a warning (it may be free by the time `serve` runs, or `check` runs elsewhere).
async fn check_listeners(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let serves_http = config.guests.iter().any(|g| g.trigger == Trigger::Http);
    let mut http_addrs = Vec::new();
    if serves_http {
        let listen = &config.http.listen;
        match resolve(listen).await {
            Ok(addrs) => {
                findings.push(probe_listen("http.listen", listen, &addrs).await);
                http_addrs = addrs;
            }
            Err(reason) => findings.push(Finding::Error(Problem::new(
                "http.listen",
                format!("`{listen}` is not an address with a port ({reason})"),
                "write it as host:port, e.g. \"127.0.0.1:8080\"",
            ))),
        }
    } else if !config.guests.is_empty() {
        findings.push(Finding::Warning(Problem::new(
            "guest",
            "no [[guest]] has trigger = \"http\": `serve` refuses to start without one (`run` is fine)",
            "add a [[guest]] with trigger = \"http\" and a route to serve it",
        )));
    }
    if config.admin.enabled() {
        let listen = config.admin.listen();
        match resolve(listen).await {
            Ok(addrs) => {
                let clash = addrs.iter().any(|a| {
                    a.port() != 0
                        && http_addrs.iter().any(|h| {
                            h.port() == a.port()
                                && (h.ip() == a.ip()
                                    || h.ip().is_unspecified()
                                    || a.ip().is_unspecified())
                        })
                });
                if clash {
                    findings.push(Finding::Error(Problem::new(
                        "admin.listen",
                        format!(
                            "`{listen}` is the address of `http.listen` (`{}`)",
                            config.http.listen
                        ),
                        "give [admin] listen another port, e.g. \"127.0.0.1:9090\"",
                    )));
                } else {
                    findings.push(probe_listen("admin.listen", listen, &addrs).await);
                }
            }
            Err(reason) => findings.push(Finding::Error(Problem::new(
                "admin.listen",
                format!("`{listen}` is not an address with a port ({reason})"),
                "write it as host:port, e.g. \"127.0.0.1:9090\"",
            ))),
        }
    }
    findings
}

/// The socket addresses `listen` (`host:port`) names.
async fn resolve(listen: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::lookup_host(listen)).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                Err("it resolves to no address".to_string())
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "its host did not resolve within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// Whether this machine could listen on `addrs` now (bound and released at once).
async fn probe_listen(field: &str, listen: &str, addrs: &[std::net::SocketAddr]) -> Finding {
    if addrs.iter().all(|a| a.port() == 0) {
        return Finding::Ok(format!(
            "{field} `{listen}` is an address (port 0: a free port is picked at start)"
        ));
    }
    match tokio::net::TcpListener::bind(addrs).await {
        Ok(listener) => {
            drop(listener);
            Finding::Ok(format!("{field} `{listen}` is free on this machine"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Finding::Warning(Problem::new(
            field,
            format!("`{listen}` is in use on this machine now, so `serve` here would fail"),
            "stop the process using that port, or choose another address",
        )),
        Err(e) => Finding::Warning(Problem::new(
            field,
            format!("cannot listen on `{listen}` on this machine: {e}"),
            "use an address of this machine (e.g. 127.0.0.1 or 0.0.0.0) if `serve` runs here",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[application]\nname = \"x\"\n\n[[reference]]\nid = \"a\"\ninterface = \"I\"\n\n[[reference]]\nid = \"b\"\ninterface = \"I\"\ntimeuot = 3\n\n[reference.methods.say-hello]\nretries = 1\n\n[http]\nlisten = \"x\"\n";

    fn offset(needle: &str) -> usize {
        TEXT.find(needle).unwrap_or(usize::MAX)
    }

    #[test]
    fn field_at_names_keys_by_table_and_array_index() {
        assert_eq!(field_at(TEXT, offset("name")), "application.name");
        assert_eq!(field_at(TEXT, offset("timeuot")), "reference[1].timeuot");
        assert_eq!(
            field_at(TEXT, offset("retries")),
            "reference[1].methods.say-hello.retries"
        );
        assert_eq!(field_at(TEXT, offset("listen")), "http.listen");
        assert_eq!(
            field_at(TEXT, offset("[[reference]]\nid = \"b\"")),
            "reference[1]"
        );
    }

    #[test]
    fn unknown_key_is_reported_at_its_field_with_its_line() {
        let dir = std::env::temp_dir().join(format!("dwh-check-unit-{}", std::process::id()));
        let path = dir.join("bad.toml");
        let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, TEXT));
        assert!(written.is_ok(), "{written:?}");
        let problem = match Config::load(&path) {
            Ok(_) => None,
            Err(e) => Some(config_problem(e)),
        };
        let _ = std::fs::remove_dir_all(&dir);
        let Some(p) = problem else {
            panic!("a config with `timeuot` loaded")
        };
        assert_eq!(p.field, "reference[1].timeuot");
        assert!(
            p.problem.contains("unknown field `timeuot`")
                && p.problem
                    .contains(&format!("(line {})", line_of(TEXT, offset("timeuot")))),
            "{}",
            p.problem
        );
        assert!(p.fix.contains("spelling"), "{}", p.fix);
    }

    #[test]
    fn embedded_fixes_are_split_from_the_problem() {
        let p = Problem::with_embedded_fix(
            "guest[0].references".into(),
            "imports `x`\n  fix: grant it",
            "default",
        );
        assert_eq!(
            (p.problem.as_str(), p.fix.as_str()),
            ("imports `x`", "grant it")
        );
        let p = Problem::with_embedded_fix("f".into(), "no fix here", "default");
        assert_eq!(p.fix, "default");
    }
}
