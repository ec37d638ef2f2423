//! Dubbo service definitions, read from the JSON providers publish in the metadata report
//! (`/dubbo/metadata/{interface}/{version}/{group}/provider/{application}`) or from a file,
//! into one model. Two shapes exist and both are read:
//!
//! - Dubbo 3 (`FullServiceDefinition` as 3.x writes it): a flat `types[]` whose `items` are type
//!   names and whose `properties` map field names to type names;
//! - Dubbo 2.7: nested `TypeDefinition`s, `items` and `properties` values being definitions
//!   themselves, enum constants under `enum` (or `enums`), a type met again written as
//!   `{"$ref": id}`, and each method's `parameters` as definitions.
//!
//! Property order is kept as published. Java providers fill `properties` from a `HashMap`, so
//! the order is the map's, not the declaration's; a field's WIT position does not matter to the
//! binder, which matches fields by name.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Why a text is not a service definition: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service definition{}: {problem}", at.as_deref().map(|a| format!(" ({a})")).unwrap_or_default())]
pub struct DefinitionError {
    /// Where it was read from (a file, a ZooKeeper node), when known.
    pub at: Option<String>,
    /// What is wrong, with the JSON path in front (`methods[2].returnType: ...`).
    pub problem: String,
}

impl DefinitionError {
    fn new(problem: impl Into<String>) -> Self {
        DefinitionError {
            at: None,
            problem: problem.into(),
        }
    }

    /// The same problem, read from `at`.
    pub fn from_source(mut self, at: impl Into<String>) -> Self {
        self.at = Some(at.into());
        self
    }
}

/// One Java interface as its provider describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDefinition {
    /// The interface, `canonicalName` (`org.apache.dubbo.samples.UserService`).
    pub interface: String,
    /// Its methods, in the published order.
    pub methods: Vec<MethodDefinition>,
    /// The types its methods use, by type name as published (`java.util.List<org.x.User>`).
    pub types: BTreeMap<String, TypeDefinition>,
}

/// One method: Java name, parameter types and return type as Java type names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDefinition {
    pub name: String,
    pub parameter_types: Vec<String>,
    /// `void` for a void method.
    pub return_type: String,
    /// Annotations as published (`@javax.annotation.Nullable()`); a `Nullable` one makes the
    /// result optional.
    pub annotations: Vec<String>,
}

/// What the definition says about one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeDefinition {
    /// The type's element or argument types (`List<T>`: `[T]`, `Map<K, V>`: `[K, V]`).
    pub items: Vec<String>,
    /// Field name → field type, for a class (in the published order).
    pub properties: Vec<(String, String)>,
    /// The constants, for an enum.
    pub enum_constants: Vec<String>,
}

impl TypeDefinition {
    /// Whether it says anything beyond its name.
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.properties.is_empty() && self.enum_constants.is_empty()
    }
}

impl ServiceDefinition {
    /// Reads either shape from JSON text.
    pub fn from_json(text: &str) -> Result<ServiceDefinition, DefinitionError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| DefinitionError::new(format!("not JSON: {e}")))?;
        ServiceDefinition::from_value(&json)
    }

    /// Reads either shape from parsed JSON.
    pub fn from_value(json: &Json) -> Result<ServiceDefinition, DefinitionError> {
        let root = json
            .as_object()
            .ok_or_else(|| DefinitionError::new("the top level is not a JSON object"))?;
        let interface = root
            .get("canonicalName")
            .and_then(Json::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| DefinitionError::new("`canonicalName` (the Java interface) is missing"))?
            .to_string();
        let mut types = Types::default();
        if let Some(list) = root.get("types") {
            let list = list
                .as_array()
                .ok_or_else(|| DefinitionError::new("`types` is not an array"))?;
            for (i, t) in list.iter().enumerate() {
                types
                    .read(t)
                    .map_err(|p| DefinitionError::new(format!("types[{i}]{p}")))?;
            }
        }
        let methods = root
            .get("methods")
            .and_then(Json::as_array)
            .ok_or_else(|| DefinitionError::new("`methods` is missing or not an array"))?;
        let mut out = Vec::with_capacity(methods.len());
        for (i, m) in methods.iter().enumerate() {
            let method = read_method(m, &mut types)
                .map_err(|p| DefinitionError::new(format!("methods[{i}]{p}")))?;
            out.push(method);
        }
        let (types, ids) = types.resolve();
        fix_method_refs(&mut out, &ids);
        Ok(ServiceDefinition {
            interface,
            methods: out,
            types,
        })
    }
}

fn read_method(m: &Json, types: &mut Types) -> Result<MethodDefinition, String> {
    let o = m.as_object().ok_or(": is not an object")?;
    let name = o
        .get("name")
        .and_then(Json::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(".name: is missing")?
        .to_string();
    let at = |f: &str| format!(" (method `{name}`).{f}");
    let mut parameter_types = Vec::new();
    if let Some(pts) = o.get("parameterTypes") {
        let pts = pts
            .as_array()
            .ok_or_else(|| format!("{}: is not an array", at("parameterTypes")))?;
        for (i, p) in pts.iter().enumerate() {
            let p = p.as_str().ok_or_else(|| {
                format!(
                    "{}: is not a type name",
                    at(&format!("parameterTypes[{i}]"))
                )
            })?;
            parameter_types.push(p.to_string());
        }
    }
    // Dubbo 2.7 also describes the parameters as definitions: their names, and what they say
    // about the types. Without `parameterTypes`, their names are the parameter types.
    if let Some(params) = o.get("parameters") {
        let params = params
            .as_array()
            .ok_or_else(|| format!("{}: is not an array", at("parameters")))?;
        let mut names = Vec::new();
        for (i, p) in params.iter().enumerate() {
            let name = types
                .read(p)
                .map_err(|e| format!("{}{e}", at(&format!("parameters[{i}]"))))?;
            names.push(name);
        }
        if parameter_types.is_empty() {
            parameter_types = names;
        }
    }
    let return_type = match o.get("returnType") {
        None | Some(Json::Null) => "void".to_string(),
        Some(Json::String(s)) => s.clone(),
        Some(other) => types
            .read(other)
            .map_err(|e| format!("{}{e}", at("returnType")))?,
    };
    let annotations = o
        .get("annotations")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(MethodDefinition {
        name,
        parameter_types,
        return_type,
        annotations,
    })
}

/// The types met while reading, by name, with the `id`s 2.7 definitions carry for `$ref`.
#[derive(Default)]
struct Types {
    by_name: BTreeMap<String, TypeDefinition>,
    /// `id` → type name, for resolving `$ref`s at the end.
    ids: BTreeMap<String, String>,
}

/// How deep 2.7 definitions may nest before they are refused.
const MAX_DEPTH: usize = 64;

impl Types {
    /// Reads one type definition (either shape, or just a type name) and returns its name.
    /// Errors are a JSON path suffix and the problem (`.items[0]: ...`).
    fn read(&mut self, t: &Json) -> Result<String, String> {
        self.read_at(t, 0)
    }

    fn read_at(&mut self, t: &Json, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err(format!(": nests deeper than {MAX_DEPTH} levels"));
        }
        let o = match t {
            Json::String(name) => return Ok(name.clone()),
            Json::Object(o) => o,
            _ => return Err(": is neither a type name nor a type definition".to_string()),
        };
        if let Some(r) = o.get("$ref") {
            let r = r.as_str().ok_or(".$ref: is not a string")?;
            if o.get("type").is_none() {
                return Ok(format!("\u{0}ref:{r}"));
            }
        }
        let name = o
            .get("type")
            .and_then(Json::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or(".type: is missing")?
            .to_string();
        if let Some(id) = o.get("id").and_then(Json::as_str) {
            self.ids.insert(id.to_string(), name.clone());
        }
        let mut def = TypeDefinition::default();
        if let Some(items) = o.get("items") {
            let items = items.as_array().ok_or(".items: is not an array")?;
            for (i, item) in items.iter().enumerate() {
                let n = self
                    .read_at(item, depth + 1)
                    .map_err(|e| format!(".items[{i}]{e}"))?;
                def.items.push(n);
            }
        }
        if let Some(props) = o.get("properties") {
            let props = props.as_object().ok_or(".properties: is not an object")?;
            for (field, ft) in props {
                let n = self
                    .read_at(ft, depth + 1)
                    .map_err(|e| format!(".properties.{field}{e}"))?;
                def.properties.push((field.clone(), n));
            }
        }
        for key in ["enum", "enums"] {
            if let Some(constants) = o.get(key) {
                let constants = constants
                    .as_array()
                    .ok_or_else(|| format!(".{key}: is not an array"))?;
                for (i, c) in constants.iter().enumerate() {
                    let c = c
                        .as_str()
                        .ok_or_else(|| format!(".{key}[{i}]: is not a constant name"))?;
                    if !def.enum_constants.iter().any(|e| e == c) {
                        def.enum_constants.push(c.to_string());
                    }
                }
            }
        }
        // The same type may be described more than once (2.7 repeats it wherever it is used,
        // sometimes only by name): the fullest description wins.
        let replace = self
            .by_name
            .get(&name)
            .is_none_or(|known| known.is_empty() && !def.is_empty());
        if replace {
            self.by_name.insert(name.clone(), def);
        }
        Ok(name)
    }

    /// The types with every `$ref` placeholder replaced by the name it refers to.
    fn resolve(self) -> (BTreeMap<String, TypeDefinition>, BTreeMap<String, String>) {
        let Types { by_name, ids, .. } = self;
        let real = |n: &String| -> String {
            match n.strip_prefix("\u{0}ref:") {
                Some(r) => resolve_ref(r, &ids),
                None => n.clone(),
            }
        };
        let types = by_name
            .into_iter()
            .map(|(name, def)| {
                let def = TypeDefinition {
                    items: def.items.iter().map(real).collect(),
                    properties: def
                        .properties
                        .iter()
                        .map(|(f, t)| (f.clone(), real(t)))
                        .collect(),
                    enum_constants: def.enum_constants,
                };
                (name, def)
            })
            .collect();
        (types, ids)
    }
}

/// A `$ref` as the type name it points to: an `id` of a definition, or a JSON-schema style
/// `#/definitions/{name}`, or the type name itself.
fn resolve_ref(r: &str, ids: &BTreeMap<String, String>) -> String {
    if let Some(name) = ids.get(r) {
        return name.clone();
    }
    let bare = r
        .trim_start_matches("#/definitions/")
        .trim_start_matches('#');
    ids.get(bare).cloned().unwrap_or_else(|| bare.to_string())
}

/// Parameter and return types read from 2.7 `parameters`/`returnType` definitions may be
/// `$ref` placeholders too.
fn fix_method_refs(methods: &mut [MethodDefinition], ids: &BTreeMap<String, String>) {
    let real = |t: &mut String| {
        if let Some(r) = t.strip_prefix("\u{0}ref:") {
            *t = resolve_ref(r, ids);
        }
    };
    for m in methods {
        m.parameter_types.iter_mut().for_each(real);
        real(&mut m.return_type);
    }
}
