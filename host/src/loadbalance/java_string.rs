//! How Java's `String.valueOf` prints an argument, for `consistenthash` keys: a Java consumer
//! and this host then send the same argument to the same provider.
//!
//! Exact for strings, ints, longs, booleans, null, enums (Hessian sends them as an object whose
//! only field is `name`; Java prints the name) and doubles (shortest round-trip digits, as
//! JDK 19+ prints them). A Java `float` arrives as a double and prints with double digits.
//! Lists print as `[a, b]` and maps as `{k=v}` like Java collections, but map entries keep wire
//! order where a `HashMap` would print in hash order. The rest cannot match Java because Java's
//! own form is not reproducible (time-zone dependent or an identity hash): dates print as epoch
//! milliseconds, byte arrays as lowercase hex, other objects as `Class{field=value, ...}` and
//! back-references as `@n`.

use std::fmt::{self, Write};

use crate::hessian2::Value;

/// Writes `value` as Java's `String.valueOf` would print it (see the module doc for the limits).
pub(crate) fn write_java_string<W: Write>(out: &mut W, value: &Value) -> fmt::Result {
    match value {
        Value::Null => out.write_str("null"),
        Value::Bool(b) => write!(out, "{b}"),
        Value::Int(i) => write!(out, "{i}"),
        Value::Long(l) => write!(out, "{l}"),
        Value::Double(d) => write_java_double(out, *d),
        Value::Date(ms) => write!(out, "{ms}"),
        Value::String(s) => out.write_str(s),
        Value::Binary(bytes) => bytes.iter().try_for_each(|b| write!(out, "{b:02x}")),
        Value::List(list) => {
            out.write_char('[')?;
            for (i, item) in list.items.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_java_string(out, item)?;
            }
            out.write_char(']')
        }
        Value::Map(map) => {
            out.write_char('{')?;
            for (i, (k, v)) in map.entries.iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write_java_string(out, k)?;
                out.write_char('=')?;
                write_java_string(out, v)?;
            }
            out.write_char('}')
        }
        Value::Object(obj) => match (obj.class.fields.as_slice(), obj.values.as_slice()) {
            ([field], [Value::String(name)]) if field == "name" => out.write_str(name),
            _ => {
                write!(out, "{}{{", obj.class.name)?;
                for (i, (field, v)) in obj.class.fields.iter().zip(&obj.values).enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    write!(out, "{field}=")?;
                    write_java_string(out, v)?;
                }
                out.write_char('}')
            }
        },
        Value::Ref(n) => write!(out, "@{n}"),
    }
}

/// Java's `Double.toString`: plain digits with at least one decimal for 10^-3 <= |d| < 10^7,
/// otherwise `d.dddE±n`.
fn write_java_double<W: Write>(out: &mut W, d: f64) -> fmt::Result {
    if d.is_nan() {
        return out.write_str("NaN");
    }
    if d.is_infinite() {
        return out.write_str(if d > 0.0 { "Infinity" } else { "-Infinity" });
    }
    let magnitude = d.abs();
    if d == 0.0 || (1e-3..1e7).contains(&magnitude) {
        // Rust's `{}` is also the shortest round-trip form; it only omits a trailing `.0`.
        let plain = format!("{d:?}");
        out.write_str(&plain)?;
        if !plain.contains('.') {
            out.write_str(".0")?;
        }
        return Ok(());
    }
    let scientific = format!("{d:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    out.write_str(mantissa)?;
    if !mantissa.contains('.') {
        out.write_str(".0")?;
    }
    write!(out, "E{exponent}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::hessian2::{ClassDef, List, Object};

    fn java(v: &Value) -> String {
        let mut s = String::new();
        write_java_string(&mut s, v).expect("writing to a String cannot fail");
        s
    }

    #[test]
    fn scalars_print_as_java_prints_them() {
        assert_eq!(java(&Value::Null), "null");
        assert_eq!(java(&Value::Bool(true)), "true");
        assert_eq!(java(&Value::Int(-42)), "-42");
        assert_eq!(java(&Value::Long(9_000_000_000)), "9000000000");
        assert_eq!(java(&"héllo".into()), "héllo");
        assert_eq!(java(&Value::Double(1.0)), "1.0");
        assert_eq!(java(&Value::Double(-0.0)), "-0.0");
        assert_eq!(java(&Value::Double(0.1)), "0.1");
        assert_eq!(java(&Value::Double(1234567.5)), "1234567.5");
        assert_eq!(java(&Value::Double(1e7)), "1.0E7");
        assert_eq!(java(&Value::Double(1.5e-5)), "1.5E-5");
        assert_eq!(java(&Value::Double(f64::NEG_INFINITY)), "-Infinity");
    }

    #[test]
    fn enums_print_their_name_and_lists_print_like_collections() {
        let class = Arc::new(ClassDef {
            name: "com.example.Color".into(),
            fields: vec!["name".into()],
        });
        let red = Value::Object(Object {
            class,
            values: vec!["RED".into()],
        });
        assert_eq!(java(&red), "RED");
        let list = Value::List(List {
            type_name: None,
            items: vec![Value::Int(1), "a".into(), Value::Null],
            fixed_length: true,
        });
        assert_eq!(java(&list), "[1, a, null]");
    }
}
