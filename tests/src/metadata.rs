//! The provider's application-level metadata, as a Java Dubbo 3.2 provider publishes it: a
//! `MetadataInfo` (the application, its revision, one `ServiceInfo` per exported service), in
//! the Hessian shape `MetadataService.getMetadataInfo` answers with and in the JSON shape of
//! the remote metadata report (`/dubbo/metadata/{app}/{revision}`). The shapes follow a capture
//! of a real Java 3.2.16 provider (`shared/vectors/dubbo3`).

use dubbo_wasm_host::hessian2::{Map, Object, Value};
use md5::{Digest, Md5};

/// The interface of Dubbo's built-in metadata service.
pub const METADATA_SERVICE: &str = "org.apache.dubbo.metadata.MetadataService";

/// The version the metadata service is exported with (its group is the application name).
pub const METADATA_SERVICE_VERSION: &str = "1.0.0";

/// `getMetadataInfo(String revision)`: the method and its parameter descriptor.
pub const GET_METADATA_INFO: (&str, &str) = ("getMetadataInfo", "Ljava/lang/String;");

/// Java class of the whole metadata.
pub const METADATA_INFO_CLASS: &str = "org.apache.dubbo.metadata.MetadataInfo";

/// Java class of one service's entry.
pub const SERVICE_INFO_CLASS: &str = "org.apache.dubbo.metadata.MetadataInfo$ServiceInfo";

/// The map type Java writes `MetadataInfo.services` as.
pub const SERVICES_MAP_TYPE: &str = "java.util.concurrent.ConcurrentHashMap";

/// The Dubbo release this provider passes itself off as (`release` parameters).
pub const RELEASE: &str = "3.2.16";

/// One exported service as the metadata describes it (Java `MetadataInfo.ServiceInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The interface name.
    pub name: String,
    /// The service group, if any.
    pub group: Option<String>,
    /// The service version, if any.
    pub version: Option<String>,
    /// The protocol it is exported with (`dubbo`).
    pub protocol: String,
    /// The port it is exported on.
    pub port: u16,
    /// The path it is exported under (the interface name).
    pub path: String,
    /// The exported URL's parameters that consumers see, in the order they are written.
    pub params: Vec<(String, String)>,
}

impl ServiceInfo {
    /// Java's match key, the service's key in `MetadataInfo.services`:
    /// `[group/]interface[:version]:protocol`.
    pub fn match_key(&self) -> String {
        let mut key = String::new();
        if let Some(group) = self.group.as_deref().filter(|g| !g.is_empty()) {
            key.push_str(group);
            key.push('/');
        }
        key.push_str(&self.name);
        if let Some(version) = self.version.as_deref().filter(|v| !v.is_empty()) {
            key.push(':');
            key.push_str(version);
        }
        key.push(':');
        key.push_str(&self.protocol);
        key
    }

    /// The text Java hashes for the revision: match key, port, path and the parameters as a
    /// Java `TreeMap` prints them (`{a=1, b=2}`).
    fn description(&self) -> String {
        let mut params: Vec<&(String, String)> = self.params.iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{}{}{}{{{}}}",
            self.match_key(),
            self.port,
            self.path,
            params.join(", ")
        )
    }

    /// The Hessian object, fields in the order Java writes them.
    fn to_value(&self) -> Value {
        let params = self
            .params
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect();
        let optional = |s: &Option<String>| s.clone().map_or(Value::Null, Value::String);
        Value::Object(Object::new(
            SERVICE_INFO_CLASS,
            vec![
                ("params".to_string(), Value::Map(Map::untyped(params))),
                ("path".to_string(), self.path.clone().into()),
                ("port".to_string(), Value::Int(i32::from(self.port))),
                ("protocol".to_string(), self.protocol.clone().into()),
                ("version".to_string(), optional(&self.version)),
                ("group".to_string(), optional(&self.group)),
                ("name".to_string(), self.name.clone().into()),
            ],
        ))
    }

    /// The JSON object as Gson writes it: declaration order, null fields left out.
    fn to_json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        o.insert("name".into(), self.name.clone().into());
        if let Some(group) = &self.group {
            o.insert("group".into(), group.clone().into());
        }
        if let Some(version) = &self.version {
            o.insert("version".into(), version.clone().into());
        }
        o.insert("protocol".into(), self.protocol.clone().into());
        o.insert("port".into(), self.port.into());
        o.insert("path".into(), self.path.clone().into());
        let params = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        o.insert("params".into(), serde_json::Value::Object(params));
        serde_json::Value::Object(o)
    }
}

/// The metadata of one application instance (Java `MetadataInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataInfo {
    /// The application name.
    pub app: String,
    /// The revision: an md5 over the application and its services, as Java computes it.
    pub revision: String,
    /// The services, ordered by match key.
    pub services: Vec<ServiceInfo>,
}

impl MetadataInfo {
    /// The metadata of `app` exporting `services`, with its revision computed.
    pub fn new(app: &str, mut services: Vec<ServiceInfo>) -> MetadataInfo {
        services.sort_by_key(ServiceInfo::match_key);
        let mut text = app.to_string();
        for s in &services {
            text.push_str(&s.description());
        }
        let revision = Md5::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        MetadataInfo {
            app: app.to_string(),
            revision,
            services,
        }
    }

    /// The Hessian value `getMetadataInfo` returns: a `MetadataInfo` object whose `services`
    /// is a typed `ConcurrentHashMap` of match key to `ServiceInfo`.
    pub fn to_value(&self) -> Value {
        let services = self
            .services
            .iter()
            .map(|s| (Value::String(s.match_key()), s.to_value()))
            .collect();
        Value::Object(Object::new(
            METADATA_INFO_CLASS,
            vec![
                (
                    "services".to_string(),
                    Value::Map(Map::typed(SERVICES_MAP_TYPE, services)),
                ),
                ("revision".to_string(), self.revision.clone().into()),
                ("app".to_string(), self.app.clone().into()),
            ],
        ))
    }

    /// The JSON the remote metadata report holds, as Dubbo's Gson writes it:
    /// `{"app","revision","services":{key:{name,group,version,protocol,port,path,params}}}`.
    pub fn to_json(&self) -> String {
        let services = self
            .services
            .iter()
            .map(|s| (s.match_key(), s.to_json()))
            .collect();
        let mut o = serde_json::Map::new();
        o.insert("app".into(), self.app.clone().into());
        o.insert("revision".into(), self.revision.clone().into());
        o.insert("services".into(), serde_json::Value::Object(services));
        gson(&serde_json::Value::Object(o))
    }
}

/// Compact JSON as Gson writes it: like serde_json, but with Gson's HTML-safe escapes for
/// `<`, `>`, `&`, `=` and `'` (e.g. `\u003c`). Those characters only occur inside strings,
/// so escaping them in the whole text is safe.
pub fn gson(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' | '>' | '&' | '=' | '\'' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::BytesMut;
    use dubbo_wasm_host::protocol::dubbo::message::{encode_response, Reply};

    use super::*;

    /// The captured provider's services, parameters in the captured order.
    fn captured() -> MetadataInfo {
        let service = |name: &str, methods: &str| {
            let params = [
                ("server", "netty4lo"),
                ("side", "provider"),
                ("release", "3.2.16"),
                ("methods", methods),
                ("logger", "slf4j"),
                ("deprecated", "false"),
                ("dubbo", "2.0.2"),
                ("interface", name),
                ("service-name-mapping", "true"),
                ("version", "1.0.0"),
                ("timeout", "605000"),
                ("generic", "false"),
                ("revision", "1.0.0"),
                ("serialization", "hessian2"),
                ("metadata-service-port", "40995"),
                ("application", "users-app"),
                ("client", "netty"),
                ("dynamic", "true"),
                ("REGISTRY_CLUSTER", "default"),
            ];
            ServiceInfo {
                name: name.to_string(),
                group: None,
                version: Some("1.0.0".to_string()),
                protocol: "dubbo".to_string(),
                port: 20995,
                path: name.to_string(),
                params: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }
        };
        MetadataInfo::new(
            "users-app",
            vec![
                service(
                    "org.apache.dubbo.samples.UserService",
                    "crash,echoMap,fail,findByName,getUser,listUsers,sleep",
                ),
                service("org.apache.dubbo.demo.DemoService", "sayHello"),
            ],
        )
    }

    fn vector(name: &str) -> Vec<u8> {
        let dir =
            dubbo_wasm_host::testing::vectors_dir(Path::new(env!("CARGO_MANIFEST_DIR")), "dubbo3");
        std::fs::read(dir.join(name)).expect("read dubbo3 vector")
    }

    #[test]
    fn the_revision_is_computed_as_java_does() {
        assert_eq!(captured().revision, "af0c75f8478316ccc383d74c81099f95");
    }

    #[test]
    fn the_reply_is_byte_identical_to_the_captured_one() {
        let wire = vector("resp_getMetadataInfo_3.2.16.bin");
        let id = u64::from_be_bytes(wire[4..12].try_into().expect("8-byte id"));
        let mut out = BytesMut::new();
        let value = captured().to_value();
        let attachments: &[(&str, &str)] = &[("dubbo", "2.0.2")];
        encode_response(&mut out, id, &Reply::Value(&value), Some(attachments));
        assert_eq!(&out[..], &wire[..]);
    }

    #[test]
    fn the_remote_json_has_the_captured_fields() {
        let text = captured().to_json();
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let captured: serde_json::Value =
            serde_json::from_slice(&vector("resp_getMetadataInfo_3.2.16.json")).expect("JSON");
        assert_eq!(json["app"], captured["app"]);
        assert_eq!(json["revision"], captured["revision"]);
        let key = "org.apache.dubbo.demo.DemoService:1.0.0:dubbo";
        let ours = &json["services"][key];
        let theirs = &captured["services"][key];
        let keys: Vec<&String> = ours.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["name", "version", "protocol", "port", "path", "params"],
            "Gson leaves out the null group"
        );
        for field in ["name", "version", "protocol", "port", "path", "params"] {
            assert_eq!(ours[field], theirs[field], "{field}");
        }
    }

    #[test]
    fn match_keys_name_group_and_version_only_when_set() {
        let mut s = captured().services[0].clone();
        assert_eq!(
            s.match_key(),
            "org.apache.dubbo.demo.DemoService:1.0.0:dubbo"
        );
        s.group = Some("g".to_string());
        s.version = None;
        assert_eq!(s.match_key(), "g/org.apache.dubbo.demo.DemoService:dubbo");
    }

    #[test]
    fn gson_escapes_html_characters_in_strings() {
        let v = serde_json::json!({"t": "List<a>=b&'c'"});
        assert_eq!(
            gson(&v),
            r#"{"t":"List\u003ca\u003e\u003db\u0026\u0027c\u0027"}"#
        );
    }
}
