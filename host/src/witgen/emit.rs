//! The package plan (interfaces, functions, records, names) built from the definitions, and
//! the two texts written from it: the WIT file and the `[[reference]]` TOML.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::definition::{MethodDefinition, TypeDefinition};
use super::mapping::{Mapper, NamedType, WitType};
use super::names::{camel_round_trips, constant_round_trips, escaped, kebab};
use super::{GenerateError, PackageName, Providers, Service};
use crate::java::TypeName;

/// The host's error type every function returns.
const RPC_ERROR_USE: &str = "use dubbo:host/types@0.1.0.{rpc-error};";

/// The name of the interface holding the records when several Java interfaces share a package.
const SHARED_TYPES: &str = "types";

/// What gets written.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: PackageName,
    pub interfaces: Vec<Interface>,
    /// Records and enums of a package with several interfaces, in its `types` interface.
    pub shared: Vec<Record>,
}

/// One Java interface as a WIT interface.
#[derive(Debug, Clone)]
pub struct Interface {
    /// The Java interface.
    pub java: String,
    /// Its WIT name (`user-service`).
    pub wit_name: String,
    /// Records and enums declared in it (all of them when it is the only interface).
    pub records: Vec<Record>,
    /// Shared types it `use`s from the package's `types` interface.
    pub uses: Vec<String>,
    pub functions: Vec<Function>,
    /// Methods `--lenient` left out.
    pub skipped: Vec<Skipped>,
    /// WIT type name → Java class, for `java-types`.
    pub java_types: BTreeMap<String, String>,
}

/// A record or enum.
#[derive(Debug, Clone)]
pub struct Record {
    pub java: String,
    pub wit_name: String,
    pub kind: NamedType,
}

/// One method as a WIT function.
#[derive(Debug, Clone)]
pub struct Function {
    pub wit_name: String,
    pub java_name: String,
    /// WIT parameter names and types.
    pub params: Vec<(String, WitType)>,
    /// `None` for void.
    pub result: Option<WitType>,
    /// `User getUser(long)`, as published.
    pub java_signature: String,
    /// Erased Java parameter types, when the binder's default descriptors would not be the
    /// method's (boxed scalars, sets, arrays, dates) or the method is overloaded.
    pub parameter_types: Option<Vec<String>>,
    /// Whether `java-name` must be configured (an overload, or a name the binder would spell
    /// differently).
    pub needs_java_name: bool,
    /// Lines of the doc comment after the signature.
    pub notes: Vec<String>,
}

/// A method left to `dubbo:host/generic` by `--lenient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub interface: String,
    /// `Object echo(Object)`.
    pub java_signature: String,
    pub java_name: String,
    /// Erased parameter types, for `generic.invoke`'s `parameter-types`.
    pub parameter_types: Vec<String>,
    pub java_type: String,
    pub problem: String,
}

/// A method with its mapped types, before naming.
struct Mapped<'a> {
    method: &'a MethodDefinition,
    params: Vec<WitType>,
    result: Option<WitType>,
    nullable: bool,
}

/// Builds the plan: maps every method, names overloads, records and parameters.
pub(super) fn plan(
    services: &[Service],
    types: &BTreeMap<String, TypeDefinition>,
    package: &PackageName,
    nullable: &[(String, String)],
    lenient: bool,
) -> Result<Package, GenerateError> {
    let mut mapper = Mapper::new(types);
    let mut interfaces = Vec::new();
    let mut seen_interfaces = BTreeSet::new();
    for service in services {
        let def = &service.definition;
        let simple = def.interface.rsplit('.').next().unwrap_or(&def.interface);
        let wit_name = service.wit_name.clone().unwrap_or_else(|| kebab(simple));
        if !seen_interfaces.insert(wit_name.clone()) || wit_name == SHARED_TYPES {
            return Err(GenerateError::Naming {
                interface: def.interface.clone(),
                problem: format!("its WIT name `{wit_name}` is taken by another interface of the package; generate it into a package of its own"),
            });
        }
        let mut mapped = Vec::new();
        let mut skipped = Vec::new();
        for method in &def.methods {
            let is_nullable = nullable
                .iter()
                .any(|(i, m)| i == &def.interface && m == &method.name)
                || method.annotations.iter().any(|a| a.contains("Nullable"));
            match map_method(&mut mapper, method, is_nullable) {
                Ok(m) => mapped.push(m),
                Err((_, e)) if lenient => {
                    skipped.push(Skipped {
                        interface: def.interface.clone(),
                        java_signature: signature(method),
                        java_name: method.name.clone(),
                        parameter_types: method.parameter_types.iter().map(|p| erased(p)).collect(),
                        java_type: e.java_type,
                        problem: e.problem,
                    });
                }
                Err((place, e)) => {
                    return Err(GenerateError::Unmappable {
                        interface: def.interface.clone(),
                        method: format!("{}({})", method.name, method.parameter_types.join(", ")),
                        place: Some(place),
                        java_type: e.java_type,
                        problem: e.problem,
                    })
                }
            }
        }
        let functions = name_functions(mapped);
        interfaces.push(Interface {
            java: def.interface.clone(),
            wit_name,
            records: Vec::new(),
            uses: Vec::new(),
            functions,
            skipped,
            java_types: BTreeMap::new(),
        });
    }
    // Only the records and enums the written functions reach.
    let mut reach: Vec<BTreeSet<String>> = Vec::new();
    for iface in &interfaces {
        let mut roots = Vec::new();
        for f in &iface.functions {
            f.params.iter().for_each(|(_, t)| t.named(&mut roots));
            if let Some(r) = &f.result {
                r.named(&mut roots);
            }
        }
        reach.push(reachable(roots, &mapper.named));
    }
    let all: BTreeSet<String> = reach.iter().flatten().cloned().collect();
    let taken: BTreeSet<String> = interfaces
        .iter()
        .flat_map(|i| i.functions.iter().map(|f| f.wit_name.clone()))
        .chain(["rpc-error".to_string()])
        .collect();
    let wit_names = name_types(&all, &taken);
    let mut records = Vec::new();
    for class in &all {
        let kind = mapper.named[class].clone();
        let user = interfaces
            .iter()
            .zip(&reach)
            .find(|(_, r)| r.contains(class))
            .map_or("", |(i, _)| i.java.as_str());
        check_names(class, &kind, user)?;
        records.push(Record {
            java: class.clone(),
            wit_name: wit_names[class].clone(),
            kind,
        });
    }
    records.sort_by(|a, b| a.wit_name.cmp(&b.wit_name));
    let several = interfaces.len() > 1;
    for (iface, reached) in interfaces.iter_mut().zip(&reach) {
        iface.java_types = reached
            .iter()
            .map(|c| (wit_names[c].clone(), c.clone()))
            .collect();
        if several {
            iface.uses = iface.java_types.keys().cloned().collect();
        } else {
            iface.records = records.clone();
        }
    }
    Ok(Package {
        name: package.clone(),
        interfaces,
        shared: if several { records } else { Vec::new() },
    })
}

/// Maps one method's parameters and result; on failure, where (`parameter 1`, `the result`)
/// and what.
fn map_method<'a>(
    mapper: &mut Mapper<'_>,
    method: &'a MethodDefinition,
    nullable: bool,
) -> Result<Mapped<'a>, (String, super::Unmappable)> {
    let mut params = Vec::new();
    for (i, p) in method.parameter_types.iter().enumerate() {
        let t = mapper
            .map_name(p)
            .map_err(|e| (format!("parameter {}", i + 1), e))?;
        params.push(optional_if(nullable, p, t));
    }
    let result = match erased(&method.return_type).as_str() {
        "void" | "java.lang.Void" => None,
        _ => {
            let t = mapper
                .map_name(&method.return_type)
                .map_err(|e| ("the result".to_string(), e))?;
            Some(optional_if(nullable, &method.return_type, t))
        }
    };
    Ok(Mapped {
        method,
        params,
        result,
        nullable,
    })
}

/// `option<t>` when the method is nullable and the Java type is an object.
fn optional_if(nullable: bool, java: &str, t: WitType) -> WitType {
    let primitive = TypeName::parse(&erased(java)).is_ok_and(|p| p.is_primitive());
    if nullable && !primitive {
        WitType::Option(Box::new(t))
    } else {
        t
    }
}

/// Names the functions of one interface (see the module rules) and decides their config.
fn name_functions(mapped: Vec<Mapped<'_>>) -> Vec<Function> {
    let mut groups: BTreeMap<&str, Vec<Mapped<'_>>> = BTreeMap::new();
    for m in mapped {
        groups.entry(m.method.name.as_str()).or_default().push(m);
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (name, mut group) in groups {
        group.sort_by_key(|m| overload_key(m.method));
        let overloaded = group.len() > 1;
        let base = kebab(name);
        for (i, m) in group.into_iter().enumerate() {
            let wanted = if i == 0 {
                base.clone()
            } else {
                let words: Vec<String> = m
                    .method
                    .parameter_types
                    .iter()
                    .map(|p| type_words(p))
                    .collect();
                format!("{base}-by-{}", words.join("-and-"))
            };
            let mut wit_name = wanted.clone();
            let mut n = 2;
            while used.contains(&wit_name) {
                wit_name = format!("{wanted}-{n}");
                n += 1;
            }
            used.insert(wit_name.clone());
            out.push(function(m, wit_name, overloaded));
        }
    }
    out
}

/// Overloads in order: fewer parameters first, then primitives before classes, then names.
fn overload_key(m: &MethodDefinition) -> (usize, Vec<(bool, String)>) {
    let types = m
        .parameter_types
        .iter()
        .map(|p| {
            let e = erased(p);
            let primitive = TypeName::parse(&e).is_ok_and(|t| t.is_primitive());
            (!primitive, e)
        })
        .collect();
    (m.parameter_types.len(), types)
}

/// A parameter type as words of an overload's name: `java.lang.String` → `string`,
/// `int[]` → `int-array`, `java.util.List<org.x.User>` → `list`.
fn type_words(java: &str) -> String {
    match TypeName::parse(&erased(java)) {
        Ok(t) => {
            let simple = t.name.rsplit('.').next().unwrap_or(&t.name);
            let mut w = kebab(simple);
            for _ in 0..t.dims {
                w.push_str("-array");
            }
            w
        }
        Err(_) => kebab(java),
    }
}

fn function(m: Mapped<'_>, wit_name: String, overloaded: bool) -> Function {
    let method = m.method;
    let params = param_names(method, &m.params);
    let params: Vec<(String, WitType)> = params.into_iter().zip(m.params).collect();
    let descriptors_differ = method
        .parameter_types
        .iter()
        .zip(&params)
        .any(|(java, (_, wit))| {
            crate::java::java_descriptor(&erased(java)).ok().as_deref()
                != Some(wit.binder_descriptor().as_str())
        });
    let parameter_types = (overloaded || descriptors_differ)
        .then(|| method.parameter_types.iter().map(|p| erased(p)).collect());
    let needs_java_name = overloaded || !camel_round_trips(&method.name, &wit_name);
    let mut notes = Vec::new();
    if overloaded {
        notes.push(format!(
            "Overload of `{}`: overloads are ordered by parameter count, then parameter types (primitives first); the first keeps the plain name, the others are named `-by-` their parameter types.",
            method.name
        ));
    }
    if m.nullable {
        notes.push(
            "Nullable (annotated, or `--nullable`): object-typed parameters and the result are options."
                .to_string(),
        );
    }
    Function {
        wit_name,
        java_name: method.name.clone(),
        params,
        result: m.result,
        java_signature: signature(method),
        parameter_types,
        needs_java_name,
        notes,
    }
}

/// Parameter names by the module's rules.
fn param_names(method: &MethodDefinition, types: &[WitType]) -> Vec<String> {
    let n = types.len();
    let fallback = || (0..n).map(|i| format!("arg{i}")).collect::<Vec<_>>();
    let mut names: Vec<String> = if let Some((_, after)) = method.name.rsplit_once("By") {
        let words: Vec<String> = after.split("And").map(kebab).collect();
        if words.len() == n && after.starts_with(|c: char| c.is_uppercase()) {
            words
        } else {
            fallback()
        }
    } else {
        fallback()
    };
    if names.iter().all(|w| w.starts_with("arg")) {
        let lookup = ["get", "find", "load", "delete", "remove", "query", "fetch"];
        let integral = |t: &WitType| matches!(t, WitType::S32 | WitType::S64 | WitType::S16);
        if n == 1 && integral(&types[0]) && lookup.iter().any(|p| method.name.starts_with(p)) {
            names = vec!["id".to_string()];
        } else {
            for (i, t) in types.iter().enumerate() {
                let inner = match t {
                    WitType::Option(inner) => inner.as_ref(),
                    other => other,
                };
                if let WitType::Named(class) = inner {
                    let simple = class.rsplit('.').next().unwrap_or(class);
                    names[i] = kebab(simple);
                }
            }
        }
    }
    // Unique, in order: a repeated name falls back to its position.
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter_mut().enumerate() {
        if !seen.insert(name.clone()) {
            *name = format!("arg{i}");
            seen.insert(name.clone());
        }
    }
    names
}

/// The classes reachable from `roots` through record fields.
fn reachable(roots: Vec<String>, named: &BTreeMap<String, NamedType>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = roots;
    while let Some(c) = todo.pop() {
        if !out.insert(c.clone()) {
            continue;
        }
        if let Some(NamedType::Record(fields)) = named.get(&c) {
            for (_, t) in fields {
                t.named(&mut todo);
            }
        }
    }
    out
}

/// WIT names of the classes: kebab-case simple names, the whole class name where two classes
/// (or a class and a function) would share one.
fn name_types(classes: &BTreeSet<String>, taken: &BTreeSet<String>) -> BTreeMap<String, String> {
    let simple = |c: &str| kebab(c.rsplit('.').next().unwrap_or(c));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in classes {
        *counts.entry(simple(c)).or_default() += 1;
    }
    classes
        .iter()
        .map(|c| {
            let s = simple(c);
            let name = if counts[&s] > 1 || taken.contains(&s) || s == SHARED_TYPES {
                kebab(c)
            } else {
                s
            };
            (c.clone(), name)
        })
        .collect()
}

/// Refuses fields and constants the binder could not spell back into Java.
fn check_names(class: &str, kind: &NamedType, interface: &str) -> Result<(), GenerateError> {
    let fail = |problem: String| GenerateError::Naming {
        interface: interface.to_string(),
        problem,
    };
    let mut seen = BTreeSet::new();
    match kind {
        NamedType::Record(fields) => {
            for (f, _) in fields {
                let w = kebab(f);
                if !camel_round_trips(f, &w) {
                    return Err(fail(format!("field `{f}` of {class} would be WIT `{w}`, which the host spells back as Java `{}`; a field needs a lowerCamelCase name", crate::java::lower_camel(&w))));
                }
                if !seen.insert(w.clone()) {
                    return Err(fail(format!("two fields of {class} are both WIT `{w}`")));
                }
            }
        }
        NamedType::Enum(constants) => {
            for c in constants {
                let w = kebab(c);
                if !constant_round_trips(c, &w) {
                    return Err(fail(format!("constant `{c}` of enum {class} would be WIT `{w}`, which the host spells back as `{}`; a constant needs an UPPER_SNAKE name", crate::java::screaming_snake(&w))));
                }
                if !seen.insert(w.clone()) {
                    return Err(fail(format!("two constants of {class} are both WIT `{w}`")));
                }
            }
        }
    }
    Ok(())
}

/// A Java type name without generic arguments (`java.util.Map<K,V>` → `java.util.Map`),
/// arrays kept (`int[]`), kind words dropped (`class x.Y` → `x.Y`).
fn erased(java: &str) -> String {
    let t = java.trim();
    let t = ["class ", "interface ", "enum "]
        .iter()
        .find_map(|k| t.strip_prefix(k))
        .unwrap_or(t);
    match TypeName::parse(t) {
        Ok(p) => {
            let mut s = p.name;
            for _ in 0..p.dims {
                s.push_str("[]");
            }
            s
        }
        Err(_) => t.to_string(),
    }
}

/// `User getUser(long)` with the published type names.
fn signature(m: &MethodDefinition) -> String {
    format!(
        "{} {}({})",
        m.return_type,
        m.name,
        m.parameter_types.join(", ")
    )
}

/// A WIT type as written, named types by their WIT names.
fn render(t: &WitType, names: &BTreeMap<String, String>) -> String {
    match t {
        WitType::Bool => "bool".into(),
        WitType::S8 => "s8".into(),
        WitType::S16 => "s16".into(),
        WitType::S32 => "s32".into(),
        WitType::S64 => "s64".into(),
        WitType::F32 => "f32".into(),
        WitType::F64 => "f64".into(),
        WitType::Char => "char".into(),
        WitType::String => "string".into(),
        WitType::Bytes => "list<u8>".into(),
        WitType::List(t) => format!("list<{}>", render(t, names)),
        WitType::Map(k, v) => format!("list<tuple<{}, {}>>", render(k, names), render(v, names)),
        WitType::Option(t) => format!("option<{}>", render(t, names)),
        WitType::Named(class) => escaped(names.get(class).map_or(class.as_str(), String::as_str)),
    }
}

/// The WIT file.
pub(super) fn wit(package: &Package) -> String {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for r in package
        .shared
        .iter()
        .chain(package.interfaces.iter().flat_map(|i| &i.records))
    {
        names.insert(r.java.clone(), r.wit_name.clone());
    }
    let mut out = String::new();
    let _ = writeln!(out, "package {};", package.name);
    if !package.shared.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "/// The classes and enums of the package's Dubbo interfaces."
        );
        let _ = writeln!(out, "interface {SHARED_TYPES} {{");
        write_records(&mut out, &package.shared, &names);
        let _ = writeln!(out, "}}");
    }
    for iface in &package.interfaces {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "/// `{}`, generated by `dubbo-wasm-host wit generate` from its Dubbo service definition.",
            iface.java
        );
        let _ = writeln!(out, "interface {} {{", escaped(&iface.wit_name));
        let _ = writeln!(out, "    {RPC_ERROR_USE}");
        if !iface.uses.is_empty() {
            let used: Vec<String> = iface.uses.iter().map(|u| escaped(u)).collect();
            let _ = writeln!(out, "    use {SHARED_TYPES}.{{{}}};", used.join(", "));
        }
        write_records(&mut out, &iface.records, &names);
        for f in &iface.functions {
            let _ = writeln!(out);
            let _ = writeln!(out, "    /// Java: `{}`.", f.java_signature);
            for n in &f.notes {
                let _ = writeln!(out, "    /// {n}");
            }
            let params: Vec<String> = f
                .params
                .iter()
                .map(|(n, t)| format!("{}: {}", escaped(n), render(t, &names)))
                .collect();
            let ok = f
                .result
                .as_ref()
                .map_or("_".to_string(), |t| render(t, &names));
            let _ = writeln!(
                out,
                "    {}: func({}) -> result<{ok}, rpc-error>;",
                escaped(&f.wit_name),
                params.join(", ")
            );
        }
        for s in &iface.skipped {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "    // Not typed (--lenient): `{}`: `{}` has no WIT type ({}).",
                s.java_signature, s.java_type, s.problem
            );
            let _ = writeln!(
                out,
                "    // Call it with dubbo:host/generic.invoke(<reference>, \"{}\", [{}], args-json), JSON in and out.",
                s.java_name,
                s.parameter_types
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(out, "}}");
    }
    out
}

fn write_records(out: &mut String, records: &[Record], names: &BTreeMap<String, String>) {
    for r in records {
        let _ = writeln!(out);
        match &r.kind {
            NamedType::Record(fields) => {
                let _ = writeln!(out, "    /// Java class `{}`.", r.java);
                let _ = writeln!(out, "    record {} {{", escaped(&r.wit_name));
                for (f, t) in fields {
                    let _ = writeln!(out, "        {}: {},", escaped(&kebab(f)), render(t, names));
                }
            }
            NamedType::Enum(constants) => {
                let _ = writeln!(out, "    /// Java enum `{}`.", r.java);
                let _ = writeln!(out, "    enum {} {{", escaped(&r.wit_name));
                for c in constants {
                    let _ = writeln!(out, "        {},", escaped(&kebab(c)));
                }
            }
        }
        let _ = writeln!(out, "    }}");
    }
}

/// A TOML basic string.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The `[[reference]]` tables binding the package (and a `[[registry]]` when the
/// definitions came from one the config may not have yet).
pub(super) fn reference_toml(
    package: &Package,
    services: &[Service],
    providers: &Providers,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by `dubbo-wasm-host wit generate` for package {}.",
        package.name
    );
    if let Providers::NewRegistry { id, address } = providers {
        let _ = writeln!(
            out,
            "# Leave out this [[registry]] if your config has one for {address}, and name its id in `registry`."
        );
        let _ = writeln!(out, "[[registry]]");
        let _ = writeln!(out, "id = {}", quoted(id));
        let _ = writeln!(out, "address = {}", quoted(address));
    }
    for (iface, service) in package.interfaces.iter().zip(services) {
        let _ = writeln!(out);
        let _ = writeln!(out, "[[reference]]");
        let id = service.reference_id.as_deref().unwrap_or(&iface.wit_name);
        let _ = writeln!(out, "id = {}", quoted(id));
        let _ = writeln!(out, "interface = {}", quoted(&iface.java));
        if let Some(v) = &service.version {
            let _ = writeln!(out, "version = {}", quoted(v));
        }
        if let Some(g) = &service.group {
            let _ = writeln!(out, "group = {}", quoted(g));
        }
        match providers {
            Providers::NewRegistry { id, .. } => {
                let _ = writeln!(out, "registry = [{}]", quoted(id));
            }
            Providers::Registries(ids) => {
                let ids: Vec<String> = ids.iter().map(|i| quoted(i)).collect();
                let _ = writeln!(out, "registry = [{}]", ids.join(", "));
            }
            Providers::Url(url) => {
                let _ = writeln!(
                    out,
                    "url = {}  # a placeholder: your provider's dubbo://HOST:PORT",
                    quoted(url)
                );
            }
        }
        let mut wit = format!(
            "{}:{}/{}",
            package.name.namespace, package.name.name, iface.wit_name
        );
        if let Some(v) = &package.name.version {
            wit.push('@');
            wit.push_str(v);
        }
        let _ = writeln!(out, "wit = {}", quoted(&wit));
        if !iface.java_types.is_empty() {
            let entries: Vec<String> = iface
                .java_types
                .iter()
                .map(|(w, c)| format!("{} = {}", toml_key(w), quoted(c)))
                .collect();
            let _ = writeln!(out, "java-types = {{ {} }}", entries.join(", "));
        }
        for f in &iface.functions {
            if !f.needs_java_name && f.parameter_types.is_none() {
                continue;
            }
            let _ = writeln!(out);
            let _ = writeln!(out, "[reference.methods.{}]", toml_key(&f.wit_name));
            if f.needs_java_name {
                let _ = writeln!(out, "java-name = {}", quoted(&f.java_name));
            }
            if let Some(types) = &f.parameter_types {
                let types: Vec<String> = types.iter().map(|t| quoted(t)).collect();
                let _ = writeln!(out, "parameter-types = [{}]", types.join(", "));
            }
        }
        for s in &iface.skipped {
            let _ = writeln!(
                out,
                "# {} is not typed (--lenient): call it with dubbo:host/generic.invoke(\"{id}\", \"{}\", ...).",
                s.java_signature, s.java_name
            );
        }
    }
    out
}

/// A TOML key: bare when it is kebab-case (always, for WIT names), quoted otherwise.
fn toml_key(k: &str) -> String {
    if k.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        quoted(k)
    }
}
