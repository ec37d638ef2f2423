//! Service definitions in the metadata report: the JSON a provider writes (Dubbo 2.7 and 3,
//! with a ZooKeeper metadata report) at
//! `{root}/metadata/{interface}[/{version}][/{group}]/provider/{application}`, empty version
//! and group left out as Dubbo's `KeyTypeEnum.PATH` builds the path.

use crate::url::encode_component;

use super::super::{DefinitionKey, PublishedDefinition, RegistryError};
use super::{timed, Failure, Shared};
use zookeeper_client as zk;

/// The node directory holding one service's provider definitions, one child per application.
pub(super) fn provider_dir(root: &str, key: &DefinitionKey) -> String {
    let mut dir = format!("{root}/metadata/{}", encode_component(&key.interface));
    for part in [&key.version, &key.group].into_iter().flatten() {
        if !part.is_empty() {
            dir.push('/');
            dir.push_str(part);
        }
    }
    dir.push_str("/provider");
    dir
}

/// Reads the definition of `key`: from its `application`, or, without one, from the first
/// application (in name order) that published it.
pub(super) async fn read(
    shared: &Shared,
    key: &DefinitionKey,
) -> Result<PublishedDefinition, RegistryError> {
    let dir = provider_dir(&shared.root, key);
    let missing = |path: &str, reason: String| RegistryError::NoDefinition {
        address: shared.address.clone(),
        path: path.to_string(),
        reason,
    };
    let Some(client) = shared.client() else {
        return Err(shared.operation_error("read", &dir, "no ZooKeeper session at the moment"));
    };
    let application = match key.application.as_deref().filter(|a| !a.is_empty()) {
        Some(app) => app.to_string(),
        None => {
            let mut apps = match timed(shared.op_timeout, client.list_children(&dir)).await {
                Ok(apps) => apps,
                Err(Failure::Zk(zk::Error::NoNode)) => {
                    return Err(missing(&dir, "no provider published a definition of this service (Dubbo writes it where a metadata report is configured; check the interface, version and group)".into()))
                }
                Err(e) => return Err(shared.operation_error("list", &dir, e)),
            };
            apps.sort();
            match apps.into_iter().next() {
                Some(app) => app,
                None => return Err(missing(&dir, "no application is listed under it".into())),
            }
        }
    };
    let path = format!("{dir}/{application}");
    let data = match timed(shared.op_timeout, client.get_data(&path)).await {
        Ok((data, _)) => data,
        Err(Failure::Zk(zk::Error::NoNode)) => {
            return Err(missing(
                &path,
                format!("application `{application}` published no definition of this service"),
            ))
        }
        Err(e) => return Err(shared.operation_error("read", &path, e)),
    };
    let json = String::from_utf8(data)
        .map_err(|_| missing(&path, "the node does not hold UTF-8 text".into()))?;
    Ok(PublishedDefinition {
        application,
        path,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leave_out_an_empty_version_and_group_like_dubbo() {
        let key = |v: Option<&str>, g: Option<&str>| DefinitionKey {
            interface: "org.x.UserService".into(),
            version: v.map(str::to_string),
            group: g.map(str::to_string),
            application: None,
        };
        assert_eq!(
            provider_dir("/dubbo", &key(Some("1.0.0"), None)),
            "/dubbo/metadata/org.x.UserService/1.0.0/provider"
        );
        assert_eq!(
            provider_dir("/dubbo", &key(Some("1.0.0"), Some("g1"))),
            "/dubbo/metadata/org.x.UserService/1.0.0/g1/provider"
        );
        assert_eq!(
            provider_dir("/dubbo", &key(Some(""), None)),
            "/dubbo/metadata/org.x.UserService/provider"
        );
    }
}
