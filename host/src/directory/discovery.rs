//! The one owner of a directory's refresh (Dubbo's `RegistryDirectory.notify`, with linkerd's
//! rule of one task per endpoint set). A single task takes every source of one reference —
//! each registry's interface-level snapshots, its application-level instance sets, the
//! migration rule that picks between them, and the zone settings that pick between registries
//! — and publishes one provider set, with the routers and configurators in effect, to the
//! directory. Direct URLs go through the same [`Refresh`], once.
//!
//! Because one task owns the invoker cache and reads the latest snapshot of every source
//! each time, an older snapshot can never be published over a newer one, and invokers of
//! unchanged provider URLs (and so their connections) are kept across every change, a
//! migration switch included.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::configurator::{self, Configurator};
use super::migration::{self, Rule, Side, Step};
use super::{build_state, Directory};
use crate::registry::{InstanceSnapshot, Registry, RegistryError, Snapshot};
use crate::router::{self, Router};
use crate::rpc::Invoker;
use crate::url::Url;

/// Makes the invoker of one provider URL (its consumer settings merged in).
pub type MakeInvoker = Arc<dyn Fn(Url) -> Arc<dyn Invoker> + Send + Sync>;

/// Where a registry stands for a reference with several registries (Dubbo's zone-aware
/// cluster): `preferred` registries win, then those in the consumer's `registry_zone`.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    pub preferred: bool,
    pub zone: Option<String>,
}

/// One registry a reference follows.
pub struct Source {
    /// The `[[registry]]` id.
    pub id: String,
    pub registry: Arc<dyn Registry>,
    pub zone: Zone,
    /// Whether the consumer registers itself there (`register`, default true).
    pub register: bool,
}

/// Why a reference cannot follow one of its registries.
#[derive(Debug, thiserror::Error)]
#[error("registry `{id}`: {error}")]
pub struct FollowError {
    /// The `[[registry]]` id.
    pub id: String,
    pub error: Box<RegistryError>,
}

/// What discovery shows for one registry of a reference (`GET /admin/references`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryView {
    /// The `[[registry]]` id.
    pub id: String,
    /// The migration step in effect, and the provider set it made the reference use.
    pub step: Step,
    pub side: Side,
    /// Providers listed at interface level and at application level (the latter only once
    /// application-level discovery is followed, i.e. the step is not `FORCE_INTERFACE`).
    pub interface_providers: usize,
    pub application_providers: usize,
    /// Application instances whose metadata is not known yet.
    pub pending_instances: usize,
    /// The applications followed at application level.
    pub applications: Vec<String>,
    /// Whether its providers are in the set the reference uses (zone-aware choice).
    pub used: bool,
}

/// The registries of one reference, as discovery last saw them (empty for direct URLs).
pub type DiscoveryView = Vec<RegistryView>;

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

/// The rules of one interface-level snapshot, parsed once per snapshot.
struct Rules {
    /// The snapshot they were parsed from.
    from: Arc<Snapshot>,
    routers: Vec<Arc<dyn Router>>,
    tag_rule: bool,
    configurator_urls: Vec<Url>,
    configurators_yaml: Vec<Configurator>,
}

impl Rules {
    fn parse(snap: &Arc<Snapshot>, consumer: &Url) -> Rules {
        let mut routers: Vec<Arc<dyn Router>> = Vec::new();
        for r in &snap.routers {
            match router::from_url(r) {
                Ok(Some(r)) => routers.push(r),
                Ok(None) => tracing::debug!(rule = %r, "ignoring a router of an unknown kind"),
                Err(e) => tracing::warn!(rule = %r, error = %e, "ignoring a bad router rule"),
            }
        }
        for yaml in [&snap.app_condition_router_yaml, &snap.condition_router_yaml]
            .into_iter()
            .flatten()
        {
            match router::condition_from_yaml(yaml) {
                Ok(rs) => routers.extend(rs),
                Err(e) => tracing::warn!(error = %e, "ignoring a bad condition-router rule"),
            }
        }
        let mut tag_rule = false;
        if let Some(yaml) = &snap.tag_router_yaml {
            match router::tag_from_yaml(yaml) {
                Ok(r) => {
                    tag_rule = true;
                    routers.push(r)
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a bad tag-router rule"),
            }
        }
        // Application scope, then service scope, as Dubbo's listeners apply them.
        let configurators_yaml = [&snap.app_configurators_yaml, &snap.configurators_yaml]
            .into_iter()
            .flatten()
            .flat_map(|yaml| {
                configurator::from_yaml(yaml, consumer).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "ignoring a bad configurator rule");
                    Vec::new()
                })
            })
            .collect();
        Rules {
            from: snap.clone(),
            routers,
            tag_rule,
            configurator_urls: snap.configurators.clone(),
            configurators_yaml,
        }
    }
}

/// What is followed of one registry.
struct Followed {
    id: String,
    registry: Arc<dyn Registry>,
    zone: Zone,
    interface: watch::Receiver<Arc<Snapshot>>,
    /// `None` until application-level discovery is needed (a step other than
    /// `FORCE_INTERFACE`) and subscribed.
    application: Option<watch::Receiver<Arc<InstanceSnapshot>>>,
    /// Whether the application-level subscription was asked for.
    asked: bool,
    /// The migration rule's text and the last rule that parsed.
    rule_text: Option<String>,
    rule: Option<Rule>,
    side: Option<Side>,
    rules: Option<Rules>,
}

/// A directory's refresh: the invoker cache and what it was built from, owned by one task (or,
/// for direct URLs, used once).
pub struct Refresh {
    directory: Arc<Directory>,
    make: MakeInvoker,
    invokers: HashMap<String, Arc<dyn Invoker>>,
}

impl Refresh {
    /// A refresh of `directory` making invokers with `make`.
    pub fn new(directory: Arc<Directory>, make: MakeInvoker) -> Refresh {
        Refresh {
            directory,
            make,
            invokers: HashMap::new(),
        }
    }

    /// Publishes `providers` with `configurators` and `routers` (the static tag router added
    /// when no tag rule is), reusing the invokers of provider URLs that did not change.
    fn publish(
        &mut self,
        providers: &[Url],
        configurators: &[Configurator],
        mut routers: Vec<Arc<dyn Router>>,
        tag_rule: bool,
    ) {
        // As in Dubbo, providers' own `dubbo.tag` is honoured even without a tag rule.
        if !tag_rule {
            routers.push(Arc::new(router::TagRouter::static_tags()));
        }
        router::sort_by_priority(&mut routers);
        let dir = &self.directory;
        let make = &self.make;
        let (state, fresh) = build_state(
            dir.consumer(),
            providers,
            configurators,
            routers,
            &self.invokers,
            &|u| make(u),
        );
        tracing::info!(service = %dir.service(), providers = state.invokers.len(), "directory refreshed");
        self.invokers = fresh;
        dir.replace(state);
    }

    /// Publishes a fixed provider list (direct URLs), through the same code as registries.
    pub fn fixed(mut self, providers: &[Url]) {
        self.publish(providers, &[], Vec::new(), false);
    }
}

/// Why the owner task wakes up.
enum Wake {
    /// A snapshot of some source changed.
    Changed,
    /// Registry `i`'s application-level subscription is ready.
    Subscribed(usize, watch::Receiver<Arc<InstanceSnapshot>>),
}

/// The task that follows a reference's registries; dropping it stops following.
pub struct Discovery {
    tasks: JoinSet<()>,
}

impl Discovery {
    /// Registers the consumer (where `register` says) and subscribes it in every source, waits
    /// for their first snapshots (and, where the migration step asks for it, the first
    /// application-level view), publishes the first provider set, then follows every change
    /// in one task.
    pub async fn follow(refresh: Refresh, sources: Vec<Source>) -> Result<Discovery, FollowError> {
        let consumer = refresh.directory.consumer().clone();
        let mut followed = Vec::new();
        for s in sources {
            let fail = |e: RegistryError| FollowError {
                id: s.id.clone(),
                error: Box::new(e),
            };
            if s.register {
                // The registry keeps it and creates it with the next session (a restart with
                // ZooKeeper down serves from the cache file and registers once it is back).
                if let Err(e) = s.registry.register(&consumer).await {
                    tracing::warn!(registry = %s.id, error = %e, "consumer not registered yet; it is registered as soon as the registry answers");
                }
            }
            let interface = s.registry.subscribe(&consumer).await.map_err(fail)?;
            followed.push(Followed {
                id: s.id,
                registry: s.registry,
                zone: s.zone,
                interface,
                application: None,
                asked: false,
                rule_text: None,
                rule: None,
                side: None,
                rules: None,
            });
        }
        let mut owner = Owner {
            refresh,
            consumer,
            followed,
        };
        owner.read_rules();
        // The first view of the application level is awaited, so a reference whose providers
        // are all registered at application level has them when it is built.
        let wanted = owner.wanting_application();
        let first = futures_util::future::join_all(wanted.iter().map(|&i| {
            let (registry, consumer) = (owner.followed[i].registry.clone(), &owner.consumer);
            async move { registry.subscribe_instances(consumer).await }
        }))
        .await;
        for (i, rx) in wanted.into_iter().zip(first) {
            owner.followed[i].asked = true;
            owner.followed[i].application = Some(rx);
        }
        owner.refresh();
        let (wakes, woken) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        for f in &owner.followed {
            forward(&mut tasks, f.interface.clone(), wakes.clone());
            if let Some(rx) = &f.application {
                forward(&mut tasks, rx.clone(), wakes.clone());
            }
        }
        tasks.spawn(owner.run(woken, wakes));
        Ok(Discovery { tasks })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Wakes the owner every time `rx` changes, until its sender is gone.
fn forward<T: Send + Sync + 'static>(
    tasks: &mut JoinSet<()>,
    mut rx: watch::Receiver<T>,
    wakes: mpsc::UnboundedSender<Wake>,
) {
    tasks.spawn(async move {
        while rx.changed().await.is_ok() {
            if wakes.send(Wake::Changed).is_err() {
                return;
            }
        }
    });
}

/// The state of the owner task.
struct Owner {
    refresh: Refresh,
    consumer: Url,
    followed: Vec<Followed>,
}

impl Owner {
    /// Takes each registry's migration rule when its text changed; a rule that does not parse
    /// is logged and the previous one stays in effect, a deleted one means no rule.
    fn read_rules(&mut self) {
        for f in &mut self.followed {
            let text = f.interface.borrow().migration_yaml.clone();
            if text == f.rule_text {
                continue;
            }
            match text.as_deref().map(Rule::parse).transpose() {
                Ok(rule) => {
                    let rule = rule.flatten();
                    tracing::info!(registry = %f.id, service = %self.consumer.path, step = ?rule.as_ref().and_then(|r| r.step), "migration rule changed");
                    f.rule = rule;
                }
                Err(e) => {
                    tracing::warn!(registry = %f.id, service = %self.consumer.path, error = %e, "ignoring a bad migration rule; the previous one stays in effect")
                }
            }
            f.rule_text = text;
        }
    }

    fn policy(&self, f: &Followed) -> migration::Policy {
        let apps = f
            .application
            .as_ref()
            .map(|rx| rx.borrow().apps.clone())
            .unwrap_or_default();
        migration::policy(f.rule.as_ref(), &self.consumer, &apps)
    }

    /// The registries whose step needs application-level discovery not asked for yet.
    fn wanting_application(&self) -> Vec<usize> {
        self.followed
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.asked && self.policy(f).step != Step::ForceInterface)
            .map(|(i, _)| i)
            .collect()
    }

    /// Builds and publishes the directory from the latest snapshot of every source.
    fn refresh(&mut self) {
        self.read_rules();
        let mut chosen: Vec<Vec<Url>> = Vec::with_capacity(self.followed.len());
        let mut views: DiscoveryView = Vec::with_capacity(self.followed.len());
        for i in 0..self.followed.len() {
            let policy = self.policy(&self.followed[i]);
            let f = &mut self.followed[i];
            let interface = f.interface.borrow().clone();
            let application = f
                .application
                .as_ref()
                .map(|rx| rx.borrow().clone())
                .unwrap_or_default();
            let side = migration::choose(
                &policy,
                application.providers.len(),
                interface.providers.len(),
                f.side,
            );
            if f.side != Some(side) {
                tracing::info!(registry = %f.id, service = %self.consumer.path, step = policy.step.name(), set = side.name(), interface = interface.providers.len(), application = application.providers.len(), "migration: using {}-level providers", side.name());
            }
            f.side = Some(side);
            if f.rules
                .as_ref()
                .is_none_or(|r| !Arc::ptr_eq(&r.from, &interface))
            {
                f.rules = Some(Rules::parse(&interface, &self.consumer));
            }
            chosen.push(match side {
                Side::Interface => interface.providers.clone(),
                Side::Application => application.providers.clone(),
            });
            views.push(RegistryView {
                id: f.id.clone(),
                step: policy.step,
                side,
                interface_providers: interface.providers.len(),
                application_providers: application.providers.len(),
                pending_instances: application.pending,
                applications: application.apps.clone(),
                used: false,
            });
        }
        let counts: Vec<usize> = chosen.iter().map(Vec::len).collect();
        let zones: Vec<Zone> = self.followed.iter().map(|f| f.zone.clone()).collect();
        let used = zone_aware(&counts, &zones, &self.consumer);
        let mut providers = Vec::new();
        for &i in &used {
            providers.extend(chosen[i].iter().cloned());
            views[i].used = true;
        }
        let mut routers = Vec::new();
        let mut urls = Vec::new();
        let mut yaml = Vec::new();
        let mut tag_rule = false;
        for r in self.followed.iter().filter_map(|f| f.rules.as_ref()) {
            routers.extend(r.routers.iter().cloned());
            tag_rule |= r.tag_rule;
            urls.extend(r.configurator_urls.iter().cloned());
            yaml.extend(r.configurators_yaml.iter().cloned());
        }
        // 2.7+ YAML rules after the URL ones, as Dubbo's dynamic-config listeners run last.
        let mut configurators = configurator::from_urls(&urls);
        configurators.extend(yaml);
        self.refresh
            .publish(&providers, &configurators, routers, tag_rule);
        self.refresh.directory.set_discovery(views);
    }

    async fn run(
        mut self,
        mut woken: mpsc::UnboundedReceiver<Wake>,
        wakes: mpsc::UnboundedSender<Wake>,
    ) {
        let mut subscribing: JoinSet<()> = JoinSet::new();
        let mut forwarders: JoinSet<()> = JoinSet::new();
        while let Some(wake) = woken.recv().await {
            let mut next = Some(wake);
            // Take every wake-up queued meanwhile: one refresh reads the latest of all.
            while let Some(wake) = next {
                if let Wake::Subscribed(i, rx) = wake {
                    forward(&mut forwarders, rx.clone(), wakes.clone());
                    if let Some(f) = self.followed.get_mut(i) {
                        f.application = Some(rx);
                    }
                }
                next = woken.try_recv().ok();
            }
            self.read_rules();
            for i in self.wanting_application() {
                let f = &mut self.followed[i];
                f.asked = true;
                let (registry, consumer, wakes) =
                    (f.registry.clone(), self.consumer.clone(), wakes.clone());
                subscribing.spawn(async move {
                    let rx = registry.subscribe_instances(&consumer).await;
                    let _ = wakes.send(Wake::Subscribed(i, rx));
                });
            }
            self.refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::rpc::ServiceKey;
    use crate::testing::{ListedInvoker, MemoryRegistry};

    const IFACE: &str = "org.x.DemoService";

    fn provider(port: u16) -> Url {
        Url::parse(&format!(
            "dubbo://10.0.0.1:{port}/{IFACE}?interface={IFACE}&version=1.0.0"
        ))
        .expect("valid url")
    }

    fn snapshot(ports: &[u16], migration: Option<&str>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            providers: ports.iter().map(|p| provider(*p)).collect(),
            migration_yaml: migration.map(str::to_string),
            ..Snapshot::default()
        })
    }

    fn instances(ports: &[u16]) -> Arc<InstanceSnapshot> {
        Arc::new(InstanceSnapshot {
            providers: ports.iter().map(|p| provider(*p)).collect(),
            apps: vec!["users-app".to_string()],
            instances: ports.len(),
            pending: 0,
        })
    }

    fn directory(query: &str) -> Arc<Directory> {
        let consumer = Url::parse(&format!(
            "consumer://10.0.0.9/{IFACE}?interface={IFACE}&version=1.0.0&application=c&{query}"
        ))
        .expect("valid url");
        let service = ServiceKey {
            interface: IFACE.to_string(),
            version: Some("1.0.0".to_string()),
            group: None,
        };
        Arc::new(Directory::new(service, consumer))
    }

    fn listed() -> MakeInvoker {
        Arc::new(|u| Arc::new(ListedInvoker::new(u)) as Arc<dyn Invoker>)
    }

    fn source(id: &str, registry: &Arc<MemoryRegistry>) -> Source {
        Source {
            id: id.to_string(),
            registry: registry.clone(),
            zone: Zone::default(),
            register: true,
        }
    }

    fn ports(dir: &Directory) -> Vec<u16> {
        let mut p: Vec<u16> = dir.state().invokers.iter().map(|i| i.url().port).collect();
        p.sort_unstable();
        p
    }

    /// Waits until the directory lists `want` (refreshes run on the owner task).
    async fn until_ports(dir: &Directory, want: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while ports(dir) != want {
            assert!(
                Instant::now() < deadline,
                "directory lists {:?}, not {want:?}",
                ports(dir)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_registries_never_publish_an_older_snapshot_over_a_newer_one() {
        let (a, b) = (
            Arc::new(MemoryRegistry::default()),
            Arc::new(MemoryRegistry::default()),
        );
        a.interface.send_replace(snapshot(&[20000], None));
        b.interface.send_replace(snapshot(&[30000], None));
        let dir = directory("migration.step=FORCE_INTERFACE");
        let _d = Discovery::follow(
            Refresh::new(dir.clone(), listed()),
            vec![source("a", &a), source("b", &b)],
        )
        .await
        .expect("follows");
        // Watch B's provider while both registries change as fast as they can: its port may
        // only grow. Two owners racing (one task per registry sharing the latest snapshots)
        // could publish {A new, B old} after {A new, B new}, and B would go back.
        let watcher = {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut last = 30000;
                let mut went_back = Vec::new();
                for _ in 0..200_000 {
                    if let Some(p) = dir
                        .state()
                        .invokers
                        .iter()
                        .map(|i| i.url().port)
                        .find(|p| *p >= 30000)
                    {
                        if p < last {
                            went_back.push((last, p));
                        }
                        last = p;
                    }
                    if last == 30999 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                went_back
            })
        };
        let (ta, tb) = (a.clone(), b.clone());
        let sa = tokio::spawn(async move {
            for i in 1..1000u16 {
                ta.interface.send_replace(snapshot(&[20000 + i], None));
                tokio::task::yield_now().await;
            }
        });
        let sb = tokio::spawn(async move {
            for i in 1..1000u16 {
                tb.interface.send_replace(snapshot(&[30000 + i], None));
                tokio::task::yield_now().await;
            }
        });
        let _ = tokio::join!(sa, sb);
        until_ports(&dir, &[20999, 30999]).await;
        let went_back = watcher.await.expect("watcher");
        assert!(
            went_back.is_empty(),
            "B's provider went back: {went_back:?}"
        );
    }

    #[tokio::test]
    async fn a_migration_rule_moves_the_reference_between_the_two_sets_and_back() {
        let zk = Arc::new(MemoryRegistry::default());
        zk.interface.send_replace(snapshot(&[1], None));
        zk.instances.send_replace(instances(&[2]));
        let dir = directory("");
        let _d = Discovery::follow(Refresh::new(dir.clone(), listed()), vec![source("zk", &zk)])
            .await
            .expect("follows");
        assert_eq!(
            ports(&dir),
            [2],
            "APPLICATION_FIRST takes the application level"
        );
        let kept = dir.state().invokers[0].clone();
        zk.interface
            .send_replace(snapshot(&[1], Some("step: FORCE_INTERFACE")));
        until_ports(&dir, &[1]).await;
        zk.interface
            .send_replace(snapshot(&[1], Some("step: [not a step")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(ports(&dir), [1], "a bad rule keeps the previous one");
        zk.interface
            .send_replace(snapshot(&[1], Some("step: FORCE_APPLICATION")));
        until_ports(&dir, &[2]).await;
        zk.interface.send_replace(snapshot(&[1], None));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(ports(&dir), [2], "no rule: APPLICATION_FIRST");
        zk.instances.send_replace(instances(&[]));
        until_ports(&dir, &[1]).await;
        zk.instances.send_replace(instances(&[2]));
        until_ports(&dir, &[2]).await;
        let view = dir.discovery();
        assert_eq!(view[0].step, Step::ApplicationFirst);
        assert_eq!(
            (view[0].interface_providers, view[0].application_providers),
            (1, 1)
        );
        let _ = kept;
    }

    #[tokio::test]
    async fn force_interface_never_follows_the_application_level_until_a_rule_asks() {
        let zk = Arc::new(MemoryRegistry::default());
        zk.interface.send_replace(snapshot(&[1], None));
        zk.instances.send_replace(instances(&[2]));
        let dir = directory("migration.step=FORCE_INTERFACE");
        let _d = Discovery::follow(Refresh::new(dir.clone(), listed()), vec![source("zk", &zk)])
            .await
            .expect("follows");
        assert_eq!(ports(&dir), [1]);
        assert_eq!(zk.instance_subscriptions.load(Ordering::Relaxed), 0);
        assert_eq!(
            zk.registered.lock().map(|r| r.len()).unwrap_or(0),
            1,
            "the consumer is registered"
        );
        zk.interface
            .send_replace(snapshot(&[1], Some("step: APPLICATION_FIRST")));
        until_ports(&dir, &[2]).await;
        assert_eq!(zk.instance_subscriptions.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn configurators_apply_to_application_level_providers_too() {
        let zk = Arc::new(MemoryRegistry::default());
        let disable = Url::parse(&format!(
            "override://10.0.0.1:2/{IFACE}?category=configurators&disabled=true"
        ))
        .expect("valid url");
        zk.interface.send_replace(Arc::new(Snapshot {
            providers: vec![provider(1)],
            configurators: vec![disable],
            ..Snapshot::default()
        }));
        zk.instances.send_replace(instances(&[2, 3]));
        let dir = directory("");
        let _d = Discovery::follow(Refresh::new(dir.clone(), listed()), vec![source("zk", &zk)])
            .await
            .expect("follows");
        assert_eq!(ports(&dir), [3]);
    }

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
