//! The ZooKeeper registry, in Dubbo's layout: `/dubbo/{interface}/{providers|consumers|routers|
//! configurators}/{URL-encoded URL}` plus YAML rules under `/dubbo/config/dubbo`. This file owns
//! the session: a supervisor task follows its state, opens a new session after expiry and
//! registers this process's URLs again; `subscription` follows one subscription in it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client as zk;

use crate::rpc::BoxFuture;
use crate::url::{encode_component, Url};

use super::cache::CacheFile;
use super::matching::interface_of;
use super::{
    DefinitionKey, InstanceSnapshot, PublishedDefinition, Registry, RegistryError, RegistryOptions,
    Snapshot,
};

mod definitions;
mod instances;
mod subscription;

/// First pause between attempts to open a new session; doubled up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest pause between session attempts (Dubbo retries every 5 s; a consumer waiting for its
/// providers wants them back sooner).
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Session states as reported by [`Registry::state`].
const CONNECTED: u8 = 0;
const SUSPENDED: u8 = 1;
const EXPIRED: u8 = 2;
const RECONNECTING: u8 = 3;

/// The current ZooKeeper session as subscriptions see it.
#[derive(Clone, Default)]
struct Session {
    /// `None` while there is no live session.
    client: Option<zk::Client>,
    /// Bumped for every new session: watches of older ones are gone.
    generation: u64,
    /// Bumped when the connection came back within the session: re-read, events may be lost.
    resyncs: u64,
}

struct Shared {
    /// `zookeeper://host:port`, for messages.
    address: String,
    /// The connect string, `host:port[,host:port]`.
    cluster: String,
    /// `/dubbo`, or `/{group}` from the address.
    root: String,
    /// Where application instances are: `/services`, or `/{group}` (`rootPath` wins).
    services_root: String,
    /// The metadata of the revisions application-level subscriptions met.
    revisions: instances::Revisions,
    session_timeout: Duration,
    op_timeout: Duration,
    state: AtomicU8,
    sessions: watch::Sender<Session>,
    /// Node path → ephemeral, for every URL to keep registered.
    registered: Mutex<BTreeMap<String, bool>>,
    cache: Option<Arc<CacheFile>>,
    cache_path: Option<PathBuf>,
}

/// A registry backed by one ZooKeeper session at a time.
pub(crate) struct ZookeeperRegistry {
    shared: Arc<Shared>,
    supervisor: tokio::task::AbortHandle,
}

impl Drop for ZookeeperRegistry {
    fn drop(&mut self) {
        // The supervisor holds the session; stopping it lets the session close, which removes
        // this process's ephemeral nodes and ends every subscription task.
        self.supervisor.abort();
    }
}

/// Why one ZooKeeper request failed.
#[derive(Debug)]
enum Failure {
    Zk(zk::Error),
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Zk(e) => write!(f, "{e}"),
            Failure::Timeout(t) => write!(f, "no answer within {t:?}"),
        }
    }
}

/// Runs one request with a deadline: the client queues requests while disconnected, and an
/// outage must not stall callers forever.
async fn timed<T>(
    limit: Duration,
    request: impl Future<Output = Result<T, zk::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, request).await {
        Ok(result) => result.map_err(Failure::Zk),
        Err(_) => Err(Failure::Timeout(limit)),
    }
}

fn dir_options() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn open_session(
    cluster: &str,
    session_timeout: Duration,
    connect_timeout: Duration,
) -> Result<zk::Client, String> {
    // Not failing eagerly: the client then keeps cycling through the hosts (a server that is
    // still starting refuses sessions for a moment); the deadline below bounds the wait.
    let connector = zk::Client::connector().with_session_timeout(session_timeout);
    match tokio::time::timeout(connect_timeout, connector.connect(cluster)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no session within {connect_timeout:?}")),
    }
}

impl ZookeeperRegistry {
    /// Opens the first session (bounded by the connect timeout) and starts the supervisor.
    pub(crate) async fn connect(opts: RegistryOptions) -> Result<ZookeeperRegistry, RegistryError> {
        let address = format!("zookeeper://{}", opts.address.address());
        let mut cluster = opts.address.address();
        if let Some(backup) = opts.address.param("backup").filter(|b| !b.is_empty()) {
            cluster.push(',');
            cluster.push_str(backup);
        }
        let group = opts.address.param("group").filter(|g| !g.is_empty());
        let root = format!("/{}", group.unwrap_or("dubbo").trim_matches('/'));
        // Dubbo 3's `CuratorFrameworkUtils.getRootPath`: `rootPath`, else the group, else
        // `/services`.
        let services_root = match opts.address.param("rootPath").filter(|r| !r.is_empty()) {
            Some(r) => format!("/{}", r.trim_matches('/')),
            None => format!("/{}", group.unwrap_or("services").trim_matches('/')),
        };
        let cache_path = opts.cache_file();
        let first = open_session(&cluster, opts.session_timeout, opts.connect_timeout).await;
        let client = match first {
            Ok(client) => Some(client),
            Err(reason) => {
                let probe = cache_path.clone();
                let cached = tokio::task::spawn_blocking(move || probe.is_some_and(|p| p.exists()))
                    .await
                    .unwrap_or(false);
                if !cached && opts.address.param_bool("check", true) {
                    return Err(RegistryError::Unreachable {
                        address,
                        timeout: opts.connect_timeout,
                        reason,
                    });
                }
                tracing::warn!(registry = %address, %reason, "ZooKeeper is unreachable; serving the cache file and connecting in the background");
                None
            }
        };
        let shared = Arc::new(Shared {
            address,
            cluster,
            root,
            services_root,
            revisions: Default::default(),
            session_timeout: opts.session_timeout,
            op_timeout: opts.connect_timeout,
            state: AtomicU8::new(RECONNECTING),
            sessions: watch::Sender::new(Session::default()),
            registered: Mutex::new(BTreeMap::new()),
            cache: cache_path.clone().map(|p| Arc::new(CacheFile::open(p))),
            cache_path,
        });
        if let Some(client) = &client {
            shared.adopt(client);
        }
        let supervisor = tokio::spawn(supervise(shared.clone(), client)).abort_handle();
        Ok(ZookeeperRegistry { shared, supervisor })
    }
}

impl Shared {
    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Relaxed);
    }

    /// Makes `client` the current session.
    fn adopt(&self, client: &zk::Client) {
        self.set_state(CONNECTED);
        self.sessions.send_modify(|s| {
            s.client = Some(client.clone());
            s.generation += 1;
        });
    }

    fn client(&self) -> Option<zk::Client> {
        self.sessions.borrow().client.clone()
    }

    /// The node a URL is registered as, and whether it is ephemeral.
    fn node_of(&self, url: &Url) -> (String, bool) {
        let mut url = url.clone();
        if url.protocol == "consumer" && !url.params.contains_key("category") {
            url.params
                .insert("category".to_string(), "consumers".to_string());
        }
        let category = url
            .param("category")
            .filter(|c| !c.is_empty())
            .unwrap_or("providers");
        let path = format!(
            "{}/{}/{}/{}",
            self.root,
            encode_component(interface_of(&url)),
            category,
            encode_component(&url.to_string())
        );
        (path, url.param_bool("dynamic", true))
    }

    fn operation_error(
        &self,
        operation: &'static str,
        path: &str,
        reason: impl ToString,
    ) -> RegistryError {
        RegistryError::Operation {
            address: self.address.clone(),
            operation,
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Creates every registered node that is missing in this session.
    async fn register_all(&self, client: &zk::Client) {
        let nodes: Vec<(String, bool)> = self
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, e)| (p.clone(), *e))
            .collect();
        for (path, ephemeral) in nodes {
            if let Err(e) = timed(self.op_timeout, ensure_node(client, &path, ephemeral)).await {
                tracing::warn!(registry = %self.address, %path, error = %e, "cannot register again; will retry on the next reconnect");
            }
        }
    }
}

/// Creates `path` (and its persistent parents). An ephemeral node left by an older session
/// is replaced, as Dubbo does, so it is tied to this session and not removed with the old one.
async fn ensure_node(client: &zk::Client, path: &str, ephemeral: bool) -> Result<(), zk::Error> {
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
    let mode = if ephemeral {
        zk::CreateMode::Ephemeral
    } else {
        zk::CreateMode::Persistent
    };
    let options = mode.with_acls(zk::Acls::anyone_all());
    client.mkdir(parent, &dir_options()).await?;
    let mut last = zk::Error::NodeExists;
    for _ in 0..3 {
        match client.create(path, &[], &options).await {
            Ok(_) => return Ok(()),
            Err(zk::Error::NodeExists) if !ephemeral => return Ok(()),
            Err(zk::Error::NodeExists) => match client.check_stat(path).await? {
                Some(stat) if stat.ephemeral_owner == client.session_id().0 => return Ok(()),
                Some(_) => match client.delete(path, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(e),
                },
                None => {}
            },
            Err(zk::Error::NoNode) => client.mkdir(parent, &dir_options()).await?,
            Err(e) => return Err(e),
        }
        last = zk::Error::NodeExists;
    }
    Err(last)
}

/// Owns the session: follows its state, and after expiry opens a new one and registers again.
async fn supervise(shared: Arc<Shared>, mut client: Option<zk::Client>) {
    let mut delay = RETRY_MIN;
    loop {
        let current = match client.take() {
            Some(c) => c,
            None => {
                shared.set_state(RECONNECTING);
                match open_session(&shared.cluster, shared.session_timeout, shared.op_timeout).await
                {
                    Ok(c) => {
                        tracing::info!(registry = %shared.address, session = %c.session_id(), "new ZooKeeper session; registering again and re-subscribing");
                        delay = RETRY_MIN;
                        shared.adopt(&c);
                        c
                    }
                    Err(reason) => {
                        tracing::debug!(registry = %shared.address, %reason, "no ZooKeeper session yet");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(RETRY_MAX);
                        continue;
                    }
                }
            }
        };
        shared.register_all(&current).await;
        let mut states = current.state_watcher();
        let mut state = states.peek_state();
        loop {
            match state {
                zk::SessionState::Disconnected => {
                    shared.set_state(SUSPENDED);
                    tracing::warn!(registry = %shared.address, "lost the ZooKeeper connection; keeping the last provider lists");
                }
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    if shared.state.swap(CONNECTED, Ordering::Relaxed) == SUSPENDED {
                        tracing::info!(registry = %shared.address, "ZooKeeper connection back within the session");
                        shared.sessions.send_modify(|s| s.resyncs += 1);
                        shared.register_all(&current).await;
                    }
                }
                terminal => {
                    shared.set_state(EXPIRED);
                    tracing::warn!(registry = %shared.address, state = %terminal, "ZooKeeper session ended; opening a new one");
                    shared.sessions.send_modify(|s| s.client = None);
                    break;
                }
            }
            state = states.changed().await;
        }
    }
}

impl Registry for ZookeeperRegistry {
    fn register<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let (path, ephemeral) = shared.node_of(url);
            shared
                .registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.clone(), ephemeral);
            let Some(client) = shared.client() else {
                return Err(shared.operation_error(
                    "register",
                    &path,
                    "no ZooKeeper session at the moment; the node is created as soon as one is open",
                ));
            };
            timed(shared.op_timeout, ensure_node(&client, &path, ephemeral))
                .await
                .map_err(|e| shared.operation_error("register", &path, e))
        })
    }

    fn unregister<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<(), RegistryError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let (path, _) = shared.node_of(url);
            shared
                .registered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&path);
            let Some(client) = shared.client() else {
                // Without a session the ephemeral node is gone or about to be.
                return Ok(());
            };
            match timed(shared.op_timeout, client.delete(&path, None)).await {
                Ok(()) | Err(Failure::Zk(zk::Error::NoNode)) => Ok(()),
                Err(e) => Err(shared.operation_error("unregister", &path, e)),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        consumer: &'a Url,
    ) -> BoxFuture<'a, Result<watch::Receiver<Arc<Snapshot>>, RegistryError>> {
        Box::pin(subscription::subscribe(&self.shared, consumer))
    }

    fn subscribe_instances<'a>(
        &'a self,
        consumer: &'a Url,
    ) -> BoxFuture<'a, watch::Receiver<Arc<InstanceSnapshot>>> {
        Box::pin(instances::subscribe(&self.shared, consumer))
    }

    fn service_definition<'a>(
        &'a self,
        key: &'a DefinitionKey,
    ) -> BoxFuture<'a, Result<PublishedDefinition, RegistryError>> {
        Box::pin(definitions::read(&self.shared, key))
    }

    fn state(&self) -> &'static str {
        match self.shared.state.load(Ordering::Relaxed) {
            CONNECTED => "connected",
            SUSPENDED => "suspended",
            EXPIRED => "expired",
            _ => "reconnecting",
        }
    }
}
