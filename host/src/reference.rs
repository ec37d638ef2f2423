//! A reference: one configured remote interface, composed here top to bottom — consumer URL,
//! directory (fed by direct URLs or registry snapshots), routers, cluster and load balancer per
//! method — and `invoke`, the entry point the Wasm bindings call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cluster::mock::{Mock, Realize};
use crate::cluster::{self, FailbackQueue, MethodPolicy};
use crate::config::{Config, MethodConfig, ReferenceConfig};
use crate::directory::discovery::{Discovery, FollowError, MakeInvoker, Refresh, Source, Zone};
use crate::directory::{Directory, DirectoryState};
use crate::java::lower_camel;
use crate::metrics::{MethodMetrics, ReferenceMetrics};
use crate::protocol::dubbo::{ConnectionConfig, ConnectionPool, DubboInvoker, SharedClient};
use crate::registry::Registry;
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// Why a reference cannot be built. The message ends with the fix, which
/// [`ReferenceError::fix`] also gives on its own.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference `{id}`: {message}")]
    Invalid { id: String, message: String },
    #[error(
        "reference `{id}`: no provider available for {service} (check = true): {detail}\n  fix: {}",
        NO_PROVIDER_FIX
    )]
    NoProvider {
        id: String,
        service: String,
        /// What was listed and tried.
        detail: String,
    },
    #[error("reference `{id}`: {error}")]
    Registry { id: String, error: FollowError },
}

const NO_PROVIDER_FIX: &str =
    "start a provider, correct `url`/`registry`, or set check = false to start without one";

impl ReferenceError {
    /// The id of the reference.
    pub fn id(&self) -> &str {
        match self {
            ReferenceError::Invalid { id, .. }
            | ReferenceError::NoProvider { id, .. }
            | ReferenceError::Registry { id, .. } => id,
        }
    }

    /// What is wrong, without the fix.
    pub fn problem(&self) -> String {
        match self {
            ReferenceError::NoProvider {
                id,
                service,
                detail,
            } => format!(
                "reference `{id}`: no provider available for {service} (check = true): {detail}"
            ),
            other => other.to_string(),
        }
    }

    /// What to do about it, when the problem does not say.
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            ReferenceError::NoProvider { .. } => Some(NO_PROVIDER_FIX),
            _ => None,
        }
    }
}

/// Dubbo's default call timeout, also how long `check = true` waits for a connection.
const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// How often `check = true` looks whether a provider is connected.
const CHECK_POLL: Duration = Duration::from_millis(10);

/// Makes invokers for provider URLs of one reference.
struct ProviderFactory {
    service: ServiceKey,
    pool: Arc<ConnectionPool>,
    conn_cfg: ConnectionConfig,
    own_connections: usize,
    lazy: bool,
}

impl ProviderFactory {
    fn make(&self, url: Url) -> Arc<dyn Invoker> {
        let clients = if self.own_connections == 0 {
            vec![self.pool.client(&url.address(), &self.conn_cfg)]
        } else {
            (0..self.own_connections)
                .map(|_| Arc::new(SharedClient::new(url.address(), self.conn_cfg.clone())))
                .collect()
        };
        let invoker = DubboInvoker::new(url, &self.service.interface, clients);
        if !self.lazy {
            invoker.connect_in_background();
        }
        Arc::new(invoker)
    }
}

/// One remote Dubbo interface a guest can call.
pub struct Reference {
    id: String,
    service: ServiceKey,
    wit: Option<String>,
    consumer: Url,
    directory: Arc<Directory>,
    /// Method policies of the provider set the directory holds now.
    policies: ArcSwap<Policies>,
    failback: FailbackQueue,
    check: bool,
    /// What follows the registries; it stops with the reference.
    discovery: Mutex<Option<Discovery>>,
    factory: Arc<ProviderFactory>,
    methods: std::collections::BTreeMap<String, MethodConfig>,
    java_types: std::collections::BTreeMap<String, String>,
    /// Calls per Java method, recorded by `invoke`.
    metrics: ReferenceMetrics,
    /// The `[[registry]]` ids the providers come from (none for a direct `url`).
    registry_ids: Vec<String>,
}

/// The consumer URL Dubbo would build for this reference: its settings as URL parameters
/// (method settings keyed `javaMethod.key`), registered in the registry and read by clusters,
/// balancers and routers.
pub fn consumer_url(application: &str, cfg: &ReferenceConfig) -> Url {
    let mut p = std::collections::BTreeMap::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    put("application", application.to_string());
    put("interface", cfg.interface.clone());
    put("side", "consumer".to_string());
    put("category", "consumers".to_string());
    put("check", "false".to_string());
    put("dubbo", "2.0.2".to_string());
    put(
        "release",
        format!("dubbo-wasm-host-{}", env!("CARGO_PKG_VERSION")),
    );
    put("pid", std::process::id().to_string());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    put("timestamp", now.to_string());
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    opt("version", cfg.version.clone());
    opt("group", cfg.group.clone());
    opt("timeout", cfg.timeout.map(|v| v.to_string()));
    opt("retries", cfg.retries.map(|v| v.to_string()));
    opt("loadbalance", cfg.loadbalance.clone());
    opt("cluster", cfg.cluster.clone());
    opt("forks", cfg.forks.map(|v| v.to_string()));
    opt("sticky", cfg.sticky.map(|v| v.to_string()));
    opt("connections", cfg.connections.map(|v| v.to_string()));
    opt("lazy", cfg.lazy.map(|v| v.to_string()));
    opt("mock", cfg.mock.clone());
    opt("merger", cfg.merger.clone());
    opt("actives", cfg.actives.map(|v| v.to_string()));
    for (wit_name, m) in &cfg.methods {
        let java = m.java_name.clone().unwrap_or_else(|| lower_camel(wit_name));
        let mut method_opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                p.insert(format!("{java}.{k}"), v);
            }
        };
        method_opt("timeout", m.timeout.map(|v| v.to_string()));
        method_opt("retries", m.retries.map(|v| v.to_string()));
        method_opt("loadbalance", m.loadbalance.clone());
        method_opt("cluster", m.cluster.clone());
        method_opt("sticky", m.sticky.map(|v| v.to_string()));
        method_opt("forks", m.forks.map(|v| v.to_string()));
        method_opt("mock", m.mock.clone());
        method_opt("merger", m.merger.clone());
        method_opt("actives", m.actives.map(|v| v.to_string()));
        method_opt("return", m.return_value.map(|v| v.to_string()));
        method_opt("sent", m.sent.map(|v| v.to_string()));
    }
    for (k, v) in &cfg.parameters {
        p.insert(k.clone(), v.clone());
    }
    Url {
        protocol: "consumer".to_string(),
        host: local_host(),
        port: 0,
        path: cfg.interface.clone(),
        params: p,
    }
}

/// The address this host registers with: `DUBBO_IP_TO_REGISTRY` (Dubbo's variable), else the
/// first non-loopback IPv4 address of the host name, else 127.0.0.1.
pub fn local_host() -> String {
    if let Ok(ip) = std::env::var("DUBBO_IP_TO_REGISTRY") {
        if !ip.trim().is_empty() {
            return ip.trim().to_string();
        }
    }
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    if !name.is_empty() {
        if let Ok(addrs) = (name, 0).to_socket_addrs() {
            for a in addrs {
                if a.is_ipv4() && !a.ip().is_loopback() {
                    return a.ip().to_string();
                }
            }
        }
    }
    "127.0.0.1".to_string()
}

impl Reference {
    /// Builds the reference with direct `url` providers; registry references are built by
    /// [`References::build`]. Connections open at once unless `lazy`.
    pub fn build(
        cfg: &ReferenceConfig,
        pool: &Arc<ConnectionPool>,
    ) -> Result<Reference, ReferenceError> {
        Reference::with_application("dubbo-wasm-host", cfg, pool)
    }

    fn with_application(
        application: &str,
        cfg: &ReferenceConfig,
        pool: &Arc<ConnectionPool>,
    ) -> Result<Reference, ReferenceError> {
        let service = ServiceKey {
            interface: cfg.interface.clone(),
            version: cfg.version.clone(),
            group: cfg.group.clone(),
        };
        let defaults = ConnectionConfig::default();
        let conn_cfg = ConnectionConfig {
            connect_timeout: cfg
                .connect_timeout
                .map_or(defaults.connect_timeout, Duration::from_millis),
            heartbeat: cfg
                .heartbeat
                .map_or(defaults.heartbeat, Duration::from_millis),
            payload: cfg.payload.unwrap_or(defaults.payload),
            read_stall: cfg
                .read_stall
                .map_or(defaults.read_stall, Duration::from_millis),
        };
        let consumer = consumer_url(application, cfg);
        let factory = Arc::new(ProviderFactory {
            service: service.clone(),
            pool: pool.clone(),
            conn_cfg,
            own_connections: cfg.connections.unwrap_or(0) as usize,
            lazy: cfg.lazy.unwrap_or(false),
        });
        let directory = Arc::new(Directory::new(service.clone(), consumer.clone()));
        let reference = Reference {
            id: cfg.id.clone(),
            service,
            wit: cfg.wit.clone(),
            consumer,
            directory,
            policies: ArcSwap::from_pointee(Policies::default()),
            failback: FailbackQueue::default(),
            check: cfg.check.unwrap_or(true),
            discovery: Mutex::new(None),
            factory,
            methods: cfg.methods.clone(),
            java_types: cfg.java_types.clone(),
            metrics: ReferenceMetrics::default(),
            registry_ids: if cfg.url.is_none() {
                cfg.registry.clone()
            } else {
                Vec::new()
            },
        };
        if let Some(raw) = &cfg.url {
            let mut providers = Vec::new();
            for u in raw.split(';').map(str::trim).filter(|u| !u.is_empty()) {
                let mut url = Url::parse(u).map_err(|e| ReferenceError::Invalid {
                    id: cfg.id.clone(),
                    message: e.to_string(),
                })?;
                if url.path.is_empty() {
                    url.path = cfg.interface.clone();
                }
                providers.push(url);
            }
            reference.refresh().fixed(&providers);
        }
        Ok(reference)
    }

    /// A refresh of this reference's directory, making invokers with its factory.
    fn refresh(&self) -> Refresh {
        let factory = self.factory.clone();
        let make: MakeInvoker = Arc::new(move |u| factory.make(u));
        Refresh::new(self.directory.clone(), make)
    }

    /// The reference's id in config.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The remote service.
    pub fn service(&self) -> &ServiceKey {
        &self.service
    }

    /// The WIT interface bound to this reference, if any.
    pub fn wit(&self) -> Option<&str> {
        self.wit.as_deref()
    }

    /// The consumer URL (what is registered, and the settings calls follow).
    pub fn consumer(&self) -> &Url {
        &self.consumer
    }

    /// Settings of the method a guest calls as `wit_name`.
    pub fn method_settings(&self, wit_name: &str) -> Option<&MethodConfig> {
        self.methods.get(wit_name)
    }

    /// Java classes of WIT records and enums, by WIT type name.
    pub fn java_types(&self) -> &std::collections::BTreeMap<String, String> {
        &self.java_types
    }

    /// The directory of providers.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Whether the reference has `check = true` (the default): it needs a provider to be ready.
    pub fn check(&self) -> bool {
        self.check
    }

    /// The call metrics of this reference, per Java method.
    pub fn metrics(&self) -> &ReferenceMetrics {
        &self.metrics
    }

    /// The `[[registry]]` ids the providers come from; empty for a direct `url`.
    pub fn registry_ids(&self) -> &[String] {
        &self.registry_ids
    }

    /// Dubbo's `checkInvokerAvailable` for `check = true`: waits up to `limit` for a listed
    /// provider to be connected (a lazy reference's providers count once listed, since they
    /// connect on the first call); `Err` says what was listed and what its connections said.
    async fn check_available(&self, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let state = self.directory.state();
            let ready = state.invokers.iter().any(|i| {
                let (open, configured) = i.connections();
                i.is_available() && (configured == 0 || open > 0 || self.factory.lazy)
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                if state.invokers.is_empty() {
                    return Err("no provider is listed".to_string());
                }
                let tried: Vec<String> = state
                    .invokers
                    .iter()
                    .map(|i| match i.connect_error() {
                        Some(e) => format!("{} ({e})", i.url().address()),
                        None => format!("{} (not connected)", i.url().address()),
                    })
                    .collect();
                return Err(format!(
                    "none of the listed providers accepted a connection within {} ms: {}",
                    limit.as_millis(),
                    tried.join(", ")
                ));
            }
            tokio::time::sleep(CHECK_POLL).await;
        }
    }

    /// The policy of `method` for the provider set `state`: resolved once per set (a
    /// configurator or a new provider makes a new set), then read without a lock.
    fn policy(&self, state: &Arc<DirectoryState>, method: &Arc<str>) -> Arc<MethodPolicy> {
        let current = self.policies.load();
        if current.is_for(state) {
            if let Some(p) = current.by_method.get(method) {
                return p.clone();
            }
        }
        let consumer = state.consumer.as_ref().unwrap_or(&self.consumer);
        let invoker = state.invokers.first().map_or(consumer, |i| i.url());
        let policy = Arc::new(MethodPolicy::resolve(method, invoker, consumer));
        self.policies.rcu(|old| {
            let mut by_method = if old.is_for(state) {
                old.by_method.clone()
            } else {
                HashMap::new()
            };
            by_method.insert(method.clone(), policy.clone());
            Policies {
                state: Arc::downgrade(state),
                by_method,
            }
        });
        policy
    }

    /// Calls the service as the reference's cluster, router and load-balancing settings say.
    pub async fn invoke(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        self.invoke_typed(inv, None).await
    }

    /// What a caller that calls `method` again and again (a guest's typed import, `bench`)
    /// resolves once, so that each call finds its metrics without a lock or a map lookup.
    pub fn site(&self, method: &Arc<str>) -> MethodSite {
        MethodSite {
            method: method.clone(),
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// [`Reference::invoke`] for a caller that declares the method's return type, so that a
    /// mock's value is realized into it as a provider's reply would be.
    pub async fn invoke_typed(
        &self,
        inv: &Invocation,
        returns: Option<&dyn Realize>,
    ) -> Result<RpcResult, RpcError> {
        self.invoke_at(&self.site(&inv.method), inv, returns).await
    }

    /// [`Reference::invoke_typed`] of the method `site` was made for (`inv.method`).
    pub async fn invoke_at(
        &self,
        site: &MethodSite,
        inv: &Invocation,
        returns: Option<&dyn Realize>,
    ) -> Result<RpcResult, RpcError> {
        // The method's series is created by its first call, as without a site.
        let metrics = site
            .metrics
            .get_or_init(|| self.metrics.entry(&site.method));
        let call = metrics.begin();
        let state = self.directory.state();
        let policy = self.policy(&state, &inv.method);
        drop(state);
        let result = match &policy.mock {
            Some(mock @ Mock::Force(_)) => {
                call.mocked();
                mock.answer(returns)
            }
            Some(mock) => {
                match cluster::invoke(&self.directory, &policy, &self.failback, inv).await {
                    Err(e) if mock.answers(&e) => {
                        tracing::debug!(reference = %self.id, method = %inv.method, error = %e, "call failed; the mock answers");
                        call.mocked();
                        mock.answer(returns)
                    }
                    other => other,
                }
            }
            None => cluster::invoke(&self.directory, &policy, &self.failback, inv).await,
        };
        call.finish(&result);
        result
    }
}

/// One method of a reference as a repeated caller holds it: see [`Reference::site`].
pub struct MethodSite {
    method: Arc<str>,
    metrics: std::sync::OnceLock<Arc<MethodMetrics>>,
}

/// The method policies resolved for one provider set.
#[derive(Default)]
struct Policies {
    /// The directory state they were resolved for.
    state: Weak<DirectoryState>,
    by_method: HashMap<Arc<str>, Arc<MethodPolicy>>,
}

impl Policies {
    fn is_for(&self, state: &Arc<DirectoryState>) -> bool {
        std::ptr::eq(self.state.as_ptr(), Arc::as_ptr(state))
    }
}

impl Reference {
    /// Builds reference `c` of `config`: registers its consumer and follows its registries,
    /// or takes its direct `url` providers. Fails on `check = true` without providers.
    async fn subscribed(
        config: &Config,
        c: &ReferenceConfig,
        pool: &Arc<ConnectionPool>,
        registries: &HashMap<String, Arc<dyn Registry>>,
    ) -> Result<Reference, ReferenceError> {
        let r = Reference::with_application(&config.application.name, c, pool)?;
        if c.url.is_none() {
            let mut sources = Vec::new();
            for name in &c.registry {
                let registry = registries
                    .get(name)
                    .ok_or_else(|| ReferenceError::Invalid {
                        id: c.id.clone(),
                        message: format!("registry `{name}` is not connected"),
                    })?;
                let zone = config
                    .registries
                    .iter()
                    .find(|g| &g.id == name)
                    .map(|g| Zone {
                        preferred: g.preferred.unwrap_or(false),
                        zone: g.zone.clone(),
                    })
                    .unwrap_or_default();
                sources.push(Source {
                    id: name.clone(),
                    registry: registry.clone(),
                    zone,
                    register: c.register.unwrap_or(true),
                });
            }
            let discovery = Discovery::follow(r.refresh(), sources)
                .await
                .map_err(|error| ReferenceError::Registry {
                    id: c.id.clone(),
                    error,
                })?;
            if let Ok(mut d) = r.discovery.lock() {
                *d = Some(discovery);
            }
        }
        Ok(r)
    }

    /// `check = true`: fails unless a provider is available within the reference's
    /// `timeout` (Java's default 1000 ms when unset); `check = false` passes at once.
    async fn checked(&self) -> Result<(), ReferenceError> {
        if !self.check {
            return Ok(());
        }
        let limit = Duration::from_millis(self.consumer.param_u64("timeout", DEFAULT_TIMEOUT_MS));
        self.check_available(limit)
            .await
            .map_err(|detail| ReferenceError::NoProvider {
                id: self.id.clone(),
                service: self.service.to_string(),
                detail,
            })
    }
}

/// All references of a host, by id, and the registry sessions that feed them (kept alive
/// as long as the references are).
#[derive(Default, Clone)]
pub struct References {
    by_id: Arc<HashMap<String, Arc<Reference>>>,
    /// `([[registry]] id, session)`, sorted by id.
    registries: Vec<(String, Arc<dyn Registry>)>,
}

impl References {
    /// Builds every configured reference over one shared connection pool, subscribing
    /// registry references through `registries` (by `[[registry]]` id) and registering their
    /// consumers. It does not wait for providers: [`References::check`] does, once the
    /// caller has finished its local checks (guests, listeners), so those fail first.
    pub async fn build(
        config: &Config,
        pool: &Arc<ConnectionPool>,
        registries: &HashMap<String, Arc<dyn Registry>>,
    ) -> Result<References, ReferenceError> {
        let (refs, _) =
            References::assemble(config, pool, registries, &References::default(), &|_| false)
                .await?;
        Ok(refs)
    }

    /// Java's startup check: fails on the first `check = true` reference without an
    /// available provider. All references wait at once, so the check takes the longest
    /// `timeout`, not their sum.
    pub async fn check(&self) -> Result<(), ReferenceError> {
        futures_util::future::try_join_all(self.by_id.values().map(|r| r.checked())).await?;
        Ok(())
    }

    /// Builds the references of `config` like [`References::build`], but keeps from `old`
    /// every reference for which `unchanged(id)` holds — with its directory, subscriptions
    /// and connections — so a config reload disturbs only what changed. New references share
    /// `pool`, so one still using a kept reference's provider address shares its connection.
    /// New and changed references are checked as [`References::check`] does.
    pub async fn rebuild(
        config: &Config,
        pool: &Arc<ConnectionPool>,
        registries: &HashMap<String, Arc<dyn Registry>>,
        old: &References,
        unchanged: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<References, ReferenceError> {
        let (refs, fresh) = References::assemble(config, pool, registries, old, unchanged).await?;
        futures_util::future::try_join_all(fresh.iter().map(|r| r.checked())).await?;
        Ok(refs)
    }

    /// The references of `config`, and those of them built anew (not kept from `old`).
    async fn assemble(
        config: &Config,
        pool: &Arc<ConnectionPool>,
        registries: &HashMap<String, Arc<dyn Registry>>,
        old: &References,
        unchanged: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(References, Vec<Arc<Reference>>), ReferenceError> {
        let mut by_id = HashMap::new();
        let mut fresh = Vec::new();
        for c in &config.references {
            if let Some(kept) = old.get(&c.id).filter(|_| unchanged(&c.id)) {
                by_id.insert(c.id.clone(), kept.clone());
                continue;
            }
            let r = Arc::new(Reference::subscribed(config, c, pool, registries).await?);
            fresh.push(r.clone());
            by_id.insert(c.id.clone(), r);
        }
        let mut registries: Vec<(String, Arc<dyn Registry>)> = registries
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        registries.sort_by(|a, b| a.0.cmp(&b.0));
        let refs = References {
            by_id: Arc::new(by_id),
            registries,
        };
        Ok((refs, fresh))
    }

    /// The reference with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Reference>> {
        self.by_id.get(id)
    }

    /// Every reference, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Reference>> {
        self.by_id.values()
    }

    /// The registries the references follow, as `([[registry]] id, session)` sorted by id.
    pub fn registries(&self) -> &[(String, Arc<dyn Registry>)] {
        &self.registries
    }
}
