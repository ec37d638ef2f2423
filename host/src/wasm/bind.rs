//! Dynamic binding of a guest's imports: every non-WASI interface the guest imports is matched
//! to a configured reference by its `wit` name, and each of its functions is defined with
//! Wasmtime's dynamic component API. The per-function plan (Java method name, JVM descriptor,
//! value conversions) is built once at load; a call only converts values and invokes.

use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, Type, Val};
use wasmtime::Engine;

use super::host::HostState;
use crate::protocol::hessian2::Value;
use crate::reference::{Reference, References};
use crate::rpc::{Invocation, RpcError};

/// The WIT package of the host's own interfaces.
const HOST_PACKAGE: &str = "dubbo:host/";

/// The cases of `dubbo:host/types.rpc-error`, which every Dubbo function's error must be.
const RPC_ERROR_CASES: [&str; 8] = [
    "timeout",
    "no-provider",
    "network",
    "biz-exception",
    "forbidden",
    "serialization",
    "limit-exceeded",
    "other",
];

/// The Java side of one WIT value type.
#[derive(Debug, Clone, PartialEq)]
pub enum JavaType {
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
    Nullable(Box<JavaType>),
}

impl JavaType {
    /// Maps a WIT type, or says why it cannot be mapped yet.
    pub fn from_wit(ty: &Type) -> Result<JavaType, String> {
        Ok(match ty {
            Type::String => JavaType::String,
            Type::Bool => JavaType::Boolean,
            Type::S8 => JavaType::Byte,
            Type::S16 => JavaType::Short,
            Type::S32 => JavaType::Int,
            Type::S64 => JavaType::Long,
            Type::Float32 => JavaType::Float,
            Type::Float64 => JavaType::Double,
            Type::Char => JavaType::Char,
            Type::List(l) if l.ty() == Type::U8 => JavaType::Bytes,
            Type::Option(o) => match JavaType::from_wit(&o.ty())? {
                JavaType::Nullable(_) => return Err("option<option<..>> has no Java type".into()),
                inner => JavaType::Nullable(Box::new(inner)),
            },
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
                return Err("unsigned integers have no Java type: use s8/s16/s32/s64".into())
            }
            other => {
                return Err(format!(
                    "{} is not supported yet: use string, bool, s8..s64, f32, f64, char, list<u8> or option<..> of them",
                    wit_type_name(other)
                ))
            }
        })
    }

    /// The JVM descriptor (`Ljava/lang/String;`, `I`, `[B`, ...).
    pub fn descriptor(&self) -> &'static str {
        match self {
            JavaType::String => "Ljava/lang/String;",
            JavaType::Boolean => "Z",
            JavaType::Byte => "B",
            JavaType::Short => "S",
            JavaType::Int => "I",
            JavaType::Long => "J",
            JavaType::Float => "F",
            JavaType::Double => "D",
            JavaType::Char => "C",
            JavaType::Bytes => "[B",
            JavaType::Nullable(inner) => match **inner {
                JavaType::Boolean => "Ljava/lang/Boolean;",
                JavaType::Byte => "Ljava/lang/Byte;",
                JavaType::Short => "Ljava/lang/Short;",
                JavaType::Int => "Ljava/lang/Integer;",
                JavaType::Long => "Ljava/lang/Long;",
                JavaType::Float => "Ljava/lang/Float;",
                JavaType::Double => "Ljava/lang/Double;",
                JavaType::Char => "Ljava/lang/Character;",
                ref other => other.descriptor(),
            },
        }
    }

    /// Converts a guest value to Hessian, as Java would serialize the same argument.
    pub fn to_hessian(&self, v: &Val) -> Result<Value, String> {
        Ok(match (self, v) {
            (JavaType::String, Val::String(s)) => Value::String(s.clone()),
            (JavaType::Boolean, Val::Bool(b)) => Value::Bool(*b),
            (JavaType::Byte, Val::S8(i)) => Value::Int(i32::from(*i)),
            (JavaType::Short, Val::S16(i)) => Value::Int(i32::from(*i)),
            (JavaType::Int, Val::S32(i)) => Value::Int(*i),
            (JavaType::Long, Val::S64(i)) => Value::Long(*i),
            (JavaType::Float, Val::Float32(f)) => Value::Double(f64::from(*f)),
            (JavaType::Double, Val::Float64(f)) => Value::Double(*f),
            (JavaType::Char, Val::Char(c)) => Value::String(c.to_string()),
            (JavaType::Bytes, Val::List(items)) => Value::Binary(
                items
                    .iter()
                    .map(|i| match i {
                        Val::U8(b) => Ok(*b),
                        other => Err(format!("expected u8 in list<u8>, got {other:?}")),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (JavaType::Nullable(_), Val::Option(None)) => Value::Null,
            (JavaType::Nullable(inner), Val::Option(Some(v))) => inner.to_hessian(v)?,
            (t, v) => return Err(format!("cannot pass {v:?} as Java {t:?}")),
        })
    }

    /// Converts a decoded Hessian value to the guest's type, refusing what does not fit.
    pub fn to_wit(&self, v: &Value) -> Result<Val, String> {
        let int = |v: &Value| match v {
            Value::Int(i) => Some(i64::from(*i)),
            Value::Long(l) => Some(*l),
            _ => None,
        };
        let fits = |what: &str| format!("the provider returned {v:?}, which does not fit {what}");
        Ok(match self {
            JavaType::Nullable(_) if v.is_null() => Val::Option(None),
            JavaType::Nullable(inner) => Val::Option(Some(Box::new(inner.to_wit(v)?))),
            _ if v.is_null() => {
                return Err(format!(
                    "the provider returned null for a non-optional {self:?}: declare the WIT result as option<..>"
                ))
            }
            JavaType::String => match v {
                Value::String(s) => Val::String(s.clone()),
                _ => return Err(fits("string")),
            },
            JavaType::Boolean => match v {
                Value::Bool(b) => Val::Bool(*b),
                _ => return Err(fits("bool")),
            },
            JavaType::Byte => Val::S8(int(v).and_then(|i| i8::try_from(i).ok()).ok_or_else(|| fits("s8"))?),
            JavaType::Short => Val::S16(int(v).and_then(|i| i16::try_from(i).ok()).ok_or_else(|| fits("s16"))?),
            JavaType::Int => Val::S32(int(v).and_then(|i| i32::try_from(i).ok()).ok_or_else(|| fits("s32"))?),
            JavaType::Long => Val::S64(int(v).ok_or_else(|| fits("s64"))?),
            JavaType::Float => match v {
                Value::Double(d) => Val::Float32(*d as f32),
                _ => return Err(fits("f32")),
            },
            JavaType::Double => match v {
                Value::Double(d) => Val::Float64(*d),
                _ => return Err(fits("f64")),
            },
            JavaType::Char => match v {
                Value::String(s) if s.chars().count() == 1 => {
                    Val::Char(s.chars().next().ok_or_else(|| fits("char"))?)
                }
                _ => return Err(fits("char")),
            },
            JavaType::Bytes => match v {
                Value::Binary(b) => Val::List(b.iter().map(|b| Val::U8(*b)).collect()),
                _ => return Err(fits("list<u8>")),
            },
        })
    }
}

fn wit_type_name(ty: &Type) -> &'static str {
    match ty {
        Type::List(_) => "list<..>",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) | Type::Borrow(_) => "resource",
        _ => "this type",
    }
}

/// kebab-case WIT name to Java lowerCamelCase (`say-hello` → `sayHello`).
pub fn java_method_name(wit: &str) -> String {
    let mut out = String::with_capacity(wit.len());
    let mut upper = false;
    for c in wit.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a guest's import name (`pkg:name/iface@1.0.0`) is the interface a reference's
/// `wit` names; a version in `wit` must match, a missing one matches any.
pub fn interface_matches(import: &str, wit: &str) -> bool {
    let (import_base, import_version) = import.split_once('@').unwrap_or((import, ""));
    match wit.split_once('@') {
        Some((base, version)) => base == import_base && version == import_version,
        None => wit == import_base,
    }
}

/// Everything needed to run one imported function, computed at load.
struct FunctionPlan {
    reference: Arc<Reference>,
    method: Arc<str>,
    descriptor: Arc<str>,
    params: Vec<JavaType>,
    /// `None` for a void method (`result<_, rpc-error>`).
    result: Option<JavaType>,
}

impl FunctionPlan {
    fn new(
        reference: Arc<Reference>,
        wit_name: &str,
        func: &ComponentFunc,
    ) -> Result<Self, String> {
        let mut params = Vec::new();
        let mut descriptor = String::new();
        for (name, ty) in func.params() {
            let java = JavaType::from_wit(&ty).map_err(|e| format!("parameter `{name}`: {e}"))?;
            descriptor.push_str(java.descriptor());
            params.push(java);
        }
        let mut results = func.results();
        let (Some(Type::Result(r)), None) = (results.next(), results.next()) else {
            return Err(
                "must return result<T, rpc-error> (or result<_, rpc-error> for void)".into(),
            );
        };
        match r.err() {
            Some(Type::Variant(v)) if v.cases().map(|c| c.name).eq(RPC_ERROR_CASES) => {}
            _ => {
                return Err(
                    "the error type must be `rpc-error` from dubbo:host/types@0.1.0 (use dubbo:host/types.{rpc-error})".into(),
                )
            }
        }
        let result = match r.ok() {
            None => None,
            Some(t) => Some(JavaType::from_wit(&t).map_err(|e| format!("result: {e}"))?),
        };
        Ok(FunctionPlan {
            reference,
            method: java_method_name(wit_name).into(),
            descriptor: descriptor.into(),
            params,
            result,
        })
    }

    async fn call(&self, args: &[Val]) -> Val {
        let converted: Result<Vec<Value>, String> = self
            .params
            .iter()
            .zip(args)
            .map(|(t, v)| t.to_hessian(v))
            .collect();
        let args = match converted {
            Ok(a) => a,
            Err(e) => return rpc_error_val(&RpcError::Serialization(e)),
        };
        let inv = Invocation {
            method: self.method.clone(),
            parameter_types: self.descriptor.clone(),
            args,
            attachments: Vec::new(),
        };
        match self.reference.invoke(&inv).await {
            Ok(reply) => match &self.result {
                None => Val::Result(Ok(None)),
                Some(t) => match t.to_wit(&reply.value) {
                    Ok(v) => Val::Result(Ok(Some(Box::new(v)))),
                    Err(e) => rpc_error_val(&RpcError::Serialization(format!(
                        "{}.{}: {e}",
                        self.reference.service(),
                        self.method
                    ))),
                },
            },
            Err(e) => rpc_error_val(&e),
        }
    }
}

/// The guest-side value of `err(rpc-error)` for `e`.
pub fn rpc_error_val(e: &RpcError) -> Val {
    let payload = match e {
        RpcError::BizException {
            class_name,
            message,
        } => Val::Record(vec![
            ("class-name".to_string(), Val::String(class_name.clone())),
            ("message".to_string(), Val::String(message.clone())),
        ]),
        RpcError::Timeout(m)
        | RpcError::NoProvider(m)
        | RpcError::Network(m)
        | RpcError::Forbidden(m)
        | RpcError::Serialization(m)
        | RpcError::LimitExceeded(m)
        | RpcError::Other(m) => Val::String(m.clone()),
    };
    Val::Result(Err(Some(Box::new(Val::Variant(
        e.kind().to_string(),
        Some(Box::new(payload)),
    )))))
}

/// Defines every non-WASI import of `component` in `linker`, bound to the references the guest
/// is granted. Returns a message naming the import and the fix when one cannot be bound.
pub fn bind_imports(
    engine: &Engine,
    linker: &mut Linker<HostState>,
    component: &Component,
    granted: &[String],
    refs: &References,
) -> Result<(), String> {
    let ty = component.component_type();
    for (name, ext) in ty.imports(engine) {
        if name.starts_with("wasi:") {
            continue;
        }
        let ComponentItem::ComponentInstance(inst) = ext.ty else {
            return Err(format!(
                "imports `{name}`, which is not an interface; only interfaces can be bound"
            ));
        };
        let funcs: Vec<(String, ComponentFunc)> = inst
            .exports(engine)
            .filter_map(|(n, e)| match e.ty {
                ComponentItem::ComponentFunc(f) => Some((n.to_string(), f)),
                _ => None,
            })
            .collect();
        if name.starts_with(HOST_PACKAGE) {
            if funcs.is_empty() {
                // A types-only interface such as dubbo:host/types: nothing to define.
                linker.instance(name).map_err(|e| format!("{e:#}"))?;
                continue;
            }
            return Err(format!(
                "imports `{name}`, which this host version does not provide yet"
            ));
        }
        let Some(reference) = refs
            .iter()
            .find(|r| r.wit().is_some_and(|w| interface_matches(name, w)))
        else {
            return Err(format!(
                "imports `{name}`, which no reference provides\n  fix: add wit = \"{}\" to the [[reference]] of that Dubbo interface and list its id in this guest's `references`",
                name.split_once('@').map_or(name, |(b, _)| b)
            ));
        };
        if !granted.iter().any(|g| g == reference.id()) {
            return Err(format!(
                "imports `{name}` (reference `{}`), which this guest is not granted\n  fix: add \"{}\" to this guest's `references`",
                reference.id(),
                reference.id()
            ));
        }
        let mut instance = linker.instance(name).map_err(|e| format!("{e:#}"))?;
        for (fname, fty) in funcs {
            let plan = FunctionPlan::new(reference.clone(), &fname, &fty).map_err(|e| {
                format!(
                    "`{name}` function `{fname}` cannot be bound to {}: {e}",
                    reference.service()
                )
            })?;
            let plan = Arc::new(plan);
            instance
                .func_new_async(&fname, move |_store, _ty, params, results| {
                    let plan = plan.clone();
                    Box::new(async move {
                        let out = plan.call(params).await;
                        if let Some(slot) = results.first_mut() {
                            *slot = out;
                        }
                        Ok(())
                    })
                })
                .map_err(|e| format!("cannot define `{name}#{fname}`: {e:#}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_names_become_java_method_names() {
        assert_eq!(java_method_name("say-hello"), "sayHello");
        assert_eq!(java_method_name("get-user-by-id"), "getUserById");
        assert_eq!(java_method_name("ping"), "ping");
    }

    #[test]
    fn reference_wit_matches_imports_with_or_without_version() {
        let import = "org-apache-dubbo:demo/demo-service@1.0.0";
        assert!(interface_matches(
            import,
            "org-apache-dubbo:demo/demo-service"
        ));
        assert!(interface_matches(
            import,
            "org-apache-dubbo:demo/demo-service@1.0.0"
        ));
        assert!(!interface_matches(
            import,
            "org-apache-dubbo:demo/demo-service@2.0.0"
        ));
        assert!(!interface_matches(import, "org-apache-dubbo:demo/other"));
    }

    #[test]
    fn scalars_map_to_java_descriptors_and_values() {
        assert_eq!(JavaType::from_wit(&Type::String), Ok(JavaType::String));
        assert_eq!(JavaType::Long.descriptor(), "J");
        assert_eq!(
            JavaType::Nullable(Box::new(JavaType::Int)).descriptor(),
            "Ljava/lang/Integer;"
        );
        assert_eq!(
            JavaType::Char.to_hessian(&Val::Char('😀')),
            Ok(Value::String("😀".into()))
        );
        assert_eq!(JavaType::Long.to_wit(&Value::Int(7)), Ok(Val::S64(7)));
        assert!(
            JavaType::Int.to_wit(&Value::Long(1 << 40)).is_err(),
            "out of range must not wrap"
        );
        assert!(
            JavaType::String.to_wit(&Value::Null).is_err(),
            "null needs option<..>"
        );
        assert_eq!(
            JavaType::Nullable(Box::new(JavaType::String)).to_wit(&Value::Null),
            Ok(Val::Option(None))
        );
    }

    #[test]
    fn biz_exception_becomes_the_rpc_error_record() {
        let v = rpc_error_val(&RpcError::BizException {
            class_name: "java.lang.IllegalStateException".into(),
            message: "no".into(),
        });
        let Val::Result(Err(Some(e))) = v else {
            panic!("not an error: {v:?}")
        };
        let Val::Variant(case, Some(payload)) = *e else {
            panic!("not a variant")
        };
        assert_eq!(case, "biz-exception");
        assert_eq!(
            *payload,
            Val::Record(vec![
                (
                    "class-name".into(),
                    Val::String("java.lang.IllegalStateException".into())
                ),
                ("message".into(), Val::String("no".into())),
            ])
        );
    }
}
