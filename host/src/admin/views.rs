//! The JSON and text views of the references the admin API serves: `GET /admin/references`
//! (providers, routers, registries) and the readiness sentences of `GET /health`.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::loadbalance::weight::{now_millis, weight};
use crate::reference::{Reference, References};
use crate::rpc::Invoker;

/// Every reference, sorted by id.
pub(super) fn sorted(refs: &References) -> Vec<&Arc<Reference>> {
    let mut all: Vec<&Arc<Reference>> = refs.iter().collect();
    all.sort_by(|a, b| a.id().cmp(b.id()));
    all
}

/// The JSON of one provider for `GET /admin/references`.
fn provider_json(invoker: &Arc<dyn Invoker>, now_ms: i64) -> Value {
    let url = invoker.url();
    let stats = invoker.stats();
    json!({
        "url": url.to_string(),
        "address": url.address(),
        "weight": weight(url, "", now_ms),
        "available": invoker.is_available(),
        "active": stats.active(),
        "connections": invoker.connections().0,
        "succeeded": stats.succeeded(),
        "failed": stats.failed(),
    })
}

/// The body of `GET /admin/references`:
/// `{"references": [{"id", "interface", "version", "group", "consumer", "providers",
/// "routers", "registries", "discovery"}]}`, references sorted by id, providers by URL. A provider is
/// `{"url", "address", "weight", "available", "active", "connections", "succeeded",
/// "failed"}`: `weight` is its interface-level weight now (warmup applied), `connections` the
/// open ones, `succeeded`/`failed` its call counts. `routers` describes the routers in effect
/// in the order they run; `registries` are the `[[registry]]` ids the reference follows
/// (empty for a direct `url`); `discovery` gives per registry the migration `step` in effect,
/// the provider `set` it makes the reference use (`interface` or `application`), the sizes of
/// both sets, the instances still waiting for their metadata, the applications followed, and
/// whether the registry's providers are `used` (zone-aware choice); `mock` the mock settings in
/// effect (configurators applied), `*` for the reference and by Java method.
pub fn references_json(refs: &References) -> Value {
    let now_ms = now_millis();
    let references: Vec<Value> = sorted(refs)
        .into_iter()
        .map(|r| {
            let state = r.directory().state();
            let mut invokers: Vec<&Arc<dyn Invoker>> = state.invokers.iter().collect();
            invokers.sort_by_cached_key(|i| i.url().to_string());
            let providers: Vec<Value> = invokers
                .into_iter()
                .map(|i| provider_json(i, now_ms))
                .collect();
            let routers: Vec<String> = state.routers.iter().map(|r| r.describe()).collect();
            let discovery: Vec<Value> = r
                .directory()
                .discovery()
                .iter()
                .map(|d| {
                    json!({
                        "registry": d.id,
                        "step": d.step.name(),
                        "set": d.side.name(),
                        "interface_providers": d.interface_providers,
                        "application_providers": d.application_providers,
                        "pending_instances": d.pending_instances,
                        "applications": d.applications,
                        "used": d.used,
                    })
                })
                .collect();
            // The mock in effect, from the consumer URL with the configurators applied:
            // `*` for the reference, else per Java method.
            let overridden = state.consumer.as_ref().unwrap_or(r.consumer());
            let mock: serde_json::Map<String, Value> = overridden
                .params
                .iter()
                .filter_map(|(k, v)| {
                    let scope = if k == "mock" {
                        "*"
                    } else {
                        k.strip_suffix(".mock")?
                    };
                    Some((scope.to_string(), Value::String(v.clone())))
                })
                .collect();
            let service = r.service();
            json!({
                "id": r.id(),
                "interface": service.interface,
                "version": service.version,
                "group": service.group,
                "consumer": r.consumer().to_string(),
                "providers": providers,
                "routers": routers,
                "registries": r.registry_ids(),
                "discovery": discovery,
                "mock": mock,
            })
        })
        .collect();
    json!({ "references": references })
}

/// Why the host is not ready to serve, for `GET /health`: one sentence per reference with
/// `check = true` (the default) that has no available provider; empty means ready. References
/// with `check = false` chose to run without providers and never make the host unready.
pub fn unready(refs: &References) -> Vec<String> {
    sorted(refs)
        .into_iter()
        .filter(|r| r.check())
        .filter_map(|r| {
            let state = r.directory().state();
            if state.invokers.iter().any(|i| i.is_available()) {
                return None;
            }
            Some(if state.invokers.is_empty() {
                format!(
                    "reference `{}` ({}) has no provider listed",
                    r.id(),
                    r.service()
                )
            } else {
                format!(
                    "reference `{}` ({}) has {} provider(s) listed and none available",
                    r.id(),
                    r.service(),
                    state.invokers.len()
                )
            })
        })
        .collect()
}

/// What the view and metrics tests build references from.
#[cfg(test)]
pub(super) mod testing {
    use std::collections::HashMap;
    use std::sync::Arc;

    use crate::config::ReferenceConfig;
    use crate::protocol::dubbo::ConnectionPool;
    use crate::reference::References;
    use crate::rpc::Invocation;

    pub fn unreachable_reference(id: &str, check: bool) -> ReferenceConfig {
        ReferenceConfig {
            id: id.to_string(),
            interface: "org.apache.dubbo.demo.DemoService".to_string(),
            url: Some("dubbo://127.0.0.1:1".to_string()),
            check: Some(check),
            retries: Some(0),
            timeout: Some(200),
            connect_timeout: Some(200),
            ..ReferenceConfig::default()
        }
    }

    pub async fn references(cfgs: Vec<ReferenceConfig>) -> References {
        let mut config = crate::config::Config::parse("", std::path::Path::new("metrics.toml"))
            .expect("an empty config is valid");
        config.references = cfgs;
        let pool = Arc::new(ConnectionPool::default());
        References::build(&config, &pool, &HashMap::new())
            .await
            .expect("references over direct urls build")
    }

    pub fn say_hello() -> Invocation {
        Invocation {
            method: Arc::from("sayHello"),
            parameter_types: Arc::from("Ljava/lang/String;"),
            args: vec![crate::hessian2::Value::String("x".into())],
            attachments: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{references, unreachable_reference};
    use super::*;
    use crate::directory::DirectoryState;
    use crate::rpc::{Invocation, RpcError};

    #[tokio::test]
    async fn references_json_lists_providers_sorted_by_reference_id() {
        let refs = references(vec![
            unreachable_reference("zeta", false),
            unreachable_reference("alpha", false),
        ])
        .await;
        let v = references_json(&refs);
        let list = v["references"].as_array().expect("array");
        let ids: Vec<&str> = list.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        let alpha = &list[0];
        assert_eq!(alpha["interface"], "org.apache.dubbo.demo.DemoService");
        assert_eq!(alpha["version"], Value::Null);
        assert!(alpha["consumer"]
            .as_str()
            .is_some_and(|c| c.starts_with("consumer://")));
        assert_eq!(alpha["registries"], json!([]));
        assert_eq!(
            alpha["routers"],
            json!(["tag: providers' own dubbo.tag only (priority=100)"]),
            "a direct url list is routed as Dubbo routes a static directory: by dubbo.tag only"
        );
        let p = &alpha["providers"][0];
        assert_eq!(p["address"], "127.0.0.1:1");
        assert_eq!(p["weight"], 100);
        assert_eq!(p["connections"], 0);
        assert_eq!(p["succeeded"], 0);

        // Routers in effect are described in the order they run.
        let zeta = refs.get("zeta").expect("built");
        let invokers = zeta.directory().state().invokers.clone();
        let mut routers: Vec<Arc<dyn crate::router::Router>> = vec![
            Arc::new(crate::router::TagRouter::static_tags()),
            Arc::new(
                crate::router::ConditionRouter::new(
                    "method = sayHello => host = 10.0.0.1",
                    true,
                    true,
                    3,
                )
                .expect("valid rule"),
            ),
        ];
        crate::router::sort_by_priority(&mut routers);
        zeta.directory().replace(DirectoryState {
            invokers,
            routers,
            consumer: None,
            ..Default::default()
        });
        let v = references_json(&refs);
        assert_eq!(
            v["references"][1]["routers"],
            json!([
                "condition: method = sayHello => host = 10.0.0.1 (priority=3, force=true, enabled=true)",
                "tag: providers' own dubbo.tag only (priority=100)"
            ])
        );
    }

    /// A provider that is listed but refuses calls (read-only, or its connection closed).
    struct Unavailable {
        url: crate::url::Url,
        stats: crate::rpc::CallStats,
    }

    impl Invoker for Unavailable {
        fn url(&self) -> &crate::url::Url {
            &self.url
        }
        fn is_available(&self) -> bool {
            false
        }
        fn stats(&self) -> &crate::rpc::CallStats {
            &self.stats
        }
        fn invoke<'a>(
            &'a self,
            _: &'a Invocation,
        ) -> crate::rpc::BoxFuture<'a, Result<crate::rpc::RpcResult, RpcError>> {
            Box::pin(std::future::ready(Err(RpcError::Network("down".into()))))
        }
    }

    #[tokio::test]
    async fn only_checked_references_without_available_providers_make_the_host_unready() {
        // `check = true` refuses to start without a provider, so the checked
        // reference starts against a listener that takes the connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a listener");
        let mut checked = unreachable_reference("checked", true);
        checked.url = Some(format!(
            "dubbo://{}",
            listener.local_addr().expect("listener address")
        ));
        let refs = references(vec![checked, unreachable_reference("unchecked", false)]).await;
        // The registry takes every provider away.
        for r in refs.iter() {
            r.directory().replace(DirectoryState::default());
        }
        let why = unready(&refs);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("`checked`") && why[0].contains("no provider listed"));

        let url =
            crate::url::Url::parse("dubbo://10.0.0.1:20880/org.apache.dubbo.demo.DemoService")
                .expect("valid url");
        let down: Arc<dyn Invoker> = Arc::new(Unavailable {
            url,
            stats: Default::default(),
        });
        for r in refs.iter() {
            r.directory().replace(DirectoryState {
                invokers: vec![down.clone()],
                routers: Vec::new(),
                consumer: None,
                ..Default::default()
            });
        }
        let why = unready(&refs);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].contains("1 provider(s) listed and none available"),
            "{}",
            why[0]
        );

        let mut out = String::new();
        super::super::prometheus::render_references(&mut out, &refs);
        assert!(
            out.lines().any(|l| l
                == "dubbo_provider_available{reference=\"checked\",address=\"10.0.0.1:20880\"} 0"),
            "{out}"
        );
    }
}
