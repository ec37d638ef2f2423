//! Java types of a service definition as WIT types, following the binder's table (README,
//! "Writing a guest") plus the generator's additions:
//!
//! | Java | WIT |
//! |---|---|
//! | `boolean`/`Boolean`, `byte`/`Byte`, `short`/`Short`, `int`/`Integer`, `long`/`Long`, `float`/`Float`, `double`/`Double`, `char`/`Character` | `bool`, `s8`, `s16`, `s32`, `s64`, `f32`, `f64`, `char` (boxed types as plain scalars: a null from the provider is refused) |
//! | `String`, `BigDecimal`, `BigInteger`, `java.time.*` | `string` (numbers and ISO-8601 text) |
//! | `java.util.Date` | `s64` (epoch milliseconds) |
//! | `byte[]` | `list<u8>` |
//! | `List<T>`, `Set<T>`, other collections, `T[]` | `list<T>` |
//! | `Map<K, V>` and its implementations | `list<tuple<K, V>>` (entry order kept) |
//! | a class the definition describes with properties | a `record`, fields kebab-case |
//! | an enum | an `enum`, constants kebab-case |
//!
//! What has no WIT type — raw `Object`, a raw collection, a type variable, a generic class
//! other than a collection or map, a recursive class, a class the definition does not
//! describe — is an [`Unmappable`] naming the Java type.

use std::collections::BTreeMap;

use super::definition::TypeDefinition;
use crate::java::{self, TypeName};

/// A WIT type the generator writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum WitType {
    Bool,
    S8,
    S16,
    S32,
    S64,
    F32,
    F64,
    Char,
    String,
    /// `list<u8>` for `byte[]`.
    Bytes,
    List(Box<WitType>),
    /// `list<tuple<K, V>>` for a `java.util.Map<K, V>`.
    Map(Box<WitType>, Box<WitType>),
    Option(Box<WitType>),
    /// A record or enum, by Java class name.
    Named(String),
}

impl WitType {
    /// The JVM descriptor the binder sends for this WIT type when the reference names no
    /// `parameter-types` (mirrors `wasm::bind`'s defaults; a named type is its Java class).
    pub fn binder_descriptor(&self) -> String {
        match self {
            WitType::Bool => "Z".into(),
            WitType::S8 => "B".into(),
            WitType::S16 => "S".into(),
            WitType::S32 => "I".into(),
            WitType::S64 => "J".into(),
            WitType::F32 => "F".into(),
            WitType::F64 => "D".into(),
            WitType::Char => "C".into(),
            WitType::String => "Ljava/lang/String;".into(),
            WitType::Bytes => "[B".into(),
            WitType::List(_) => "Ljava/util/List;".into(),
            WitType::Map(..) => "Ljava/util/Map;".into(),
            WitType::Option(inner) => match inner.as_ref() {
                WitType::Bool => "Ljava/lang/Boolean;".into(),
                WitType::S8 => "Ljava/lang/Byte;".into(),
                WitType::S16 => "Ljava/lang/Short;".into(),
                WitType::S32 => "Ljava/lang/Integer;".into(),
                WitType::S64 => "Ljava/lang/Long;".into(),
                WitType::F32 => "Ljava/lang/Float;".into(),
                WitType::F64 => "Ljava/lang/Double;".into(),
                WitType::Char => "Ljava/lang/Character;".into(),
                other => other.binder_descriptor(),
            },
            WitType::Named(class) => format!("L{};", class.replace('.', "/")),
        }
    }

    /// Every record or enum class it names, inner ones included.
    pub fn named(&self, out: &mut Vec<String>) {
        match self {
            WitType::List(t) | WitType::Option(t) => t.named(out),
            WitType::Map(k, v) => {
                k.named(out);
                v.named(out);
            }
            WitType::Named(c) => out.push(c.clone()),
            _ => {}
        }
    }
}

/// A record or enum the WIT declares for a Java class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedType {
    /// Java field names and their WIT types, in the definition's order.
    Record(Vec<(String, WitType)>),
    /// Java constant names.
    Enum(Vec<String>),
}

/// Why a Java type has no WIT type: the type as written and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmappable {
    pub java_type: String,
    pub problem: String,
}

impl Unmappable {
    fn new(java_type: impl Into<String>, problem: impl Into<String>) -> Self {
        Unmappable {
            java_type: java_type.into(),
            problem: problem.into(),
        }
    }
}

/// Maps the Java types of one package's definitions, collecting the records and enums met.
pub struct Mapper<'a> {
    /// Every type the definitions describe, by published name.
    types: &'a BTreeMap<String, TypeDefinition>,
    /// Records and enums mapped so far, by Java class.
    pub named: BTreeMap<String, NamedType>,
    /// Classes being mapped (to refuse recursion, which WIT cannot express).
    stack: Vec<String>,
}

impl<'a> Mapper<'a> {
    /// A mapper over the types `types` describes.
    pub fn new(types: &'a BTreeMap<String, TypeDefinition>) -> Self {
        Mapper {
            types,
            named: BTreeMap::new(),
            stack: Vec::new(),
        }
    }

    /// The WIT type of a Java type name as published.
    pub fn map_name(&mut self, java: &str) -> Result<WitType, Unmappable> {
        let parsed =
            TypeName::parse(&strip_kind(java)).map_err(|e| Unmappable::new(java, e.problem))?;
        self.map(&parsed)
    }

    /// The WIT type of a parsed Java type.
    pub fn map(&mut self, t: &TypeName) -> Result<WitType, Unmappable> {
        let shown = t.to_string();
        if t.dims > 0 {
            let elem = t.element();
            if elem.dims == 0 && elem.name == "byte" {
                return Ok(WitType::Bytes);
            }
            return Ok(WitType::List(Box::new(self.map(&elem)?)));
        }
        let scalar = match t.name.as_str() {
            "boolean" | "java.lang.Boolean" => Some(WitType::Bool),
            "byte" | "java.lang.Byte" => Some(WitType::S8),
            "short" | "java.lang.Short" => Some(WitType::S16),
            "int" | "java.lang.Integer" => Some(WitType::S32),
            "long" | "java.lang.Long" => Some(WitType::S64),
            "float" | "java.lang.Float" => Some(WitType::F32),
            "double" | "java.lang.Double" => Some(WitType::F64),
            "char" | "java.lang.Character" => Some(WitType::Char),
            "java.lang.String" | "java.math.BigDecimal" | "java.math.BigInteger" => {
                Some(WitType::String)
            }
            "java.util.Date" => Some(WitType::S64),
            n if n.starts_with("java.time.") => Some(WitType::String),
            _ => None,
        };
        if let Some(s) = scalar {
            return Ok(s);
        }
        match t.name.as_str() {
            "void" | "java.lang.Void" => {
                return Err(Unmappable::new(shown, "void is not a value type"))
            }
            "java.lang.Object"
            | "java.io.Serializable"
            | "java.lang.Number"
            | "java.lang.CharSequence" => {
                return Err(Unmappable::new(
                    shown,
                    "a raw Object: the class of its values is not known",
                ))
            }
            _ => {}
        }
        if java::collection_type(&t.name).is_some() {
            let Some(elem) = t.arg(0) else {
                return Err(Unmappable::new(
                    shown,
                    "a raw collection: its element type is not known",
                ));
            };
            return Ok(WitType::List(Box::new(self.map(elem)?)));
        }
        if java::map_type(&t.name).is_some() {
            let (Some(k), Some(v)) = (t.arg(0), t.arg(1)) else {
                return Err(Unmappable::new(
                    shown,
                    "a raw map: its key and value types are not known",
                ));
            };
            return Ok(WitType::Map(Box::new(self.map(k)?), Box::new(self.map(v)?)));
        }
        if !t.args.is_empty() {
            return Err(Unmappable::new(
                shown,
                "a generic class other than a collection or map (each use would need a record of its own)",
            ));
        }
        self.map_class(&t.name)
    }

    fn map_class(&mut self, class: &str) -> Result<WitType, Unmappable> {
        if self.named.contains_key(class) {
            return Ok(WitType::Named(class.to_string()));
        }
        if self.stack.iter().any(|c| c == class) {
            let path = self.stack.join(" → ");
            return Err(Unmappable::new(
                class,
                format!("a recursive type ({path} → {class}), which WIT cannot express"),
            ));
        }
        let Some(def) = self.types.get(class) else {
            return Err(Unmappable::new(
                class,
                "the definition does not describe this class (a type variable, or a class the provider left out)",
            ));
        };
        if !def.enum_constants.is_empty() {
            self.named.insert(
                class.to_string(),
                NamedType::Enum(def.enum_constants.clone()),
            );
            return Ok(WitType::Named(class.to_string()));
        }
        if def.properties.is_empty() {
            return Err(Unmappable::new(
                class,
                "the definition lists no fields for this class, and a WIT record needs one",
            ));
        }
        self.stack.push(class.to_string());
        let mut fields = Vec::with_capacity(def.properties.len());
        let mut failed = None;
        for (name, ty) in &def.properties {
            match self.map_name(ty) {
                Ok(t) => fields.push((name.clone(), t)),
                Err(e) => {
                    failed = Some(Unmappable::new(
                        e.java_type,
                        format!("field `{name}` of {class}: {}", e.problem),
                    ));
                    break;
                }
            }
        }
        self.stack.pop();
        if let Some(e) = failed {
            return Err(e);
        }
        self.named
            .insert(class.to_string(), NamedType::Record(fields));
        Ok(WitType::Named(class.to_string()))
    }
}

/// `class java.lang.String` / `interface java.util.List` (as `Type.toString()` prints raw
/// classes) without the kind word.
fn strip_kind(java: &str) -> String {
    let t = java.trim();
    for kind in ["class ", "interface ", "enum "] {
        if let Some(rest) = t.strip_prefix(kind) {
            return rest.to_string();
        }
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> BTreeMap<String, TypeDefinition> {
        let mut t = BTreeMap::new();
        t.insert(
            "org.x.User".to_string(),
            TypeDefinition {
                properties: vec![
                    ("id".into(), "long".into()),
                    ("tags".into(), "java.util.Set<java.lang.String>".into()),
                ],
                ..Default::default()
            },
        );
        t.insert(
            "org.x.Node".to_string(),
            TypeDefinition {
                properties: vec![("next".into(), "org.x.Node".into())],
                ..Default::default()
            },
        );
        t.insert(
            "org.x.Color".to_string(),
            TypeDefinition {
                enum_constants: vec!["RED".into()],
                ..Default::default()
            },
        );
        t
    }

    #[test]
    fn the_issues_additions_map_as_stated() {
        let types = types();
        let mut m = Mapper::new(&types);
        let map = |m: &mut Mapper<'_>, t: &str| m.map_name(t);
        assert_eq!(
            map(&mut m, "java.util.Map<java.lang.String,java.lang.Integer>"),
            Ok(WitType::Map(
                Box::new(WitType::String),
                Box::new(WitType::S32)
            ))
        );
        assert_eq!(
            map(&mut m, "java.util.Set<java.lang.Long>"),
            Ok(WitType::List(Box::new(WitType::S64)))
        );
        assert_eq!(
            map(&mut m, "int[]"),
            Ok(WitType::List(Box::new(WitType::S32)))
        );
        assert_eq!(map(&mut m, "byte[]"), Ok(WitType::Bytes));
        assert_eq!(
            map(&mut m, "[Ljava.lang.String;"),
            Ok(WitType::List(Box::new(WitType::String)))
        );
        assert_eq!(map(&mut m, "java.math.BigDecimal"), Ok(WitType::String));
        assert_eq!(map(&mut m, "java.math.BigInteger"), Ok(WitType::String));
        assert_eq!(map(&mut m, "java.util.Date"), Ok(WitType::S64));
        assert_eq!(map(&mut m, "java.time.LocalDate"), Ok(WitType::String));
        assert_eq!(map(&mut m, "java.lang.Integer"), Ok(WitType::S32));
        assert_eq!(map(&mut m, "class java.lang.String"), Ok(WitType::String));
        assert_eq!(
            map(&mut m, "org.x.Color"),
            Ok(WitType::Named("org.x.Color".into()))
        );
        assert_eq!(
            map(&mut m, "java.util.List<org.x.User>"),
            Ok(WitType::List(Box::new(WitType::Named("org.x.User".into()))))
        );
        assert_eq!(
            m.named.get("org.x.User"),
            Some(&NamedType::Record(vec![
                ("id".into(), WitType::S64),
                ("tags".into(), WitType::List(Box::new(WitType::String))),
            ]))
        );
    }

    #[test]
    fn what_has_no_wit_type_is_named_with_the_reason() {
        let types = types();
        let mut m = Mapper::new(&types);
        let e = m.map_name("java.lang.Object").expect_err("raw Object");
        assert_eq!(e.java_type, "java.lang.Object");
        assert!(e.problem.contains("raw Object"), "{}", e.problem);
        let e = m.map_name("org.x.Node").expect_err("recursive");
        assert!(e.problem.contains("recursive"), "{}", e.problem);
        let e = m.map_name("java.util.List").expect_err("raw list");
        assert!(e.problem.contains("element type"), "{}", e.problem);
        let e = m.map_name("T").expect_err("type variable");
        assert_eq!(e.java_type, "T");
        let e = m
            .map_name("org.x.Page<org.x.User>")
            .expect_err("generic class");
        assert!(e.problem.contains("generic class"), "{}", e.problem);
        let e = m
            .map_name("java.util.Map<java.lang.String,java.lang.Object>")
            .expect_err("Object inside a map");
        assert_eq!(e.java_type, "java.lang.Object");
        assert!(!m.named.contains_key("org.x.Node"));
    }
}
