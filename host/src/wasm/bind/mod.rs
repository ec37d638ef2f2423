//! Dynamic binding of a guest's imports: every non-WASI interface the guest imports is matched
//! to a configured reference by its `wit` name, and each of its functions is defined with
//! Wasmtime's dynamic component API. The per-function plan (Java method name, JVM descriptor,
//! value mappings) is built once at load; a call only converts values and invokes. The host's
//! own package `dubbo:host` adds `types`, `context` (attachments) and `generic` (`$invoke`
//! with JSON).

mod mapping;
mod realize;

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, LinkerInstance, Type, Val};
use wasmtime::{Engine, StoreContextMut};

pub use mapping::{EnumMapping, Mapping, MappingError, RecordMapping, Refs, TypeNames};
use realize::Returns;

use super::state::GuestState;
use crate::generic;
use crate::hessian2::Value;
use crate::java::{self, lower_camel};
use crate::reference::{MethodSite, Reference, References};
use crate::rpc::{Invocation, RpcError, RpcResult};

/// The WIT package of the host's own interfaces.
const HOST_PACKAGE: &str = "dubbo:host/";

/// The cases of `dubbo:host/types.rpc-error`, which every Dubbo function's error must be.
const RPC_ERROR_CASES: [&str; 8] = RpcError::KINDS;

/// Why a guest's imports cannot be bound; [`BindError::fix`] says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BindError {
    #[error("imports `{import}`, which is not an interface; only interfaces can be bound")]
    NotAnInterface { import: String },
    #[error("imports `{import}`: this host has no interface `{name}` in dubbo:host (it has types, context, generic)")]
    UnknownHostInterface { import: String, name: String },
    #[error("imports `{import}` function `{function}`, which this host does not provide (it has: {known})")]
    UnknownHostFunction {
        import: String,
        function: String,
        known: String,
    },
    #[error("imports `{import}`, which no reference provides")]
    NoReference { import: String },
    #[error("imports `{import}` (reference `{reference}`), which this guest is not granted")]
    NotGranted { import: String, reference: String },
    #[error("`{import}` function `{function}` cannot be bound to {service}: {problem}")]
    Function {
        import: String,
        function: String,
        service: String,
        problem: MappingError,
    },
    #[error("cannot define `{import}#{function}`: {message}")]
    Define {
        import: String,
        function: String,
        message: String,
    },
}

impl BindError {
    /// What to change so the import binds, when the problem alone does not say it.
    pub fn fix(&self) -> Option<String> {
        match self {
            BindError::NoReference { import } => {
                let base = import.split_once('@').map_or(import.as_str(), |(b, _)| b);
                Some(format!("add wit = \"{base}\" to the [[reference]] of that Dubbo interface and list its id in this guest's `references`"))
            }
            BindError::NotGranted { reference, .. } => {
                Some(format!("add \"{reference}\" to this guest's `references`"))
            }
            _ => None,
        }
    }
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

/// A parameter whose configured Java type (`parameter-types`) is not what its WIT type sends
/// by default, and how it is sent instead.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SentAs {
    /// `s64` as a `java.util.Date` (epoch milliseconds).
    Date,
    /// `string` as a `java.math.BigDecimal`/`BigInteger`: an object of this class (built once,
    /// at load) holding the text in its `value` field.
    Decimal(Arc<crate::hessian2::ClassDef>),
}

impl SentAs {
    /// How a parameter of WIT mapping `m` declared as Java `java_type` is sent, if not as `m`
    /// (an `option` as its inner type: `none` is sent as null either way).
    fn of(m: &Mapping, java_type: &str) -> Option<SentAs> {
        let erased = java_type.split('<').next().unwrap_or(java_type).trim();
        match (m, erased) {
            (Mapping::Nullable(inner), _) => Self::of(inner, java_type),
            (Mapping::Long, "java.util.Date") => Some(SentAs::Date),
            (Mapping::String, class) if mapping::is_decimal_class(class) => {
                Some(SentAs::Decimal(Arc::new(crate::hessian2::ClassDef {
                    name: class.to_string(),
                    fields: vec!["value".to_string()],
                })))
            }
            _ => None,
        }
    }

    fn convert(&self, v: Value) -> Value {
        match (self, v) {
            (SentAs::Date, Value::Long(ms)) => Value::Date(ms),
            (SentAs::Decimal(class), Value::String(s)) => Value::Object(crate::hessian2::Object {
                class: class.clone(),
                values: vec![Value::String(s)],
            }),
            (_, other) => other,
        }
    }
}

/// Everything needed to run one imported function, computed at load.
struct FunctionPlan {
    reference: Arc<Reference>,
    method: Arc<str>,
    /// `method` of `reference`, resolved once for all calls.
    site: MethodSite,
    descriptor: Arc<str>,
    params: Vec<Mapping>,
    /// Per parameter: sent as another Java type than its mapping's (from `parameter-types`).
    sent_as: Vec<Option<SentAs>>,
    /// The result; `None` for a void method (`result<_, rpc-error>`).
    returns: Returns,
}

impl FunctionPlan {
    fn new(
        reference: Arc<Reference>,
        wit_name: &str,
        func: &ComponentFunc,
        names: &TypeNames<'_>,
    ) -> Result<Self, MappingError> {
        let settings = reference.method_settings(wit_name);
        let explicit = settings.and_then(|m| m.parameter_types.as_ref());
        let mut params = Vec::new();
        let mut sent_as = Vec::new();
        let mut descriptor = String::new();
        for (i, (name, ty)) in func.params().enumerate() {
            let java = Mapping::from_wit(&ty, names)
                .map_err(|e| e.within(format!("parameter `{name}`")))?;
            match explicit.and_then(|t| t.get(i)) {
                Some(java_name) => {
                    descriptor.push_str(
                        &java::java_descriptor(java_name)
                            .map_err(|e| MappingError::new(format!("parameter `{name}`: {e}")))?,
                    );
                    sent_as.push(SentAs::of(&java, java_name));
                }
                None => {
                    descriptor.push_str(&java.descriptor());
                    sent_as.push(None);
                }
            }
            params.push(java);
        }
        if let Some(types) = explicit {
            if types.len() != params.len() {
                return Err(MappingError::new(format!(
                    "`parameter-types` lists {} types for {} parameters",
                    types.len(),
                    params.len()
                )));
            }
        }
        let mut results = func.results();
        let (Some(Type::Result(r)), None) = (results.next(), results.next()) else {
            return Err(MappingError::new(
                "must return result<T, rpc-error> (or result<_, rpc-error> for void)",
            ));
        };
        if !is_rpc_error(r.err().as_ref()) {
            return Err(MappingError::new(
                "the error type must be `rpc-error` from dubbo:host/types@0.1.0 (use dubbo:host/types@0.1.0.{rpc-error})",
            ));
        }
        let result = match r.ok() {
            None => None,
            Some(t) => Some(Mapping::from_wit(&t, names).map_err(|e| e.within("result"))?),
        };
        let method = settings
            .and_then(|m| m.java_name.clone())
            .unwrap_or_else(|| lower_camel(wit_name));
        let method: Arc<str> = method.into();
        Ok(FunctionPlan {
            site: reference.site(&method),
            reference,
            method,
            descriptor: descriptor.into(),
            params,
            sent_as,
            returns: Returns(result),
        })
    }

    async fn call(
        &self,
        args: &[Val],
        attachments: Vec<(String, String)>,
    ) -> (Val, Vec<(String, Value)>) {
        let converted: Result<Vec<Value>, MappingError> = self
            .params
            .iter()
            .zip(args)
            .zip(&self.sent_as)
            .map(|((t, v), sent_as)| {
                let value = t.to_hessian(v)?;
                Ok(match sent_as {
                    Some(how) => how.convert(value),
                    None => value,
                })
            })
            .collect();
        let args = match converted {
            Ok(a) => a,
            Err(e) => {
                return (
                    rpc_error_val(&RpcError::Serialization(e.to_string())),
                    Vec::new(),
                )
            }
        };
        let inv = Invocation {
            method: self.method.clone(),
            parameter_types: self.descriptor.clone(),
            args,
            attachments,
        };
        match self
            .reference
            .invoke_at(&self.site, &inv, Some(&self.returns))
            .await
        {
            Ok(RpcResult { value, attachments }) => {
                let out = match &self.returns.0 {
                    None => Val::Result(Ok(None)),
                    Some(t) => match t.to_wit(&value, &Refs::new(std::slice::from_ref(&value))) {
                        Ok(v) => Val::Result(Ok(Some(Box::new(v)))),
                        Err(e) => rpc_error_val(&RpcError::Serialization(format!(
                            "{}.{}: {e}",
                            self.reference.service(),
                            self.method
                        ))),
                    },
                };
                (out, attachments)
            }
            Err(e) => (rpc_error_val(&e), Vec::new()),
        }
    }
}

fn is_rpc_error(ty: Option<&Type>) -> bool {
    matches!(ty, Some(Type::Variant(v)) if v.cases().map(|c| c.name).eq(RPC_ERROR_CASES))
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
        other => Val::String(other.message().into_owned()),
    };
    Val::Result(Err(Some(Box::new(Val::Variant(
        e.kind().to_string(),
        Some(Box::new(payload)),
    )))))
}

/// Reply attachments as strings, the form `context.attachment` hands out.
fn stringify(attachments: Vec<(String, Value)>) -> Vec<(String, String)> {
    attachments
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Int(i) => Some((k, i.to_string())),
            Value::Long(l) => Some((k, l.to_string())),
            Value::Bool(b) => Some((k, b.to_string())),
            _ => None,
        })
        .collect()
}

/// Defines every non-WASI import of `component` in `linker`, bound to the references the guest
/// is `granted`. Returns a message naming the import, function, types and the fix when one
/// cannot be bound.
pub fn bind_imports(
    engine: &Engine,
    linker: &mut Linker<GuestState>,
    component: &Component,
    granted: &[String],
    refs: &References,
) -> Result<(), BindError> {
    let ty = component.component_type();
    for (name, ext) in ty.imports(engine) {
        if name.starts_with("wasi:") {
            continue;
        }
        let ComponentItem::ComponentInstance(inst) = ext.ty else {
            return Err(BindError::NotAnInterface {
                import: name.to_string(),
            });
        };
        let mut funcs = Vec::new();
        let mut named = Vec::new();
        for (n, e) in inst.exports(engine) {
            match e.ty {
                ComponentItem::ComponentFunc(f) => funcs.push((n.to_string(), f)),
                ComponentItem::Type(t) => named.push((n.to_string(), t)),
                _ => {}
            }
        }
        let base = name.split_once('@').map_or(name, |(b, _)| b);
        if let Some(host_iface) = base.strip_prefix(HOST_PACKAGE) {
            let mut instance = linker
                .instance(name)
                .map_err(|e| define_error(name, "", &e))?;
            match host_iface {
                "types" => {}
                "context" => define_context(&mut instance, &funcs, name)?,
                "generic" => define_generic(&mut instance, &funcs, name, granted, refs)?,
                other => {
                    return Err(BindError::UnknownHostInterface {
                        import: name.to_string(),
                        name: other.to_string(),
                    })
                }
            }
            continue;
        }
        let Some(reference) = refs
            .iter()
            .find(|r| r.wit().is_some_and(|w| interface_matches(name, w)))
        else {
            return Err(BindError::NoReference {
                import: name.to_string(),
            });
        };
        if !granted.iter().any(|g| g == reference.id()) {
            return Err(BindError::NotGranted {
                import: name.to_string(),
                reference: reference.id().to_string(),
            });
        }
        let package = reference
            .service()
            .interface
            .rsplit_once('.')
            .map_or("", |(p, _)| p)
            .to_string();
        let names = TypeNames {
            named: &named,
            java_package: &package,
            java_types: reference.java_types(),
        };
        let mut instance = linker
            .instance(name)
            .map_err(|e| define_error(name, "", &e))?;
        for (fname, fty) in funcs {
            let plan =
                FunctionPlan::new(reference.clone(), &fname, &fty, &names).map_err(|problem| {
                    BindError::Function {
                        import: name.to_string(),
                        function: fname.clone(),
                        service: reference.service().to_string(),
                        problem,
                    }
                })?;
            let plan = Arc::new(plan);
            instance
                .func_new_async(
                    &fname,
                    move |mut store: StoreContextMut<'_, GuestState>, _ty, params, results| {
                        let plan = plan.clone();
                        Box::new(async move {
                            let outgoing = store.data().attachments_out.clone();
                            let (out, reply) = plan.call(params, outgoing).await;
                            store.data_mut().attachments_in = stringify(reply);
                            if let Some(slot) = results.first_mut() {
                                *slot = out;
                            }
                            Ok(())
                        })
                    },
                )
                .map_err(|e| define_error(name, &fname, &e))?;
        }
    }
    Ok(())
}

fn define_error(import: &str, function: &str, e: &wasmtime::Error) -> BindError {
    BindError::Define {
        import: import.to_string(),
        function: function.to_string(),
        message: format!("{e:#}"),
    }
}

fn expect_funcs(
    funcs: &[(String, ComponentFunc)],
    iface: &str,
    known: &[&str],
) -> Result<(), BindError> {
    for (f, _) in funcs {
        if !known.contains(&f.as_str()) {
            return Err(BindError::UnknownHostFunction {
                import: iface.to_string(),
                function: f.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

fn define_context(
    instance: &mut LinkerInstance<'_, GuestState>,
    funcs: &[(String, ComponentFunc)],
    iface: &str,
) -> Result<(), BindError> {
    expect_funcs(funcs, iface, &["set-attachment", "attachment"])?;
    let err = |e: wasmtime::Error| define_error(iface, "", &e);
    instance
        .func_new("set-attachment", |mut store, _ty, params, _results| {
            if let [Val::String(k), Val::String(v)] = params {
                let out = &mut store.data_mut().attachments_out;
                match out.iter_mut().find(|(ek, _)| ek == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            Ok(())
        })
        .map_err(err)?;
    instance
        .func_new("attachment", |store, _ty, params, results| {
            let found = match params {
                [Val::String(k)] => store
                    .data()
                    .attachments_in
                    .iter()
                    .find(|(ek, _)| ek == k)
                    .map(|(_, v)| Box::new(Val::String(v.clone()))),
                _ => None,
            };
            if let Some(slot) = results.first_mut() {
                *slot = Val::Option(found);
            }
            Ok(())
        })
        .map_err(err)?;
    Ok(())
}

fn define_generic(
    instance: &mut LinkerInstance<'_, GuestState>,
    funcs: &[(String, ComponentFunc)],
    iface: &str,
    granted: &[String],
    refs: &References,
) -> Result<(), BindError> {
    expect_funcs(funcs, iface, &["invoke", "echo"])?;
    let allowed: Arc<HashMap<String, Arc<Reference>>> = Arc::new(
        granted
            .iter()
            .filter_map(|id| Some((id.clone(), refs.get(id)?.clone())))
            .collect(),
    );
    for name in ["invoke", "echo"] {
        let allowed = allowed.clone();
        instance
            .func_new_async(
                name,
                move |mut store: StoreContextMut<'_, GuestState>, _ty, params, results| {
                    let allowed = allowed.clone();
                    Box::new(async move {
                        let outgoing = store.data().attachments_out.clone();
                        let (out, reply) = if name == "echo" {
                            generic_echo(&allowed, params, outgoing).await
                        } else {
                            generic_invoke(&allowed, params, outgoing).await
                        };
                        store.data_mut().attachments_in = stringify(reply);
                        if let Some(slot) = results.first_mut() {
                            *slot = out;
                        }
                        Ok(())
                    })
                },
            )
            .map_err(|e| define_error(iface, name, &e))?;
    }
    Ok(())
}

/// `generic.echo(reference, value-json)`: Dubbo's `$echo` (descriptor `Ljava/lang/Object;`).
async fn generic_echo(
    allowed: &HashMap<String, Arc<Reference>>,
    params: &[Val],
    attachments: Vec<(String, String)>,
) -> (Val, Vec<(String, Value)>) {
    let [Val::String(reference), Val::String(value_json)] = params else {
        return (
            rpc_error_val(&RpcError::Other(
                "generic.echo called with unexpected argument types".into(),
            )),
            Vec::new(),
        );
    };
    let args = [
        Val::String(reference.clone()),
        Val::String(generic::ECHO.to_string()),
        Val::List(vec![Val::String("java.lang.Object".to_string())]),
        Val::String(format!("[{value_json}]")),
    ];
    generic_invoke(allowed, &args, attachments).await
}

/// `generic.invoke(reference, method, parameter-types, args-json)`: Dubbo's `$invoke` with
/// JSON, limited to the references the guest is granted.
async fn generic_invoke(
    allowed: &HashMap<String, Arc<Reference>>,
    params: &[Val],
    attachments: Vec<(String, String)>,
) -> (Val, Vec<(String, Value)>) {
    let fail = |e: RpcError| (rpc_error_val(&e), Vec::new());
    let [Val::String(reference), Val::String(method), Val::List(types), Val::String(args_json)] =
        params
    else {
        return fail(RpcError::Other(
            "generic.invoke called with unexpected argument types".into(),
        ));
    };
    let Some(reference) = allowed.get(reference) else {
        return fail(RpcError::Forbidden(format!(
            "reference `{reference}` is not granted to this guest (add it to the guest's `references`)"
        )));
    };
    let types: Vec<String> = types
        .iter()
        .filter_map(|t| match t {
            Val::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let args: Vec<serde_json::Value> = match serde_json::from_str(args_json) {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(_) => {
            return fail(RpcError::Serialization(
                "args-json must be a JSON array".into(),
            ))
        }
        Err(e) => {
            return fail(RpcError::Serialization(format!(
                "args-json is not JSON: {e}"
            )))
        }
    };
    let mut inv = match generic::invocation(method, &types, &args) {
        Ok(inv) => inv,
        Err(e) => return fail(RpcError::Serialization(e.to_string())),
    };
    inv.attachments = attachments;
    match reference.invoke(&inv).await {
        Ok(RpcResult { value, attachments }) => {
            match generic::hessian_to_json_text(&value, std::slice::from_ref(&value)) {
                Ok(json) => (
                    Val::Result(Ok(Some(Box::new(Val::String(json))))),
                    attachments,
                ),
                Err(e) => fail(RpcError::Serialization(format!(
                    "{}.{method}: {e}",
                    reference.service()
                ))),
            }
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests;
