//! Where definitions come from: a registry's metadata report (through the registry session
//! the host already has, or one opened for the command) or a file. Also the one-call path the
//! admin API uses: a configured reference's WIT.

use std::sync::Arc;

use super::{
    generate, DefinitionError, GenerateError, Options, PackageName, Service, ServiceDefinition,
};
use crate::reference::{Reference, References};
use crate::registry::{DefinitionKey, Registry, RegistryError};

/// Why no definition could be had, or no WIT made from it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error("{0}")]
    Unknown(String),
}

/// Reads and parses the definition `key` names from `registry`'s metadata report.
pub async fn fetch(
    registry: &dyn Registry,
    key: &DefinitionKey,
) -> Result<ServiceDefinition, SourceError> {
    let published = registry.service_definition(key).await?;
    let definition = ServiceDefinition::from_json(&published.json)
        .map_err(|e| e.from_source(published.path.clone()))?;
    if definition.interface != key.interface {
        return Err(SourceError::Definition(
            DefinitionError {
                at: None,
                problem: format!(
                    "it describes `{}`, not `{}`",
                    definition.interface, key.interface
                ),
            }
            .from_source(published.path),
        ));
    }
    Ok(definition)
}

/// The WIT of a configured reference, from the metadata report of its first registry: the
/// package and interface its `wit` names (default: from the Java package), as
/// `GET /admin/references/{id}/wit` serves it. `Unknown` when the reference or a registry
/// for it is not there.
pub async fn reference_wit(refs: &References, id: &str) -> Result<String, SourceError> {
    let reference: &Arc<Reference> = refs
        .get(id)
        .ok_or_else(|| SourceError::Unknown(format!("no reference with id `{id}`")))?;
    let registry = reference
        .registry_ids()
        .iter()
        .find_map(|r| refs.registries().iter().find(|(rid, _)| rid == r))
        .map(|(_, session)| session.clone())
        .ok_or_else(|| {
            SourceError::Unknown(format!(
                "reference `{id}` has a direct url and no registry, so no metadata report to read its definition from"
            ))
        })?;
    let service = reference.service();
    let key = DefinitionKey {
        interface: service.interface.clone(),
        version: service.version.clone(),
        group: service.group.clone(),
        application: None,
    };
    let definition = fetch(registry.as_ref(), &key).await?;
    let (package, interface) = match reference.wit() {
        Some(wit) => (
            PackageName::of_interface(wit)?,
            wit.split_once('/')
                .map(|(_, i)| i.split('@').next().unwrap_or(i).to_string()),
        ),
        None => (PackageName::of_java(&service.interface), None),
    };
    let services = [Service {
        definition,
        version: service.version.clone(),
        group: service.group.clone(),
        reference_id: Some(id.to_string()),
        wit_name: interface,
    }];
    let options = Options {
        package,
        nullable: Vec::new(),
        lenient: true,
    };
    Ok(generate(&services, &options)?.wit)
}
