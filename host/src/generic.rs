//! Generic invocation with JSON, the equivalent of Dubbo's `$invoke` and telnet `invoke`: Java
//! type names become JVM descriptors, JSON arguments become the Hessian2 values hessian-lite
//! would write for the declared Java types, and a Hessian2 result becomes JSON again.
//!
//! The JSON conventions are Dubbo's generic ones: a POJO is a JSON object, optionally carrying
//! its Java class under `"class"` (results always carry it, first); a map is a JSON object
//! without `"class"`; an enum constant may be given as a string for a declared enum type.
//! Longs stay exact both ways (`serde_json` keeps `i64`/`u64` integers exact). A
//! `java.util.Date` is an integer of epoch milliseconds both ways (so a date inside an untyped
//! result reads as a number), `byte[]` is an array of numbers, and a double that JSON cannot
//! hold (NaN, ±infinity) prints as the string Java's `Double.toString` gives.

use serde_json::Value as Json;

use crate::protocol::hessian2::{ref_table, List, Map, Object, Value};
use crate::rpc::Invocation;

/// Why a Java type name or a JSON argument could not be turned into a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenericError {
    /// The text is not a Java type name.
    #[error("`{java_type}` is not a Java type name: {problem}")]
    BadType { java_type: String, problem: String },
    /// A JSON value does not fit the declared Java type; `at` locates it inside the argument.
    #[error("{}{problem}", at_prefix(.at))]
    BadValue {
        java_type: String,
        at: String,
        problem: String,
    },
    /// One argument of a call could not be converted.
    #[error("argument {index} ({java_type}): {source}")]
    Argument {
        index: usize,
        java_type: String,
        source: Box<GenericError>,
    },
    /// The numbers of parameter types and of arguments differ.
    #[error("method {method}: {types} parameter type(s) but {args} argument(s); give one type per argument")]
    Count {
        method: String,
        types: usize,
        args: usize,
    },
}

fn at_prefix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!("at {at}: ")
    }
}

/// A parsed Java type: erased class or primitive name, generic arguments and array dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JavaType {
    name: String,
    args: Vec<JavaType>,
    dims: usize,
}

const PRIMITIVES: [(&str, char); 9] = [
    ("int", 'I'),
    ("long", 'J'),
    ("boolean", 'Z'),
    ("byte", 'B'),
    ("short", 'S'),
    ("char", 'C'),
    ("float", 'F'),
    ("double", 'D'),
    ("void", 'V'),
];

/// `java.lang` types a Java source file names without their package.
const JAVA_LANG: [&str; 12] = [
    "String",
    "Object",
    "Integer",
    "Long",
    "Short",
    "Byte",
    "Character",
    "Boolean",
    "Float",
    "Double",
    "Number",
    "CharSequence",
];

impl JavaType {
    fn parse(text: &str) -> Result<JavaType, GenericError> {
        let bad = |problem: &str| GenericError::BadType {
            java_type: text.to_string(),
            problem: problem.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if trimmed.starts_with('[') {
            return JavaType::parse_jvm_array(trimmed).ok_or_else(|| {
                bad("a JVM array name is `[` followed by a primitive code (e.g. `[I`) or `Lclass;` (e.g. `[Ljava.lang.String;`)")
            });
        }
        let mut rest = trimmed;
        let t = JavaType::parse_source(&mut rest).map_err(|p| bad(&p))?;
        if !rest.trim().is_empty() {
            return Err(bad(&format!("unexpected `{}`", rest.trim())));
        }
        Ok(t)
    }

    /// `[I`, `[[J`, `[Ljava.lang.String;` (also with `/`), as `Class.getName()` prints arrays.
    fn parse_jvm_array(s: &str) -> Option<JavaType> {
        let dims = s.bytes().take_while(|&b| b == b'[').count();
        let elem = &s[dims..];
        let name = if let Some(class) = elem.strip_prefix('L').and_then(|e| e.strip_suffix(';')) {
            let class = class.replace('/', ".");
            valid_class_name(&class).then_some(class)?
        } else {
            let code = elem.chars().next().filter(|_| elem.len() == 1)?;
            PRIMITIVES
                .iter()
                .find(|(n, c)| *c == code && *n != "void")
                .map(|(n, _)| n.to_string())?
        };
        Some(JavaType {
            name,
            args: Vec::new(),
            dims,
        })
    }

    /// Source syntax: `a.b.C`, `int`, `java.util.Map<K, V>`, `T[]`, `T...`, `? extends T`.
    fn parse_source(rest: &mut &str) -> Result<JavaType, String> {
        *rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('?') {
            *rest = after.trim_start();
            for bound in ["extends", "super"] {
                if let Some(after) = rest.strip_prefix(bound) {
                    *rest = after;
                    let t = JavaType::parse_source(rest)?;
                    // `? super T` accepts anything above T: only Object is safe.
                    return Ok(if bound == "extends" { t } else { object_type() });
                }
            }
            return Ok(object_type());
        }
        let end = rest
            .find(|c: char| matches!(c, '<' | '>' | '[' | ',') || c.is_whitespace())
            .unwrap_or(rest.len());
        let raw = &rest[..end];
        *rest = &rest[end..];
        // `String...` (varargs) is one array dimension glued to the name.
        let varargs = raw.strip_suffix("...");
        let name = canonical_name(varargs.unwrap_or(raw))?;
        let mut args = Vec::new();
        *rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('<') {
            *rest = after;
            loop {
                args.push(JavaType::parse_source(rest)?);
                *rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix(',') {
                    *rest = after;
                } else if let Some(after) = rest.strip_prefix('>') {
                    *rest = after;
                    break;
                } else {
                    return Err("unclosed `<`".to_string());
                }
            }
        }
        let mut dims = usize::from(varargs.is_some());
        loop {
            *rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("[]") {
                *rest = after;
                dims += 1;
            } else if let Some(after) = rest.strip_prefix("...") {
                *rest = after;
                dims += 1;
            } else {
                break;
            }
        }
        if name == "void" && dims > 0 {
            return Err("there are no arrays of void".to_string());
        }
        Ok(JavaType { name, args, dims })
    }

    fn descriptor(&self) -> String {
        let mut d = "[".repeat(self.dims);
        match primitive_code(&self.name) {
            Some(code) => d.push(code),
            None => {
                d.push('L');
                d.push_str(&self.name.replace('.', "/"));
                d.push(';');
            }
        }
        d
    }

    fn element(&self) -> JavaType {
        JavaType {
            name: self.name.clone(),
            args: self.args.clone(),
            dims: self.dims.saturating_sub(1),
        }
    }

    fn is_primitive(&self) -> bool {
        self.dims == 0 && primitive_code(&self.name).is_some()
    }

    /// The list type hessian-lite writes for an array: `[int`, `[string`, `[[int`, `[a.b.C`.
    fn hessian_array_type(&self) -> String {
        if self.dims > 0 {
            return format!("[{}", self.element().hessian_array_type());
        }
        match self.name.as_str() {
            "java.lang.String" => "string".to_string(),
            "java.lang.Object" => "object".to_string(),
            "java.util.Date" => "date".to_string(),
            other => other.to_string(),
        }
    }

    fn arg(&self, i: usize) -> Option<&JavaType> {
        self.args.get(i)
    }
}

impl std::fmt::Display for JavaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.args.is_empty() {
            f.write_str("<")?;
            for (i, a) in self.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(">")?;
        }
        for _ in 0..self.dims {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

fn object_type() -> JavaType {
    JavaType {
        name: "java.lang.Object".to_string(),
        args: Vec::new(),
        dims: 0,
    }
}

fn primitive_code(name: &str) -> Option<char> {
    PRIMITIVES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn canonical_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("a class or primitive name is missing".to_string());
    }
    if primitive_code(raw).is_some() {
        return Ok(raw.to_string());
    }
    if JAVA_LANG.contains(&raw) {
        return Ok(format!("java.lang.{raw}"));
    }
    if !valid_class_name(raw) {
        return Err(format!(
            "`{raw}` is not a class name like `java.lang.String`"
        ));
    }
    Ok(raw.to_string())
}

fn valid_class_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

/// The JVM descriptor of a Java type name: `int` → `I`, `java.lang.String[]` → `[Ljava/lang/String;`.
pub fn java_descriptor(java_type: &str) -> Result<String, GenericError> {
    Ok(JavaType::parse(java_type)?.descriptor())
}

/// Splits a comma-separated list of Java type names, keeping commas inside `<...>` together.
pub fn split_type_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(text[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last.to_string());
    }
    out
}

/// The Java type assumed for an argument given without one, as `call` documents it.
pub fn infer_java_type(v: &Json) -> String {
    match v {
        Json::String(_) => "java.lang.String".to_string(),
        Json::Number(n) if n.as_i64().and_then(|i| i32::try_from(i).ok()).is_some() => {
            "int".to_string()
        }
        Json::Number(n) if n.is_i64() || n.is_u64() => "long".to_string(),
        Json::Number(_) => "double".to_string(),
        Json::Bool(_) => "boolean".to_string(),
        Json::Null => "java.lang.Object".to_string(),
        Json::Array(_) => "java.util.List".to_string(),
        Json::Object(o) => match o.get("class") {
            Some(Json::String(c)) => c.clone(),
            _ => "java.util.Map".to_string(),
        },
    }
}

/// Builds the invocation of `method` with one Java type name per JSON argument.
pub fn invocation(
    method: &str,
    types: &[String],
    args: &[Json],
) -> Result<Invocation, GenericError> {
    if types.len() != args.len() {
        return Err(GenericError::Count {
            method: method.to_string(),
            types: types.len(),
            args: args.len(),
        });
    }
    let mut descriptors = String::new();
    let mut values = Vec::with_capacity(args.len());
    for (index, (t, a)) in types.iter().zip(args).enumerate() {
        let wrap = |e: GenericError| GenericError::Argument {
            index,
            java_type: t.clone(),
            source: Box::new(e),
        };
        let parsed = JavaType::parse(t).map_err(wrap)?;
        if parsed.name == "void" {
            return Err(wrap(GenericError::BadType {
                java_type: t.clone(),
                problem: "void is not a parameter type".to_string(),
            }));
        }
        descriptors.push_str(&parsed.descriptor());
        values.push(convert(&parsed, a, &mut String::new()).map_err(wrap)?);
    }
    Ok(Invocation {
        method: method.into(),
        parameter_types: descriptors.into(),
        args: values,
        attachments: Vec::new(),
    })
}

/// Converts a JSON argument to the Hessian2 value hessian-lite writes for `java_type`.
pub fn json_to_hessian(java_type: &str, v: &Json) -> Result<Value, GenericError> {
    convert(&JavaType::parse(java_type)?, v, &mut String::new())
}

/// A short description of a JSON value for error messages.
fn describe(v: &Json) -> String {
    match v {
        Json::Null => "null".to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) if s.chars().count() > 40 => {
            format!("the string \"{}…\"", s.chars().take(40).collect::<String>())
        }
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "a JSON array".to_string(),
        Json::Object(_) => "a JSON object".to_string(),
    }
}

fn bad_value(t: &JavaType, at: &str, problem: String) -> GenericError {
    GenericError::BadValue {
        java_type: t.to_string(),
        at: at.to_string(),
        problem,
    }
}

fn expected(t: &JavaType, at: &str, what: &str, v: &Json) -> GenericError {
    bad_value(
        t,
        at,
        format!("expected {what} for {t}, got {}", describe(v)),
    )
}

/// A whole JSON number in `[min, max]`.
fn whole(t: &JavaType, at: &str, v: &Json, min: i64, max: i64) -> Result<i64, GenericError> {
    let Json::Number(n) = v else {
        return Err(expected(t, at, "an integer", v));
    };
    if let Some(i) = n.as_i64() {
        if (min..=max).contains(&i) {
            return Ok(i);
        }
    } else if n.as_u64().is_none() {
        let f = n.as_f64().unwrap_or(f64::NAN);
        // Integers too long for u64 arrive as f64; say they are too big, not fractions.
        if f.fract() != 0.0 || f.abs() < 9.2e18 {
            return Err(bad_value(
                t,
                at,
                format!(
                    "expected an integer for {t}, got {n}, a number with a fraction or exponent"
                ),
            ));
        }
    }
    Err(bad_value(
        t,
        at,
        format!("{n} is out of range for {t} ({min}..={max})"),
    ))
}

fn convert(t: &JavaType, v: &Json, at: &mut String) -> Result<Value, GenericError> {
    if v.is_null() {
        if t.is_primitive() {
            return Err(bad_value(
                t,
                at,
                format!("null is not a value of the primitive type {t}; declare the boxed type to pass null"),
            ));
        }
        return Ok(Value::Null);
    }
    if t.dims == 1 && t.name == "byte" {
        return binary(t, v, at);
    }
    if t.dims == 1 && t.name == "char" {
        return match v {
            // hessian-lite writes a char[] as a string.
            Json::String(s) => Ok(Value::String(s.clone())),
            _ => Err(expected(t, at, "a string", v)),
        };
    }
    if t.dims > 0 {
        let Json::Array(items) = v else {
            return Err(expected(t, at, "a JSON array", v));
        };
        let elem = t.element();
        return Ok(Value::List(List::typed(
            t.hessian_array_type(),
            convert_items(&elem, items, at)?,
        )));
    }
    match t.name.as_str() {
        "int" | "java.lang.Integer" => {
            whole(t, at, v, i32::MIN.into(), i32::MAX.into()).map(|i| Value::Int(i as i32))
        }
        "short" | "java.lang.Short" => {
            whole(t, at, v, i16::MIN.into(), i16::MAX.into()).map(|i| Value::Int(i as i32))
        }
        "byte" | "java.lang.Byte" => {
            whole(t, at, v, i8::MIN.into(), i8::MAX.into()).map(|i| Value::Int(i as i32))
        }
        "long" | "java.lang.Long" => whole(t, at, v, i64::MIN, i64::MAX).map(Value::Long),
        "double" | "java.lang.Double" => match v.as_f64() {
            Some(d) => Ok(Value::Double(d)),
            None => Err(expected(t, at, "a number", v)),
        },
        "float" | "java.lang.Float" => match v.as_f64() {
            Some(d) if d.is_finite() && !(d as f32).is_finite() => Err(bad_value(
                t,
                at,
                format!("{d} is out of range for {t}"),
            )),
            // hessian-lite writes a float as the double `Float.toString` spells.
            Some(d) => Ok(Value::Double(
                (d as f32).to_string().parse::<f64>().unwrap_or(d),
            )),
            None => Err(expected(t, at, "a number", v)),
        },
        "boolean" | "java.lang.Boolean" => match v {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            _ => Err(expected(t, at, "true or false", v)),
        },
        "char" | "java.lang.Character" => match v {
            Json::String(s) if s.chars().count() == 1 && s.chars().all(|c| c.len_utf16() == 1) => {
                Ok(Value::String(s.clone()))
            }
            Json::String(s) if s.chars().count() == 1 => Err(bad_value(
                t,
                at,
                format!("{s:?} does not fit a Java char (it needs two UTF-16 units); declare java.lang.String"),
            )),
            _ => Err(expected(t, at, "a string of one character", v)),
        },
        "java.lang.String" | "java.lang.CharSequence" => match v {
            Json::String(s) => Ok(Value::String(s.clone())),
            _ => Err(expected(t, at, "a string", v)),
        },
        "java.util.Date" => whole(t, at, v, i64::MIN, i64::MAX)
            .map(Value::Date)
            .map_err(|_| expected(t, at, "epoch milliseconds (an integer)", v)),
        "java.math.BigDecimal" => match v {
            // hessian-lite writes a BigDecimal as an object holding its decimal text.
            Json::Number(n) => Ok(big_decimal(n.to_string())),
            Json::String(s) if s.parse::<f64>().is_ok() => Ok(big_decimal(s.clone())),
            _ => Err(expected(t, at, "a number or a decimal string", v)),
        },
        "java.lang.Object" | "java.io.Serializable" | "java.lang.Number"
        | "java.lang.Comparable" => undeclared(v, at),
        "void" | "java.lang.Void" => Err(expected(t, at, "null", v)),
        name => {
            if let Some(list_type) = collection_type(name) {
                let Json::Array(items) = v else {
                    return Err(expected(t, at, "a JSON array", v));
                };
                let items = match t.arg(0) {
                    Some(elem) => convert_items(elem, items, at)?,
                    None => undeclared_items(items, at)?,
                };
                return Ok(Value::List(List {
                    type_name: list_type.map(str::to_string),
                    items,
                    fixed_length: true,
                }));
            }
            if let Some(map_type) = map_type(name) {
                let Json::Object(fields) = v else {
                    return Err(expected(t, at, "a JSON object", v));
                };
                let mut entries = Vec::with_capacity(fields.len());
                for (k, val) in fields {
                    let len = at.len();
                    at.push('.');
                    at.push_str(k);
                    let key = match t.arg(0) {
                        Some(kt) => map_key(kt, k, at)?,
                        None => Value::String(k.clone()),
                    };
                    let val = match t.arg(1) {
                        Some(vt) => convert(vt, val, at)?,
                        None => undeclared(val, at)?,
                    };
                    at.truncate(len);
                    entries.push((key, val));
                }
                return Ok(Value::Map(Map {
                    type_name: map_type.map(str::to_string),
                    entries,
                }));
            }
            match v {
                Json::Object(fields) => object(name, fields, at),
                // hessian-lite writes an enum constant as an object with its `name`.
                Json::String(s) => Ok(Value::Object(Object::new(
                    name,
                    vec![("name".to_string(), Value::String(s.clone()))],
                ))),
                _ => Err(expected(
                    t,
                    at,
                    "a JSON object (or a string naming an enum constant)",
                    v,
                )),
            }
        }
    }
}

fn big_decimal(text: String) -> Value {
    Value::Object(Object::new(
        "java.math.BigDecimal",
        vec![("value".to_string(), Value::String(text))],
    ))
}

/// The list type hessian-lite writes for a collection type: `Some(None)` for an untyped list
/// (an `ArrayList`, and what the provider builds for `List`/`Collection`), `None` if `name` is
/// not a collection.
fn collection_type(name: &str) -> Option<Option<&str>> {
    match name {
        "java.util.List"
        | "java.util.ArrayList"
        | "java.util.Collection"
        | "java.lang.Iterable" => Some(None),
        "java.util.Set" | "java.util.HashSet" => Some(Some("java.util.HashSet")),
        "java.util.SortedSet" | "java.util.NavigableSet" | "java.util.TreeSet" => {
            Some(Some("java.util.TreeSet"))
        }
        "java.util.Queue" | "java.util.Deque" => Some(Some("java.util.LinkedList")),
        _ => {
            let simple = name.rsplit('.').next().unwrap_or(name);
            let java_util = name.starts_with("java.util.") && !simple.contains("Map");
            let collection_like = ["List", "Set", "Queue", "Deque", "Vector", "Stack"]
                .iter()
                .any(|s| simple.ends_with(s));
            (java_util && collection_like).then_some(Some(name))
        }
    }
}

/// The map type hessian-lite writes for a map type: `Some(None)` for an untyped map (a
/// `HashMap`), `None` if `name` is not a map.
fn map_type(name: &str) -> Option<Option<&str>> {
    match name {
        "java.util.Map" | "java.util.HashMap" => Some(None),
        "java.util.SortedMap" | "java.util.NavigableMap" => Some(Some("java.util.TreeMap")),
        "java.util.concurrent.ConcurrentMap" => {
            Some(Some("java.util.concurrent.ConcurrentHashMap"))
        }
        "java.util.Hashtable" | "java.util.Properties" => Some(Some(name)),
        _ => (name.starts_with("java.util.") && name.ends_with("Map")).then_some(Some(name)),
    }
}

/// A map key from its JSON object key text, for a declared key type.
fn map_key(kt: &JavaType, key: &str, at: &str) -> Result<Value, GenericError> {
    match kt.name.as_str() {
        "java.lang.String" | "java.lang.Object" | "java.lang.CharSequence" if kt.dims == 0 => {
            Ok(Value::String(key.to_string()))
        }
        _ => {
            // A number, boolean or char key is written as text in JSON; read it back as JSON.
            let parsed = serde_json::from_str::<Json>(key)
                .ok()
                .filter(|j| !j.is_string() && !j.is_object() && !j.is_array())
                .unwrap_or_else(|| Json::String(key.to_string()));
            convert(kt, &parsed, &mut at.to_string())
        }
    }
}

fn binary(t: &JavaType, v: &Json, at: &str) -> Result<Value, GenericError> {
    let Json::Array(items) = v else {
        return Err(expected(t, at, "a JSON array of byte values", v));
    };
    let mut bytes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_i64().filter(|b| (-128..=255).contains(b)) {
            Some(b) => bytes.push(b as u8),
            None => {
                return Err(bad_value(
                    t,
                    &format!("{at}[{i}]"),
                    format!(
                        "expected a byte (-128..=255) for {t}, got {}",
                        describe(item)
                    ),
                ))
            }
        }
    }
    Ok(Value::Binary(bytes))
}

fn convert_items(
    elem: &JavaType,
    items: &[Json],
    at: &mut String,
) -> Result<Vec<Value>, GenericError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let len = at.len();
        at.push_str(&format!("[{i}]"));
        out.push(convert(elem, item, at)?);
        at.truncate(len);
    }
    Ok(out)
}

fn undeclared_items(items: &[Json], at: &mut String) -> Result<Vec<Value>, GenericError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let len = at.len();
        at.push_str(&format!("[{i}]"));
        out.push(undeclared(item, at)?);
        at.truncate(len);
    }
    Ok(out)
}

/// An object of class `declared`, or of the class its `"class"` key names.
fn object(
    declared: &str,
    fields: &serde_json::Map<String, Json>,
    at: &mut String,
) -> Result<Value, GenericError> {
    let class = match fields.get("class") {
        None => declared.to_string(),
        Some(Json::String(c)) if valid_class_name(c) => c.clone(),
        Some(other) => {
            return Err(GenericError::BadValue {
                java_type: declared.to_string(),
                at: format!("{at}.class"),
                problem: format!(
                    "expected a Java class name like \"org.example.User\", got {}",
                    describe(other)
                ),
            })
        }
    };
    let mut values = Vec::with_capacity(fields.len());
    for (k, val) in fields.iter().filter(|(k, _)| k.as_str() != "class") {
        let len = at.len();
        at.push('.');
        at.push_str(k);
        values.push((k.clone(), undeclared(val, at)?));
        at.truncate(len);
    }
    Ok(Value::Object(Object::new(class, values)))
}

/// A JSON value with no declared Java type (inside a map, an untyped list, an object field).
fn undeclared(v: &Json, at: &mut String) -> Result<Value, GenericError> {
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::String(s.clone()),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i32::try_from(i).map_or(Value::Long(i), Value::Int),
            (None, _) if n.is_u64() => {
                return Err(GenericError::BadValue {
                    java_type: "java.lang.Object".to_string(),
                    at: at.clone(),
                    problem: format!("{n} is out of range for long"),
                })
            }
            (None, Some(d)) => Value::Double(d),
            (None, None) => Value::Null,
        },
        Json::Array(items) => Value::List(List::untyped(undeclared_items(items, at)?)),
        Json::Object(fields) => match fields.get("class") {
            Some(_) => object("java.lang.Object", fields, at)?,
            None => {
                let mut entries = Vec::with_capacity(fields.len());
                for (k, val) in fields {
                    let len = at.len();
                    at.push('.');
                    at.push_str(k);
                    entries.push((Value::String(k.clone()), undeclared(val, at)?));
                    at.truncate(len);
                }
                Value::Map(Map::untyped(entries))
            }
        },
    })
}

/// Refs are expanded only this deep, so a chain of back-references cannot overflow the stack.
const MAX_REF_DEPTH: usize = 256;
/// Refs are expanded only until this many JSON values were produced, so shared values cannot
/// blow the output up exponentially; later refs print as `{"$ref": n}`.
const REF_EXPANSION_BUDGET: usize = 4_000_000;

/// The JSON form of a result, resolving `Value::Ref(n)` through `ref_table(roots)`: a ref to
/// a value being printed (a cycle) prints as `{"$ref": n}`, other refs print the value again.
pub fn hessian_to_json(v: &Value, roots: &[Value]) -> Json {
    let mut printer = Printer {
        table: ref_table(roots),
        ancestors: Vec::new(),
        budget: REF_EXPANSION_BUDGET,
    };
    printer.json(v)
}

struct Printer<'a> {
    table: Vec<&'a Value>,
    /// The containers being printed, outermost first, compared by address.
    ancestors: Vec<&'a Value>,
    budget: usize,
}

impl<'a> Printer<'a> {
    fn json(&mut self, v: &'a Value) -> Json {
        self.budget = self.budget.saturating_sub(1);
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Long(l) | Value::Date(l) => Json::from(*l),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(java_double_text(*d).to_string())),
            Value::String(s) => Json::String(s.clone()),
            Value::Binary(b) => Json::Array(b.iter().map(|&x| Json::from(x)).collect()),
            Value::List(l) => self.within(v, |p| {
                Json::Array(l.items.iter().map(|item| p.json(item)).collect())
            }),
            Value::Map(m) => self.within(v, |p| {
                let mut out = serde_json::Map::with_capacity(m.entries.len());
                for (k, val) in &m.entries {
                    let key = p.key_text(k);
                    let val = p.json(val);
                    out.insert(key, val);
                }
                Json::Object(out)
            }),
            Value::Object(o) => self.within(v, |p| {
                let mut out = serde_json::Map::with_capacity(o.values.len() + 1);
                out.insert("class".to_string(), Json::String(o.class.name.clone()));
                for (name, val) in o.class.fields.iter().zip(&o.values) {
                    let val = p.json(val);
                    out.insert(name.clone(), val);
                }
                Json::Object(out)
            }),
            Value::Ref(n) => {
                let target = self.table.get(*n as usize).copied();
                match target {
                    Some(t)
                        if self.budget > 0
                            && self.ancestors.len() < MAX_REF_DEPTH
                            && !self.ancestors.iter().any(|a| std::ptr::eq(*a, t)) =>
                    {
                        self.json(t)
                    }
                    _ => serde_json::json!({ "$ref": n }),
                }
            }
        }
    }

    fn within(&mut self, container: &'a Value, body: impl FnOnce(&mut Self) -> Json) -> Json {
        self.ancestors.push(container);
        let out = body(self);
        self.ancestors.pop();
        out
    }

    /// A map key as JSON object key text: strings as they are, anything else as its JSON.
    fn key_text(&mut self, k: &'a Value) -> String {
        match self.json(k) {
            Json::String(s) => s,
            other => other.to_string(),
        }
    }
}

fn java_double_text(d: f64) -> &'static str {
    if d.is_nan() {
        "NaN"
    } else if d > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_hessian(t: &str, j: Json) -> Value {
        json_to_hessian(t, &j).unwrap_or_else(|e| panic!("{t} {j}: {e}"))
    }

    fn to_json(v: &Value) -> Json {
        hessian_to_json(v, std::slice::from_ref(v))
    }

    #[test]
    fn primitive_and_class_names_become_jvm_descriptors() {
        for (t, d) in [
            ("int", "I"),
            ("long", "J"),
            ("boolean", "Z"),
            ("byte", "B"),
            ("short", "S"),
            ("char", "C"),
            ("float", "F"),
            ("double", "D"),
            ("void", "V"),
            ("java.lang.String", "Ljava/lang/String;"),
            ("String", "Ljava/lang/String;"),
            ("org.x.User", "Lorg/x/User;"),
            ("org.x.Outer$Inner", "Lorg/x/Outer$Inner;"),
        ] {
            assert_eq!(java_descriptor(t).unwrap(), d, "{t}");
        }
    }

    #[test]
    fn arrays_are_accepted_in_source_and_jvm_spelling() {
        for (t, d) in [
            ("int[]", "[I"),
            ("java.lang.String[]", "[Ljava/lang/String;"),
            ("long[][]", "[[J"),
            ("java.lang.String...", "[Ljava/lang/String;"),
            ("[I", "[I"),
            ("[[B", "[[B"),
            ("[Ljava.lang.String;", "[Ljava/lang/String;"),
            ("[Ljava/lang/String;", "[Ljava/lang/String;"),
        ] {
            assert_eq!(java_descriptor(t).unwrap(), d, "{t}");
        }
    }

    #[test]
    fn generics_are_erased() {
        assert_eq!(
            java_descriptor("java.util.List<java.lang.String>").unwrap(),
            "Ljava/util/List;"
        );
        assert_eq!(
            java_descriptor("java.util.Map<String, java.util.List<? extends org.x.User>>[]")
                .unwrap(),
            "[Ljava/util/Map;"
        );
    }

    #[test]
    fn malformed_type_names_are_refused_with_the_name() {
        for t in [
            "",
            "java..String",
            "1abc",
            "java.util.List<String",
            "[X",
            "void[]",
            "String... x",
        ] {
            let err = java_descriptor(t).unwrap_err();
            assert!(err.to_string().contains(&format!("`{t}`")), "{t}: {err}");
        }
    }

    #[test]
    fn type_lists_split_outside_generic_brackets() {
        assert_eq!(
            split_type_list("long, java.util.Map<java.lang.String,java.lang.Long>,int[]"),
            vec![
                "long",
                "java.util.Map<java.lang.String,java.lang.Long>",
                "int[]"
            ]
        );
        assert!(split_type_list("").is_empty());
    }

    #[test]
    fn long_beyond_2_pow_53_stays_exact() {
        let text = "[9007199254740993]";
        let args: Vec<Json> = serde_json::from_str(text).unwrap();
        let v = to_hessian("long", args[0].clone());
        assert_eq!(v, Value::Long(9_007_199_254_740_993));
        assert_eq!(to_json(&v).to_string(), "9007199254740993");
        assert_eq!(
            to_hessian("java.lang.Long", json!(i64::MIN)),
            Value::Long(i64::MIN)
        );
    }

    #[test]
    fn integer_types_are_range_checked_and_refuse_fractions() {
        assert_eq!(to_hessian("int", json!(-5)), Value::Int(-5));
        assert_eq!(to_hessian("short", json!(32767)), Value::Int(32767));
        assert_eq!(to_hessian("java.lang.Byte", json!(-128)), Value::Int(-128));
        let err = json_to_hessian("int", &json!(2_147_483_648_i64)).unwrap_err();
        assert!(err.to_string().contains("out of range for int"), "{err}");
        let err = json_to_hessian("byte", &json!(128)).unwrap_err();
        assert!(err.to_string().contains("out of range for byte"), "{err}");
        let err = json_to_hessian("long", &json!(1.5)).unwrap_err();
        assert!(err.to_string().contains("1.5"), "{err}");
        let err = json_to_hessian("long", &json!(u64::MAX)).unwrap_err();
        assert!(err.to_string().contains("out of range for long"), "{err}");
        let huge: Json = serde_json::from_str("99999999999999999999").unwrap();
        let err = json_to_hessian("long", &huge).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn null_is_refused_for_primitives_but_not_for_boxed_types() {
        let err = json_to_hessian("int", &Json::Null).unwrap_err();
        assert!(err.to_string().contains("primitive type int"), "{err}");
        assert_eq!(to_hessian("java.lang.Integer", Json::Null), Value::Null);
        assert_eq!(to_hessian("org.x.User", Json::Null), Value::Null);
    }

    #[test]
    fn floats_are_written_as_doubles_the_way_java_spells_them() {
        assert_eq!(to_hessian("double", json!(3.5)), Value::Double(3.5));
        assert_eq!(to_hessian("double", json!(2)), Value::Double(2.0));
        assert_eq!(to_hessian("float", json!(0.1)), Value::Double(0.1));
        assert_eq!(
            to_hessian("float", json!(0.123456789)),
            Value::Double(0.12345679)
        );
        assert!(json_to_hessian("float", &json!(1e300)).is_err());
    }

    #[test]
    fn chars_must_be_one_utf16_unit() {
        assert_eq!(to_hessian("char", json!("A")), Value::String("A".into()));
        let err = json_to_hessian("char", &json!("😀")).unwrap_err();
        assert!(err.to_string().contains("two UTF-16 units"), "{err}");
        assert!(json_to_hessian("char", &json!("AB")).is_err());
    }

    #[test]
    fn byte_arrays_become_binary_from_signed_or_unsigned_numbers() {
        assert_eq!(
            to_hessian("byte[]", json!([0, 1, -1, 255])),
            Value::Binary(vec![0, 1, 255, 255])
        );
        let err = json_to_hessian("byte[]", &json!([1, 256])).unwrap_err();
        assert!(err.to_string().starts_with("at [1]: "), "{err}");
    }

    #[test]
    fn arrays_are_typed_lists_as_hessian_lite_writes_them() {
        assert_eq!(
            to_hessian("java.lang.String[]", json!(["x", "y"])),
            Value::List(List::typed("[string", vec!["x".into(), "y".into()]))
        );
        assert_eq!(
            to_hessian("[I", json!([1, 2])),
            Value::List(List::typed("[int", vec![1.into(), 2.into()]))
        );
        assert_eq!(
            to_hessian("long[][]", json!([[1]])),
            Value::List(List::typed(
                "[[long",
                vec![Value::List(List::typed("[long", vec![Value::Long(1)]))]
            ))
        );
        assert_eq!(
            to_hessian("org.x.User[]", json!([{"id": 1}])),
            Value::List(List::typed(
                "[org.x.User",
                vec![Value::Object(Object::new(
                    "org.x.User",
                    vec![("id".into(), Value::Int(1))]
                ))]
            ))
        );
    }

    #[test]
    fn lists_are_untyped_like_an_array_list_and_sets_are_typed() {
        assert_eq!(
            to_hessian("java.util.List", json!([1, "a", 5_000_000_000_i64])),
            Value::List(List::untyped(vec![
                Value::Int(1),
                "a".into(),
                Value::Long(5_000_000_000)
            ]))
        );
        assert_eq!(
            to_hessian("java.util.List<java.lang.Long>", json!([1])),
            Value::List(List::untyped(vec![Value::Long(1)]))
        );
        assert_eq!(
            to_hessian("java.util.Set<String>", json!(["x"])),
            Value::List(List::typed("java.util.HashSet", vec!["x".into()]))
        );
        assert_eq!(
            to_hessian("java.util.LinkedList", json!([])),
            Value::List(List::typed("java.util.LinkedList", vec![]))
        );
    }

    #[test]
    fn maps_are_untyped_with_string_keys_and_nested_values_converted_without_a_type() {
        let v = to_hessian(
            "java.util.Map",
            json!({"k": "v", "n": 1, "l": [true], "m": {"x": null}}),
        );
        assert_eq!(
            v,
            Value::Map(Map::untyped(vec![
                ("k".into(), "v".into()),
                ("n".into(), Value::Int(1)),
                (
                    "l".into(),
                    Value::List(List::untyped(vec![Value::Bool(true)]))
                ),
                (
                    "m".into(),
                    Value::Map(Map::untyped(vec![("x".into(), Value::Null)]))
                ),
            ]))
        );
        assert_eq!(
            to_hessian("java.util.Map<java.lang.Long, long>", json!({"7": 8})),
            Value::Map(Map::untyped(vec![(Value::Long(7), Value::Long(8))]))
        );
        assert_eq!(
            to_hessian("java.util.TreeMap", json!({})),
            Value::Map(Map::typed("java.util.TreeMap", vec![]))
        );
    }

    #[test]
    fn object_with_class_key_becomes_typed_object() {
        let v = to_hessian(
            "java.lang.Object",
            json!({"class": "org.x.User", "name": "alice", "id": 1}),
        );
        assert_eq!(
            v,
            Value::Object(Object::new(
                "org.x.User",
                vec![
                    ("name".into(), "alice".into()),
                    ("id".into(), Value::Int(1))
                ]
            ))
        );
        // A subclass named by "class" wins over the declared type.
        let v = to_hessian("org.x.User", json!({"class": "org.x.Admin", "id": 1}));
        assert!(matches!(&v, Value::Object(o) if o.class.name == "org.x.Admin"));
    }

    #[test]
    fn object_without_class_key_takes_the_declared_class() {
        let v = to_hessian("org.x.User", json!({"id": 1, "tags": ["a"]}));
        assert_eq!(
            v,
            Value::Object(Object::new(
                "org.x.User",
                vec![
                    ("id".into(), Value::Int(1)),
                    ("tags".into(), Value::List(List::untyped(vec!["a".into()])))
                ]
            ))
        );
    }

    #[test]
    fn enum_constant_given_as_string_becomes_an_object_with_its_name() {
        assert_eq!(
            to_hessian("org.x.Color", json!("GREEN")),
            Value::Object(Object::new(
                "org.x.Color",
                vec![("name".into(), "GREEN".into())]
            ))
        );
    }

    #[test]
    fn dates_are_epoch_milliseconds_both_ways() {
        let v = to_hessian("java.util.Date", json!(1_577_836_800_123_i64));
        assert_eq!(v, Value::Date(1_577_836_800_123));
        assert_eq!(to_json(&v), json!(1_577_836_800_123_i64));
    }

    #[test]
    fn wrong_json_shape_names_the_argument_the_type_and_the_value() {
        let err = invocation(
            "save",
            &["long".into(), "java.util.List<java.lang.String>".into()],
            &[json!(1), json!(["a", 2])],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument 1 (java.util.List<java.lang.String>): at [1]: expected a string for java.lang.String, got 2"
        );
    }

    #[test]
    fn invocation_joins_descriptors_and_checks_the_argument_count() {
        let inv = invocation(
            "add",
            &["int".into(), "java.lang.String".into()],
            &[json!(1), json!("x")],
        )
        .unwrap();
        assert_eq!(&*inv.parameter_types, "ILjava/lang/String;");
        assert_eq!(inv.args, vec![Value::Int(1), "x".into()]);
        let err = invocation("add", &["int".into()], &[]).unwrap_err();
        assert!(
            matches!(
                err,
                GenericError::Count {
                    types: 1,
                    args: 0,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn types_are_inferred_from_json_values() {
        for (j, t) in [
            (json!("x"), "java.lang.String"),
            (json!(1), "int"),
            (json!(9_007_199_254_740_993_i64), "long"),
            (json!(1.5), "double"),
            (json!(true), "boolean"),
            (json!({"a": 1}), "java.util.Map"),
            (json!({"class": "org.x.User"}), "org.x.User"),
            (json!([1]), "java.util.List"),
        ] {
            assert_eq!(infer_java_type(&j), t, "{j}");
        }
    }

    #[test]
    fn non_bmp_text_round_trips() {
        let v = to_hessian("java.lang.String", json!("a😀b"));
        assert_eq!(to_json(&v), json!("a😀b"));
        assert_eq!(to_json(&v).to_string(), "\"a😀b\"");
    }

    #[test]
    fn objects_print_with_class_first_and_fields_in_wire_order() {
        let v = Value::Object(Object::new(
            "org.x.User",
            vec![
                ("tags".into(), Value::List(List::untyped(vec!["a".into()]))),
                ("name".into(), "alice".into()),
                ("id".into(), Value::Long(1)),
            ],
        ));
        assert_eq!(
            to_json(&v).to_string(),
            r#"{"class":"org.x.User","tags":["a"],"name":"alice","id":1}"#
        );
    }

    #[test]
    fn ref_to_shared_object_prints_the_object_again() {
        // [U, ref 1]: the list is ref 0, U is ref 1 (as java-hessian-lite ref_shared_in_list).
        let user = Value::Object(Object::new(
            "org.x.User",
            vec![("name".into(), "shared".into())],
        ));
        let list = Value::List(List::untyped(vec![user, Value::Ref(1)]));
        let shared = json!({"class": "org.x.User", "name": "shared"});
        assert_eq!(to_json(&list), json!([shared.clone(), shared]));
    }

    #[test]
    fn ref_to_an_ancestor_prints_as_a_ref_marker() {
        // An exception whose cause is itself, as Java writes "no cause".
        let e = Value::Object(Object::new(
            "java.lang.RuntimeException",
            vec![
                ("cause".into(), Value::Ref(0)),
                ("detailMessage".into(), "boom".into()),
            ],
        ));
        assert_eq!(
            to_json(&e),
            json!({"class": "java.lang.RuntimeException", "cause": {"$ref": 0}, "detailMessage": "boom"})
        );
    }

    #[test]
    fn maps_with_non_string_keys_print_the_keys_as_text() {
        let m = Value::Map(Map::untyped(vec![
            (Value::Int(16), "fie".into()),
            (Value::Long(1), "fee".into()),
            (Value::Bool(true), Value::Null),
        ]));
        assert_eq!(
            to_json(&m).to_string(),
            r#"{"16":"fie","1":"fee","true":null}"#
        );
    }

    #[test]
    fn binary_prints_as_numbers_and_special_doubles_as_java_text() {
        assert_eq!(to_json(&Value::Binary(vec![0, 255])), json!([0, 255]));
        assert_eq!(to_json(&Value::Double(f64::NAN)), json!("NaN"));
        assert_eq!(
            to_json(&Value::Double(f64::NEG_INFINITY)),
            json!("-Infinity")
        );
    }

    /// A file of the third-party golden vectors in `shared/vectors/hessian2`.
    fn vector(name: &str) -> Vec<u8> {
        let start = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = crate::testing::vectors_dir(start, "hessian2");
        std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn json_arguments_encode_to_the_bytes_hessian_lite_writes() {
        let cases = [
            (
                "java.lang.String[]",
                json!(["a", "b"]),
                "list_string_array.bin",
            ),
            ("int[]", json!([1, 2, 3]), "list_int_array.bin"),
            ("double[]", json!([1.5, 0.0]), "list_double_array.bin"),
            ("boolean[]", json!([true, false]), "list_boolean_array.bin"),
            (
                "java.lang.Object[]",
                json!([1, "x", null]),
                "list_object_array.bin",
            ),
            (
                "java.util.List",
                json!([1, 2, 3, 4, 5, 6, 7]),
                "list_arraylist_7.bin",
            ),
            ("java.util.Set", json!(["x"]), "list_hashset_1.bin"),
            (
                "java.util.LinkedList<Integer>",
                json!([1, 2]),
                "list_linkedlist_int.bin",
            ),
            ("java.util.Map", json!({"a": 1}), "map_hashmap_1.bin"),
            (
                "java.util.TreeMap",
                json!({"a": 1, "b": 2}),
                "map_treemap.bin",
            ),
            ("java.lang.Character", json!("A"), "char_A.bin"),
            ("java.lang.Short", json!(7), "short_7.bin"),
            ("java.lang.Float", json!(0.1), "float_0.1.bin"),
            (
                "java.util.Date",
                json!(1_577_836_800_123_i64),
                "date_2020_01_01_millis.bin",
            ),
            (
                "org.apache.dubbo.demo.Color",
                json!("GREEN"),
                "enum_green.bin",
            ),
            (
                "byte[]",
                json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
                "binary_len15.bin",
            ),
            ("java.lang.String", json!("😀"), "string_emoji.bin"),
        ];
        for (t, j, file) in cases {
            let mut out = bytes::BytesMut::new();
            crate::protocol::hessian2::Encoder::new(&mut out).write_value(&to_hessian(t, j));
            assert_eq!(
                &out[..],
                &vector(&format!("java-hessian-lite-4.0.3/{file}"))[..],
                "{t} → {file}"
            );
        }
    }

    fn decoded_json(file: &str) -> Json {
        let bytes = vector(&format!("java-hessian-lite-4.0.3/{file}"));
        let v = crate::protocol::hessian2::Decoder::new(&bytes)
            .read_value()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        to_json(&v)
    }

    #[test]
    fn java_written_values_print_as_generic_json() {
        let shared =
            json!({"class": "org.apache.dubbo.demo.User", "tags": null, "name": "shared", "id": 7});
        assert_eq!(
            decoded_json("ref_shared_in_list.bin"),
            json!([shared.clone(), shared])
        );
        assert_eq!(
            decoded_json("object_two_users_in_list.bin").to_string(),
            r#"[{"class":"org.apache.dubbo.demo.User","tags":["a"],"name":"alice","id":1},{"class":"org.apache.dubbo.demo.User","tags":[],"name":"bob","id":2}]"#
        );
        let e = decoded_json("exception_runtime.bin");
        assert_eq!(e["cause"], json!({"$ref": 0}));
        assert_eq!(e["detailMessage"], json!("boom"));
        assert_eq!(
            decoded_json("map_hashmap_int_keys.bin").to_string(),
            r#"{"16":"fie","256":"foe","1":"fee"}"#
        );
    }

    #[test]
    fn a_chain_of_shared_refs_cannot_blow_up_the_output() {
        // Each list holds its predecessor twice: fully expanded this would be 2^40 values.
        let mut lists = vec![Value::List(List::untyped(vec![]))];
        for i in 1..=40u32 {
            lists.push(Value::List(List::untyped(vec![
                Value::Ref(i), // the previous list: ref 0 is the root list below
                Value::Ref(i),
            ])));
        }
        let root = Value::List(List::untyped(lists));
        let out = to_json(&root).to_string();
        assert!(out.contains("$ref"), "expansion stopped somewhere");
    }
}
