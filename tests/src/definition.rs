//! The service definition of the test provider's `UserService`, in the two shapes Java
//! providers publish it in the metadata report (what `wit generate` reads):
//! - Dubbo 3 (`FullServiceDefinition` of 3.x, as in the captured 3.2.16 report in
//!   `shared/vectors/dubbo3/zookeeper`): flat `types[]`, `items` and `properties` as type names;
//! - Dubbo 2.7: nested `TypeDefinition`s (`items`, `properties` as definitions, a type met again
//!   as `{"$ref": ...}`), each method's `parameters` as definitions too.
//!
//! Both describe exactly the methods `provider` answers for `UserService`, and are written to
//! `{root}/metadata/{interface}[/{version}][/{group}]/provider/{application}`, as Java's
//! ZooKeeper metadata report stores them (persistent, overwritten on restart).

use std::time::Duration;

use anyhow::{bail, Context};
use dubbo_wasm_host::url::Url;
use serde_json::{json, Value};
use zookeeper_client as zk;

use crate::discovery::Roots;
use crate::metadata::{gson, RELEASE};
use crate::provider::{USER_CLASS, USER_SERVICE};
use crate::registration::ProviderRecord;

/// Which shape to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Dubbo3,
    Dubbo27,
}

const STRING: &str = "java.lang.String";
const LIST_OF_USERS: &str = "java.util.List<org.apache.dubbo.samples.User>";
const LIST_OF_STRINGS: &str = "java.util.List<java.lang.String>";
const STRING_TO_INTEGER: &str = "java.util.Map<java.lang.String,java.lang.Integer>";

/// `UserService`'s methods as (name, parameter types, return type), as the provider serves
/// them. `getUser` is overloaded; `echo(Object)` has no WIT type (generators must leave it to
/// generic calls).
pub const USER_METHODS: &[(&str, &[&str], &str)] = &[
    ("getUser", &["long"], USER_CLASS),
    ("getUser", &[STRING], USER_CLASS),
    ("listUsers", &["int"], LIST_OF_USERS),
    ("findByName", &[STRING], USER_CLASS),
    ("fail", &[STRING], STRING),
    ("notify", &[STRING], "void"),
    ("echoMap", &[STRING_TO_INTEGER], STRING_TO_INTEGER),
    ("echoLong", &["long"], "long"),
    ("echo", &["java.lang.Object"], "java.lang.Object"),
];

/// `User`'s fields in the order Java's `HashMap` lists them (as the captured report does).
const USER_FIELDS: &[(&str, &str)] = &[
    ("name", STRING),
    ("id", "long"),
    ("age", "int"),
    ("tags", LIST_OF_STRINGS),
];

/// The definition JSON for `record`'s `UserService`, in `shape`.
pub fn user_service(record: &ProviderRecord, shape: Shape) -> String {
    let mut parameters = serde_json::Map::new();
    parameters.insert("release".into(), RELEASE.into());
    parameters.insert("dubbo".into(), "2.0.2".into());
    parameters.insert("interface".into(), USER_SERVICE.into());
    parameters.insert("side".into(), "provider".into());
    parameters.insert("application".into(), record.application.clone().into());
    if let Some(v) = &record.version {
        parameters.insert("version".into(), v.clone().into());
    }
    if let Some(g) = &record.group {
        parameters.insert("group".into(), g.clone().into());
    }
    let mut names: Vec<&str> = USER_METHODS.iter().map(|(n, ..)| *n).collect();
    names.sort_unstable();
    names.dedup();
    parameters.insert("methods".into(), names.join(",").into());
    let (methods, types) = match shape {
        Shape::Dubbo3 => flat(),
        Shape::Dubbo27 => nested(),
    };
    gson(&json!({
        "parameters": parameters,
        "canonicalName": USER_SERVICE,
        "codeSource": "file:/tmp/test-provider/classes/",
        "methods": methods,
        "types": types,
        "annotations": [],
    }))
}

fn flat() -> (Vec<Value>, Vec<Value>) {
    let methods = USER_METHODS
        .iter()
        .map(|(name, params, ret)| {
            json!({"name": name, "parameterTypes": params, "returnType": ret, "annotations": []})
        })
        .collect();
    let user: serde_json::Map<String, Value> = USER_FIELDS
        .iter()
        .map(|(f, t)| (f.to_string(), Value::from(*t)))
        .collect();
    let types = vec![
        json!({"type": LIST_OF_USERS, "items": [USER_CLASS]}),
        json!({"type": "void"}),
        json!({"type": USER_CLASS, "properties": user}),
        json!({"type": LIST_OF_STRINGS, "items": [STRING]}),
        json!({"type": STRING}),
        json!({"type": "java.lang.Integer"}),
        json!({"type": "java.lang.Object"}),
        json!({"type": "int"}),
        json!({"type": "long"}),
        json!({"type": STRING_TO_INTEGER, "items": [STRING, "java.lang.Integer"]}),
    ];
    (methods, types)
}

/// A 2.7 `TypeDefinition` of `t`, the user class spelled out once and referred to after.
fn nested_type(t: &str, user_written: &mut bool) -> Value {
    match t {
        USER_CLASS if *user_written => json!({"$ref": USER_CLASS}),
        USER_CLASS => {
            *user_written = true;
            let props: serde_json::Map<String, Value> = USER_FIELDS
                .iter()
                .map(|(f, ft)| (f.to_string(), nested_type(ft, user_written)))
                .collect();
            json!({"id": USER_CLASS, "type": USER_CLASS, "properties": props, "typeBuilderName": "org.apache.dubbo.metadata.definition.builder.DefaultTypeBuilder"})
        }
        LIST_OF_USERS => {
            json!({"type": t, "items": [nested_type(USER_CLASS, user_written)], "typeBuilderName": "org.apache.dubbo.metadata.definition.builder.CollectionTypeBuilder"})
        }
        LIST_OF_STRINGS => {
            json!({"type": t, "items": [{"type": STRING}], "typeBuilderName": "org.apache.dubbo.metadata.definition.builder.CollectionTypeBuilder"})
        }
        STRING_TO_INTEGER => {
            json!({"type": t, "items": [{"type": STRING}, {"type": "java.lang.Integer"}], "typeBuilderName": "org.apache.dubbo.metadata.definition.builder.MapTypeBuilder"})
        }
        other => json!({"type": other}),
    }
}

fn nested() -> (Vec<Value>, Vec<Value>) {
    let mut user_written = false;
    let types: Vec<Value> = [USER_CLASS, LIST_OF_USERS, STRING_TO_INTEGER]
        .iter()
        .map(|t| nested_type(t, &mut user_written))
        .collect();
    let methods = USER_METHODS
        .iter()
        .map(|(name, params, ret)| {
            let parameters: Vec<Value> = params
                .iter()
                .map(|p| nested_type(p, &mut user_written))
                .collect();
            json!({"name": name, "parameterTypes": params, "returnType": ret, "parameters": parameters})
        })
        .collect();
    (methods, types)
}

/// Where the definition of `record`'s `UserService` goes in the metadata report of
/// `registry` (Dubbo's `KeyTypeEnum.PATH`: empty version and group left out).
pub fn path(registry: &Url, record: &ProviderRecord) -> String {
    let mut path = format!("{}/metadata/{USER_SERVICE}", Roots::of(registry).report);
    for part in [&record.version, &record.group].into_iter().flatten() {
        if !part.is_empty() {
            path.push('/');
            path.push_str(part);
        }
    }
    path.push_str("/provider/");
    path.push_str(&record.application);
    path
}

/// Writes the definition of `record`'s `UserService` in `shape` to the metadata report of
/// `registry_address`, replacing what an earlier run left; returns the node's path.
pub async fn publish(
    registry_address: &str,
    record: &ProviderRecord,
    shape: Shape,
) -> anyhow::Result<String> {
    let address = Url::parse(registry_address)
        .map_err(|e| anyhow::anyhow!("registry address `{registry_address}`: {e}"))?;
    let path = path(&address, record);
    let json = user_service(record, shape);
    let connector = zk::Client::connector().with_session_timeout(Duration::from_secs(10));
    let client = match tokio::time::timeout(
        Duration::from_secs(10),
        connector.connect(&address.address()),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => bail!("cannot open a ZooKeeper session at {registry_address}: {e}"),
        Err(_) => bail!("no ZooKeeper session at {registry_address} within 10s"),
    };
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let parent = path.rsplit_once('/').map_or("/", |(p, _)| p);
    client
        .mkdir(parent, &persistent)
        .await
        .with_context(|| format!("create {parent}"))?;
    match client.create(&path, json.as_bytes(), &persistent).await {
        Ok(_) => {}
        Err(zk::Error::NodeExists) => {
            client
                .set_data(&path, json.as_bytes(), None)
                .await
                .with_context(|| format!("update {path}"))?;
        }
        Err(e) => return Err(e).with_context(|| format!("create {path}")),
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ProviderRecord {
        let mut r = ProviderRecord::demo(20880);
        r.application = "users-app".into();
        r.version = Some("1.0.0".into());
        r
    }

    #[test]
    fn the_dubbo3_shape_has_the_captured_java_fields() {
        let ours: Value =
            serde_json::from_str(&user_service(&record(), Shape::Dubbo3)).expect("JSON");
        let dir = dubbo_wasm_host::testing::vectors_dir(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            "dubbo3",
        );
        let file = dir.join(
            "zookeeper/dubbo__metadata__org.apache.dubbo.samples.UserService__1.0.0__provider__users-app.json",
        );
        let text = std::fs::read_to_string(file).expect("captured definition");
        let java: Value = serde_json::from_str(&text).expect("JSON");
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&ours), keys(&java));
        assert_eq!(keys(&ours["methods"][0]), keys(&java["methods"][0]));
        let user = |v: &Value| {
            v["types"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["type"] == USER_CLASS).cloned())
        };
        assert_eq!(user(&ours), user(&java), "User as Java describes it");
    }

    #[test]
    fn the_path_follows_dubbos_metadata_report_layout() {
        let zk = Url::parse("zookeeper://127.0.0.1:2181").expect("url");
        assert_eq!(
            path(&zk, &record()),
            "/dubbo/metadata/org.apache.dubbo.samples.UserService/1.0.0/provider/users-app"
        );
        let mut grouped = record();
        grouped.group = Some("g1".into());
        assert_eq!(
            path(&zk, &grouped),
            "/dubbo/metadata/org.apache.dubbo.samples.UserService/1.0.0/g1/provider/users-app"
        );
    }

    #[test]
    fn the_dubbo27_shape_nests_and_refers_back() {
        let ours: Value =
            serde_json::from_str(&user_service(&record(), Shape::Dubbo27)).expect("JSON");
        assert_eq!(ours["types"][0]["properties"]["id"]["type"], "long");
        assert_eq!(ours["types"][1]["items"][0]["$ref"], USER_CLASS);
        assert_eq!(ours["methods"][0]["parameters"][0]["type"], "long");
    }
}
