//! Application-level registration, as a Java Dubbo 3.2 provider with
//! `dubbo.application.register-mode=instance` does it, in the provider's own ZooKeeper session:
//! - the instance: an ephemeral node `/services/{application}/{host}:{port}` holding Curator's
//!   x-discovery JSON (`ServiceInstance<ZookeeperInstance>`), whose metadata names the
//!   endpoints, the metadata revision, where the metadata is (`local`: ask the instance's
//!   `MetadataService`, at `dubbo.metadata-service.url-params`; `remote`: the metadata report)
//!   and a timestamp. The registry address's `group` (or `rootPath`) replaces `/services`.
//! - the service-name mapping `/dubbo/mapping/{interface}`: the comma-separated applications
//!   serving the interface, this one appended with a compare-and-set on the node version.
//! - with `remote` storage, the `MetadataInfo` JSON at `/dubbo/metadata/{application}/{revision}`,
//!   written once and never removed.
//!
//! The `/dubbo` root of the last two is the metadata report's, which Dubbo derives from the
//! registry address, `group` included. After a session expiry the instance node is created
//! again in a new session, as Curator does; a graceful exit removes it at once.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use dubbo_wasm_host::registry::RegistryOptions;
use dubbo_wasm_host::url::Url;
use serde_json::json;
use tokio::task::AbortHandle;
use zookeeper_client as zk;

use crate::metadata::{gson, MetadataInfo, ServiceInfo, RELEASE};
use crate::provider::{DEMO_SERVICE, USER_SERVICE};
use crate::registration::ProviderRecord;

/// The Jackson type tag of the instance payload.
pub const ZOOKEEPER_INSTANCE_CLASS: &str = "org.apache.dubbo.registry.zookeeper.ZookeeperInstance";

/// The methods of each interface this provider serves, sorted, as Java's `methods` lists them.
pub const SERVED: &[(&str, &str)] = &[
    (DEMO_SERVICE, "sayHello"),
    (
        USER_SERVICE,
        "echo,echoLong,echoMap,fail,findByName,getUser,listUsers,notify",
    ),
];

/// How often Java retries a mapping update that lost a compare-and-set race.
const CAS_RETRIES: usize = 6;

/// Where consumers find the provider's `MetadataInfo` (`dubbo.metadata.storage-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataStorage {
    /// The instance serves it itself through `MetadataService`.
    Local,
    /// It is in the metadata report (ZooKeeper), under `/dubbo/metadata/{app}/{revision}`.
    Remote,
}

impl MetadataStorage {
    /// The value of `dubbo.metadata.storage-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataStorage::Local => "local",
            MetadataStorage::Remote => "remote",
        }
    }
}

/// What the instance node says about the provider.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Host consumers connect to.
    pub host: String,
    /// Port of the services.
    pub port: u16,
    /// The application name.
    pub application: String,
    /// The revision of the provider's `MetadataInfo`.
    pub revision: String,
    /// Where the metadata is.
    pub storage: MetadataStorage,
    /// The port `MetadataService` is advertised on (`local` storage only).
    pub metadata_port: Option<u16>,
    /// When the services were exported, in ms since the epoch.
    pub timestamp_ms: u64,
}

impl Instance {
    /// The instance id and node name: `host:port`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The payload metadata, keys in the order Java writes them; values are strings, some of
    /// them JSON (written by Dubbo's Gson).
    pub fn metadata(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let endpoints = json!([{"port": self.port, "protocol": "dubbo"}]);
        m.insert("dubbo.endpoints".into(), gson(&endpoints).into());
        if let (MetadataStorage::Local, Some(port)) = (self.storage, self.metadata_port) {
            m.insert(
                "dubbo.metadata-service.url-params".into(),
                gson(&metadata_url_params(port)).into(),
            );
        }
        m.insert(
            "dubbo.metadata.revision".into(),
            self.revision.clone().into(),
        );
        m.insert(
            "dubbo.metadata.storage-type".into(),
            self.storage.as_str().into(),
        );
        m.insert("timestamp".into(), self.timestamp_ms.to_string().into());
        m
    }

    /// The node's data: Curator's JSON of `ServiceInstance<ZookeeperInstance>`, registered at
    /// `registered_ms`.
    pub fn to_json(&self, registered_ms: u64) -> String {
        let id = self.id();
        json!({
            "name": self.application,
            "id": id,
            "address": self.host,
            "port": self.port,
            "sslPort": null,
            "payload": {
                "@class": ZOOKEEPER_INSTANCE_CLASS,
                "id": id,
                "name": self.application,
                "metadata": self.metadata(),
            },
            "registrationTimeUTC": registered_ms,
            "serviceType": "DYNAMIC",
            "uriSpec": null,
        })
        .to_string()
    }
}

/// `dubbo.metadata-service.url-params`: how to call the instance's `MetadataService`.
pub fn metadata_url_params(port: u16) -> serde_json::Value {
    json!({
        "prefer.serialization": "hessian2",
        "version": "1.0.0",
        "dubbo": "2.0.2",
        "release": RELEASE,
        "side": "provider",
        "port": port.to_string(),
        "protocol": "dubbo",
    })
}

/// One `ServiceInfo` per interface this provider serves, on `record.port`, with the record's
/// version, group, weight and extra parameters (extras override, e.g. a `token`).
/// `metadata_port` is the `metadata-service-port` parameter, when one is configured.
pub fn service_infos(record: &ProviderRecord, metadata_port: Option<u16>) -> Vec<ServiceInfo> {
    SERVED
        .iter()
        .map(|(interface, methods)| {
            let mut params: Vec<(String, String)> = Vec::new();
            let mut put = |k: &str, v: &str| match params.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1 = v.to_string(),
                None => params.push((k.to_string(), v.to_string())),
            };
            put("side", "provider");
            put("release", RELEASE);
            put("methods", methods);
            put("deprecated", "false");
            put("dubbo", "2.0.2");
            put("interface", interface);
            put("service-name-mapping", "true");
            if let Some(v) = &record.version {
                put("version", v);
            }
            if let Some(g) = &record.group {
                put("group", g);
            }
            put("generic", "false");
            if let Some(v) = &record.version {
                put("revision", v);
            }
            put("serialization", "hessian2");
            if let Some(p) = metadata_port {
                put("metadata-service-port", &p.to_string());
            }
            put("application", &record.application);
            put("dynamic", "true");
            if let Some(w) = record.weight {
                put("weight", &w.to_string());
            }
            put("REGISTRY_CLUSTER", "default");
            for (k, v) in &record.extra {
                put(k, v);
            }
            ServiceInfo {
                name: interface.to_string(),
                group: record.group.clone(),
                version: record.version.clone(),
                protocol: "dubbo".to_string(),
                port: record.port,
                path: interface.to_string(),
                params,
            }
        })
        .collect()
}

/// The two roots a registry address puts the nodes under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Of the instances: `/services`, or `rootPath`, or `/{group}`.
    pub services: String,
    /// Of the metadata report (mapping, remote metadata): `/dubbo`, or `/{group}`.
    pub report: String,
}

impl Roots {
    /// The roots for `address`, as Dubbo's ZooKeeper service discovery and metadata report
    /// derive them.
    pub fn of(address: &Url) -> Roots {
        let absolute = |p: &str| format!("/{}", p.trim_matches('/'));
        let group = address
            .param("group")
            .filter(|g| !g.trim_matches('/').is_empty());
        let services = match address.param("rootPath").filter(|p| !p.is_empty()) {
            Some(p) if !p.eq_ignore_ascii_case("/services") => absolute(p),
            _ => group.map_or_else(|| "/services".to_string(), absolute),
        };
        let report = group.map_or_else(|| "/dubbo".to_string(), absolute);
        Roots { services, report }
    }

    /// `{services}/{application}/{id}`.
    pub fn instance(&self, application: &str, id: &str) -> String {
        format!("{}/{application}/{id}", self.services)
    }

    /// `{report}/mapping/{interface}`.
    pub fn mapping(&self, interface: &str) -> String {
        format!("{}/mapping/{interface}", self.report)
    }

    /// `{report}/metadata/{application}/{revision}`.
    pub fn metadata(&self, application: &str, revision: &str) -> String {
        format!("{}/metadata/{application}/{revision}", self.report)
    }
}

/// An application instance registered in ZooKeeper for as long as this lives.
pub struct InstanceRegistration {
    client: zk::Client,
    path: String,
    op_timeout: Duration,
    supervisor: AbortHandle,
}

impl InstanceRegistration {
    /// Opens a session to `registry_address` (`zookeeper://HOST:PORT`, `session=MS`,
    /// `timeout=MS`, `backup`, `group` and `rootPath` honoured), maps every interface of
    /// `metadata` to the application, publishes `metadata` when the storage is remote, and
    /// registers `instance`.
    pub async fn register(
        registry_address: &str,
        instance: &Instance,
        metadata: &MetadataInfo,
    ) -> anyhow::Result<InstanceRegistration> {
        let address = Url::parse(registry_address)
            .with_context(|| format!("registry address `{registry_address}`"))?;
        let roots = Roots::of(&address);
        let opts = RegistryOptions::from_address(address, &instance.application, ".".into());
        let mut cluster = opts.address.address();
        if let Some(backup) = opts.address.param("backup").filter(|b| !b.is_empty()) {
            cluster.push(',');
            cluster.push_str(backup);
        }
        let client = open_session(&cluster, opts.session_timeout, opts.connect_timeout).await?;
        let op_timeout = opts.connect_timeout;
        let app = &instance.application;
        let setup = async {
            let mut interfaces: Vec<&str> =
                metadata.services.iter().map(|s| s.name.as_str()).collect();
            interfaces.dedup();
            for interface in interfaces {
                map_interface(&client, &roots.mapping(interface), app).await?;
            }
            if instance.storage == MetadataStorage::Remote {
                let path = roots.metadata(app, &metadata.revision);
                publish_metadata(&client, &path, &metadata.to_json()).await?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(op_timeout * 4, setup)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "ZooKeeper at {cluster} did not answer within {:?}",
                    op_timeout * 4
                )
            })??;
        let path = roots.instance(app, &instance.id());
        let data = instance.to_json(now_ms());
        tokio::time::timeout(op_timeout, create_instance(&client, &path, data.as_bytes()))
            .await
            .map_err(|_| {
                anyhow::anyhow!("ZooKeeper at {cluster} did not answer within {op_timeout:?}")
            })?
            .with_context(|| format!("create {path}"))?;
        let supervisor = tokio::spawn(supervise(
            client.clone(),
            cluster,
            opts.session_timeout,
            opts.connect_timeout,
            path.clone(),
            instance.clone(),
        ))
        .abort_handle();
        Ok(InstanceRegistration {
            client,
            path,
            op_timeout,
            supervisor,
        })
    }

    /// The instance node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Removes the instance node now (graceful exit) and closes the session.
    pub async fn unregister(self) -> anyhow::Result<()> {
        self.supervisor.abort();
        let deleted =
            tokio::time::timeout(self.op_timeout, self.client.delete(&self.path, None)).await;
        match deleted {
            Ok(Ok(())) | Ok(Err(zk::Error::NoNode)) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("delete {}: {e}", self.path)),
            Err(_) => bail!(
                "delete {}: no answer within {:?}",
                self.path,
                self.op_timeout
            ),
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// The parent of an absolute path (`/` for a top-level node).
fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

async fn open_session(
    cluster: &str,
    session: Duration,
    connect: Duration,
) -> anyhow::Result<zk::Client> {
    let connector = zk::Client::connector().with_session_timeout(session);
    match tokio::time::timeout(connect, connector.connect(cluster)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => bail!("cannot open a ZooKeeper session at {cluster}: {e}"),
        Err(_) => bail!("no ZooKeeper session at {cluster} within {connect:?}"),
    }
}

/// Creates `path` if needed (persistent parents) and makes sure it lists `app`, appending
/// `,app` with a compare-and-set on the node version, as Java's `MetadataServiceNameMapping`.
async fn map_interface(client: &zk::Client, path: &str, app: &str) -> anyhow::Result<()> {
    for _ in 0..CAS_RETRIES {
        match client.get_data(path).await {
            Ok((data, stat)) => {
                let old = String::from_utf8_lossy(&data);
                if old.split(',').any(|a| a.trim() == app) {
                    return Ok(());
                }
                let new = if old.trim().is_empty() {
                    app.to_string()
                } else {
                    format!("{old},{app}")
                };
                match client
                    .set_data(path, new.as_bytes(), Some(stat.version))
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(zk::Error::BadVersion) => continue,
                    Err(e) => return Err(e).with_context(|| format!("update {path}")),
                }
            }
            Err(zk::Error::NoNode) => {
                client
                    .mkdir(parent(path), &persistent())
                    .await
                    .with_context(|| format!("create {}", parent(path)))?;
                match client.create(path, app.as_bytes(), &persistent()).await {
                    Ok(_) => return Ok(()),
                    Err(zk::Error::NodeExists) => continue,
                    Err(e) => return Err(e).with_context(|| format!("create {path}")),
                }
            }
            Err(e) => return Err(e).with_context(|| format!("read {path}")),
        }
    }
    bail!("{path}: lost the compare-and-set race {CAS_RETRIES} times")
}

/// Writes `json` to the persistent node `path` unless it already holds something, as Java's
/// `publishAppMetadata` (the revision names the content, so an existing node is the same).
async fn publish_metadata(client: &zk::Client, path: &str, json: &str) -> anyhow::Result<()> {
    match client.get_data(path).await {
        Ok((data, _)) if !data.iter().all(u8::is_ascii_whitespace) => Ok(()),
        Ok((_, stat)) => {
            client
                .set_data(path, json.as_bytes(), Some(stat.version))
                .await
                .with_context(|| format!("update {path}"))?;
            Ok(())
        }
        Err(zk::Error::NoNode) => {
            client
                .mkdir(parent(path), &persistent())
                .await
                .with_context(|| format!("create {}", parent(path)))?;
            match client.create(path, json.as_bytes(), &persistent()).await {
                Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
                Err(e) => Err(e).with_context(|| format!("create {path}")),
            }
        }
        Err(e) => Err(e).with_context(|| format!("read {path}")),
    }
}

/// Creates the ephemeral instance node (persistent parents). A node left by an older session
/// is deleted and created again, as Curator does, so that it belongs to this session.
async fn create_instance(client: &zk::Client, path: &str, data: &[u8]) -> Result<(), zk::Error> {
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    client.mkdir(parent(path), &persistent()).await?;
    let mut last = zk::Error::NodeExists;
    for _ in 0..3 {
        match client.create(path, data, &ephemeral).await {
            Ok(_) => return Ok(()),
            Err(zk::Error::NodeExists) => match client.delete(path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => last = zk::Error::NodeExists,
                Err(e) => return Err(e),
            },
            Err(zk::Error::NoNode) => {
                client.mkdir(parent(path), &persistent()).await?;
                last = zk::Error::NoNode;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Follows the session; when it expires, opens a new one and registers the instance again
/// (the mapping and remote metadata are persistent). Ends when the session is closed.
async fn supervise(
    mut client: zk::Client,
    cluster: String,
    session: Duration,
    connect: Duration,
    path: String,
    instance: Instance,
) {
    loop {
        let mut states = client.state_watcher();
        let mut state = states.state();
        while !state.is_terminated() {
            state = states.changed().await;
        }
        if state == zk::SessionState::Closed {
            return;
        }
        tracing::warn!(%path, ?state, "ZooKeeper session lost; registering the instance again");
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(fresh) = open_session(&cluster, session, connect).await else {
                continue;
            };
            let data = instance.to_json(now_ms());
            match create_instance(&fresh, &path, data.as_bytes()).await {
                Ok(()) => {
                    tracing::info!(%path, "instance registered again");
                    client = fresh;
                    break;
                }
                Err(e) => tracing::warn!(%path, error = %e, "cannot register the instance again"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn captured_instance() -> Instance {
        Instance {
            host: "127.0.0.1".to_string(),
            port: 20995,
            application: "users-app".to_string(),
            revision: "af0c75f8478316ccc383d74c81099f95".to_string(),
            storage: MetadataStorage::Local,
            metadata_port: Some(40995),
            timestamp_ms: 1796152250631,
        }
    }

    #[test]
    fn the_instance_json_is_the_captured_one() {
        let dir =
            dubbo_wasm_host::testing::vectors_dir(Path::new(env!("CARGO_MANIFEST_DIR")), "dubbo3");
        let captured = std::fs::read_to_string(
            dir.join("zookeeper/services__users-app__127.0.0.1:20995.json"),
        )
        .expect("read the captured instance");
        assert_eq!(
            captured_instance().to_json(1796152251127),
            captured.trim_end()
        );
    }

    #[test]
    fn remote_storage_names_no_metadata_service() {
        let mut instance = captured_instance();
        instance.storage = MetadataStorage::Remote;
        let m = instance.metadata();
        assert_eq!(m["dubbo.metadata.storage-type"], "remote");
        assert!(!m.contains_key("dubbo.metadata-service.url-params"));
    }

    #[test]
    fn roots_follow_group_and_root_path() {
        let roots = |a: &str| Roots::of(&Url::parse(a).expect("url"));
        let plain = roots("zookeeper://127.0.0.1:2181");
        assert_eq!(plain.instance("app", "h:1"), "/services/app/h:1");
        assert_eq!(plain.mapping("I"), "/dubbo/mapping/I");
        assert_eq!(plain.metadata("app", "r"), "/dubbo/metadata/app/r");
        let grouped = roots("zookeeper://127.0.0.1:2181?group=foo");
        assert_eq!(grouped.services, "/foo");
        assert_eq!(grouped.report, "/foo");
        let rooted = roots("zookeeper://127.0.0.1:2181?group=foo&rootPath=/disc");
        assert_eq!(rooted.services, "/disc");
        assert_eq!(
            roots("zookeeper://h:1?rootPath=/SERVICES&group=g").services,
            "/g"
        );
    }

    #[test]
    fn extras_override_and_extend_every_service_info() {
        let mut record = ProviderRecord::demo(20880);
        record.version = Some("1.0.0".to_string());
        record.extra = vec![
            ("token".to_string(), "secret".to_string()),
            ("dynamic".to_string(), "false".to_string()),
        ];
        let infos = service_infos(&record, None);
        assert_eq!(infos.len(), 2);
        for info in &infos {
            let get = |k: &str| {
                info.params
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("token"), Some("secret"));
            assert_eq!(get("dynamic"), Some("false"));
            assert_eq!(get("interface"), Some(info.name.as_str()));
            assert_eq!(get("version"), Some("1.0.0"));
            assert_eq!(get("metadata-service-port"), None);
        }
    }
}
