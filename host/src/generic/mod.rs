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

mod from_json;
mod to_json;

use serde_json::Value as Json;

use crate::java::{TypeName, TypeNameError};
use crate::rpc::Invocation;

use from_json::convert;
pub use from_json::json_to_hessian;
pub use to_json::{hessian_to_json, hessian_to_json_text, write_hessian_json, JsonError};

/// Why a Java type name or a JSON argument could not be turned into a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenericError {
    /// The text is not a Java type name.
    #[error(transparent)]
    BadType(#[from] TypeNameError),
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

/// Dubbo's echo method (`EchoService.$echo(Object)`), which every provider answers.
pub const ECHO: &str = "$echo";

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
        let parsed = TypeName::parse(t).map_err(|e| wrap(e.into()))?;
        if parsed.name == "void" {
            return Err(wrap(GenericError::BadType(TypeNameError {
                java_type: t.clone(),
                problem: "void is not a parameter type".to_string(),
            })));
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

#[cfg(test)]
mod tests;
