//! One subscription to a ZooKeeper registry: a task that keeps one-shot watches armed on the
//! interface's `providers`, `configurators` and `routers` directories (full child list on every
//! change) and on the YAML rule nodes (existence watches, so rules created later are seen),
//! re-reads a node as soon as its watch fires and publishes a full [`Snapshot`]. It follows
//! the registry's sessions: on a new session it arms everything again; meanwhile subscribers
//! keep the last snapshot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use zookeeper_client as zk;

use crate::url::{encode_component, Url};

use super::super::cache::CacheFile;
use super::super::matching::{interface_of, service_key, Category};
use super::super::snapshot::{build, build_from_raw, tag_router_application, Raw};
use super::super::{RegistryError, Snapshot};
use super::{dir_options, timed, Failure, Session, Shared};

/// Pause before reading a node again after a failed read.
const REREAD: Duration = Duration::from_millis(500);

/// Subscribes `consumer`: reads everything with watches (or, without ZooKeeper, the cache
/// file) and starts the task that follows changes.
pub(super) async fn subscribe(
    shared: &Shared,
    consumer: &Url,
) -> Result<watch::Receiver<Arc<Snapshot>>, RegistryError> {
    let mut watching = Watching::new(shared, consumer);
    let mut sessions = shared.sessions.subscribe();
    let session = sessions.borrow_and_update().clone();
    let mut failure = "no ZooKeeper session".to_string();
    if let Some(client) = session.client {
        let mut watches = JoinSet::new();
        match watching.arm_all(&client, &mut watches).await {
            Ok(()) => {
                let snap = build_from_raw(
                    &watching.consumer,
                    &watching.service_dir,
                    &watching.raw,
                    &Snapshot::default(),
                );
                watching.save(&snap);
                let (tx, rx) = watch::channel(Arc::new(snap));
                let live = Live {
                    client,
                    generation: session.generation,
                    watches,
                };
                tokio::spawn(watching.run(sessions, tx, Some(live)));
                return Ok(rx);
            }
            Err(e) => {
                tracing::warn!(registry = %shared.address, error = %e, "cannot read the subscription from ZooKeeper; trying the cache file");
                failure = e.to_string();
            }
        }
    }
    let key = watching.key.clone();
    let Some(path) = &shared.cache_path else {
        return Err(shared.operation_error(
            "subscribe",
            &watching.service_dir,
            format!("{failure}, and the cache file is disabled (file-cache=false)"),
        ));
    };
    let urls = CacheFile::read(path, &key)
        .await
        .map_err(|source| RegistryError::CacheUnreadable {
            address: shared.address.clone(),
            path: path.clone(),
            source,
        })?
        .ok_or_else(|| RegistryError::NotCached {
            address: shared.address.clone(),
            service: key.clone(),
            cache: path.display().to_string(),
        })?;
    tracing::warn!(registry = %shared.address, service = %key, providers = urls.len(), file = %path.display(), "serving the registry cache file until ZooKeeper answers");
    let snap = build(consumer, urls, Default::default(), &Snapshot::default());
    let (tx, rx) = watch::channel(Arc::new(snap));
    tokio::spawn(watching.run(sessions, tx, None));
    Ok(rx)
}

/// Which YAML dynamic-config node a watch is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Configurators,
    ConditionRouter,
    TagRouter,
    /// The Dubbo 3 migration rule of the consumer's application.
    Migration,
    /// The consumer application's configurators and condition routes.
    AppConfigurators,
    AppConditionRouter,
}

/// What a watch task is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir(Category),
    Rule(Rule),
}

/// Why a node needs reading again.
enum Trigger {
    Fired(zk::WatchedEvent),
    /// An earlier read failed; its watch was not armed.
    Retry,
}

/// A finished watch task: the node, its path, and why.
type Fired = (Node, String, Trigger);

/// A session a subscription is following, with the watches armed in it.
struct Live {
    client: zk::Client,
    generation: u64,
    /// Dropping it drops the watchers, which removes them from the client.
    watches: JoinSet<Fired>,
}

/// A failed read while arming a subscription.
struct ReadFailure {
    operation: &'static str,
    path: String,
    failure: Failure,
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`: {}", self.operation, self.path, self.failure)
    }
}

/// One subscription: its paths, what was read last, and where snapshots go.
struct Watching {
    address: String,
    consumer: Url,
    /// `/dubbo/{encoded interface}`.
    service_dir: String,
    /// `/dubbo/config/dubbo`.
    config_dir: String,
    /// `/dubbo/config/DUBBO_SERVICEDISCOVERY_MIGRATION`, where migration rules are.
    migration_dir: String,
    /// The cache-file key, `group/interface:version`.
    key: String,
    op_timeout: Duration,
    cache: Option<Arc<CacheFile>>,
    raw: Raw,
    /// The tag-router node currently watched (it follows the providers' application).
    tag_path: Option<String>,
}

fn watch_node(watches: &mut JoinSet<Fired>, node: Node, path: String, watcher: zk::OneshotWatcher) {
    watches.spawn(async move { (node, path, Trigger::Fired(watcher.changed().await)) });
}

fn retry_later(watches: &mut JoinSet<Fired>, node: Node, path: String) {
    watches.spawn(async move {
        tokio::time::sleep(REREAD).await;
        (node, path, Trigger::Retry)
    });
}

impl Watching {
    fn new(shared: &Shared, consumer: &Url) -> Watching {
        Watching {
            address: shared.address.clone(),
            consumer: consumer.clone(),
            service_dir: format!(
                "{}/{}",
                shared.root,
                encode_component(interface_of(consumer))
            ),
            config_dir: format!("{}/config/dubbo", shared.root),
            migration_dir: format!("{}/config/DUBBO_SERVICEDISCOVERY_MIGRATION", shared.root),
            key: service_key(consumer).to_string(),
            op_timeout: shared.op_timeout,
            cache: shared.cache.clone(),
            raw: Raw::default(),
            tag_path: None,
        }
    }

    /// `{config_dir}/{iface}:{version}:{group}.{suffix}`, blanks kept empty as Dubbo does.
    fn rule_path(&self, rule: Rule) -> Option<String> {
        let c = &self.consumer;
        let app = c.param("application").filter(|a| !a.is_empty());
        let service = format!(
            "{}:{}:{}",
            interface_of(c),
            c.param("version").unwrap_or(""),
            c.param("group").unwrap_or("")
        );
        match rule {
            Rule::Configurators => Some(format!("{}/{service}.configurators", self.config_dir)),
            Rule::ConditionRouter => {
                Some(format!("{}/{service}.condition-router", self.config_dir))
            }
            Rule::TagRouter => self.tag_path.clone(),
            Rule::Migration => app.map(|app| format!("{}/{app}.migration", self.migration_dir)),
            Rule::AppConfigurators => {
                app.map(|app| format!("{}/{app}.configurators", self.config_dir))
            }
            Rule::AppConditionRouter => {
                app.map(|app| format!("{}/{app}.condition-router", self.config_dir))
            }
        }
    }

    fn rule_slot(&mut self, rule: Rule) -> &mut Option<String> {
        match rule {
            Rule::Configurators => &mut self.raw.configurators_yaml,
            Rule::ConditionRouter => &mut self.raw.condition_router_yaml,
            Rule::TagRouter => &mut self.raw.tag_router_yaml,
            Rule::Migration => &mut self.raw.migration_yaml,
            Rule::AppConfigurators => &mut self.raw.app_configurators_yaml,
            Rule::AppConditionRouter => &mut self.raw.app_condition_router_yaml,
        }
    }

    fn dir_slot(&mut self, category: Category) -> &mut Vec<String> {
        match category {
            Category::Providers => &mut self.raw.providers,
            Category::Routers => &mut self.raw.routers,
            Category::Configurators => &mut self.raw.configurators,
        }
    }

    /// Lists a directory with a child watch, creating it when missing.
    async fn read_dir(
        &mut self,
        client: &zk::Client,
        category: Category,
        watches: &mut JoinSet<Fired>,
    ) -> Result<(), ReadFailure> {
        let path = format!("{}/{}", self.service_dir, category.dir());
        let fail = |operation, failure| ReadFailure {
            operation,
            path: path.clone(),
            failure,
        };
        let mut created = false;
        let children = loop {
            match timed(self.op_timeout, client.list_and_watch_children(&path)).await {
                Ok((children, watcher)) => {
                    watch_node(watches, Node::Dir(category), path.clone(), watcher);
                    break children;
                }
                Err(Failure::Zk(zk::Error::NoNode)) if !created => {
                    timed(self.op_timeout, client.mkdir(&path, &dir_options()))
                        .await
                        .map_err(|f| fail("create", f))?;
                    created = true;
                }
                Err(f) => return Err(fail("list", f)),
            }
        };
        *self.dir_slot(category) = children;
        Ok(())
    }

    /// Reads a YAML rule with an existence watch, which also fires when a missing node appears.
    async fn read_rule(
        &mut self,
        client: &zk::Client,
        rule: Rule,
        watches: &mut JoinSet<Fired>,
    ) -> Result<(), ReadFailure> {
        let Some(path) = self.rule_path(rule) else {
            *self.rule_slot(rule) = None;
            return Ok(());
        };
        let fail = |operation, failure| ReadFailure {
            operation,
            path: path.clone(),
            failure,
        };
        let (stat, watcher) = timed(self.op_timeout, client.check_and_watch_stat(&path))
            .await
            .map_err(|f| fail("watch", f))?;
        watch_node(watches, Node::Rule(rule), path.clone(), watcher);
        let text = match stat {
            None => None,
            Some(_) => match timed(self.op_timeout, client.get_data(&path)).await {
                Ok((data, _)) => Some(String::from_utf8_lossy(&data).into_owned()),
                // Deleted since the check: its watch fires and we read again.
                Err(Failure::Zk(zk::Error::NoNode)) => None,
                Err(f) => return Err(fail("read", f)),
            },
        };
        *self.rule_slot(rule) = text.filter(|t| !t.trim().is_empty());
        Ok(())
    }

    /// Points the tag-router watch at the application of the current first provider.
    async fn follow_tag_application(
        &mut self,
        client: &zk::Client,
        watches: &mut JoinSet<Fired>,
    ) -> Result<(), ReadFailure> {
        let providers = build_from_raw(
            &self.consumer,
            &self.service_dir,
            &self.raw,
            &Snapshot::default(),
        )
        .providers;
        let path = tag_router_application(&providers)
            .map(|app| format!("{}/{}.tag-router", self.config_dir, app));
        if path == self.tag_path {
            return Ok(());
        }
        let previous = std::mem::replace(&mut self.tag_path, path);
        let read = self.read_rule(client, Rule::TagRouter, watches).await;
        if read.is_err() {
            // Not watched yet: the retry of the providers read must try this path again.
            self.tag_path = previous;
        }
        read
    }

    /// Reads everything with fresh watches.
    async fn arm_all(
        &mut self,
        client: &zk::Client,
        watches: &mut JoinSet<Fired>,
    ) -> Result<(), ReadFailure> {
        for category in [
            Category::Providers,
            Category::Configurators,
            Category::Routers,
        ] {
            self.read_dir(client, category, watches).await?;
        }
        self.read_rule(client, Rule::Configurators, watches).await?;
        self.read_rule(client, Rule::ConditionRouter, watches)
            .await?;
        for rule in [
            Rule::Migration,
            Rule::AppConfigurators,
            Rule::AppConditionRouter,
        ] {
            self.read_rule(client, rule, watches).await?;
        }
        self.tag_path = None;
        self.raw.tag_router_yaml = None;
        self.follow_tag_application(client, watches).await
    }

    /// Reads the node a watch fired for, and arms its watch again.
    async fn reread(
        &mut self,
        client: &zk::Client,
        node: Node,
        path: &str,
        watches: &mut JoinSet<Fired>,
    ) -> Result<(), ReadFailure> {
        match node {
            Node::Dir(category) => {
                self.read_dir(client, category, watches).await?;
                if category == Category::Providers {
                    self.follow_tag_application(client, watches).await?;
                }
                Ok(())
            }
            // The providers moved to another application since this watch was set.
            Node::Rule(Rule::TagRouter) if self.tag_path.as_deref() != Some(path) => Ok(()),
            Node::Rule(rule) => self.read_rule(client, rule, watches).await,
        }
    }

    fn save(&self, snap: &Snapshot) {
        if let Some(cache) = &self.cache {
            let urls: Vec<&Url> = snap
                .providers
                .iter()
                .chain(&snap.routers)
                .chain(&snap.configurators)
                .collect();
            cache.save(self.key.clone(), &urls);
        }
    }

    /// Publishes a new snapshot when it differs from the last one.
    fn publish(&self, out: &watch::Sender<Arc<Snapshot>>) {
        let previous = out.borrow().clone();
        let snap = build_from_raw(&self.consumer, &self.service_dir, &self.raw, &previous);
        if snap != *previous {
            tracing::debug!(service = %self.key, providers = snap.providers.len(), "registry snapshot changed");
            self.save(&snap);
            out.send_replace(Arc::new(snap));
        }
    }

    /// Waits for a live session and arms every watch in it; `None` when the registry or every
    /// subscriber is gone.
    async fn attach(
        &mut self,
        sessions: &mut watch::Receiver<Session>,
        out: &watch::Sender<Arc<Snapshot>>,
    ) -> Option<Live> {
        loop {
            let session = sessions.borrow_and_update().clone();
            if let Some(client) = session.client {
                let mut watches = JoinSet::new();
                match self.arm_all(&client, &mut watches).await {
                    Ok(()) => {
                        self.publish(out);
                        return Some(Live {
                            client,
                            generation: session.generation,
                            watches,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(registry = %self.address, error = %e, "cannot subscribe yet; retrying");
                    }
                }
                tokio::select! {
                    _ = out.closed() => return None,
                    _ = tokio::time::sleep(REREAD) => continue,
                }
            }
            tokio::select! {
                _ = out.closed() => return None,
                changed = sessions.changed() => changed.ok()?,
            }
        }
    }

    /// Follows the subscription until every receiver is dropped or the registry goes away.
    async fn run(
        mut self,
        mut sessions: watch::Receiver<Session>,
        out: watch::Sender<Arc<Snapshot>>,
        mut live: Option<Live>,
    ) {
        loop {
            let mut current = match live.take() {
                Some(l) => l,
                None => match self.attach(&mut sessions, &out).await {
                    Some(l) => l,
                    None => return,
                },
            };
            let mut resyncs = sessions.borrow().resyncs;
            loop {
                tokio::select! {
                    _ = out.closed() => return,
                    changed = sessions.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let session = sessions.borrow_and_update().clone();
                        if session.generation != current.generation || session.client.is_none() {
                            // Session over: keep the last snapshot and wait for the next one.
                            break;
                        }
                        if session.resyncs != resyncs {
                            resyncs = session.resyncs;
                            // Events during the outage may be lost: read everything again.
                            let mut fresh = JoinSet::new();
                            match self.arm_all(&current.client, &mut fresh).await {
                                Ok(()) => {
                                    current.watches = fresh;
                                    self.publish(&out);
                                }
                                Err(e) => tracing::warn!(registry = %self.address, error = %e, "cannot re-read after reconnecting; keeping the current watches"),
                            }
                        }
                    }
                    Some(done) = current.watches.join_next() => {
                        let Ok((node, path, trigger)) = done else { continue };
                        if let Trigger::Fired(event) = &trigger {
                            if event.event_type == zk::EventType::Session {
                                // Only terminal states reach one-shot watchers: the session is
                                // over; the supervisor announces the next one.
                                continue;
                            }
                        }
                        match self.reread(&current.client, node, &path, &mut current.watches).await {
                            Ok(()) => self.publish(&out),
                            Err(e) => {
                                tracing::warn!(registry = %self.address, error = %e, "cannot re-read a registry node; retrying");
                                retry_later(&mut current.watches, node, path);
                            }
                        }
                    }
                }
            }
        }
    }
}
