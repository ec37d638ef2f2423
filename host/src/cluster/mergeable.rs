//! Dubbo's mergeable cluster, which a reference gets when its `group` is `*` or a list: its
//! providers are grouped by their own `group`, and each group is a cluster of its own. Without
//! `merger`, the call goes to the first group with an available provider. With `merger`, every
//! group is called at once and the results merged as Dubbo's default mergers do: lists
//! concatenated (`list`), sets united (`set`), maps put one after the other (`map`), arrays
//! joined (`byte`…`boolean`, and any `[T` array); `merger=true` (or `default`) picks by the
//! results' type. A group that fails is logged and left out, as in Dubbo. Dubbo has no merger
//! for single values (numbers, booleans, strings), so those fail with its "no merger" error;
//! a `.method` merger calls a Java method and cannot run here.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;

use super::{empty, invoke_one, listed, FailbackQueue, MethodPolicy};
use crate::directory::{Directory, DirectoryState};
use crate::hessian2::{List, Map, Value};
use crate::rpc::{Invocation, Invoker, RpcError, RpcResult};

pub(super) async fn invoke(
    dir: &Arc<Directory>,
    policy: &MethodPolicy,
    failback: &FailbackQueue,
    inv: &Invocation,
) -> Result<RpcResult, RpcError> {
    let invokers = listed(dir, inv)?;
    let mut groups: BTreeMap<String, Vec<Arc<dyn Invoker>>> = BTreeMap::new();
    for i in invokers.iter().cloned() {
        let group = i.url().param("group").unwrap_or_default().to_string();
        groups.entry(group).or_default().push(i);
    }
    if groups.len() < 2 {
        return invoke_one(dir, policy, failback, inv).await;
    }
    let group_dir = |members: &Vec<Arc<dyn Invoker>>| {
        let d = Directory::new(dir.service().clone(), dir.consumer().clone());
        d.replace(DirectoryState {
            invokers: members.clone(),
            routers: Vec::new(),
            consumer: None,
            ..Default::default()
        });
        Arc::new(d)
    };
    let Some(merger) = &policy.merger else {
        let chosen = groups
            .values()
            .find(|members| members.iter().any(|i| i.is_available()))
            .or_else(|| groups.values().next())
            .map(group_dir)
            .ok_or_else(|| RpcError::NoProvider(format!("no group of {}", dir.service())))?;
        return invoke_one(&chosen, policy, failback, inv).await;
    };
    let calls = groups.iter().map(|(group, members)| {
        let d = group_dir(members);
        async move { (group.clone(), invoke_one(&d, policy, failback, inv).await) }
    });
    let mut values = Vec::new();
    for (group, result) in join_all(calls).await {
        match result {
            Ok(r) => values.push(r.value),
            Err(e) => {
                tracing::warn!(service = %dir.service(), method = %inv.method, %group, error = %e, "a group failed; its result is left out of the merge")
            }
        }
    }
    match values.len() {
        0 => Ok(empty()),
        1 => Ok(RpcResult {
            value: values.remove(0),
            attachments: Vec::new(),
        }),
        _ => merge(merger, values).map(|value| RpcResult {
            value,
            attachments: Vec::new(),
        }),
    }
}

/// The kinds of results Dubbo's default mergers take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    Map,
    Array,
}

/// The merger a `merger` value names.
fn kind_of_name(name: &str) -> Option<Kind> {
    Some(match name {
        "list" => Kind::List,
        "set" => Kind::Set,
        "map" => Kind::Map,
        "byte" | "char" | "short" | "int" | "long" | "float" | "double" | "boolean" => Kind::Array,
        _ => return None,
    })
}

/// What `merger=true` picks for a result (Dubbo looks up the declared return type).
fn kind_of_value(v: &Value) -> Option<Kind> {
    match v {
        Value::Map(_) => Some(Kind::Map),
        Value::List(l) => match l.type_name.as_deref() {
            Some(t) if t.starts_with('[') => Some(Kind::Array),
            Some(t) if t.ends_with("Set") => Some(Kind::Set),
            _ => Some(Kind::List),
        },
        _ => None,
    }
}

/// Merges the groups' results (at least two) with the merger `merger` names.
fn merge(merger: &str, values: Vec<Value>) -> Result<Value, RpcError> {
    let no_merger = || {
        RpcError::Other(format!(
            "There is no merger to merge result (merger `{merger}`); Dubbo merges lists, sets, maps and arrays"
        ))
    };
    if merger.starts_with('.') {
        return Err(RpcError::Other(format!(
            "merger `{merger}` calls a Java method on the result, which this host cannot do; use merger = \"true\" or a merger name (list, set, map)"
        )));
    }
    let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
    let Some(first) = values.first() else {
        return Ok(Value::Null);
    };
    let kind = if merger.eq_ignore_ascii_case("true") || merger.eq_ignore_ascii_case("default") {
        kind_of_value(first).ok_or_else(no_merger)?
    } else {
        kind_of_name(merger).ok_or_else(no_merger)?
    };
    match kind {
        Kind::Map => {
            let type_name = match first {
                Value::Map(m) => m.type_name.clone(),
                _ => None,
            };
            let mut entries: Vec<(Value, Value)> = Vec::new();
            for v in values {
                let Value::Map(m) = v else {
                    return Err(no_merger());
                };
                for (k, val) in m.entries {
                    match entries.iter_mut().find(|(ek, _)| *ek == k) {
                        Some(slot) => slot.1 = val,
                        None => entries.push((k, val)),
                    }
                }
            }
            Ok(Value::Map(Map { type_name, entries }))
        }
        Kind::List | Kind::Set | Kind::Array => {
            let type_name = match first {
                Value::List(l) => l.type_name.clone(),
                _ => None,
            };
            let mut items: Vec<Value> = Vec::new();
            for v in values {
                let Value::List(l) = v else {
                    return Err(no_merger());
                };
                for item in l.items {
                    if kind == Kind::Set && items.contains(&item) {
                        continue;
                    }
                    items.push(item);
                }
            }
            let mut list = List::untyped(items);
            list.type_name = match kind {
                Kind::Set => type_name.or_else(|| Some("java.util.HashSet".to_string())),
                _ => type_name,
            };
            Ok(Value::List(list))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[i32], type_name: Option<&str>) -> Value {
        let mut l = List::untyped(items.iter().map(|i| Value::Int(*i)).collect());
        l.type_name = type_name.map(str::to_string);
        Value::List(l)
    }

    fn items(v: &Value) -> Vec<i32> {
        match v {
            Value::List(l) => l
                .items
                .iter()
                .filter_map(|i| i.as_i64())
                .map(|i| i as i32)
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn lists_concatenate_sets_unite_and_arrays_join() {
        let merged = merge("true", vec![list(&[1, 2], None), list(&[2, 3], None)]).expect("merged");
        assert_eq!(items(&merged), [1, 2, 2, 3]);
        let set = merge(
            "true",
            vec![
                list(&[1, 2], Some("java.util.HashSet")),
                list(&[2, 3], Some("java.util.HashSet")),
            ],
        )
        .expect("merged");
        assert_eq!(items(&set), [1, 2, 3]);
        let named = merge("set", vec![list(&[1, 1], None), list(&[1, 4], None)]).expect("merged");
        assert_eq!(items(&named), [1, 4]);
        let array = merge(
            "int",
            vec![list(&[1], Some("[int")), list(&[2], Some("[int"))],
        )
        .expect("merged");
        assert_eq!(items(&array), [1, 2]);
        assert!(matches!(&array, Value::List(l) if l.type_name.as_deref() == Some("[int")));
    }

    #[test]
    fn maps_put_later_groups_over_earlier_ones() {
        let map = |pairs: &[(&str, i32)]| {
            Value::Map(Map::untyped(
                pairs
                    .iter()
                    .map(|(k, v)| (Value::String((*k).into()), Value::Int(*v)))
                    .collect(),
            ))
        };
        let merged = merge(
            "map",
            vec![map(&[("a", 1), ("b", 2)]), map(&[("b", 3), ("c", 4)])],
        )
        .expect("merged");
        assert_eq!(merged, map(&[("a", 1), ("b", 3), ("c", 4)]));
    }

    #[test]
    fn single_values_and_java_method_mergers_have_no_merger() {
        assert!(merge("true", vec![Value::Int(1), Value::Int(2)]).is_err());
        assert!(merge("sum", vec![list(&[1], None), list(&[2], None)]).is_err());
        assert!(merge(".addAll", vec![list(&[1], None), list(&[2], None)]).is_err());
        assert_eq!(
            merge("true", vec![Value::Null, Value::Null]).ok(),
            Some(Value::Null)
        );
    }
}
