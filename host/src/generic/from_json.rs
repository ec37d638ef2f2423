//! JSON arguments to the Hessian2 values hessian-lite writes for their declared Java types.

use serde_json::Value as Json;

use super::GenericError;
use crate::hessian2::{List, Map, Object, Value};
use crate::java::{collection_type, map_type, valid_class_name, TypeName};

/// Converts a JSON argument to the Hessian2 value hessian-lite writes for `java_type`.
pub fn json_to_hessian(java_type: &str, v: &Json) -> Result<Value, GenericError> {
    convert(&TypeName::parse(java_type)?, v, &mut String::new())
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

fn bad_value(t: &TypeName, at: &str, problem: String) -> GenericError {
    GenericError::BadValue {
        java_type: t.to_string(),
        at: at.to_string(),
        problem,
    }
}

fn expected(t: &TypeName, at: &str, what: &str, v: &Json) -> GenericError {
    bad_value(
        t,
        at,
        format!("expected {what} for {t}, got {}", describe(v)),
    )
}

/// A whole JSON number in `[min, max]`.
fn whole(t: &TypeName, at: &str, v: &Json, min: i64, max: i64) -> Result<i64, GenericError> {
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

pub(super) fn convert(t: &TypeName, v: &Json, at: &mut String) -> Result<Value, GenericError> {
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

/// A map key from its JSON object key text, for a declared key type.
fn map_key(kt: &TypeName, key: &str, at: &str) -> Result<Value, GenericError> {
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

fn binary(t: &TypeName, v: &Json, at: &str) -> Result<Value, GenericError> {
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
    elem: &TypeName,
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
