//! The directory of one reference: the current provider invokers and routers, replaced whole
//! by its one owner (`discovery`) on every change of what it follows (or fixed for direct
//! URLs), and `list`, which routes them for one invocation. Invokers whose merged URL did not
//! change are reused, so a registry update never reconnects to an unchanged provider; a
//! removed invoker lives on until its in-flight calls finish, since they hold it.

pub mod configurator;
pub mod discovery;
pub mod migration;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use self::configurator::Configurator;
use self::discovery::DiscoveryView;
use crate::router::{route_all, Router};
use crate::rpc::{Invocation, Invoker, ServiceKey};
use crate::url::Url;

/// What a directory holds at one moment.
#[derive(Default)]
pub struct DirectoryState {
    /// Enabled providers, as invokers.
    pub invokers: Vec<Arc<dyn Invoker>>,
    /// Routers in effect, in priority order.
    pub routers: Vec<Arc<dyn Router>>,
    /// The consumer URL with the configurators applied (Dubbo's directory URL): where what is
    /// not per provider is read, such as `mock`. `None` means the consumer URL as configured.
    pub consumer: Option<Url>,
    /// What the routers leave of `invokers` for the invocations they all route alike
    /// ([`Router::routes_alike`]), computed by the first such call.
    pub routed_alike: OnceLock<Arc<[Arc<dyn Invoker>]>>,
}

/// The provider set of one reference.
pub struct Directory {
    service: ServiceKey,
    consumer: Url,
    state: ArcSwap<DirectoryState>,
    discovery: ArcSwap<DiscoveryView>,
}

impl Directory {
    /// An empty directory for `service`, called as `consumer`.
    pub fn new(service: ServiceKey, consumer: Url) -> Self {
        Directory {
            service,
            consumer,
            state: ArcSwap::from_pointee(DirectoryState::default()),
            discovery: ArcSwap::from_pointee(DiscoveryView::new()),
        }
    }

    /// The remote service.
    pub fn service(&self) -> &ServiceKey {
        &self.service
    }

    /// The consumer URL: the reference's settings, as Dubbo keys them.
    pub fn consumer(&self) -> &Url {
        &self.consumer
    }

    /// The current state, cheap to clone and consistent for one call.
    pub fn state(&self) -> Arc<DirectoryState> {
        self.state.load_full()
    }

    /// Replaces the state (from a registry snapshot or config).
    pub fn replace(&self, state: DirectoryState) {
        self.state.store(Arc::new(state));
    }

    /// What discovery saw of each registry last (empty for direct URLs).
    pub fn discovery(&self) -> Arc<DiscoveryView> {
        self.discovery.load_full()
    }

    /// Records what discovery saw.
    pub fn set_discovery(&self, view: DiscoveryView) {
        self.discovery.store(Arc::new(view));
    }

    /// The providers `inv` may go to, after the routers. Without routers that is the state's
    /// own list, held rather than copied: a call costs the same for 1 provider or 1 000.
    pub fn list(&self, inv: &Invocation) -> Listed {
        let state = self.state.load_full();
        if state.routers.is_empty() {
            return Listed::All(state);
        }
        // Most calls carry nothing a router reads (no `dubbo.tag`, say): they all get the same
        // providers, routed once per provider set, as Dubbo 3's routers cache per notification.
        if state.routers.iter().all(|r| r.routes_alike(inv)) {
            let routed = state.routed_alike.get_or_init(|| {
                route_all(&state.routers, &state.invokers, &self.consumer, inv).into()
            });
            return Listed::RoutedAlike(routed.clone());
        }
        Listed::Routed(route_all(
            &state.routers,
            &state.invokers,
            &self.consumer,
            inv,
        ))
    }
}

/// The providers of one call, as [`Directory::list`] found them; a slice of invokers.
pub enum Listed {
    /// Every provider of the state (no routers).
    All(Arc<DirectoryState>),
    /// The state's providers as routed for every invocation the routers route alike.
    RoutedAlike(Arc<[Arc<dyn Invoker>]>),
    /// What the routers left.
    Routed(Vec<Arc<dyn Invoker>>),
}

impl std::ops::Deref for Listed {
    type Target = [Arc<dyn Invoker>];

    fn deref(&self) -> &[Arc<dyn Invoker>] {
        match self {
            Listed::All(state) => &state.invokers,
            Listed::RoutedAlike(invokers) => invokers,
            Listed::Routed(invokers) => invokers,
        }
    }
}

/// Provider-side parameters that survive the merge with the consumer's (Dubbo's
/// `ClusterUtils.mergeUrl` keeps them from the provider).
const PROVIDER_KEYS: &[&str] = &[
    "dubbo",
    "version",
    "group",
    "methods",
    "timestamp",
    "dubbo.tag",
    "weight",
    "warmup",
];

/// Provider-side parameters that make no sense on the consumer side.
const PROVIDER_ONLY: &[&str] = &[
    "threadname",
    "threadpool",
    "corethreads",
    "threads",
    "queues",
    "alive",
    "transporter",
    "accepts",
    "side",
    "category",
];

/// The URL an invoker uses: the provider's, with the consumer's settings laid over it as Dubbo
/// merges them (consumer wins, except for what identifies the provider).
pub fn merge(provider: &Url, consumer: &Url) -> Url {
    let mut merged = provider.clone();
    merged
        .params
        .retain(|k, _| !PROVIDER_ONLY.contains(&k.as_str()));
    if let Some(app) = provider.param("application") {
        merged
            .params
            .insert("remote.application".to_string(), app.to_string());
    }
    for (k, v) in &consumer.params {
        if PROVIDER_KEYS.contains(&k.as_str()) && provider.params.contains_key(k) {
            continue;
        }
        // The consumer's own start time is not the provider's: Java's ClusterUtils.mergeUrl
        // drops it, or a provider without one (a direct URL) would be warming up from the
        // consumer's start.
        if k == "category" || k == "side" || k == "timestamp" {
            continue;
        }
        merged.params.insert(k.clone(), v.clone());
    }
    merged
        .params
        .insert("check".to_string(), "false".to_string());
    merged
}

/// Whether a (configured) provider URL may take calls: `disabled` wins over `enabled`.
pub fn is_enabled(url: &Url) -> bool {
    match url.param("disabled") {
        Some(_) => !url.param_bool("disabled", false),
        None => url.param_bool("enabled", true),
    }
}

/// Whether the consumer speaks the provider's protocol (`protocol` param, default dubbo).
pub fn protocol_accepted(provider: &Url, consumer: &Url) -> bool {
    match consumer.param("protocol") {
        Some(list) => list.split(',').any(|p| p.trim() == provider.protocol),
        None => provider.protocol == "dubbo",
    }
}

/// Builds the directory state for a provider list, reusing invokers whose merged URL is
/// unchanged (`previous`, keyed by merged URL) so their connections stay; `make` creates the
/// others. Returns the new state and the new cache.
pub fn build_state(
    consumer: &Url,
    providers: &[Url],
    configurators: &[Configurator],
    routers: Vec<Arc<dyn Router>>,
    previous: &HashMap<String, Arc<dyn Invoker>>,
    make: &dyn Fn(Url) -> Arc<dyn Invoker>,
) -> (DirectoryState, HashMap<String, Arc<dyn Invoker>>) {
    let app = consumer.param("application").unwrap_or_default();
    let overridden = (!configurators.is_empty()).then(|| {
        let mut url = consumer.clone();
        for c in configurators {
            c.configure_consumer(&mut url, app);
        }
        url
    });
    let mut cache = HashMap::with_capacity(providers.len());
    let mut invokers = Vec::with_capacity(providers.len());
    for provider in providers {
        if !protocol_accepted(provider, consumer) {
            tracing::debug!(provider = %provider, "skipping a provider of another protocol");
            continue;
        }
        let mut url = merge(provider, consumer);
        for c in configurators {
            c.configure(&mut url, app);
        }
        if !is_enabled(&url) {
            tracing::info!(provider = %url.address(), "provider disabled");
            continue;
        }
        let key = url.to_string();
        if cache.contains_key(&key) {
            continue;
        }
        let invoker = match previous.get(&key) {
            Some(existing) => existing.clone(),
            None => make(url),
        };
        invokers.push(invoker.clone());
        cache.insert(key, invoker);
    }
    (
        DirectoryState {
            invokers,
            routers,
            consumer: overridden,
            routed_alike: OnceLock::new(),
        },
        cache,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ListedInvoker;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("valid url")
    }

    fn make(u: Url) -> Arc<dyn Invoker> {
        Arc::new(ListedInvoker::new(u))
    }

    fn consumer() -> Url {
        url("consumer://10.0.0.9/I?application=app&timeout=3000&version=1.0.0&weight=5")
    }

    #[test]
    fn calls_the_routers_route_alike_share_one_routing_per_provider_set() {
        use crate::router::testing::{addresses, call, providers};
        use crate::router::TagRouter;
        let dir = Directory::new(
            ServiceKey {
                interface: "org.apache.dubbo.demo.DemoService".into(),
                version: None,
                group: None,
            },
            consumer(),
        );
        let state = |invokers| DirectoryState {
            invokers,
            routers: vec![Arc::new(TagRouter::static_tags()) as Arc<dyn Router>],
            ..Default::default()
        };
        dir.replace(state(providers()));
        let plain = call("sayHello");
        let (first, second) = (dir.list(&plain), dir.list(&plain));
        // The gold-tagged provider is left out of untagged calls.
        let untagged = ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.4:20881"];
        assert_eq!(addresses(&first), untagged);
        assert!(matches!(first, Listed::RoutedAlike(_)));
        assert!(
            std::ptr::eq(first.as_ptr(), second.as_ptr()),
            "routed once, then held"
        );
        // A call that carries a tag is routed on its own.
        let mut gold = call("sayHello");
        gold.attachments
            .push(("dubbo.tag".to_string(), "gold".to_string()));
        let tagged = dir.list(&gold);
        assert!(matches!(tagged, Listed::Routed(_)));
        assert_eq!(addresses(&tagged), ["10.0.0.3:20880"]);
        // A new provider set is routed again.
        dir.replace(state(providers().into_iter().take(1).collect()));
        assert_eq!(addresses(&dir.list(&plain)), ["10.0.0.1:20880"]);
        // Without routers the state's own list is handed out.
        dir.replace(DirectoryState {
            invokers: providers(),
            ..Default::default()
        });
        let all = dir.list(&plain);
        assert!(matches!(all, Listed::All(_)));
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn the_consumers_start_time_never_becomes_the_providers() {
        let c = url("consumer://10.0.0.9/I?application=app&timestamp=1700000000000");
        // A direct URL has no timestamp: it must not start warming up from the consumer's.
        let direct = merge(&url("dubbo://10.0.0.1:20880/I"), &c);
        assert_eq!(direct.param("timestamp"), None);
        let registered = merge(&url("dubbo://10.0.0.1:20880/I?timestamp=1600000000000"), &c);
        assert_eq!(registered.param("timestamp"), Some("1600000000000"));
    }

    #[test]
    fn consumer_settings_override_the_providers_except_its_identity() {
        let p = url("dubbo://10.0.0.1:20880/I?timeout=100&version=1.0.0&weight=200&threads=200&application=papp");
        let m = merge(&p, &consumer());
        assert_eq!(m.param("timeout"), Some("3000"));
        assert_eq!(m.param("weight"), Some("200"), "weight is the provider's");
        assert_eq!(m.param("threads"), None);
        assert_eq!(m.param("remote.application"), Some("papp"));
        assert_eq!(m.param("application"), Some("app"));
    }

    #[test]
    fn unchanged_providers_keep_their_invoker_and_removed_ones_go() {
        let a = url("dubbo://10.0.0.1:20880/I?version=1.0.0");
        let b = url("dubbo://10.0.0.2:20880/I?version=1.0.0");
        let (s1, c1) = build_state(
            &consumer(),
            &[a.clone(), b],
            &[],
            vec![],
            &HashMap::new(),
            &make,
        );
        assert_eq!(s1.invokers.len(), 2);
        let (s2, c2) = build_state(&consumer(), &[a], &[], vec![], &c1, &make);
        assert_eq!(s2.invokers.len(), 1);
        assert!(
            Arc::ptr_eq(&s1.invokers[0], &s2.invokers[0]),
            "same URL, same invoker"
        );
        assert_eq!(c2.len(), 1);
    }

    #[test]
    fn disabled_and_foreign_protocol_providers_are_left_out() {
        let rules = configurator::from_urls(&[url("override://10.0.0.1:20880/I?disabled=true")]);
        let providers = [
            url("dubbo://10.0.0.1:20880/I"),
            url("dubbo://10.0.0.2:20880/I?enabled=false"),
            url("tri://10.0.0.3:50051/I"),
            url("dubbo://10.0.0.4:20880/I"),
        ];
        let (s, _) = build_state(
            &consumer(),
            &providers,
            &rules,
            vec![],
            &HashMap::new(),
            &make,
        );
        let hosts: Vec<&str> = s.invokers.iter().map(|i| i.url().host.as_str()).collect();
        assert_eq!(hosts, vec!["10.0.0.4"]);
    }
}
