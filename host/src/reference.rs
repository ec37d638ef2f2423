//! A reference: one configured remote interface, composed here top to bottom — consumer URL,
//! directory (fed by direct URLs or registry snapshots), routers, cluster and load balancer per
//! method — and `invoke`, the entry point the Wasm bindings call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use crate::cluster::{self, ClusterKind, FailbackQueue, MethodPolicy};
use crate::config::{Config, MethodConfig, ReferenceConfig};
use crate::directory::{build_state, configurator, Directory};
use crate::java::lower_camel;
use crate::loadbalance;
use crate::metrics::ReferenceMetrics;
use crate::protocol::dubbo::{ConnectionConfig, ConnectionPool, DubboInvoker, SharedClient};
use crate::registry::{Registry, RegistryError, Snapshot};
use crate::router::{self, Router};
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// Why a reference cannot be built. The message ends with the fix, which
/// [`ReferenceError::fix`] also gives on its own.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference `{id}`: {message}")]
    Invalid { id: String, message: String },
    #[error(
        "reference `{id}`: no provider available for {service} (check = true)\n  fix: {}",
        NO_PROVIDER_FIX
    )]
    NoProvider { id: String, service: String },
    #[error("reference `{id}`: registry `{registry}`: {error}")]
    Registry {
        id: String,
        registry: String,
        error: Box<RegistryError>,
    },
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
            ReferenceError::NoProvider { id, service } => {
                format!("reference `{id}`: no provider available for {service} (check = true)")
            }
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
        let invoker = DubboInvoker::new(url, self.service.clone(), clients);
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
    policies: RwLock<HashMap<Arc<str>, Arc<MethodPolicy>>>,
    failback: FailbackQueue,
    check: bool,
    /// Registry subscription tasks; they end with the reference.
    watchers: Mutex<Vec<JoinHandle<()>>>,
    factory: Arc<ProviderFactory>,
    methods: std::collections::BTreeMap<String, MethodConfig>,
    java_types: std::collections::BTreeMap<String, String>,
    /// Calls per Java method, recorded by `invoke`.
    metrics: ReferenceMetrics,
    /// The `[[registry]]` ids the providers come from (none for a direct `url`).
    registry_ids: Vec<String>,
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Ok(w) = self.watchers.lock() {
            for t in w.iter() {
                t.abort();
            }
        }
    }
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
            policies: RwLock::new(HashMap::new()),
            failback: FailbackQueue::default(),
            check: cfg.check.unwrap_or(true),
            watchers: Mutex::new(Vec::new()),
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
            let factory = reference.factory.clone();
            let (state, _) = build_state(
                &reference.consumer,
                &providers,
                &[],
                Vec::new(),
                &HashMap::new(),
                &|u| factory.make(u),
            );
            reference.directory.replace(state);
        }
        Ok(reference)
    }

    /// Subscribes to `registries` and keeps the directory following their snapshots (the
    /// union of all of them). Returns once every registry gave its first snapshot.
    async fn follow(
        &self,
        registries: Vec<(String, Arc<dyn Registry>, Zone)>,
    ) -> Result<(), ReferenceError> {
        let zones: Arc<[Zone]> = registries.iter().map(|(_, _, z)| z.clone()).collect();
        let mut receivers = Vec::new();
        for (name, registry, _) in &registries {
            let rx =
                registry
                    .subscribe(&self.consumer)
                    .await
                    .map_err(|e| ReferenceError::Registry {
                        id: self.id.clone(),
                        registry: name.clone(),
                        error: Box::new(e),
                    })?;
            receivers.push(rx);
        }
        let latest: Arc<Mutex<Vec<Arc<Snapshot>>>> = Arc::new(Mutex::new(
            receivers.iter().map(|r| r.borrow().clone()).collect(),
        ));
        let cache: Arc<Mutex<HashMap<String, Arc<dyn Invoker>>>> =
            Arc::new(Mutex::new(HashMap::new()));
        apply(&self.directory, &self.factory, &latest, &cache, &zones);
        let mut watchers = Vec::new();
        for (i, mut rx) in receivers.into_iter().enumerate() {
            let (dir, factory, latest, cache, zones) = (
                self.directory.clone(),
                self.factory.clone(),
                latest.clone(),
                cache.clone(),
                zones.clone(),
            );
            watchers.push(tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let snap = rx.borrow_and_update().clone();
                    if let Ok(mut l) = latest.lock() {
                        if let Some(slot) = l.get_mut(i) {
                            *slot = snap;
                        }
                    }
                    apply(&dir, &factory, &latest, &cache, &zones);
                }
            }));
        }
        if let Ok(mut w) = self.watchers.lock() {
            w.extend(watchers);
        }
        Ok(())
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

    /// Whether `check = true` and no provider is listed: Dubbo refuses to start then.
    fn check_failed(&self) -> bool {
        self.check && self.directory.state().invokers.is_empty()
    }

    fn policy(&self, method: &Arc<str>) -> Arc<MethodPolicy> {
        if let Some(p) = self
            .policies
            .read()
            .ok()
            .and_then(|m| m.get(method).cloned())
        {
            return p;
        }
        let u = &self.consumer;
        let cluster = u
            .method_param(method, "cluster")
            .and_then(ClusterKind::by_name)
            .unwrap_or(ClusterKind::Failover);
        let default_retries = if cluster == ClusterKind::Failback {
            3
        } else {
            2
        };
        let lb_name = u.method_param(method, "loadbalance").unwrap_or("random");
        let lb = loadbalance::by_name(lb_name)
            .or_else(|| loadbalance::by_name("random"))
            .expect("random load balancing always exists");
        let policy = Arc::new(MethodPolicy::new(
            cluster,
            lb,
            u.method_param_i64(method, "retries", default_retries)
                .max(0) as u32,
            u.method_param_i64(method, "forks", 2).max(0) as usize,
            u.method_param(method, "sticky")
                .is_some_and(|v| v == "true"),
        ));
        if let Ok(mut m) = self.policies.write() {
            m.insert(method.clone(), policy.clone());
        }
        policy
    }

    /// Calls the service as the reference's cluster, router and load-balancing settings say.
    pub async fn invoke(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        let call = self.metrics.begin(&inv.method);
        let policy = self.policy(&inv.method);
        let result = cluster::invoke(&self.directory, &policy, &self.failback, inv).await;
        call.finish(&result);
        result
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
            let mut chosen = Vec::new();
            for name in &c.registry {
                let reg = registries
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
                chosen.push((name.clone(), reg.clone(), zone));
            }
            if c.register.unwrap_or(true) {
                for (name, reg, _) in &chosen {
                    reg.register(&r.consumer)
                        .await
                        .map_err(|e| ReferenceError::Registry {
                            id: c.id.clone(),
                            registry: name.clone(),
                            error: Box::new(e),
                        })?;
                }
            }
            r.follow(chosen).await?;
        }
        if r.check_failed() {
            return Err(ReferenceError::NoProvider {
                id: c.id.clone(),
                service: r.service.to_string(),
            });
        }
        Ok(r)
    }
}

/// Where a registry stands for a reference with several registries (Dubbo's zone-aware
/// cluster): `preferred` registries win, then those in the consumer's `registry_zone`.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub preferred: bool,
    pub zone: Option<String>,
}

/// The registries whose providers a reference uses: the first preferred one that has
/// providers; else those in the consumer's `registry_zone` that have providers (none if
/// `registry_zone_force=true` and no such registry has any); else all. Decided per snapshot,
/// where Dubbo decides per call.
pub fn zone_aware(providers: &[usize], zones: &[Zone], consumer: &Url) -> Vec<usize> {
    let all: Vec<usize> = (0..providers.len()).collect();
    if providers.len() < 2 {
        return all;
    }
    let has = |i: &usize| providers.get(*i).is_some_and(|n| *n > 0);
    if let Some(i) = zones.iter().position(|z| z.preferred).filter(has) {
        return vec![i];
    }
    if let Some(want) = consumer.param("registry_zone") {
        let same: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| zones.get(*i).and_then(|z| z.zone.as_deref()) == Some(want))
            .filter(has)
            .collect();
        if !same.is_empty() || consumer.param_bool("registry_zone_force", false) {
            return same;
        }
    }
    all
}

/// Rebuilds a directory from the latest snapshot of each registry.
fn apply(
    dir: &Directory,
    factory: &ProviderFactory,
    latest: &Mutex<Vec<Arc<Snapshot>>>,
    cache: &Mutex<HashMap<String, Arc<dyn Invoker>>>,
    zones: &[Zone],
) {
    let Ok(snaps) = latest.lock().map(|l| l.clone()) else {
        return;
    };
    let counts: Vec<usize> = snaps.iter().map(|s| s.providers.len()).collect();
    let used = zone_aware(&counts, zones, dir.consumer());
    let mut providers = Vec::new();
    for i in &used {
        if let Some(s) = snaps.get(*i) {
            providers.extend(s.providers.iter().cloned());
        }
    }
    let mut configurator_urls = Vec::new();
    let mut routers: Vec<Arc<dyn Router>> = Vec::new();
    let mut tag_rule = false;
    for s in &snaps {
        configurator_urls.extend(s.configurators.iter().cloned());
        for r in &s.routers {
            match router::from_url(r) {
                Ok(Some(r)) => routers.push(r),
                Ok(None) => tracing::debug!(rule = %r, "ignoring a router of an unknown kind"),
                Err(e) => tracing::warn!(rule = %r, error = %e, "ignoring a bad router rule"),
            }
        }
        if let Some(yaml) = &s.condition_router_yaml {
            match router::condition_from_yaml(yaml) {
                Ok(rs) => routers.extend(rs),
                Err(e) => tracing::warn!(error = %e, "ignoring a bad condition-router rule"),
            }
        }
        if let Some(yaml) = &s.tag_router_yaml {
            match router::tag_from_yaml(yaml) {
                Ok(r) => {
                    tag_rule = true;
                    routers.push(r)
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a bad tag-router rule"),
            }
        }
    }
    // As in Dubbo, providers' own `dubbo.tag` is honoured even without a tag rule.
    if !tag_rule {
        routers.push(Arc::new(router::TagRouter::static_tags()));
    }
    router::sort_by_priority(&mut routers);
    let mut configurators = configurator::from_urls(&configurator_urls);
    // 2.7+ YAML rules after the URL ones, as Dubbo's dynamic-config listeners run last.
    for s in &snaps {
        if let Some(yaml) = &s.configurators_yaml {
            match configurator::from_yaml(yaml, dir.consumer()) {
                Ok(rules) => configurators.extend(rules),
                Err(e) => tracing::warn!(error = %e, "ignoring a bad configurator rule"),
            }
        }
    }
    let Ok(mut cache) = cache.lock() else {
        return;
    };
    let (state, fresh) = build_state(
        dir.consumer(),
        &providers,
        &configurators,
        routers,
        &cache,
        &|u| factory.make(u),
    );
    tracing::info!(service = %dir.service(), providers = state.invokers.len(), "directory refreshed");
    *cache = fresh;
    dir.replace(state);
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
    /// consumers. Fails on `check = true` references without providers.
    pub async fn build(
        config: &Config,
        pool: &Arc<ConnectionPool>,
        registries: &HashMap<String, Arc<dyn Registry>>,
    ) -> Result<References, ReferenceError> {
        References::rebuild(config, pool, registries, &References::default(), &|_| false).await
    }

    /// Builds the references of `config` like [`References::build`], but keeps from `old`
    /// every reference for which `unchanged(id)` holds — with its directory, subscriptions
    /// and connections — so a config reload disturbs only what changed. New references share
    /// `pool`, so one still using a kept reference's provider address shares its connection.
    pub async fn rebuild(
        config: &Config,
        pool: &Arc<ConnectionPool>,
        registries: &HashMap<String, Arc<dyn Registry>>,
        old: &References,
        unchanged: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<References, ReferenceError> {
        let mut by_id = HashMap::new();
        for c in &config.references {
            if let Some(kept) = old.get(&c.id).filter(|_| unchanged(&c.id)) {
                by_id.insert(c.id.clone(), kept.clone());
                continue;
            }
            let r = Reference::subscribed(config, c, pool, registries).await?;
            by_id.insert(c.id.clone(), Arc::new(r));
        }
        let mut registries: Vec<(String, Arc<dyn Registry>)> = registries
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        registries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(References {
            by_id: Arc::new(by_id),
            registries,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(q: &str) -> Url {
        Url::parse(&format!("consumer://10.0.0.9/I?{q}")).expect("valid url")
    }

    fn zone(preferred: bool, z: Option<&str>) -> Zone {
        Zone {
            preferred,
            zone: z.map(str::to_string),
        }
    }

    #[test]
    fn preferred_registry_wins_while_it_has_providers() {
        let zones = [zone(false, Some("hz")), zone(true, Some("sh"))];
        assert_eq!(zone_aware(&[3, 2], &zones, &consumer("")), vec![1]);
        assert_eq!(
            zone_aware(&[3, 0], &zones, &consumer("")),
            vec![0, 1],
            "empty preferred: all"
        );
    }

    #[test]
    fn consumer_zone_picks_its_registries_and_force_allows_none() {
        let zones = [zone(false, Some("hz")), zone(false, Some("sh"))];
        assert_eq!(
            zone_aware(&[3, 2], &zones, &consumer("registry_zone=sh")),
            vec![1]
        );
        assert_eq!(
            zone_aware(&[3, 0], &zones, &consumer("registry_zone=sh")),
            vec![0, 1]
        );
        assert!(zone_aware(
            &[3, 0],
            &zones,
            &consumer("registry_zone=sh&registry_zone_force=true")
        )
        .is_empty());
    }
}
