//! A mock's return value made into the value a provider would have sent for the function's
//! declared type (Dubbo's `PojoUtils.realize` after `parseMockValue`), so that a mocked
//! answer reaches the guest through the same conversion as a real reply: `empty` is the type's
//! empty value, digits and text become the declared number, boolean, char, enum or string,
//! JSON objects become records and JSON arrays lists.

use std::sync::Arc;

use serde_json::Value as Json;

use super::mapping::Mapping;
use crate::cluster::mock::{MockValue, Realize};
use crate::hessian2::{List, Map, Object, Value};

/// The declared result of one function: `None` for a void method.
pub struct Returns(pub Option<Mapping>);

impl Realize for Returns {
    fn realize(&self, value: &MockValue) -> Result<Value, String> {
        match &self.0 {
            None => Ok(Value::Null),
            Some(m) => m.realize(value),
        }
    }
}

impl Mapping {
    /// The value a provider would have sent for `value` as this type.
    pub fn realize(&self, value: &MockValue) -> Result<Value, String> {
        match value {
            MockValue::Empty => Ok(self.empty()),
            MockValue::Null => Ok(Value::Null),
            MockValue::Bool(b) => self.realize_json(&Json::Bool(*b)),
            MockValue::Number(n) | MockValue::Text(n) => self.realize_text(n),
            MockValue::Json(j) => self.realize_json(j),
        }
    }

    /// Java's `ReflectUtils.getEmptyObject`: `""`, zero, false, an empty list, a record of
    /// empty fields; null for an enum.
    fn empty(&self) -> Value {
        match self {
            Mapping::String => Value::String(String::new()),
            Mapping::Boolean => Value::Bool(false),
            Mapping::Byte | Mapping::Short | Mapping::Int => Value::Int(0),
            Mapping::Long => Value::Long(0),
            Mapping::Float | Mapping::Double => Value::Double(0.0),
            Mapping::Char => Value::String("\0".to_string()),
            Mapping::Bytes => Value::Binary(Vec::new()),
            Mapping::Nullable(inner) => inner.empty(),
            Mapping::List(_) => Value::List(List::untyped(Vec::new())),
            Mapping::Map(..) => Value::Map(Map::untyped(Vec::new())),
            Mapping::Record(r) => Value::Object(Object {
                class: r.class.clone(),
                values: r.types.iter().map(Mapping::empty).collect(),
            }),
            Mapping::Enum(_) => Value::Null,
        }
    }

    /// A mock's unquoted word or digits as this type.
    fn realize_text(&self, text: &str) -> Result<Value, String> {
        let number = |what: &str| format!("`{text}` is not {what}");
        Ok(match self {
            Mapping::String => Value::String(text.to_string()),
            Mapping::Boolean => Value::Bool(text.parse().map_err(|_| number("a boolean"))?),
            Mapping::Byte => {
                Value::Int(i32::from(text.parse::<i8>().map_err(|_| number("a byte"))?))
            }
            Mapping::Short => Value::Int(i32::from(
                text.parse::<i16>().map_err(|_| number("a short"))?,
            )),
            Mapping::Int => Value::Int(text.parse().map_err(|_| number("an int"))?),
            Mapping::Long => Value::Long(text.parse().map_err(|_| number("a long"))?),
            Mapping::Float | Mapping::Double => {
                Value::Double(text.parse().map_err(|_| number("a number"))?)
            }
            Mapping::Char if text.chars().count() == 1 => Value::String(text.to_string()),
            Mapping::Nullable(inner) => inner.realize_text(text)?,
            Mapping::Enum(e) => Value::Object(Object::new(
                e.class.as_str(),
                vec![("name".to_string(), Value::String(text.to_string()))],
            )),
            other => {
                return Err(format!(
                    "`{text}` is not a value of {}",
                    super::mapping::describe(other)
                ))
            }
        })
    }

    /// A JSON mock value as this type: objects become records (by Java field name) or maps
    /// (keys read as the key type, in the object's order), arrays lists (or, for a map, a list
    /// of `[key, value]` pairs).
    fn realize_json(&self, j: &Json) -> Result<Value, String> {
        Ok(match (self, j) {
            (_, Json::Null) => Value::Null,
            (Mapping::Nullable(inner), _) => inner.realize_json(j)?,
            (Mapping::Boolean, Json::Bool(b)) => Value::Bool(*b),
            (_, Json::Bool(b)) => self.realize_text(&b.to_string())?,
            (_, Json::Number(n)) => self.realize_text(&n.to_string())?,
            (_, Json::String(s)) => self.realize_text(s)?,
            (Mapping::List(inner), Json::Array(items)) => Value::List(List::untyped(
                items
                    .iter()
                    .map(|i| inner.realize_json(i))
                    .collect::<Result<_, _>>()?,
            )),
            (Mapping::Map(k, v), Json::Object(entries)) => Value::Map(Map::untyped(
                entries
                    .iter()
                    .map(|(key, value)| {
                        Ok((
                            k.realize_text(key).map_err(|e| format!("key {key}: {e}"))?,
                            v.realize_json(value).map_err(|e| format!("{key}: {e}"))?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            )),
            (Mapping::Map(k, v), Json::Array(pairs)) => Value::Map(Map::untyped(
                pairs
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([key, value]) => Ok((k.realize_json(key)?, v.realize_json(value)?)),
                        _ => Err(format!("{pair} is not a [key, value] pair")),
                    })
                    .collect::<Result<_, String>>()?,
            )),
            (Mapping::Bytes, Json::Array(items)) => Value::Binary(
                items
                    .iter()
                    .map(|i| {
                        i.as_i64()
                            .and_then(|b| {
                                u8::try_from(b)
                                    .ok()
                                    .or_else(|| i8::try_from(b).ok().map(|s| s as u8))
                            })
                            .ok_or_else(|| format!("{i} is not a byte"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Mapping::Record(r), Json::Object(fields)) => Value::Object(Object {
                class: Arc::clone(&r.class),
                values: r
                    .class
                    .fields
                    .iter()
                    .zip(&r.types)
                    .map(|(java, t)| match fields.get(java) {
                        Some(v) => t.realize_json(v).map_err(|e| format!("{java}: {e}")),
                        None => Ok(t.empty_or_null()),
                    })
                    .collect::<Result<_, _>>()?,
            }),
            (other, _) => {
                return Err(format!(
                    "{j} is not a value of {}",
                    super::mapping::describe(other)
                ))
            }
        })
    }

    /// What a record field missing from a JSON mock value holds: null for nullable fields,
    /// the empty value otherwise.
    fn empty_or_null(&self) -> Value {
        match self {
            Mapping::Nullable(_) => Value::Null,
            other => other.empty(),
        }
    }
}
