//! The network checks of `check`: a ZooKeeper session for each registry in use, whether direct
//! providers listen, and whether the listen addresses are free here — each bounded in time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{who_needs, Finding, Pending, Problem};
use crate::config::{Config, RegistryConfig, Trigger};
use crate::registry::{self, RegistryError, RegistryOptions};
use crate::url::Url;

/// How long a registry or a provider gets to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts a ZooKeeper session check for each registry some reference uses.
pub(super) fn start_registry_checks(config: &Config) -> Vec<Pending> {
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
    let mut opts = RegistryOptions::from_address(probe, &application, data_dir)
        .with_timeouts(r.session_timeout, None);
    opts.connect_timeout = PROBE_TIMEOUT;
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
pub(super) fn start_provider_checks(config: &Config) -> Vec<Pending> {
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
pub(super) async fn check_listeners(config: &Config) -> Vec<Finding> {
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
