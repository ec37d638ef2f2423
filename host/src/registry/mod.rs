//! Registries: where provider, router and configurator URLs come from. Each subscription
//! yields full snapshots (never deltas) into the one directory that owns them. ZooKeeper is the
//! registry Dubbo users run; its layout, matching rules and cache file are Dubbo's, so a Rust
//! consumer sits beside Java ones without surprises.

mod cache;
mod matching;
pub mod metadata;
mod snapshot;
mod zookeeper;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::rpc::BoxFuture;
use crate::url::Url;

pub use matching::is_match;

/// One full view of a subscription, never a delta.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Matching providers (interface, version, group, `enabled`, category already filtered).
    pub providers: Vec<Url>,
    /// `condition://` / `route://` URLs under `/dubbo/{iface}/routers`.
    pub routers: Vec<Url>,
    /// `override://` / `absent://` URLs under `/dubbo/{iface}/configurators`.
    pub configurators: Vec<Url>,
    /// `/dubbo/config/dubbo/{iface}:{version}:{group}.configurators`, when present.
    pub configurators_yaml: Option<String>,
    /// `/dubbo/config/dubbo/{iface}:{version}:{group}.condition-router`, when present.
    pub condition_router_yaml: Option<String>,
    /// `/dubbo/config/dubbo/{application}.tag-router` for the first provider's application.
    pub tag_router_yaml: Option<String>,
    /// `/dubbo/config/dubbo/{application}.configurators`: the consumer application's rules.
    pub app_configurators_yaml: Option<String>,
    /// `/dubbo/config/dubbo/{application}.condition-router`: the consumer application's routes.
    pub app_condition_router_yaml: Option<String>,
    /// The Dubbo 3 migration rule of this consumer's application,
    /// `/dubbo/config/DUBBO_SERVICEDISCOVERY_MIGRATION/{application}.migration`, when present.
    pub migration_yaml: Option<String>,
}

/// The application-level view of one subscription (Dubbo 3 service discovery), never a delta.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceSnapshot {
    /// Provider URLs of the instances whose services match the consumer, for the revisions
    /// whose metadata is known.
    pub providers: Vec<Url>,
    /// The applications followed (from the service-name mapping or `provided-by`).
    pub apps: Vec<String>,
    /// Instances listed.
    pub instances: usize,
    /// Instances left out because their revision's metadata is not known yet (being fetched,
    /// or failing).
    pub pending: usize,
}

/// Why a registry operation failed. Messages name the registry, the node or file, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "registry `{address}`: protocol `{protocol}` is not supported; use zookeeper://HOST:PORT"
    )]
    UnsupportedProtocol { address: String, protocol: String },
    #[error("cannot reach ZooKeeper at {address} within {timeout:?} ({reason}); check that it is running and the address is right, or set `check=false` on the registry address to start without it")]
    Unreachable {
        address: String,
        timeout: Duration,
        reason: String,
    },
    #[error("ZooKeeper {address}: cannot {operation} `{path}`: {reason}")]
    Operation {
        address: String,
        operation: &'static str,
        path: String,
        reason: String,
    },
    #[error("ZooKeeper {address} is unreachable and the cache file {cache} holds no providers for `{service}`; start ZooKeeper, or run once while it is up so the cache gets written")]
    NotCached {
        address: String,
        service: String,
        cache: String,
    },
    #[error("{address} has no service definition at `{path}`: {reason}")]
    NoDefinition {
        address: String,
        path: String,
        reason: String,
    },
    #[error("ZooKeeper {address} is unreachable and the registry cache file {path} cannot be read: {source}; fix its permissions or remove it")]
    CacheUnreadable {
        address: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A registry session: registers this process's URLs and feeds subscriptions.
pub trait Registry: Send + Sync {
    /// Registers a URL as an ephemeral node under `/dubbo/{interface}/{category}` (`consumers`
    /// for `consumer://` URLs, else the URL's `category`, default `providers`; `dynamic=false`
    /// makes it persistent). It stays registered across session expiry (created again on every
    /// new session) until [`Registry::unregister`], even when this first attempt fails.
    fn register<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<(), RegistryError>>;
    /// Removes a URL registered with [`Registry::register`].
    fn unregister<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<(), RegistryError>>;
    /// Subscribes the consumer URL's interface (`path` or `interface`) with its `version` and
    /// `group` params; the receiver holds the first snapshot when this returns. Creates missing
    /// persistent directories. If ZooKeeper is unreachable, serves the cache file's URLs when
    /// it has them (and follows ZooKeeper once it is back), else fails. The sender side is
    /// dropped when every receiver is gone or the registry itself is dropped.
    fn subscribe<'a>(
        &'a self,
        consumer: &'a Url,
    ) -> BoxFuture<'a, Result<tokio::sync::watch::Receiver<Arc<Snapshot>>, RegistryError>>;
    /// Follows the consumer URL's interface at application level (Dubbo 3 service discovery):
    /// the applications that provide it, their instances and the services of each instance's
    /// revision, as provider URLs matched to the consumer. Never fails; the receiver holds
    /// what is known when this returns (from the cache file when ZooKeeper is unreachable).
    /// A registry without application-level discovery answers an empty view.
    fn subscribe_instances<'a>(
        &'a self,
        consumer: &'a Url,
    ) -> BoxFuture<'a, tokio::sync::watch::Receiver<Arc<InstanceSnapshot>>> {
        let _ = consumer;
        Box::pin(async { tokio::sync::watch::channel(Arc::default()).1 })
    }
    /// Reads the service definition a provider published in the metadata report (the JSON
    /// `wit generate` reads). A registry without a metadata report has none.
    fn service_definition<'a>(
        &'a self,
        key: &'a DefinitionKey,
    ) -> BoxFuture<'a, Result<PublishedDefinition, RegistryError>> {
        Box::pin(async move {
            Err(RegistryError::NoDefinition {
                address: "this registry".to_string(),
                path: key.interface.clone(),
                reason: "it has no metadata report".to_string(),
            })
        })
    }
    /// `connected`, `suspended` (connection lost, last lists kept), `expired` or
    /// `reconnecting`, for metrics and health.
    fn state(&self) -> &'static str;
}

/// Which service definition to read from the metadata report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefinitionKey {
    pub interface: String,
    pub version: Option<String>,
    pub group: Option<String>,
    /// The provider application; without one, the first that published it.
    pub application: Option<String>,
}

/// A service definition as the metadata report holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDefinition {
    /// The application whose definition it is.
    pub application: String,
    /// The node it was read from.
    pub path: String,
    /// The JSON text.
    pub json: String,
}

/// How to reach a registry and where to keep its cache file.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `zookeeper://host:port[,host:port]?params` (`backup`, `group`, `file`, `file-cache`, `check`).
    pub address: Url,
    /// This application's name, part of the cache file name.
    pub application: String,
    /// Directory of the cache file when the address has no `file=`.
    pub data_dir: PathBuf,
    /// Session timeout asked of ZooKeeper; ephemeral nodes outlive a lost connection this long.
    pub session_timeout: Duration,
    /// Bound on connecting and on each ZooKeeper request.
    pub connect_timeout: Duration,
}

impl RegistryOptions {
    /// Options with the timeouts taken from Dubbo's registry parameters: `session` (ms,
    /// default 60 000, as Dubbo) and `timeout` (ms, default 5 000, as Dubbo 2.7).
    pub fn from_address(address: Url, application: &str, data_dir: PathBuf) -> RegistryOptions {
        let session_timeout = Duration::from_millis(address.param_u64("session", 60_000));
        let connect_timeout = Duration::from_millis(address.param_u64("timeout", 5_000));
        RegistryOptions {
            address,
            application: application.to_string(),
            data_dir,
            session_timeout,
            connect_timeout,
        }
    }

    /// These options with a `[[registry]]` table's `session-timeout` and `connect-timeout`
    /// (ms), where set, over the address's parameters.
    pub fn with_timeouts(mut self, session_ms: Option<u64>, connect_ms: Option<u64>) -> Self {
        if let Some(ms) = session_ms {
            self.session_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = connect_ms {
            self.connect_timeout = Duration::from_millis(ms);
        }
        self
    }

    /// The cache file: `file=` if given, else
    /// `{data_dir}/dubbo-registry-{application}-{host}-{port}.cache`; `None` with `file-cache=false`.
    pub fn cache_file(&self) -> Option<PathBuf> {
        if !self.address.param_bool("file-cache", true) {
            return None;
        }
        if let Some(file) = self.address.param("file").filter(|f| !f.is_empty()) {
            return Some(PathBuf::from(file));
        }
        let name = format!(
            "dubbo-registry-{}-{}.cache",
            self.application,
            self.address.address().replace(':', "-")
        );
        Some(self.data_dir.join(name))
    }
}

/// Connects to the registry the address names (`zookeeper://` only). Gives up after
/// `connect_timeout` unless the address has `check=false` or a cache file exists, in which
/// case the registry keeps connecting in the background.
pub async fn connect(opts: RegistryOptions) -> Result<Arc<dyn Registry>, RegistryError> {
    match opts.address.protocol.as_str() {
        "zookeeper" => Ok(Arc::new(zookeeper::ZookeeperRegistry::connect(opts).await?)),
        other => Err(RegistryError::UnsupportedProtocol {
            address: opts.address.to_string(),
            protocol: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(address: &str) -> RegistryOptions {
        RegistryOptions::from_address(
            Url::parse(address).expect("url"),
            "demo-consumer",
            PathBuf::from("/home/u/.dubbo"),
        )
    }

    #[test]
    fn cache_file_is_named_like_dubbo_and_can_be_moved_or_disabled() {
        assert_eq!(
            opts("zookeeper://127.0.0.1:2181").cache_file(),
            Some(PathBuf::from(
                "/home/u/.dubbo/dubbo-registry-demo-consumer-127.0.0.1-2181.cache"
            ))
        );
        assert_eq!(
            opts("zookeeper://127.0.0.1:2181?file=/tmp/x.cache").cache_file(),
            Some(PathBuf::from("/tmp/x.cache"))
        );
        assert_eq!(
            opts("zookeeper://127.0.0.1:2181?file-cache=false").cache_file(),
            None
        );
    }

    #[test]
    fn a_registry_tables_timeouts_win_over_the_addresss_where_set() {
        let o = opts("zookeeper://127.0.0.1:2181?session=9000&timeout=700")
            .with_timeouts(Some(1234), None);
        assert_eq!(o.session_timeout, Duration::from_millis(1234));
        assert_eq!(o.connect_timeout, Duration::from_millis(700));
        let o = opts("zookeeper://127.0.0.1:2181").with_timeouts(None, Some(250));
        assert_eq!(o.session_timeout, Duration::from_millis(60_000));
        assert_eq!(o.connect_timeout, Duration::from_millis(250));
    }

    #[test]
    fn timeouts_come_from_dubbo_params() {
        let o = opts("zookeeper://127.0.0.1:2181?session=3000&timeout=700");
        assert_eq!(o.session_timeout, Duration::from_millis(3000));
        assert_eq!(o.connect_timeout, Duration::from_millis(700));
        assert_eq!(
            opts("zookeeper://h:1").session_timeout,
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn unknown_protocols_are_refused() {
        let err = connect(opts("nacos://127.0.0.1:8848"))
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("`nacos` is not supported")),
            "{err:?}"
        );
    }
}
