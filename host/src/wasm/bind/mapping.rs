//! The Java side of WIT value types, and conversions between guest values (`Val`) and Hessian2
//! values, directly (no JSON in between). A mapping is built once per function at load; a call
//! only walks values.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use wasmtime::component::{Type, Val};

use crate::hessian2::{decoded_size, ref_table, ClassDef, List, Map, Object, Value};
use crate::java::{lower_camel, screaming_snake, upper_camel};

/// How deep converted values may nest; deeper (or cyclic, through back-references) values are
/// refused instead of exhausting the stack.
const MAX_DEPTH: usize = 64;

/// What back-references may copy into guest values, at most this many times the bytes the
/// reply decoded to ([`decoded_size`]) ...
pub const COPY_BUDGET_FACTOR: usize = 2;
/// ... or this many bytes, whichever is more, so that small replies are never refused.
pub const COPY_BUDGET_FLOOR: usize = 8 << 20;

/// What one guest value takes before its own heap data.
const VAL: usize = std::mem::size_of::<Val>();

/// Why a WIT type has no Java counterpart, or why a value does not fit its mapping: the
/// problem, with where it is (`parameter `id``, `field `name` of org.x.User`) in front.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(String);

impl MappingError {
    /// A problem with no place yet.
    pub fn new(problem: impl Into<String>) -> Self {
        MappingError(problem.into())
    }

    /// The same problem, found inside `place`: `place: problem`.
    pub fn within(self, place: impl std::fmt::Display) -> Self {
        MappingError(format!("{place}: {}", self.0))
    }
}

impl From<&str> for MappingError {
    fn from(problem: &str) -> Self {
        MappingError(problem.to_string())
    }
}

impl From<String> for MappingError {
    fn from(problem: String) -> Self {
        MappingError(problem)
    }
}

/// Java side of one WIT value type.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapping {
    String,
    Boolean,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    Char,
    /// `list<u8>` as `byte[]`.
    Bytes,
    /// `option<T>`: the nullable boxed form of `T`.
    Nullable(Box<Mapping>),
    /// `list<T>` as `java.util.List`.
    List(Box<Mapping>),
    /// `list<tuple<K, V>>` as `java.util.Map<K, V>`, entries in list order both ways.
    Map(Box<Mapping>, Box<Mapping>),
    /// `record` as a Java class (a POJO).
    Record(Arc<RecordMapping>),
    /// `enum` as a Java enum.
    Enum(Arc<EnumMapping>),
}

/// A WIT record bound to a Java class.
#[derive(Debug, PartialEq)]
pub struct RecordMapping {
    /// Java class name and Java field names (lowerCamelCase of the WIT field names), in WIT
    /// order; shared by every object written, so the encoder reuses one class definition.
    pub class: Arc<ClassDef>,
    /// WIT field names, in order.
    pub wit_fields: Vec<String>,
    pub types: Vec<Mapping>,
}

/// A WIT enum bound to a Java enum.
#[derive(Debug, PartialEq)]
pub struct EnumMapping {
    pub class: String,
    /// WIT case names, in order.
    pub wit_names: Vec<String>,
    /// Java constant names (`dark-red` → `DARK_RED`), in the same order.
    pub java_names: Vec<String>,
}

/// What mapping a WIT type needs to know: the names of the interface's types and where their
/// Java classes live.
pub struct TypeNames<'a> {
    /// The interface's named types (`user` → its type).
    pub named: &'a [(String, Type)],
    /// Java package of the interface, for default class names (`org.x` → `org.x.User`).
    pub java_package: &'a str,
    /// Explicit classes by WIT type name (`[reference.java-types]`).
    pub java_types: &'a BTreeMap<String, String>,
}

impl TypeNames<'_> {
    fn name_of(&self, ty: &Type) -> Option<&str> {
        self.named
            .iter()
            .find(|(_, t)| t == ty)
            .map(|(n, _)| n.as_str())
    }

    fn class_for(&self, ty: &Type, what: &str) -> Result<String, MappingError> {
        let Some(name) = self.name_of(ty) else {
            return Err(format!(
                "an anonymous {what} has no Java class: declare it as a named type in the interface"
            )
            .into());
        };
        if let Some(class) = self.java_types.get(name) {
            return Ok(class.clone());
        }
        let simple = upper_camel(name);
        Ok(if self.java_package.is_empty() {
            simple
        } else {
            format!("{}.{simple}", self.java_package)
        })
    }
}

/// The Java type name of a mapping, for messages and descriptors.
pub fn describe(t: &Mapping) -> String {
    match t {
        Mapping::String => "java.lang.String".into(),
        Mapping::Boolean => "boolean".into(),
        Mapping::Byte => "byte".into(),
        Mapping::Short => "short".into(),
        Mapping::Int => "int".into(),
        Mapping::Long => "long".into(),
        Mapping::Float => "float".into(),
        Mapping::Double => "double".into(),
        Mapping::Char => "char".into(),
        Mapping::Bytes => "byte[]".into(),
        Mapping::Nullable(inner) => match boxed(inner) {
            Some(b) => b
                .replace('/', ".")
                .trim_start_matches('L')
                .trim_end_matches(';')
                .to_string(),
            None => describe(inner),
        },
        Mapping::List(inner) => format!("java.util.List<{}>", describe(inner)),
        Mapping::Map(k, v) => format!("java.util.Map<{}, {}>", describe(k), describe(v)),
        Mapping::Record(r) => r.class.name.clone(),
        Mapping::Enum(e) => e.class.clone(),
    }
}

fn boxed(t: &Mapping) -> Option<&'static str> {
    Some(match t {
        Mapping::Boolean => "Ljava/lang/Boolean;",
        Mapping::Byte => "Ljava/lang/Byte;",
        Mapping::Short => "Ljava/lang/Short;",
        Mapping::Int => "Ljava/lang/Integer;",
        Mapping::Long => "Ljava/lang/Long;",
        Mapping::Float => "Ljava/lang/Float;",
        Mapping::Double => "Ljava/lang/Double;",
        Mapping::Char => "Ljava/lang/Character;",
        _ => return None,
    })
}

fn wit_type_name(ty: &Type) -> &'static str {
    match ty {
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Map(_) => "map",
        Type::FixedLengthList(_) => "fixed-length list",
        Type::Own(_) | Type::Borrow(_) => "resource",
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => "async type",
        _ => "this type",
    }
}

impl Mapping {
    /// Maps a WIT type, or says why it cannot be mapped.
    pub fn from_wit(ty: &Type, names: &TypeNames<'_>) -> Result<Mapping, MappingError> {
        Ok(match ty {
            Type::String => Mapping::String,
            Type::Bool => Mapping::Boolean,
            Type::S8 => Mapping::Byte,
            Type::S16 => Mapping::Short,
            Type::S32 => Mapping::Int,
            Type::S64 => Mapping::Long,
            Type::Float32 => Mapping::Float,
            Type::Float64 => Mapping::Double,
            Type::Char => Mapping::Char,
            Type::List(l) if l.ty() == Type::U8 => Mapping::Bytes,
            Type::List(l) => match l.ty() {
                Type::Tuple(t) => {
                    let types: Vec<Type> = t.types().collect();
                    let [k, v] = types.as_slice() else {
                        return Err("a list of tuples has a Java type (java.util.Map) only for pairs: list<tuple<K, V>>".into());
                    };
                    let key = Mapping::from_wit(k, names).map_err(|e| e.within("map key"))?;
                    let value = Mapping::from_wit(v, names).map_err(|e| e.within("map value"))?;
                    Mapping::Map(Box::new(key), Box::new(value))
                }
                elem => Mapping::List(Box::new(Mapping::from_wit(&elem, names)?)),
            },
            Type::Option(o) => match Mapping::from_wit(&o.ty(), names)? {
                Mapping::Nullable(_) => {
                    return Err("option<option<..>> has no Java type".into())
                }
                inner => Mapping::Nullable(Box::new(inner)),
            },
            Type::Record(r) => {
                let class_name = names.class_for(ty, "record")?;
                let mut wit_fields = Vec::new();
                let mut java_fields = Vec::new();
                let mut types = Vec::new();
                for f in r.fields() {
                    let t = Mapping::from_wit(&f.ty, names)
                        .map_err(|e| e.within(format!("field `{}` of {class_name}", f.name)))?;
                    wit_fields.push(f.name.to_string());
                    java_fields.push(lower_camel(f.name));
                    types.push(t);
                }
                Mapping::Record(Arc::new(RecordMapping {
                    class: Arc::new(ClassDef {
                        name: class_name,
                        fields: java_fields,
                    }),
                    wit_fields,
                    types,
                }))
            }
            Type::Enum(e) => {
                let class = names.class_for(ty, "enum")?;
                let wit_names: Vec<String> = e.names().map(str::to_string).collect();
                let java_names = wit_names.iter().map(|n| screaming_snake(n)).collect();
                Mapping::Enum(Arc::new(EnumMapping {
                    class,
                    wit_names,
                    java_names,
                }))
            }
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
                return Err("unsigned integers have no Java type: use s8/s16/s32/s64".into())
            }
            other => {
                return Err(format!(
                    "a {} has no Java type yet: use string, bool, s8..s64, f32, f64, char, list, list<tuple<K, V>> (a Map), option, record or enum",
                    wit_type_name(other)
                ).into())
            }
        })
    }

    /// The JVM descriptor (`Ljava/lang/String;`, `I`, `[B`, `Lorg/x/User;`, ...).
    pub fn descriptor(&self) -> String {
        match self {
            Mapping::String => "Ljava/lang/String;".into(),
            Mapping::Boolean => "Z".into(),
            Mapping::Byte => "B".into(),
            Mapping::Short => "S".into(),
            Mapping::Int => "I".into(),
            Mapping::Long => "J".into(),
            Mapping::Float => "F".into(),
            Mapping::Double => "D".into(),
            Mapping::Char => "C".into(),
            Mapping::Bytes => "[B".into(),
            Mapping::Nullable(inner) => match boxed(inner) {
                Some(b) => b.into(),
                None => inner.descriptor(),
            },
            Mapping::List(_) => "Ljava/util/List;".into(),
            Mapping::Map(..) => "Ljava/util/Map;".into(),
            Mapping::Record(r) => format!("L{};", r.class.name.replace('.', "/")),
            Mapping::Enum(e) => format!("L{};", e.class.replace('.', "/")),
        }
    }

    /// Converts a guest value to Hessian, as Java would serialize the same argument.
    pub fn to_hessian(&self, v: &Val) -> Result<Value, MappingError> {
        Ok(match (self, v) {
            (Mapping::String, Val::String(s)) => Value::String(s.clone()),
            (Mapping::Boolean, Val::Bool(b)) => Value::Bool(*b),
            (Mapping::Byte, Val::S8(i)) => Value::Int(i32::from(*i)),
            (Mapping::Short, Val::S16(i)) => Value::Int(i32::from(*i)),
            (Mapping::Int, Val::S32(i)) => Value::Int(*i),
            (Mapping::Long, Val::S64(i)) => Value::Long(*i),
            (Mapping::Float, Val::Float32(f)) => Value::Double(f64::from(*f)),
            (Mapping::Double, Val::Float64(f)) => Value::Double(*f),
            (Mapping::Char, Val::Char(c)) => Value::String(c.to_string()),
            (Mapping::Bytes, Val::List(items)) => Value::Binary(
                items
                    .iter()
                    .map(|i| match i {
                        Val::U8(b) => Ok(*b),
                        other => Err(format!("expected u8 in list<u8>, got {other:?}")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Mapping::Nullable(_), Val::Option(None)) => Value::Null,
            (Mapping::Nullable(inner), Val::Option(Some(v))) => inner.to_hessian(v)?,
            (Mapping::List(inner), Val::List(items)) => Value::List(List::typed(
                "java.util.ArrayList",
                items
                    .iter()
                    .map(|i| inner.to_hessian(i))
                    .collect::<Result<_, _>>()?,
            )),
            (Mapping::Map(k, v), Val::List(items)) => {
                let mut entries = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Val::Tuple(pair) = item else {
                        return Err(format!("entry {i}: expected a tuple, got {item:?}").into());
                    };
                    let [key, value] = pair.as_slice() else {
                        return Err(format!("entry {i}: expected a pair").into());
                    };
                    let key = k
                        .to_hessian(key)
                        .map_err(|e| e.within(format!("key of entry {i}")))?;
                    let value = v
                        .to_hessian(value)
                        .map_err(|e| e.within(format!("value of entry {i}")))?;
                    entries.push((key, value));
                }
                // A LinkedHashMap, so a Java provider iterates the entries in the guest's order.
                Value::Map(Map::typed("java.util.LinkedHashMap", entries))
            }
            (Mapping::Record(r), Val::Record(fields)) => {
                let mut values = Vec::with_capacity(r.types.len());
                for ((name, t), (_, v)) in r.wit_fields.iter().zip(&r.types).zip(fields) {
                    values.push(t.to_hessian(v).map_err(|e| e.within(name))?);
                }
                Value::Object(Object {
                    class: r.class.clone(),
                    values,
                })
            }
            (Mapping::Enum(e), Val::Enum(case)) => {
                let i = e
                    .wit_names
                    .iter()
                    .position(|n| n == case)
                    .ok_or_else(|| format!("unknown case `{case}` of {}", e.class))?;
                Value::Object(Object::new(
                    e.class.as_str(),
                    vec![("name".to_string(), Value::String(e.java_names[i].clone()))],
                ))
            }
            (t, v) => return Err(format!("cannot pass {v:?} as Java {}", describe(t)).into()),
        })
    }

    /// Converts a decoded reply to the guest's type, refusing what does not fit. `roots` are
    /// the top-level values of the reply, against which back-references resolve.
    ///
    /// A back-reference converts what it points to again (a guest value has no sharing); the
    /// guest values made that way are counted against the budget of [`Refs`], so a small reply
    /// full of references to one large value is refused instead of filling memory. WIT types
    /// are not recursive, so a reference cycle ends at the type's depth.
    pub fn to_wit(&self, v: &Value, roots: &Refs<'_>) -> Result<Val, MappingError> {
        self.to_wit_at(v, roots, 0, false)
    }

    fn to_wit_at(
        &self,
        v: &Value,
        refs: &Refs<'_>,
        depth: usize,
        copying: bool,
    ) -> Result<Val, MappingError> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the reply nests deeper than {MAX_DEPTH} levels (or refers to itself)"
            )
            .into());
        }
        // Inside a back-reference, every guest value made is a copy.
        let copying = copying || matches!(v, Value::Ref(_));
        let v = refs.resolve(v)?;
        let charge = |bytes: usize| {
            if copying {
                refs.charge(bytes)
            } else {
                Ok(())
            }
        };
        let int = |v: &Value| match v {
            Value::Int(i) => Some(i64::from(*i)),
            Value::Long(l) => Some(*l),
            _ => None,
        };
        let fits = |what: &str| {
            format!(
                "the provider returned {}, which does not fit {what}",
                v.type_name_for_display()
            )
        };
        Ok(match self {
            Mapping::Nullable(_) if v.is_null() => Val::Option(None),
            Mapping::Nullable(inner) => {
                charge(VAL)?;
                Val::Option(Some(Box::new(inner.to_wit_at(
                    v,
                    refs,
                    depth + 1,
                    copying,
                )?)))
            }
            _ if v.is_null() => {
                return Err(format!(
                    "the provider returned null for {}: declare the WIT type as option<..>",
                    describe(self)
                )
                .into())
            }
            Mapping::String => match v {
                Value::String(s) => {
                    charge(s.len())?;
                    Val::String(s.clone())
                }
                // hessian-lite writes BigDecimal (and BigInteger) as an object holding the
                // decimal text.
                Value::Object(o) if is_decimal_class(&o.class.name) => match o.get("value") {
                    Some(Value::String(s)) => {
                        charge(s.len())?;
                        Val::String(s.clone())
                    }
                    _ => return Err(fits("string").into()),
                },
                _ => return Err(fits("string").into()),
            },
            Mapping::Boolean => match v {
                Value::Bool(b) => Val::Bool(*b),
                _ => return Err(fits("bool").into()),
            },
            Mapping::Byte => Val::S8(
                int(v)
                    .and_then(|i| i8::try_from(i).ok())
                    .ok_or_else(|| fits("s8"))?,
            ),
            Mapping::Short => Val::S16(
                int(v)
                    .and_then(|i| i16::try_from(i).ok())
                    .ok_or_else(|| fits("s16"))?,
            ),
            Mapping::Int => Val::S32(
                int(v)
                    .and_then(|i| i32::try_from(i).ok())
                    .ok_or_else(|| fits("s32"))?,
            ),
            // A java.util.Date is its epoch milliseconds.
            Mapping::Long => match v {
                Value::Date(ms) => Val::S64(*ms),
                _ => Val::S64(int(v).ok_or_else(|| fits("s64"))?),
            },
            Mapping::Float => match v {
                Value::Double(d) => Val::Float32(*d as f32),
                Value::Int(i) => Val::Float32(*i as f32),
                _ => return Err(fits("f32").into()),
            },
            Mapping::Double => match v {
                Value::Double(d) => Val::Float64(*d),
                Value::Int(i) => Val::Float64(f64::from(*i)),
                _ => return Err(fits("f64").into()),
            },
            Mapping::Char => match v {
                Value::String(s) if s.chars().count() == 1 => {
                    Val::Char(s.chars().next().ok_or_else(|| fits("char"))?)
                }
                _ => return Err(fits("char").into()),
            },
            Mapping::Bytes => match v {
                Value::Binary(b) => {
                    charge(b.len().saturating_mul(VAL))?;
                    Val::List(b.iter().map(|b| Val::U8(*b)).collect())
                }
                _ => return Err(fits("list<u8>").into()),
            },
            Mapping::List(inner) => match v {
                Value::List(l) => {
                    charge(l.items.len().saturating_mul(VAL))?;
                    Val::List(
                        l.items
                            .iter()
                            .map(|i| inner.to_wit_at(i, refs, depth + 1, copying))
                            .collect::<Result<_, _>>()?,
                    )
                }
                _ => return Err(fits("list").into()),
            },
            Mapping::Map(k, val) => match v {
                Value::Map(m) => {
                    charge(m.entries.len().saturating_mul(3 * VAL))?;
                    let mut entries = Vec::with_capacity(m.entries.len());
                    for (key, value) in &m.entries {
                        let key = k
                            .to_wit_at(key, refs, depth + 1, copying)
                            .map_err(|e| e.within("map key"))?;
                        let value = val
                            .to_wit_at(value, refs, depth + 1, copying)
                            .map_err(|e| e.within("map value"))?;
                        entries.push(Val::Tuple(vec![key, value]));
                    }
                    Val::List(entries)
                }
                _ => return Err(fits("list<tuple<K, V>>").into()),
            },
            Mapping::Record(r) => {
                if copying {
                    // Each field of a record value is its name (a `String`) and its `Val`.
                    let field = VAL + std::mem::size_of::<String>();
                    refs.charge(r.wit_fields.iter().map(|f| f.len() + field).sum())?;
                }
                let mut fields = Vec::with_capacity(r.types.len());
                for ((wit, java), t) in r.wit_fields.iter().zip(&r.class.fields).zip(&r.types) {
                    let found = match v {
                        Value::Object(o) => o.get(java),
                        Value::Map(m) => m.get_str(java),
                        _ => return Err(fits(&r.class.name).into()),
                    };
                    let val = match found {
                        Some(fv) => t.to_wit_at(fv, refs, depth + 1, copying),
                        None if matches!(t, Mapping::Nullable(_)) => Ok(Val::Option(None)),
                        None => Err(format!("the reply has no field `{java}`").into()),
                    }
                    .map_err(|e| e.within(format!("{}.{java}", r.class.name)))?;
                    fields.push((wit.clone(), val));
                }
                Val::Record(fields)
            }
            Mapping::Enum(e) => {
                let constant = match v {
                    Value::Object(o) => o.get("name").and_then(Value::as_str),
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                }
                .ok_or_else(|| fits(&e.class))?;
                let i = e
                    .java_names
                    .iter()
                    .position(|n| n == constant)
                    .ok_or_else(|| {
                        format!("{} has no constant {constant} in the WIT enum", e.class)
                    })?;
                charge(e.wit_names[i].len())?;
                Val::Enum(e.wit_names[i].clone())
            }
        })
    }
}

/// Whether `class` is one hessian-lite writes as `{value: "<decimal text>"}`.
pub fn is_decimal_class(class: &str) -> bool {
    matches!(class, "java.math.BigDecimal" | "java.math.BigInteger")
}

/// Back-reference resolution for one reply, built only when a reference is met, and the
/// budget of what references may copy into guest values: [`COPY_BUDGET_FACTOR`] times the
/// bytes the reply decoded to, at least [`COPY_BUDGET_FLOOR`].
pub struct Refs<'a> {
    roots: &'a [Value],
    table: OnceLock<Vec<&'a Value>>,
    /// Bytes references may still copy; measured when the first copy is charged.
    copy_left: Cell<Option<usize>>,
}

impl<'a> Refs<'a> {
    /// Resolution against the top-level values of one Hessian stream.
    pub fn new(roots: &'a [Value]) -> Self {
        Refs {
            roots,
            table: OnceLock::new(),
            copy_left: Cell::new(None),
        }
    }

    /// The copy budget for these roots.
    fn copy_budget(&self) -> (usize, usize) {
        let decoded = decoded_size(self.roots);
        let limit = decoded
            .saturating_mul(COPY_BUDGET_FACTOR)
            .max(COPY_BUDGET_FLOOR);
        (limit, decoded)
    }

    /// Takes `bytes` of copied guest values from the budget.
    fn charge(&self, bytes: usize) -> Result<(), MappingError> {
        let left = match self.copy_left.get() {
            Some(left) => left,
            None => self.copy_budget().0,
        };
        match left.checked_sub(bytes) {
            Some(left) => {
                self.copy_left.set(Some(left));
                Ok(())
            }
            None => {
                let (limit, decoded) = self.copy_budget();
                Err(format!(
                    "the reply's back-references copy more than {limit} bytes into guest values (a reply that decoded to {decoded} bytes may copy at most {COPY_BUDGET_FACTOR}x that, at least {COPY_BUDGET_FLOOR} bytes)"
                )
                .into())
            }
        }
    }

    fn resolve<'v>(&'v self, v: &'v Value) -> Result<&'v Value, MappingError> {
        match v {
            Value::Ref(n) => self
                .table
                .get_or_init(|| ref_table(self.roots))
                .get(*n as usize)
                .copied()
                .ok_or_else(|| format!("back-reference {n} points nowhere").into()),
            other => Ok(other),
        }
    }
}
