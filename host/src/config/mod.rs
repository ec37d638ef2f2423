//! The host's TOML configuration: references to Dubbo services, guests and listeners. Unknown
//! keys are errors, and every problem is reported with the file, the field and a fix.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod field;
mod validate;

/// A configuration problem, worded for the person who wrote the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source}\n  fix: pass an existing file with --config"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}{}: {problem}\n  fix: {fix}", at_line(*.line, .field))]
    Parse {
        path: PathBuf,
        /// The field the TOML error is at (`reference[1].timeout`), when it has a place.
        field: Option<String>,
        /// Its 1-based line.
        line: Option<usize>,
        problem: String,
        fix: &'static str,
    },
    #[error("config file {path}: `{field}` {problem}\n  fix: {fix}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
        fix: String,
    },
}

fn at_line(line: Option<usize>, field: &Option<String>) -> String {
    match (line, field) {
        (Some(line), Some(field)) if !field.is_empty() => format!(" line {line} (`{field}`)"),
        (Some(line), _) => format!(" line {line}"),
        _ => String::new(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub application: Application,
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryConfig>,
    #[serde(default, rename = "reference")]
    pub references: Vec<ReferenceConfig>,
    #[serde(default, rename = "guest")]
    pub guests: Vec<GuestConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    /// Directory the file was read from; relative paths in it are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[application]`: who this consumer is, as Dubbo Admin shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Application {
    pub name: String,
    /// Where registry cache files live (default `~/.dubbo`, as Java Dubbo).
    pub data_dir: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish, in milliseconds
    /// (default 10 000, as Dubbo's `dubbo.service.shutdown.wait`).
    pub shutdown_wait: Option<u64>,
}

impl Default for Application {
    fn default() -> Self {
        Application {
            name: "dubbo-wasm-host".to_string(),
            data_dir: None,
            shutdown_wait: None,
        }
    }
}

/// `[[registry]]`: a registry references can subscribe to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    pub id: String,
    /// `zookeeper://host:port` (several hosts: `zookeeper://h1:2181,h2:2181`); URL parameters
    /// are Dubbo's registry parameters (`file`, `file-cache`, ...).
    pub address: String,
    /// ZooKeeper session timeout in milliseconds (default 60 000).
    pub session_timeout: Option<u64>,
    /// Connect timeout in milliseconds (default 5 000).
    pub connect_timeout: Option<u64>,
    /// Zone of this registry, for zone-aware references.
    pub zone: Option<String>,
    /// Prefer this registry's providers when a reference has several registries.
    pub preferred: Option<bool>,
}

/// `[[reference]]`: one remote Dubbo interface.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReferenceConfig {
    pub id: String,
    /// Java interface name, e.g. `org.apache.dubbo.demo.DemoService`.
    pub interface: String,
    pub version: Option<String>,
    pub group: Option<String>,
    /// Direct provider URLs (`dubbo://host:port`), several separated by `;` as in Dubbo.
    pub url: Option<String>,
    /// Ids of the `[[registry]]` entries to find providers in (when there is no `url`).
    #[serde(default)]
    pub registry: Vec<String>,
    /// Calling strategy: failover (default), failfast, failsafe, failback, forking,
    /// broadcast, available.
    pub cluster: Option<String>,
    /// Load balancer: random (default), roundrobin, leastactive, shortestresponse,
    /// consistenthash, p2c.
    pub loadbalance: Option<String>,
    /// Extra tries for failover / background retries for failback (Dubbo default 2).
    pub retries: Option<u32>,
    /// Parallel calls for forking (default 2).
    pub forks: Option<u32>,
    /// Keep calling the same provider while it is available.
    pub sticky: Option<bool>,
    /// Fail at startup when no provider is available (default true).
    pub check: Option<bool>,
    /// Register this consumer in the registry (default true).
    pub register: Option<bool>,
    /// Any other Dubbo URL parameter, e.g. `"hash.arguments" = "0,1"`.
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
    /// Per-method settings, keyed by the WIT function name (e.g. `say-hello`).
    #[serde(default)]
    pub methods: std::collections::BTreeMap<String, MethodConfig>,
    /// Java classes of WIT records and enums, by WIT type name (default: the interface's
    /// package plus the UpperCamelCase type name).
    #[serde(default)]
    pub java_types: std::collections::BTreeMap<String, String>,
    /// The WIT interface guests import to call this service, e.g.
    /// `org-apache-dubbo:demo/demo-service` (a version suffix is optional).
    pub wit: Option<String>,
    /// Per-call timeout in milliseconds (Dubbo default 1000).
    pub timeout: Option<u64>,
    /// Connect timeout in milliseconds (Dubbo `connect.timeout`, default 3000).
    pub connect_timeout: Option<u64>,
    /// Dubbo `connections`: 0 (default) shares one connection per provider address with
    /// every other reference; N gives this reference N connections of its own per provider.
    pub connections: Option<u32>,
    /// Dubbo `lazy`: connect on the first call instead of at startup (default false).
    pub lazy: Option<bool>,
    /// Dubbo `heartbeat`: read-idle milliseconds before a heartbeat is sent (default 60 000).
    pub heartbeat: Option<u64>,
    /// A frame from the provider that has started must be whole within this many
    /// milliseconds (or within the longest timeout of the calls on its connection, when that
    /// is shorter), and a write must not stall longer; otherwise the connection is closed and
    /// its calls fail with `network` (default 3000). Also the URL parameter `read-stall`.
    pub read_stall: Option<u64>,
    /// Dubbo `payload`: largest request or response body in bytes (default 8 MiB).
    pub payload: Option<usize>,
    /// Dubbo `mock`: `force:return VALUE` answers without calling a provider,
    /// `fail:return VALUE` (or `return VALUE`) when a call fails with anything but a business
    /// exception; `throw [CLASS]` fails instead (Java mock classes cannot run here).
    pub mock: Option<String>,
    /// Dubbo `merger`, with `group = "*"` or a list: merge the groups' results (`true` by
    /// their type, or `list`, `set`, `map`, an array type); without it one group is called.
    pub merger: Option<String>,
    /// Dubbo `actives`: calls of one method in flight to one provider at once; the next waits
    /// up to its timeout, then fails with `limit-exceeded` (default: no limit).
    pub actives: Option<u32>,
}

/// `[reference.methods.<wit-name>]`: settings of one method.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MethodConfig {
    /// The Java method name when it is not the lowerCamelCase of the WIT name (overloads).
    pub java_name: Option<String>,
    /// Java parameter types (`long`, `java.lang.String`, `org.x.User`) when the WIT types do
    /// not say them, e.g. to call an overload taking `java.lang.Long` for an `s64`.
    pub parameter_types: Option<Vec<String>>,
    pub timeout: Option<u64>,
    pub retries: Option<u32>,
    pub loadbalance: Option<String>,
    pub cluster: Option<String>,
    pub sticky: Option<bool>,
    pub forks: Option<u32>,
    /// Dubbo `mock` for this method (see the reference's).
    pub mock: Option<String>,
    /// Dubbo `merger` for this method.
    pub merger: Option<String>,
    /// Dubbo `actives` for this method.
    pub actives: Option<u32>,
    /// Dubbo `return`: `false` makes calls oneway (no reply awaited; the import returns at once).
    #[serde(rename = "return")]
    pub return_value: Option<bool>,
    /// Dubbo `sent`: for a oneway call, wait until the request is written.
    pub sent: Option<bool>,
}

/// `[[guest]]`: one WebAssembly component and how it is triggered.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GuestConfig {
    pub name: String,
    /// The component file, relative to the config file's directory.
    pub path: PathBuf,
    pub trigger: Trigger,
    /// For `trigger = "http"`: the path prefix routed to this guest.
    pub route: Option<String>,
    /// The references this guest may import.
    #[serde(default)]
    pub references: Vec<String>,
    /// Linear memory limit per instance, in MiB (default 64).
    pub max_memory_mib: Option<u64>,
    /// Wall-time limit per request in milliseconds (default 30 000).
    pub timeout: Option<u64>,
    /// Instances of this guest running at once; more requests get 503 (default 256).
    pub max_instances: Option<usize>,
    /// For `trigger = "http"`: how many requests, one after another, one instance may serve
    /// before it is recycled (default 1: a fresh instance for every request, so nothing a
    /// request leaves in the guest's memory reaches the next). An instance is also recycled
    /// after a trap, a time or memory limit, or an error response from the host.
    pub instance_reuse: Option<u32>,
}

/// How a guest is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Serves `wasi:http/incoming-handler` on `[http] listen`.
    Http,
    /// Runs `wasi:cli/run` once.
    Cli,
}

/// `[http]`: the listener for `trigger = "http"` guests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpConfig {
    pub listen: String,
    /// Threads that serve HTTP connections, each on a runtime of its own with its own
    /// connections to providers; 0 (the default for now) serves them on the host's shared
    /// runtime with one connection per provider.
    #[serde(default)]
    pub threads: Option<usize>,
}

/// The most `[http] threads` a host may run.
pub const MAX_HTTP_THREADS: usize = 64;

impl HttpConfig {
    /// The serving threads to run: `threads`, by default 0 (the shared runtime). One per CPU
    /// serves more at c=64 and costs latency at c=1 (BENCHMARKS.md, run 10).
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or(0)
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".to_string(),
            threads: None,
        }
    }
}

/// `[admin]`: health, metrics, references, guests and guest upload over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdminConfig {
    /// Where the admin API listens (default `127.0.0.1:9090`; loopback only unless `token`).
    pub listen: Option<String>,
    /// Bearer token every admin request must carry (`Authorization: Bearer <token>`);
    /// required when `listen` is not a loopback address.
    pub token: Option<String>,
    /// `false` serves no admin API at all.
    pub enabled: Option<bool>,
}

/// The admin listener when `[admin] listen` is not given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

impl AdminConfig {
    /// Whether the admin API is served.
    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// The address to listen on.
    pub fn listen(&self) -> &str {
        self.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN)
    }
}

/// Whether `listen` (`host:port`) names a loopback address (`127.x`, `::1`, `localhost`).
pub fn is_loopback_listen(listen: &str) -> bool {
    let host = match listen.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => listen,
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let place = e.span().map(|s| s.start);
            let problem = e.message().trim().to_string();
            ConfigError::Parse {
                path: path.to_path_buf(),
                field: place.map(|p| field::field_at(text, p)),
                line: place.map(|p| field::line_of(text, p)),
                fix: field::parse_fix(&problem),
                problem,
            }
        })?;
        cfg.path = path.to_path_buf();
        cfg.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Where registry cache files go: `[application] data-dir`, else `~/.dubbo`.
    pub fn data_dir(&self) -> PathBuf {
        match &self.application.data_dir {
            Some(d) => self.base_dir.join(d),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(".dubbo"),
        }
    }

    /// A guest's component file, resolved against the config file's directory.
    pub fn guest_path(&self, guest: &GuestConfig) -> PathBuf {
        self.base_dir.join(&guest.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"
[application]
name = "demo-consumer"

[[reference]]
id = "demo"
interface = "org.apache.dubbo.demo.DemoService"
version = "1.0.0"
url = "dubbo://127.0.0.1:20880"
wit = "org-apache-dubbo:demo/demo-service"
timeout = 3000

[[guest]]
name = "hello"
path = "hello.wasm"
trigger = "http"
route = "/hello"
references = ["demo"]

[http]
listen = "127.0.0.1:8080"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("conf/demo.toml"))
    }

    #[test]
    fn demo_config_parses_and_resolves_guest_paths_against_its_directory() {
        let cfg = parse(DEMO).expect("valid");
        assert_eq!(cfg.references[0].timeout, Some(3000));
        assert_eq!(
            cfg.guest_path(&cfg.guests[0]),
            PathBuf::from("conf/hello.wasm")
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = parse(&DEMO.replace("timeout = 3000", "timeuot = 3000")).unwrap_err();
        assert!(err.to_string().contains("timeuot"), "{err}");
        assert!(err.to_string().contains("conf/demo.toml"), "{err}");
    }

    #[test]
    fn guest_naming_an_unknown_reference_is_refused_with_a_fix() {
        let err =
            parse(&DEMO.replace("references = [\"demo\"]", "references = [\"nope\"]")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("guest[0].references") && msg.contains("nope") && msg.contains("fix"),
            "{msg}"
        );
    }

    #[test]
    fn max_instances_beyond_what_the_pool_can_hold_is_refused_with_a_fix() {
        let with = |n: &str| {
            parse(&DEMO.replace(
                "references = [\"demo\"]",
                &format!("references = [\"demo\"]\nmax-instances = {n}"),
            ))
        };
        assert!(with("1").is_ok());
        assert!(with("4096").is_ok());
        for bad in ["0", "4097"] {
            let msg = with(bad).expect_err(bad).to_string();
            assert!(
                msg.contains("guest[0].max-instances") && msg.contains("from 1 to 4096"),
                "{msg}"
            );
        }
    }

    #[test]
    fn http_threads_default_to_the_shared_runtime_and_beyond_the_limit_are_refused() {
        let with = |n: &str| {
            parse(&DEMO.replace(
                "listen = \"127.0.0.1:8080\"",
                &format!("listen = \"127.0.0.1:8080\"\nthreads = {n}"),
            ))
        };
        assert_eq!(parse(DEMO).expect("valid").http.threads(), 0);
        assert_eq!(with("0").expect("valid").http.threads(), 0);
        assert_eq!(with("64").expect("valid").http.threads(), 64);
        let msg = with("65").expect_err("65").to_string();
        assert!(
            msg.contains("http.threads")
                && msg.contains("conf/demo.toml")
                && msg.contains("at most"),
            "{msg}"
        );
        assert!(with("-1").is_err(), "a negative count parses");
    }

    #[test]
    fn registry_reference_and_method_settings_parse() {
        let text = DEMO
            .replace(
                "url = \"dubbo://127.0.0.1:20880\"",
                "registry = [\"zk\"]\ncluster = \"failfast\"",
            )
            .replace(
                "timeout = 3000\n",
                "timeout = 3000\n[reference.methods.say-hello]\ntimeout = 50\nloadbalance = \"roundrobin\"\n",
            );
        let text =
            format!("[[registry]]\nid = \"zk\"\naddress = \"zookeeper://127.0.0.1:2181\"\n{text}");
        let cfg = parse(&text).expect("valid");
        let r = &cfg.references[0];
        assert_eq!(r.registry, vec!["zk".to_string()]);
        assert_eq!(r.methods["say-hello"].timeout, Some(50));
    }

    #[test]
    fn unknown_strategy_names_are_refused_with_the_known_ones() {
        let err = parse(&DEMO.replace(
            "timeout = 3000",
            "timeout = 3000\nloadbalance = \"fastest\"",
        ))
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("fastest") && msg.contains("roundrobin"),
            "{msg}"
        );
    }

    #[test]
    fn reference_url_must_be_a_dubbo_address() {
        let err = parse(&DEMO.replace("dubbo://127.0.0.1:20880", "http://x")).unwrap_err();
        assert!(err.to_string().contains("reference[0].url"), "{err}");
    }
}
