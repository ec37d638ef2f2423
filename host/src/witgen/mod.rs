//! `wit generate`: WIT packages and the `[[reference]]` TOML that binds them, generated from
//! Dubbo service definitions (the JSON providers publish in the metadata report). A tool layer
//! over the registry client (which reads the definitions) and the Java naming rules; the bind
//! layer does not depend on it — the generator only writes what the binder already reads.
//!
//! The rules, stated once (the doc comments of the generated WIT repeat the per-function ones):
//!
//! - one WIT interface per Java interface, named kebab-case after the simple name
//!   (`UserService` → `user-service`); a record per class and an enum per Java enum, in the
//!   interface, or in a shared `types` interface when several Java interfaces share a package;
//! - functions sorted by Java name; **overloads** are sorted by parameter count, then
//!   parameter types (primitives before classes, then by name); the first keeps the plain
//!   name (`get-user`), each other one gets `-by-` and its parameter types' simple names joined
//!   by `-and-` (`get-user-by-string`, `find-by-long-and-int`), `-2`, `-3`, … on a clash;
//! - parameter names are not in Dubbo's metadata: `find-by-x-and-y(x, y)` take the words after
//!   `By`; a single integral parameter of a `get`/`find`/`load`/`delete`/`remove` method is
//!   `id`; a parameter of a record or enum type is named after it; others are `arg0`, `arg1`, …
//!   as javac names them;
//! - results and parameters of object types are plain, `option<T>` only for a method the
//!   definition annotates `@Nullable` or `--nullable Interface.method` names (then every
//!   object-typed parameter and the result are options);
//! - a method whose types have no WIT type is an error naming the method and the type; with
//!   `--lenient` it is left out of the interface, with a comment saying how to call it through
//!   `dubbo:host/generic` (JSON in and out).

pub mod command;
mod definition;
mod emit;
mod mapping;
mod names;
mod source;

use std::collections::BTreeMap;
use std::str::FromStr;

pub use definition::{DefinitionError, MethodDefinition, ServiceDefinition, TypeDefinition};
pub use emit::{Function, Interface, Package, Record, Skipped};
pub use mapping::{NamedType, Unmappable, WitType};
pub use names::kebab;
pub use source::{fetch, reference_wit, SourceError};

/// Why no WIT could be generated: names the interface, the method and the Java type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("{interface}#{method}: {}`{java_type}` has no WIT type: {problem}\n  fix: change the Java signature, or pass --lenient to leave the method to dubbo:host/generic (JSON)", place.as_deref().map(|p| format!("{p} ")).unwrap_or_default())]
    Unmappable {
        interface: String,
        /// The method with its Java parameter types, `getUser(long)`.
        method: String,
        /// `parameter 1`, `the result`, ...
        place: Option<String>,
        java_type: String,
        problem: String,
    },
    #[error("{interface}: {problem}")]
    Naming { interface: String, problem: String },
    #[error("--package `{0}` is not a WIT package name\n  fix: write it as namespace:name[@version], kebab-case, e.g. acme:users@1.0.0")]
    Package(String),
    #[error("--nullable `{given}`: {problem}\n  fix: write it as Interface.method, e.g. UserService.findByName")]
    Nullable { given: String, problem: String },
    #[error("no service definitions to generate from")]
    Empty,
}

/// The package to write, and the knobs of the mapping.
#[derive(Debug, Clone)]
pub struct Options {
    pub package: PackageName,
    /// `Interface.method` (simple or fully qualified interface name) whose object-typed
    /// result and parameters become `option<..>`.
    pub nullable: Vec<String>,
    /// Leave unmappable methods to `dubbo:host/generic` instead of failing.
    pub lenient: bool,
}

/// `namespace:name[@version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageName {
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
}

impl PackageName {
    /// The package part of a `wit` reference setting (`org-x:users/user-service@1.0.0` →
    /// `org-x:users@1.0.0`).
    pub fn of_interface(wit: &str) -> Result<PackageName, GenerateError> {
        let (base, version) = match wit.split_once('@') {
            Some((b, v)) => (b, Some(v)),
            None => (wit, None),
        };
        let package = base.split_once('/').map_or(base, |(p, _)| p);
        let text = match version {
            Some(v) => format!("{package}@{v}"),
            None => package.to_string(),
        };
        text.parse()
    }

    /// The default for a Java interface: its package's words (`org.apache.dubbo.samples` →
    /// `org-apache-dubbo:samples`).
    pub fn of_java(interface: &str) -> PackageName {
        let package = interface.rsplit_once('.').map_or("", |(p, _)| p);
        let mut parts: Vec<String> = package.split('.').map(kebab).collect();
        let name = parts
            .pop()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "service".into());
        let namespace = if parts.is_empty() {
            "dubbo".to_string()
        } else {
            parts.join("-")
        };
        PackageName {
            namespace,
            name,
            version: None,
        }
    }
}

impl std::fmt::Display for PackageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl FromStr for PackageName {
    type Err = GenerateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GenerateError::Package(s.to_string());
        let (base, version) = match s.split_once('@') {
            Some((b, v)) => (b, Some(v.to_string())),
            None => (s, None),
        };
        let (namespace, name) = base.split_once(':').ok_or_else(bad)?;
        if !names::is_identifier(namespace) || !names::is_identifier(name) {
            return Err(bad());
        }
        if let Some(v) = &version {
            let core = v.split(['-', '+']).next().unwrap_or_default();
            let numbers: Vec<&str> = core.split('.').collect();
            if numbers.len() != 3 || numbers.iter().any(|n| n.parse::<u64>().is_err()) {
                return Err(bad());
            }
        }
        Ok(PackageName {
            namespace: namespace.to_string(),
            name: name.to_string(),
            version,
        })
    }
}

/// Where the printed `[[reference]]` tables get their providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Providers {
    /// A registry the output declares itself (`[[registry]] id, address`), for `--registry`.
    NewRegistry { id: String, address: String },
    /// Registries of an existing config, by id.
    Registries(Vec<String>),
    /// A placeholder direct provider URL (the definition came from a file: no provider is
    /// known), marked as one in the output.
    Url(String),
}

/// One service to generate: its definition and how the reference finds it.
#[derive(Debug, Clone)]
pub struct Service {
    pub definition: ServiceDefinition,
    pub version: Option<String>,
    pub group: Option<String>,
    /// The `[[reference]]` id to print; default: the WIT interface name.
    pub reference_id: Option<String>,
    /// The WIT interface name; default: the Java simple name in kebab-case.
    pub wit_name: Option<String>,
}

/// The generated package: the WIT file and the reference TOML.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `{name}.wit`.
    pub file_name: String,
    pub wit: String,
    pub package: Package,
}

impl Generated {
    /// The `[[reference]]` tables (and, for a new registry, its `[[registry]]`) binding the
    /// package, ready to paste into a host config.
    pub fn reference_toml(&self, services: &[Service], providers: &Providers) -> String {
        emit::reference_toml(&self.package, services, providers)
    }

    /// What `--lenient` left out, for a warning.
    pub fn skipped(&self) -> Vec<&Skipped> {
        self.package
            .interfaces
            .iter()
            .flat_map(|i| &i.skipped)
            .collect()
    }
}

/// Generates one package from the services' definitions.
pub fn generate(services: &[Service], options: &Options) -> Result<Generated, GenerateError> {
    if services.is_empty() {
        return Err(GenerateError::Empty);
    }
    let nullable = parse_nullable(&options.nullable, services)?;
    // One type table for the package, so shared classes become one record.
    let mut types: BTreeMap<String, TypeDefinition> = BTreeMap::new();
    for s in services {
        for (name, def) in &s.definition.types {
            let keep = types.get(name).is_some_and(|known| {
                known.properties.len() + known.enum_constants.len()
                    >= def.properties.len() + def.enum_constants.len()
            });
            if !keep {
                types.insert(name.clone(), def.clone());
            }
        }
    }
    let package = emit::plan(
        services,
        &types,
        &options.package,
        &nullable,
        options.lenient,
    )?;
    let wit = emit::wit(&package);
    Ok(Generated {
        file_name: format!("{}.wit", options.package.name),
        wit,
        package,
    })
}

/// `--nullable` entries as (interface, method), each checked against the definitions.
fn parse_nullable(
    given: &[String],
    services: &[Service],
) -> Result<Vec<(String, String)>, GenerateError> {
    let mut out = Vec::new();
    for g in given {
        let bad = |problem: String| GenerateError::Nullable {
            given: g.clone(),
            problem,
        };
        let (class, method) = g
            .rsplit_once('.')
            .filter(|(c, m)| !c.is_empty() && !m.is_empty())
            .ok_or_else(|| bad("there is no `.` between the interface and the method".into()))?;
        let service = services
            .iter()
            .find(|s| {
                let i = &s.definition.interface;
                i == class || i.rsplit('.').next() == Some(class)
            })
            .ok_or_else(|| bad(format!("`{class}` is none of the interfaces generated")))?;
        if !service.definition.methods.iter().any(|m| m.name == method) {
            return Err(bad(format!(
                "{} has no method `{method}`",
                service.definition.interface
            )));
        }
        out.push((service.definition.interface.clone(), method.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
