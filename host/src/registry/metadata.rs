//! Dubbo 3 application-level discovery records, as Java Dubbo 3 writes them: an application
//! instance (the Curator x-discovery JSON under `/services/{app}`), the `MetadataInfo` of one
//! revision (the MetadataService reply, or the metadata report's JSON), and the provider URLs
//! an instance and its services make for one consumer — matched the way Dubbo's
//! `ProtocolServiceKey.Matcher` matches (interface exact; group and version `*`, a comma list,
//! or equal, an empty one matching only an empty one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::hessian2::{ref_table, Value};
use crate::protocol::dubbo::{ConnectionConfig, Exchange};
use crate::rpc::{Invocation, ServiceKey};
use crate::url::Url;

/// The instance metadata key of the services revision.
const REVISION: &str = "dubbo.metadata.revision";
/// The instance metadata key of where the revision's `MetadataInfo` is kept.
const STORAGE_TYPE: &str = "dubbo.metadata.storage-type";
/// The instance metadata key of the MetadataService URL parameters (a JSON object).
const URL_PARAMS: &str = "dubbo.metadata-service.url-params";
/// The instance metadata key of the protocol ports (a JSON array of `{port, protocol}`).
const ENDPOINTS: &str = "dubbo.endpoints";
/// The revision of an instance that exports nothing.
const EMPTY_REVISION: &str = "0";

/// The MetadataService every Dubbo 3 provider exports, per application (its `group`).
pub const METADATA_SERVICE: &str = "org.apache.dubbo.metadata.MetadataService";

/// One application instance: where it listens and what it says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The application (the `/services` child it is under).
    pub app: String,
    pub host: String,
    pub port: u16,
    /// `payload.metadata`: the `dubbo.*` keys and whatever else the provider added.
    pub metadata: BTreeMap<String, String>,
}

/// Where an instance's `MetadataInfo` is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// On the instance itself, served by its MetadataService (the default).
    Local,
    /// In the metadata report, `/dubbo/metadata/{app}/{revision}`.
    Remote,
}

/// The Curator `ServiceInstance` JSON, as far as Dubbo reads it; unknown fields are ignored.
#[derive(Deserialize)]
struct CuratorInstance {
    name: Option<String>,
    address: String,
    port: Option<u16>,
    payload: Option<CuratorPayload>,
}

#[derive(Deserialize)]
struct CuratorPayload {
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

/// One entry of `dubbo.endpoints`.
#[derive(Deserialize)]
struct Endpoint {
    port: u16,
    protocol: String,
}

impl Instance {
    /// Parses the data of `/services/{app}/{id}`.
    pub fn from_json(app: &str, bytes: &[u8]) -> Result<Instance, String> {
        let raw: CuratorInstance =
            serde_json::from_slice(bytes).map_err(|e| format!("not a Curator instance: {e}"))?;
        if raw.address.trim().is_empty() {
            return Err("the instance has no address".to_string());
        }
        let port = raw
            .port
            .filter(|p| *p != 0)
            .ok_or_else(|| "the instance has no port".to_string())?;
        let metadata = raw
            .payload
            .map(|p| p.metadata)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Null => None,
                other => Some((k, other.to_string())),
            })
            .collect();
        Ok(Instance {
            app: raw
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or(app.to_string()),
            host: raw.address,
            port,
            metadata,
        })
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The revision of the services it exports; `None` when it exports none.
    pub fn revision(&self) -> Option<&str> {
        self.metadata
            .get(REVISION)
            .map(|r| r.trim())
            .filter(|r| !r.is_empty() && *r != EMPTY_REVISION)
    }

    /// Where its `MetadataInfo` is kept (`dubbo.metadata.storage-type`, default local).
    pub fn storage(&self) -> Storage {
        match self.metadata.get(STORAGE_TYPE).map(|s| s.trim()) {
            Some("remote") => Storage::Remote,
            _ => Storage::Local,
        }
    }

    /// The MetadataService URL of this instance, as Dubbo's `StandardMetadataServiceURLBuilder`
    /// makes it from `dubbo.metadata-service.url-params`: `dubbo://host:{port}/MetadataService`
    /// with `version=1.0.0`, `group={app}` and the other parameters as given.
    pub fn metadata_service(&self) -> Result<Url, String> {
        let text = self
            .metadata
            .get(URL_PARAMS)
            .ok_or_else(|| format!("instance {} has no {URL_PARAMS}", self.address()))?;
        let given: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("instance {}: {URL_PARAMS} is not JSON: {e}", self.address()))?;
        let mut params: BTreeMap<String, String> = given
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        let port = params
            .remove("port")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                format!(
                    "instance {}: {URL_PARAMS} has no valid port",
                    self.address()
                )
            })?;
        let protocol = params
            .remove("protocol")
            .unwrap_or_else(|| "dubbo".to_string());
        params
            .entry("version".to_string())
            .or_insert_with(|| "1.0.0".to_string());
        params.insert("group".to_string(), self.app.clone());
        params.insert("side".to_string(), "consumer".to_string());
        Ok(Url {
            protocol,
            host: self.host.clone(),
            port,
            path: METADATA_SERVICE.to_string(),
            params,
        })
    }

    /// The port of `protocol` in `dubbo.endpoints`, if listed.
    fn endpoint_port(&self, protocol: &str) -> Option<u16> {
        let text = self.metadata.get(ENDPOINTS)?;
        let endpoints: Vec<Endpoint> = serde_json::from_str(text).ok()?;
        endpoints
            .into_iter()
            .find(|e| e.protocol == protocol && e.port != 0)
            .map(|e| e.port)
    }
}

/// The services of one revision of an application (Java's `MetadataInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataInfo {
    pub app: String,
    pub revision: String,
    /// By Dubbo's match key (`group/interface:version:protocol`).
    pub services: BTreeMap<String, ServiceInfo>,
}

/// One exported service of a `MetadataInfo` (Java's `MetadataInfo$ServiceInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// The interface.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default = "dubbo")]
    pub protocol: String,
    /// The port it is exported on; 0 when not said (then `dubbo.endpoints`, then the instance's).
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub path: String,
    /// The provider URL's parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

fn dubbo() -> String {
    "dubbo".to_string()
}

impl MetadataInfo {
    /// Reads the `getMetadataInfo` reply: an `org.apache.dubbo.metadata.MetadataInfo` object
    /// (`app`, `revision`, `services` map of `MetadataInfo$ServiceInfo`). `roots` are the
    /// reply's top-level values, against which back-references resolve.
    pub fn from_hessian(value: &Value, roots: &[Value]) -> Result<MetadataInfo, String> {
        let table = ref_table(roots);
        let resolve = |v: &'_ Value| -> Value {
            match v {
                Value::Ref(n) => table.get(*n as usize).map_or(Value::Null, |v| (*v).clone()),
                other => other.clone(),
            }
        };
        let info = resolve(value);
        let Value::Object(info) = info else {
            return Err(format!(
                "the MetadataService answered {}, not a MetadataInfo",
                info.type_name_for_display()
            ));
        };
        let text = |o: &crate::hessian2::Object, field: &str| -> Option<String> {
            o.get(field)
                .map(&resolve)
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|s| !s.is_empty())
        };
        let app = text(&info, "app").unwrap_or_default();
        let revision = text(&info, "revision").unwrap_or_default();
        let mut services = BTreeMap::new();
        if let Some(Value::Map(m)) = info.get("services").map(&resolve) {
            for (k, v) in &m.entries {
                let key = resolve(k).as_str().map(str::to_string).unwrap_or_default();
                let Value::Object(s) = resolve(v) else {
                    return Err(format!("service `{key}` is not a ServiceInfo"));
                };
                let name =
                    text(&s, "name").ok_or_else(|| format!("service `{key}` has no name"))?;
                let mut params = BTreeMap::new();
                if let Some(Value::Map(p)) = s.get("params").map(&resolve) {
                    for (pk, pv) in &p.entries {
                        if let (Some(pk), Some(pv)) = (resolve(pk).as_str(), resolve(pv).as_str()) {
                            params.insert(pk.to_string(), pv.to_string());
                        }
                    }
                }
                let port = s
                    .get("port")
                    .and_then(|p| resolve(p).as_i64())
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0);
                services.insert(
                    key,
                    ServiceInfo {
                        path: text(&s, "path").unwrap_or_else(|| name.clone()),
                        name,
                        group: text(&s, "group"),
                        version: text(&s, "version"),
                        protocol: text(&s, "protocol").unwrap_or_else(dubbo),
                        port,
                        params,
                    },
                );
            }
        }
        Ok(MetadataInfo {
            app,
            revision,
            services,
        })
    }

    /// Reads the metadata report's JSON (`/dubbo/metadata/{app}/{revision}`), also what the
    /// registry cache file keeps.
    pub fn from_json(text: &str) -> Result<MetadataInfo, String> {
        let mut info: MetadataInfo =
            serde_json::from_str(text).map_err(|e| format!("not a MetadataInfo: {e}"))?;
        for s in info.services.values_mut() {
            if s.path.is_empty() {
                s.path = s.name.clone();
            }
            s.group = s.group.take().filter(|g| !g.is_empty());
            s.version = s.version.take().filter(|v| !v.is_empty());
        }
        Ok(info)
    }

    /// The JSON [`MetadataInfo::from_json`] reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Dubbo's version/group rule match: `*` takes any, an empty rule only an empty target, a
/// comma list any of its items (an empty item an empty target), else equality.
fn rule_matches(rule: Option<&str>, target: Option<&str>) -> bool {
    let rule = rule.unwrap_or("").trim();
    let target = target.unwrap_or("");
    if rule == "*" {
        return true;
    }
    if rule.contains(',') {
        return rule.split(',').any(|r| r.trim() == target);
    }
    rule == target
}

/// Whether the consumer takes this service: interface exact, group and version by Dubbo's
/// rules, protocol `*`/absent/listed.
pub fn service_matches(consumer: &Url, service: &ServiceInfo) -> bool {
    let interface = consumer
        .param("interface")
        .filter(|i| !i.is_empty())
        .unwrap_or(&consumer.path);
    if service.name != interface {
        return false;
    }
    if !rule_matches(consumer.param("version"), service.version.as_deref())
        || !rule_matches(consumer.param("group"), service.group.as_deref())
    {
        return false;
    }
    match consumer.param("protocol").map(str::trim) {
        None | Some("") | Some("*") => true,
        Some(list) => list.split(',').any(|p| p.trim() == service.protocol),
    }
}

/// The provider URLs of `instance` for `consumer`: one per matching service of `info`, at the
/// service's port (else its protocol's `dubbo.endpoints` port, else the instance's), with the
/// instance's metadata under the service's parameters, as Dubbo's `InstanceAddressURL` reads
/// them.
pub fn provider_urls(consumer: &Url, instance: &Instance, info: &MetadataInfo) -> Vec<Url> {
    info.services
        .values()
        .filter(|s| service_matches(consumer, s))
        .map(|s| {
            let port = if s.port != 0 {
                s.port
            } else {
                instance.endpoint_port(&s.protocol).unwrap_or(instance.port)
            };
            let mut params: BTreeMap<String, String> = instance
                .metadata
                .iter()
                .filter(|(k, _)| k.as_str() != ENDPOINTS && k.as_str() != URL_PARAMS)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            params.extend(s.params.iter().map(|(k, v)| (k.clone(), v.clone())));
            params.insert("interface".to_string(), s.name.clone());
            params
                .entry("application".to_string())
                .or_insert_with(|| instance.app.clone());
            for (key, value) in [("group", &s.group), ("version", &s.version)] {
                match value {
                    Some(v) => params.insert(key.to_string(), v.clone()),
                    None => params.remove(key),
                };
            }
            Url {
                protocol: s.protocol.clone(),
                host: instance.host.clone(),
                port,
                path: if s.path.is_empty() {
                    s.name.clone()
                } else {
                    s.path.clone()
                },
                params,
            }
        })
        .collect()
}

/// Asks `instance`'s MetadataService for the `MetadataInfo` of `revision`
/// (`getMetadataInfo(String)`, group = the application, version 1.0.0), over a connection of
/// its own that closes after the call, within `timeout` (or the `timeout` its URL parameters
/// give).
pub async fn fetch_local(
    instance: &Instance,
    revision: &str,
    timeout: Duration,
) -> Result<MetadataInfo, String> {
    let url = instance.metadata_service()?;
    let timeout = url
        .param("timeout")
        .and_then(|t| t.trim().parse().ok())
        .filter(|t| *t > 0)
        .map_or(timeout, Duration::from_millis);
    let cfg = ConnectionConfig {
        connect_timeout: timeout,
        ..ConnectionConfig::default()
    };
    let exchange = Exchange::connect(&url.address(), &cfg)
        .await
        .map_err(|e| e.to_string())?;
    let service = ServiceKey {
        interface: METADATA_SERVICE.to_string(),
        version: url.param("version").map(str::to_string),
        group: Some(instance.app.clone()),
    };
    let inv = Invocation {
        method: Arc::from("getMetadataInfo"),
        parameter_types: Arc::from("Ljava/lang/String;"),
        args: vec![Value::String(revision.to_string())],
        attachments: Vec::new(),
    };
    let reply = exchange
        .invoke(&service, None, &inv, timeout)
        .await
        .map_err(|e| format!("MetadataService at {}: {e}", url.address()))?;
    let info = MetadataInfo::from_hessian(&reply.value, std::slice::from_ref(&reply.value))?;
    if !info.revision.is_empty() && info.revision != revision {
        return Err(format!(
            "the MetadataService at {} answered revision {} for {revision}",
            url.address(),
            info.revision
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::dubbo::frame::split_frame;
    use crate::protocol::dubbo::message::decode_response;

    fn vector(name: &str) -> Vec<u8> {
        let dir =
            crate::testing::vectors_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "dubbo3");
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn captured_instance() -> Instance {
        Instance::from_json(
            "users-app",
            &vector("zookeeper/services__users-app__127.0.0.1:20995.json"),
        )
        .expect("the captured instance parses")
    }

    fn captured_metadata() -> MetadataInfo {
        let mut bytes = bytes::BytesMut::from(&vector("resp_getMetadataInfo_3.2.16.bin")[..]);
        let frame = split_frame(&mut bytes, 8 << 20)
            .expect("a valid frame")
            .expect("a whole frame");
        let reply = decode_response(&frame.header, &frame.body).expect("an OK reply");
        MetadataInfo::from_hessian(&reply.value, std::slice::from_ref(&reply.value))
            .expect("a MetadataInfo")
    }

    fn consumer(query: &str) -> Url {
        Url::parse(&format!(
            "consumer://10.0.0.9/org.apache.dubbo.demo.DemoService?interface=org.apache.dubbo.demo.DemoService&{query}"
        ))
        .expect("valid url")
    }

    #[test]
    fn the_captured_instance_gives_its_address_revision_and_metadata_service() {
        let i = captured_instance();
        assert_eq!(
            (i.app.as_str(), i.address().as_str()),
            ("users-app", "127.0.0.1:20995")
        );
        assert_eq!(i.revision(), Some("af0c75f8478316ccc383d74c81099f95"));
        assert_eq!(i.storage(), Storage::Local);
        let ms = i.metadata_service().expect("url-params");
        assert_eq!(
            ms.port, 40995,
            "the MetadataService port comes from url-params"
        );
        assert_eq!(ms.path, METADATA_SERVICE);
        assert_eq!(ms.param("group"), Some("users-app"));
        assert_eq!(ms.param("version"), Some("1.0.0"));
        assert_eq!(i.endpoint_port("dubbo"), Some(20995));
    }

    #[test]
    fn a_broken_instance_record_is_refused_with_the_reason() {
        for bad in [
            &b"{"[..],
            b"{\"address\":\"\",\"port\":1}",
            b"{\"address\":\"h\"}",
        ] {
            assert!(Instance::from_json("a", bad).is_err());
        }
        let unknown = br#"{"address":"10.0.0.1","port":20880,"enabled":true,"payload":{"@class":"x","metadata":{"dubbo.metadata.revision":"0","n":1}}}"#;
        let i = Instance::from_json("a", unknown).expect("unknown fields are ignored");
        assert_eq!(i.revision(), None, "revision 0 exports nothing");
        assert_eq!(i.metadata.get("n").map(String::as_str), Some("1"));
    }

    #[test]
    fn the_captured_metadata_reply_decodes_into_two_services() {
        let info = captured_metadata();
        assert_eq!(info.app, "users-app");
        assert_eq!(info.revision, "af0c75f8478316ccc383d74c81099f95");
        let keys: Vec<&str> = info.services.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "org.apache.dubbo.demo.DemoService:1.0.0:dubbo",
                "org.apache.dubbo.samples.UserService:1.0.0:dubbo"
            ]
        );
        let demo = &info.services["org.apache.dubbo.demo.DemoService:1.0.0:dubbo"];
        assert_eq!(demo.port, 20995);
        assert_eq!(demo.group, None);
        assert_eq!(demo.version.as_deref(), Some("1.0.0"));
        assert_eq!(
            demo.params.get("methods").map(String::as_str),
            Some("sayHello")
        );
        let json = info.to_json();
        assert_eq!(MetadataInfo::from_json(&json).expect("round trip"), info);
    }

    #[test]
    fn provider_urls_match_interface_group_and_version_as_dubbo_does() {
        let (i, info) = (captured_instance(), captured_metadata());
        let urls = provider_urls(&consumer("version=1.0.0"), &i, &info);
        assert_eq!(urls.len(), 1);
        let u = &urls[0];
        assert_eq!(u.address(), "127.0.0.1:20995");
        assert_eq!(u.path, "org.apache.dubbo.demo.DemoService");
        assert_eq!(u.param("application"), Some("users-app"));
        assert_eq!(
            u.param("timeout"),
            Some("605000"),
            "the provider's own parameters"
        );
        assert_eq!(
            u.param("dubbo.metadata.revision"),
            Some("af0c75f8478316ccc383d74c81099f95")
        );
        assert_eq!(u.param("dubbo.endpoints"), None);
        for (query, n) in [
            ("version=*", 1),
            ("version=2.0.0,1.0.0", 1),
            ("version=2.0.0", 0),
            ("", 0),
            ("version=1.0.0&group=g", 0),
            ("version=1.0.0&group=*", 1),
            ("version=1.0.0&protocol=tri", 0),
        ] {
            assert_eq!(
                provider_urls(&consumer(query), &i, &info).len(),
                n,
                "{query}"
            );
        }
    }

    #[test]
    fn a_service_without_a_port_takes_its_endpoint_then_the_instance_port() {
        let mut i = captured_instance();
        let mut info = captured_metadata();
        for s in info.services.values_mut() {
            s.port = 0;
        }
        i.metadata.insert(
            ENDPOINTS.to_string(),
            r#"[{"port":50051,"protocol":"tri"},{"port":20999,"protocol":"dubbo"}]"#.to_string(),
        );
        assert_eq!(
            provider_urls(&consumer("version=1.0.0"), &i, &info)[0].port,
            20999
        );
        i.metadata.remove(ENDPOINTS);
        assert_eq!(
            provider_urls(&consumer("version=1.0.0"), &i, &info)[0].port,
            20995
        );
    }
}
