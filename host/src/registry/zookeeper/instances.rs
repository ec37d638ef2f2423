//! One application-level subscription (Dubbo 3 service discovery) in a ZooKeeper registry: a
//! task that follows the interface's applications (`/dubbo/mapping/{interface}`, or the
//! reference's `provided-by`), each application's instances (children of `/services/{app}`,
//! each a Curator JSON record), and the `MetadataInfo` of every revision they run — fetched once
//! per revision (not per instance) from the instances' MetadataService, or read from
//! `/dubbo/metadata/{app}/{revision}` for `remote` storage — and publishes the provider URLs
//! they make for the consumer.
//!
//! Fetching never holds publishing up: an instance that leaves is gone from the next snapshot
//! at once, and instances whose revision is still being fetched (or whose fetch failed) are
//! counted as pending and left out. A failed revision is tried on every instance that runs it,
//! then again with backoff. Mapping, instances and metadata are kept in the registry cache file,
//! so a restart while ZooKeeper is down starts from them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use zookeeper_client as zk;

use crate::url::Url;

use super::super::cache::CacheFile;
use super::super::matching::interface_of;
use super::super::metadata::{self, Instance, MetadataInfo, Storage};
use super::super::InstanceSnapshot;
use super::{timed, Failure, Session, Shared};

/// Pause before reading a node again after a failed read.
const REREAD: Duration = Duration::from_millis(500);
/// First pause before fetching a failed revision again; doubled up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest pause between two fetches of a failing revision.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Bound on one MetadataService call when the instance does not say (Dubbo's default).
const METADATA_TIMEOUT: Duration = Duration::from_millis(5000);
/// How long subscribing waits for the first metadata.
const FIRST_FETCH: Duration = Duration::from_millis(6000);

/// Revisions a registry keeps in memory for all its subscriptions.
const MAX_REVISIONS: usize = 4096;

/// `(application, revision)`: what a `MetadataInfo` is known by.
type RevisionKey = (String, String);

/// What woke the subscription up.
enum Event {
    /// The mapping node changed (or its read is due again).
    Mapping,
    /// An application's instances changed (or their read is due again).
    Services(String),
    /// A revision's metadata arrived, or could not be had.
    Fetched(RevisionKey, Result<Arc<MetadataInfo>, String>),
    /// A failed revision may be fetched again.
    RetryDue(RevisionKey),
    /// A watch of an older session ended; nothing to do.
    Stale,
}

/// The metadata of revisions, shared by every subscription of one registry.
pub(super) type Revisions = std::sync::Mutex<HashMap<RevisionKey, Arc<MetadataInfo>>>;

/// The cache-file key of an interface's applications.
fn mapping_key(interface: &str) -> String {
    format!("dubbo.app-level.mapping.{interface}")
}

/// The cache-file key of an application's instances.
fn instances_key(app: &str) -> String {
    format!("dubbo.app-level.instances.{app}")
}

/// The cache-file key of a revision's metadata.
fn metadata_key((app, revision): &RevisionKey) -> String {
    format!("dubbo.app-level.metadata.{app}.{revision}")
}

/// Application names from a comma list (mapping data, `provided-by`): trimmed, deduplicated.
fn app_names(text: &str) -> BTreeSet<String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// Subscribes `consumer` at application level and starts the task that follows it. Returns
/// once the first read is done and the metadata of the revisions it found was fetched (or
/// [`FIRST_FETCH`] passed), so a reference built now sees its providers. Never fails: without
/// ZooKeeper it starts from the cache file (or empty) and follows ZooKeeper once it answers.
pub(super) async fn subscribe(
    shared: &Arc<Shared>,
    consumer: &Url,
) -> watch::Receiver<Arc<InstanceSnapshot>> {
    let mut d = Discovery::new(shared, consumer);
    d.load_cache().await;
    let mut sessions = shared.sessions.subscribe();
    let session = sessions.borrow_and_update().clone();
    let mut first = First {
        session,
        watches: JoinSet::new(),
        fetches: JoinSet::new(),
        armed: false,
    };
    if let Some(client) = first.session.client.clone() {
        match d.arm_all(&client, &mut first.watches).await {
            Ok(()) => first.armed = true,
            Err(error) => {
                tracing::warn!(registry = %shared.address, %error, "cannot read the application-level instances yet; retrying")
            }
        }
    }
    d.fetch_missing(first.session.client.as_ref(), &mut first.fetches);
    let deadline = tokio::time::Instant::now() + FIRST_FETCH;
    while !d.fetching.is_empty() {
        match tokio::time::timeout_at(deadline, first.fetches.join_next()).await {
            Ok(Some(Ok(Event::Fetched(key, result)))) => d.fetched(key, result, &mut first.fetches),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let (tx, rx) = watch::channel(Arc::new(d.snapshot()));
    tokio::spawn(d.run(sessions, tx, first));
    rx
}

/// What `subscribe` did before the task took over.
struct First {
    session: Session,
    watches: JoinSet<Event>,
    fetches: JoinSet<Event>,
    /// Whether every watch is armed in `session`.
    armed: bool,
}

/// One application-level subscription: what it follows and what it knows.
struct Discovery {
    shared: Arc<Shared>,
    consumer: Url,
    interface: String,
    /// `provided-by`: these applications, and no mapping.
    provided_by: Option<BTreeSet<String>>,
    apps: BTreeSet<String>,
    /// Instances by application, then by node name.
    instances: BTreeMap<String, BTreeMap<String, Instance>>,
    /// Revisions being fetched, and the failed ones with their next pause.
    fetching: HashSet<RevisionKey>,
    failed: HashMap<RevisionKey, Duration>,
    /// Metadata known to this subscription (a view of the registry-wide cache).
    known: HashMap<RevisionKey, Arc<MetadataInfo>>,
    /// The watch tasks armed for the mapping (`None`) and for each application.
    armed: HashMap<Option<String>, Vec<AbortHandle>>,
}

impl Discovery {
    fn new(shared: &Arc<Shared>, consumer: &Url) -> Discovery {
        let provided_by = consumer
            .param("provided-by")
            .map(app_names)
            .filter(|a| !a.is_empty());
        Discovery {
            shared: shared.clone(),
            consumer: consumer.clone(),
            interface: interface_of(consumer).to_string(),
            apps: provided_by.clone().unwrap_or_default(),
            provided_by,
            instances: BTreeMap::new(),
            fetching: HashSet::new(),
            failed: HashMap::new(),
            known: HashMap::new(),
            armed: HashMap::new(),
        }
    }

    fn mapping_path(&self) -> String {
        format!("{}/mapping/{}", self.shared.root, self.interface)
    }

    fn services_path(&self, app: &str) -> String {
        format!("{}/{app}", self.shared.services_root)
    }

    fn cache(&self) -> Option<&Arc<CacheFile>> {
        self.shared.cache.as_ref()
    }

    /// Starts from what the cache file kept, so a restart while ZooKeeper is down serves the
    /// last known instances.
    async fn load_cache(&mut self) {
        let Some(path) = self.shared.cache_path.clone() else {
            return;
        };
        let read = |key: String| {
            let path = path.clone();
            async move { CacheFile::read_text(&path, &key).await.ok().flatten() }
        };
        if self.provided_by.is_none() {
            if let Some(apps) = read(mapping_key(&self.interface)).await {
                self.apps = app_names(&apps);
            }
        }
        for app in self.apps.clone() {
            let Some(text) = read(instances_key(&app)).await else {
                continue;
            };
            let Ok(list) = serde_json::from_str::<Vec<Instance>>(&text) else {
                tracing::warn!(%app, "skipping unreadable cached instances");
                continue;
            };
            let by_id = list.into_iter().map(|i| (i.address(), i)).collect();
            self.instances.insert(app, by_id);
        }
        for key in self.wanted() {
            if let Some(text) = read(metadata_key(&key)).await {
                match MetadataInfo::from_json(&text) {
                    Ok(info) => self.remember(key, Arc::new(info), false),
                    Err(e) => {
                        tracing::warn!(app = %key.0, revision = %key.1, error = %e, "skipping cached metadata")
                    }
                }
            }
        }
        if !self.instances.is_empty() {
            tracing::info!(service = %self.interface, apps = ?self.apps, "application-level instances from the registry cache file");
        }
    }

    /// Every revision some listed instance runs.
    fn wanted(&self) -> BTreeSet<RevisionKey> {
        self.instances
            .iter()
            .flat_map(|(app, by_id)| {
                by_id
                    .values()
                    .filter_map(move |i| Some((app.clone(), i.revision()?.to_string())))
            })
            .collect()
    }

    /// Keeps `info` as the metadata of `key`, here, registry-wide and (when `save`) in the
    /// cache file.
    fn remember(&mut self, key: RevisionKey, info: Arc<MetadataInfo>, save: bool) {
        if let Ok(mut all) = self.shared.revisions.lock() {
            if all.len() >= MAX_REVISIONS {
                // Revisions of instances long gone; any subscription still needing one has it.
                all.clear();
            }
            all.insert(key.clone(), info.clone());
        }
        if save {
            if let Some(cache) = self.cache() {
                cache.save_text(metadata_key(&key), info.to_json());
            }
        }
        self.known.insert(key, info);
    }

    /// What the subscription shows now.
    fn snapshot(&self) -> InstanceSnapshot {
        let mut snap = InstanceSnapshot {
            apps: self.apps.iter().cloned().collect(),
            ..InstanceSnapshot::default()
        };
        for (app, by_id) in &self.instances {
            for instance in by_id.values() {
                snap.instances += 1;
                let Some(revision) = instance.revision() else {
                    continue;
                };
                match self.known.get(&(app.clone(), revision.to_string())) {
                    Some(info) => snap.providers.extend(metadata::provider_urls(
                        &self.consumer,
                        instance,
                        info,
                    )),
                    None => snap.pending += 1,
                }
            }
        }
        snap.providers.sort_by_cached_key(Url::to_string);
        snap.providers.dedup();
        snap
    }

    fn publish(&self, out: &watch::Sender<Arc<InstanceSnapshot>>) {
        let snap = self.snapshot();
        if *out.borrow().as_ref() != snap {
            tracing::debug!(service = %self.interface, providers = snap.providers.len(), pending = snap.pending, "application-level snapshot changed");
            out.send_replace(Arc::new(snap));
        }
    }

    /// Starts fetching every wanted revision that is neither known, being fetched, nor
    /// waiting for its retry; forgets failures of revisions no instance runs any more.
    fn fetch_missing(&mut self, client: Option<&zk::Client>, tasks: &mut JoinSet<Event>) {
        let wanted = self.wanted();
        self.failed.retain(|k, _| wanted.contains(k));
        self.known.retain(|k, _| wanted.contains(k));
        for key in wanted {
            if self.known.contains_key(&key)
                || self.fetching.contains(&key)
                || self.failed.contains_key(&key)
            {
                continue;
            }
            let shared_hit = self
                .shared
                .revisions
                .lock()
                .ok()
                .and_then(|all| all.get(&key).cloned());
            if let Some(info) = shared_hit {
                self.known.insert(key, info);
                continue;
            }
            let candidates: Vec<Instance> = self
                .instances
                .get(&key.0)
                .map(|by_id| {
                    by_id
                        .values()
                        .filter(|i| i.revision() == Some(key.1.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            self.fetching.insert(key.clone());
            let client = client.cloned();
            let root = self.shared.root.clone();
            let op_timeout = self.shared.op_timeout;
            let cache_path = self.shared.cache_path.clone();
            tasks.spawn(async move {
                let result =
                    fetch_revision(&key, candidates, client, &root, op_timeout, cache_path).await;
                Event::Fetched(key, result)
            });
        }
    }

    /// Takes a fetch result: remembers the metadata, or schedules the next try.
    fn fetched(
        &mut self,
        key: RevisionKey,
        result: Result<Arc<MetadataInfo>, String>,
        tasks: &mut JoinSet<Event>,
    ) {
        self.fetching.remove(&key);
        if !self.wanted().contains(&key) {
            return;
        }
        match result {
            Ok(info) => {
                self.failed.remove(&key);
                self.remember(key, info, true);
            }
            Err(error) => {
                let pause = self
                    .failed
                    .get(&key)
                    .map_or(RETRY_MIN, |p| (*p * 2).min(RETRY_MAX));
                tracing::warn!(app = %key.0, revision = %key.1, %error, retry_in = ?pause, "cannot get the metadata of a revision; its instances wait");
                self.failed.insert(key.clone(), pause);
                tasks.spawn(async move {
                    tokio::time::sleep(pause).await;
                    Event::RetryDue(key)
                });
            }
        }
    }

    /// Drops the watches armed for `target` (`None`: the mapping), before they are armed again.
    fn disarm(&mut self, target: Option<&str>) {
        let key = target.map(str::to_string);
        for handle in self.armed.remove(&key).unwrap_or_default() {
            handle.abort();
        }
    }

    fn arm(&mut self, target: Option<&str>, handle: AbortHandle) {
        self.armed
            .entry(target.map(str::to_string))
            .or_default()
            .push(handle);
    }

    /// Reads the mapping with a data watch (an existence watch while it is missing).
    async fn read_mapping(
        &mut self,
        client: &zk::Client,
        watches: &mut JoinSet<Event>,
    ) -> Result<(), String> {
        let path = self.mapping_path();
        let timeout = self.shared.op_timeout;
        self.disarm(None);
        let (stat, watcher) = timed(timeout, client.check_and_watch_stat(&path))
            .await
            .map_err(|e| format!("watch `{path}`: {e}"))?;
        let handle = watch_one(watches, watcher, Event::Mapping);
        self.arm(None, handle);
        let text = match stat {
            None => String::new(),
            Some(_) => match timed(timeout, client.get_data(&path)).await {
                Ok((data, _)) => String::from_utf8_lossy(&data).into_owned(),
                Err(Failure::Zk(zk::Error::NoNode)) => String::new(),
                Err(e) => return Err(format!("read `{path}`: {e}")),
            },
        };
        // As Dubbo's mapping listener: applications are added, never dropped by the mapping.
        let added: Vec<String> = app_names(&text)
            .into_iter()
            .filter(|a| !self.apps.contains(a))
            .collect();
        if !added.is_empty() {
            tracing::info!(service = %self.interface, apps = ?added, "following applications from the service-name mapping");
            self.apps.extend(added);
            if let Some(cache) = self.cache() {
                let list: Vec<&str> = self.apps.iter().map(String::as_str).collect();
                cache.save_text(mapping_key(&self.interface), list.join(","));
            }
        }
        Ok(())
    }

    /// Lists an application's instances with a child watch and reads each with a data watch.
    /// A record that does not parse is skipped and logged; the others are kept.
    async fn read_services(
        &mut self,
        client: &zk::Client,
        app: &str,
        watches: &mut JoinSet<Event>,
    ) -> Result<(), String> {
        let dir = self.services_path(app);
        let timeout = self.shared.op_timeout;
        self.disarm(Some(app));
        let changed = || Event::Services(app.to_string());
        let (stat, watcher) = timed(timeout, client.check_and_watch_stat(&dir))
            .await
            .map_err(|e| format!("watch `{dir}`: {e}"))?;
        let mut found = BTreeMap::new();
        let children = match stat {
            None => {
                let handle = watch_one(watches, watcher, changed());
                self.arm(Some(app), handle);
                Vec::new()
            }
            Some(_) => match timed(timeout, client.list_and_watch_children(&dir)).await {
                Ok((children, child_watcher)) => {
                    let handle = watch_one(watches, child_watcher, changed());
                    self.arm(Some(app), handle);
                    children
                }
                // Deleted since the check: the existence watch fires.
                Err(Failure::Zk(zk::Error::NoNode)) => {
                    let handle = watch_one(watches, watcher, changed());
                    self.arm(Some(app), handle);
                    Vec::new()
                }
                Err(e) => return Err(format!("list `{dir}`: {e}")),
            },
        };
        for child in children {
            let path = format!("{dir}/{child}");
            match timed(timeout, client.get_and_watch_data(&path)).await {
                Ok((data, _, data_watcher)) => {
                    let handle = watch_one(watches, data_watcher, changed());
                    self.arm(Some(app), handle);
                    match Instance::from_json(app, &data) {
                        Ok(instance) => {
                            found.insert(child, instance);
                        }
                        Err(error) => {
                            tracing::warn!(%path, %error, "skipping an instance record that cannot be read")
                        }
                    }
                }
                Err(Failure::Zk(zk::Error::NoNode)) => {}
                Err(e) => return Err(format!("read `{path}`: {e}")),
            }
        }
        if self.instances.get(app) != Some(&found) {
            if let Some(cache) = self.cache() {
                let list: Vec<&Instance> = found.values().collect();
                cache.save_text(
                    instances_key(app),
                    serde_json::to_string(&list).unwrap_or_default(),
                );
            }
            self.instances.insert(app.to_string(), found);
        }
        Ok(())
    }

    /// Reads everything with fresh watches.
    async fn arm_all(
        &mut self,
        client: &zk::Client,
        watches: &mut JoinSet<Event>,
    ) -> Result<(), String> {
        if self.provided_by.is_none() {
            self.read_mapping(client, watches).await?;
        }
        for app in self.apps.clone() {
            self.read_services(client, &app, watches).await?;
        }
        Ok(())
    }

    /// Reads what `event` says changed; the event to retry when the read failed.
    async fn reread(
        &mut self,
        client: &zk::Client,
        event: Event,
        watches: &mut JoinSet<Event>,
    ) -> Result<(), (Event, String)> {
        match event {
            Event::Mapping => {
                let before = self.apps.clone();
                self.read_mapping(client, watches)
                    .await
                    .map_err(|e| (Event::Mapping, e))?;
                for app in self.apps.difference(&before).cloned().collect::<Vec<_>>() {
                    self.read_services(client, &app, watches)
                        .await
                        .map_err(|e| (Event::Services(app.clone()), e))?;
                }
                Ok(())
            }
            Event::Services(app) => self
                .read_services(client, &app, watches)
                .await
                .map_err(|e| (Event::Services(app), e)),
            _ => Ok(()),
        }
    }

    /// Follows ZooKeeper until every receiver is gone.
    async fn run(
        mut self,
        mut sessions: watch::Receiver<Session>,
        out: watch::Sender<Arc<InstanceSnapshot>>,
        first: First,
    ) {
        // Fetches outlive sessions: their results stay good.
        let mut fetches = first.fetches;
        let mut armed_first = first.armed.then_some((first.session, first.watches));
        loop {
            let (session, mut watches) = match armed_first.take() {
                Some(armed) => armed,
                None => {
                    let session = sessions.borrow_and_update().clone();
                    let mut watches: JoinSet<Event> = JoinSet::new();
                    self.armed.clear();
                    if let Some(client) = &session.client {
                        if let Err(error) = self.arm_all(client, &mut watches).await {
                            tracing::warn!(registry = %self.shared.address, %error, "cannot follow application-level instances yet; retrying");
                            retry_later(&mut watches, Event::Mapping);
                        }
                    }
                    (session, watches)
                }
            };
            let client = session.client.clone();
            self.fetch_missing(client.as_ref(), &mut fetches);
            self.publish(&out);
            loop {
                let event = tokio::select! {
                    _ = out.closed() => return,
                    changed = sessions.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let now = sessions.borrow().clone();
                        if now.generation != session.generation
                            || now.client.is_none()
                            || now.resyncs != session.resyncs
                        {
                            // A new session, or events lost while disconnected: read it all again.
                            break;
                        }
                        continue;
                    }
                    Some(Ok(event)) = watches.join_next() => event,
                    Some(Ok(event)) = fetches.join_next() => event,
                };
                match event {
                    Event::Stale => continue,
                    Event::Fetched(key, result) => self.fetched(key, result, &mut fetches),
                    Event::RetryDue(key) => {
                        self.failed.remove(&key);
                    }
                    watched => {
                        let Some(client) = &client else { continue };
                        if let Err((again, error)) =
                            self.reread(client, watched, &mut watches).await
                        {
                            tracing::warn!(registry = %self.shared.address, %error, "cannot re-read an application-level node; retrying");
                            retry_later(&mut watches, again);
                        }
                    }
                }
                self.fetch_missing(client.as_ref(), &mut fetches);
                self.publish(&out);
            }
        }
    }
}

/// Waits on a one-shot watch and reports `event` when it fires ([`Event::Stale`] when its
/// session ended, as the supervisor then announces the next one).
fn watch_one(
    watches: &mut JoinSet<Event>,
    watcher: zk::OneshotWatcher,
    event: Event,
) -> AbortHandle {
    watches.spawn(async move {
        let fired = watcher.changed().await;
        if fired.event_type == zk::EventType::Session {
            Event::Stale
        } else {
            event
        }
    })
}

fn retry_later(watches: &mut JoinSet<Event>, event: Event) {
    watches.spawn(async move {
        tokio::time::sleep(REREAD).await;
        event
    });
}

/// The metadata of one revision: from the cache file, else from the instances that run it (one
/// after another, in random order, until one answers) or the metadata report.
async fn fetch_revision(
    key: &RevisionKey,
    mut candidates: Vec<Instance>,
    client: Option<zk::Client>,
    root: &str,
    op_timeout: Duration,
    cache_path: Option<std::path::PathBuf>,
) -> Result<Arc<MetadataInfo>, String> {
    if let Some(path) = &cache_path {
        if let Ok(Some(text)) = CacheFile::read_text(path, &metadata_key(key)).await {
            if let Ok(info) = MetadataInfo::from_json(&text) {
                return Ok(Arc::new(info));
            }
        }
    }
    fastrand::shuffle(&mut candidates);
    let mut errors = Vec::new();
    for instance in &candidates {
        let got = match instance.storage() {
            Storage::Local => metadata::fetch_local(instance, &key.1, METADATA_TIMEOUT).await,
            Storage::Remote => read_remote(client.as_ref(), root, key, op_timeout).await,
        };
        match got {
            Ok(info) => return Ok(Arc::new(info)),
            Err(e) => errors.push(format!("{}: {e}", instance.address())),
        }
        if instance.storage() == Storage::Remote {
            // One metadata report for every instance: asking it again changes nothing.
            break;
        }
    }
    if errors.is_empty() {
        errors.push("no instance runs it".to_string());
    }
    Err(errors.join("; "))
}

/// Reads `{root}/metadata/{app}/{revision}` from the metadata report (the registry).
async fn read_remote(
    client: Option<&zk::Client>,
    root: &str,
    (app, revision): &RevisionKey,
    op_timeout: Duration,
) -> Result<MetadataInfo, String> {
    let client = client.ok_or_else(|| "no ZooKeeper session".to_string())?;
    let path = format!("{root}/metadata/{app}/{revision}");
    let (data, _) = timed(op_timeout, client.get_data(&path))
        .await
        .map_err(|e| format!("read `{path}`: {e}"))?;
    MetadataInfo::from_json(&String::from_utf8_lossy(&data)).map_err(|e| format!("`{path}`: {e}"))
}
