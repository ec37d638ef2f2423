//! Hessian2 results to generic JSON: objects carry their Java `class` first, back-references
//! resolve (a cycle prints as `{"$ref": n}`), and output is bounded however refs are shared.

use serde_json::Value as Json;

use crate::hessian2::{ref_table, Value};

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
