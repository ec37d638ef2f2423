//! Mock degradation around the cluster, as Dubbo's `MockClusterInvoker` and `MockInvoker` do
//! it: `mock=force:return VALUE` answers without calling a provider, `mock=fail:return VALUE`
//! (or `return VALUE`) answers when the cluster call fails with anything but a business
//! exception, and `throw [class]` fails instead of answering. The `mock` setting is read per
//! method (`sayHello.mock`, then `mock`) from the consumer URL with the configurators applied,
//! so Dubbo Admin's mock switch (`override://0.0.0.0/{interface}?mock=force:return+null`)
//! turns it on and off at run time.
//!
//! VALUE is read as Dubbo's `parseMockValue` reads it (`empty`, `null`, `true`/`false`, a
//! quoted string, digits, a JSON object or array, else the text itself) and realized into the
//! method's declared type by the caller's binding, exactly as a provider's reply would be.
//! Java mock classes (`mock=true`, `default`, a class name) cannot run here and are refused.

use crate::rpc::{RpcError, RpcResult};
use crate::url::Url;

/// The message of a mocked exception, as Dubbo's.
const MOCKED: &str = "mocked exception for service degradation.";

/// When a mock answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mock {
    /// Instead of calling a provider.
    Force(MockAction),
    /// When the call fails with anything but a business exception.
    Fail(MockAction),
}

/// What a mock answers.
#[derive(Debug, Clone, PartialEq)]
pub enum MockAction {
    Return(MockValue),
    /// A business exception of this class, or (`None`) a plain rpc error.
    Throw(Option<String>),
}

/// A mock's return value before the method's declared type realizes it.
#[derive(Debug, Clone, PartialEq)]
pub enum MockValue {
    /// The declared type's empty value (`""`, 0, false, an empty list, a record of empties).
    Empty,
    Null,
    Bool(bool),
    /// Digits only, as Dubbo's `isNumeric` reads them; the type says which number.
    Number(String),
    /// Text: quoted in the mock, or any other word (`1.5` and `RED` are text that the type
    /// converts).
    Text(String),
    /// A JSON object or array.
    Json(serde_json::Value),
}

/// Why a `mock` setting cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MockError {
    #[error("mock `{0}` names a Java mock class, which cannot run in this host; use `return VALUE` (e.g. `force:return null`) or `throw CLASS`")]
    JavaClass(String),
    #[error("mock `{value}`: {problem}")]
    Invalid { value: String, problem: String },
}

/// How a declared return type turns a mock value into the value a provider would have sent;
/// the typed guest binding gives one per function. Without one (generic calls), values keep
/// the shape they were written in.
pub trait Realize: Send + Sync {
    fn realize(&self, value: &MockValue) -> Result<crate::hessian2::Value, String>;
}

/// Whether the `mock` value says nothing (Dubbo's `ConfigUtils.isEmpty`).
fn is_off(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || ["false", "0", "null", "N/A"]
            .iter()
            .any(|off| v.eq_ignore_ascii_case(off))
}

impl Mock {
    /// The mock of `method` on `url` (`{method}.mock`, then `mock`); `Ok(None)` when off.
    pub fn of(url: &Url, method: &str) -> Result<Option<Mock>, MockError> {
        match url.method_param(method, "mock") {
            Some(v) if !is_off(v) => Mock::parse(v).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a configured `mock` value (`None` when it is off, e.g. `false`).
    pub fn of_text(value: &str) -> Result<Option<Mock>, MockError> {
        if is_off(value) {
            return Ok(None);
        }
        Mock::parse(value).map(Some)
    }

    /// Reads a `mock` setting as Dubbo normalizes it: `force...` is force mode, anything else
    /// fail mode; then `fail:` and `force:` are dropped, `return` alone is `return null`,
    /// backticks stand for double quotes.
    pub fn parse(raw: &str) -> Result<Mock, MockError> {
        let raw = raw.trim();
        let force = raw.starts_with("force");
        let mut v = raw;
        if v.eq_ignore_ascii_case("return") {
            v = "return null";
        }
        if ["true", "default", "fail", "force"]
            .iter()
            .any(|d| v.eq_ignore_ascii_case(d))
        {
            return Err(MockError::JavaClass(raw.to_string()));
        }
        if let Some(rest) = v.strip_prefix("fail:") {
            v = rest.trim();
        }
        if let Some(rest) = v.strip_prefix("force:") {
            v = rest.trim();
        }
        let action = if let Some(rest) = v.strip_prefix("return ") {
            MockAction::Return(MockValue::parse(&rest.replace('`', "\"")))
        } else if v == "return" {
            MockAction::Return(MockValue::Null)
        } else if let Some(rest) = v.strip_prefix("throw") {
            let class = rest.trim().replace('`', "\"");
            MockAction::Throw((!class.is_empty()).then_some(class))
        } else {
            return Err(MockError::JavaClass(raw.to_string()));
        };
        Ok(if force {
            Mock::Force(action)
        } else {
            Mock::Fail(action)
        })
    }

    /// Whether the mock answers a call that failed with `e` (fail mode: anything but a
    /// business exception, which is the provider's own answer).
    pub fn answers(&self, e: &RpcError) -> bool {
        matches!(self, Mock::Fail(_)) && !matches!(e, RpcError::BizException { .. })
    }

    /// The mock's answer, its value realized by `returns` (or kept as written).
    pub fn answer(&self, returns: Option<&dyn Realize>) -> Result<RpcResult, RpcError> {
        let (Mock::Force(action) | Mock::Fail(action)) = self;
        match action {
            MockAction::Throw(Some(class)) => Err(RpcError::BizException {
                class_name: class.clone(),
                message: MOCKED.to_string(),
            }),
            MockAction::Throw(None) => Err(RpcError::Other(MOCKED.to_string())),
            MockAction::Return(value) => {
                let value = match returns {
                    Some(r) => r.realize(value),
                    None => Ok(value.untyped()),
                }
                .map_err(|e| RpcError::Other(format!("mock return invoke error: {e}")))?;
                Ok(RpcResult {
                    value,
                    attachments: Vec::new(),
                })
            }
        }
    }
}

impl MockValue {
    /// Dubbo's `parseMockValue` without a declared type.
    pub fn parse(text: &str) -> MockValue {
        let t = text.trim();
        match t {
            "empty" => return MockValue::Empty,
            "null" => return MockValue::Null,
            "true" => return MockValue::Bool(true),
            "false" => return MockValue::Bool(false),
            _ => {}
        }
        let quoted = t.len() >= 2
            && ((t.starts_with('"') && t.ends_with('"'))
                || (t.starts_with('\'') && t.ends_with('\'')));
        if quoted {
            return MockValue::Text(t[1..t.len() - 1].to_string());
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return MockValue::Number(t.to_string());
        }
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(json) = serde_json::from_str(t) {
                return MockValue::Json(json);
            }
        }
        MockValue::Text(t.to_string())
    }

    /// The value as written, with no declared type: text stays text, digits become a long,
    /// JSON objects maps and arrays lists.
    pub fn untyped(&self) -> crate::hessian2::Value {
        use crate::hessian2::Value;
        match self {
            MockValue::Empty | MockValue::Null => Value::Null,
            MockValue::Bool(b) => Value::Bool(*b),
            MockValue::Number(n) => n
                .parse()
                .map_or_else(|_| Value::String(n.clone()), Value::Long),
            MockValue::Text(t) => Value::String(t.clone()),
            MockValue::Json(j) => json_untyped(j),
        }
    }
}

fn json_untyped(j: &serde_json::Value) -> crate::hessian2::Value {
    use crate::hessian2::{List, Map, Value};
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Long(i),
            None => Value::Double(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => {
            Value::List(List::untyped(a.iter().map(json_untyped).collect()))
        }
        serde_json::Value::Object(o) => Value::Map(Map::untyped(
            o.iter()
                .map(|(k, v)| (Value::String(k.clone()), json_untyped(v)))
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(v: MockValue) -> MockAction {
        MockAction::Return(v)
    }

    #[test]
    fn modes_and_prefixes_normalize_as_dubbo_does() {
        assert_eq!(
            Mock::parse("force:return null"),
            Ok(Mock::Force(ret(MockValue::Null)))
        );
        assert_eq!(
            Mock::parse("fail:return 1"),
            Ok(Mock::Fail(ret(MockValue::Number("1".into()))))
        );
        assert_eq!(
            Mock::parse("return hi"),
            Ok(Mock::Fail(ret(MockValue::Text("hi".into()))))
        );
        assert_eq!(Mock::parse("return"), Ok(Mock::Fail(ret(MockValue::Null))));
        assert_eq!(
            Mock::parse("force:return"),
            Ok(Mock::Force(ret(MockValue::Null)))
        );
        assert_eq!(
            Mock::parse("force:throw"),
            Ok(Mock::Force(MockAction::Throw(None)))
        );
        assert_eq!(
            Mock::parse("fail:throw org.x.DegradedException"),
            Ok(Mock::Fail(MockAction::Throw(Some(
                "org.x.DegradedException".into()
            ))))
        );
        assert_eq!(
            Mock::parse("return `x`"),
            Ok(Mock::Fail(ret(MockValue::Text("x".into()))))
        );
        for java in [
            "true",
            "default",
            "force",
            "fail",
            "org.x.DemoServiceMock",
            "force:org.x.M",
        ] {
            assert!(
                matches!(Mock::parse(java), Err(MockError::JavaClass(_))),
                "{java}"
            );
        }
    }

    #[test]
    fn values_parse_in_dubbos_order() {
        for (text, want) in [
            ("empty", MockValue::Empty),
            ("null", MockValue::Null),
            ("true", MockValue::Bool(true)),
            ("false", MockValue::Bool(false)),
            ("\"a b\"", MockValue::Text("a b".into())),
            ("'q'", MockValue::Text("q".into())),
            ("42", MockValue::Number("42".into())),
            ("-1", MockValue::Text("-1".into())),
            ("1.5", MockValue::Text("1.5".into())),
            ("{\"id\": 7}", MockValue::Json(serde_json::json!({"id": 7}))),
            ("[1, 2]", MockValue::Json(serde_json::json!([1, 2]))),
            ("{broken", MockValue::Text("{broken".into())),
            ("RED", MockValue::Text("RED".into())),
        ] {
            assert_eq!(MockValue::parse(text), want, "{text}");
        }
    }

    #[test]
    fn fail_mode_answers_everything_but_business_exceptions_and_force_never_calls() {
        let fail = Mock::parse("fail:return null").expect("valid");
        for e in [
            RpcError::Timeout("t".into()),
            RpcError::NoProvider("n".into()),
            RpcError::Network("n".into()),
            RpcError::LimitExceeded("l".into()),
            RpcError::Forbidden("f".into()),
        ] {
            assert!(fail.answers(&e), "{e}");
        }
        assert!(!fail.answers(&RpcError::BizException {
            class_name: "x".into(),
            message: "m".into()
        }));
        let force = Mock::parse("force:return null").expect("valid");
        assert!(
            !force.answers(&RpcError::Timeout("t".into())),
            "force answers before any call"
        );
    }

    #[test]
    fn per_method_mock_wins_and_off_values_mean_no_mock() {
        let url =
            Url::parse("consumer://h/I?mock=force:return+1&sayHi.mock=false&sayBye.mock=return+2")
                .expect("valid");
        assert_eq!(
            Mock::of(&url, "sayHello"),
            Ok(Some(Mock::Force(ret(MockValue::Number("1".into())))))
        );
        assert_eq!(Mock::of(&url, "sayHi"), Ok(None));
        assert_eq!(
            Mock::of(&url, "sayBye"),
            Ok(Some(Mock::Fail(ret(MockValue::Number("2".into())))))
        );
        assert_eq!(
            Mock::of(&Url::parse("consumer://h/I").expect("valid"), "m"),
            Ok(None)
        );
    }

    #[test]
    fn throw_answers_a_business_exception_of_the_class_or_a_plain_error() {
        let biz = Mock::parse("force:throw org.x.Degraded")
            .expect("valid")
            .answer(None);
        assert_eq!(
            biz,
            Err(RpcError::BizException {
                class_name: "org.x.Degraded".into(),
                message: MOCKED.into()
            })
        );
        let plain = Mock::parse("force:throw").expect("valid").answer(None);
        assert_eq!(plain, Err(RpcError::Other(MOCKED.into())));
    }
}
