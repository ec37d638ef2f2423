//! Routers: narrow the provider list for one invocation by rules from the registry or config
//! (condition rules, tag rules), applied in priority order before load balancing.
//!
//! Rules arrive as text (a `condition://` URL under `/dubbo/{iface}/routers`, or YAML from the
//! config center) and are parsed once into matchers here; `route` only reads them. Routers run
//! lowest `priority` first, as Dubbo sorts them (condition rules default to 0, the tag router
//! to 100), each narrowing what the previous one left.

mod address;
mod condition;
mod condition_rule;
mod pattern;
mod tag;
#[cfg(test)]
pub(crate) mod testing;
mod yaml;

use std::sync::Arc;

use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

pub use condition::ConditionRouter;
pub use tag::{TagRouter, DEFAULT_TAG_PRIORITY, FORCE_TAG_KEY, TAG_KEY};

/// Narrows the providers for one call.
pub trait Router: Send + Sync {
    /// The providers of `invokers` that `inv` from `consumer` may go to.
    fn route(
        &self,
        invokers: &[Arc<dyn Invoker>],
        consumer: &Url,
        inv: &Invocation,
    ) -> Vec<Arc<dyn Invoker>>;

    /// Whether this router reads nothing of `inv`, so that it routes `inv` as it routes every
    /// other invocation it says this of (given the same providers and consumer): the directory
    /// then routes such calls once per provider set. `false` unless a router knows better.
    fn routes_alike(&self, _inv: &Invocation) -> bool {
        false
    }

    /// Lower runs first (Dubbo's `priority`).
    fn priority(&self) -> i32 {
        0
    }

    /// One line saying what the router does, for the admin views.
    fn describe(&self) -> String {
        format!("router (priority={})", self.priority())
    }
}

/// Why a router rule was refused; the rule keeps no effect and the caller logs this.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("condition rule `{rule}` is not valid: {reason}")]
    BadRule { rule: String, reason: String },
    #[error(
        "router URL `{url}` has no `rule` parameter; expected `rule=<url-encoded when => then>`"
    )]
    MissingRule { url: String },
    #[error("{kind} router YAML is not valid: {reason}")]
    BadYaml { kind: &'static str, reason: String },
    #[error("tag `{tag}` of the tag rule is not valid: {reason}")]
    BadTag { tag: String, reason: String },
    #[error("address `{address}` is not valid: {reason}")]
    BadAddress { address: String, reason: String },
}

/// The router a `routers`-category URL describes: `condition://…` or `route://…` (with
/// `router=condition` or no `router`); `None` for other kinds (script, file, …), which the
/// caller logs. An `empty://` URL means "no routers" and is the caller's to handle.
pub fn from_url(url: &Url) -> Result<Option<Arc<dyn Router>>, RouterError> {
    let kind = match url.protocol.as_str() {
        "route" => url.param("router").unwrap_or("condition"),
        other => other,
    };
    if kind != "condition" {
        return Ok(None);
    }
    Ok(Some(Arc::new(ConditionRouter::from_url(url)?)))
}

/// The routers of a condition rule YAML document: one per entry of `conditions`, in order.
pub fn condition_from_yaml(text: &str) -> Result<Vec<Arc<dyn Router>>, RouterError> {
    yaml::condition_routers(text)
}

/// The router of a tag rule YAML document.
pub fn tag_from_yaml(text: &str) -> Result<Arc<dyn Router>, RouterError> {
    Ok(Arc::new(yaml::tag_router(text)?))
}

/// Puts `routers` in the order [`route_all`] applies them (stable, lowest priority first), so
/// that the sort happens when rules change rather than on every call.
pub fn sort_by_priority(routers: &mut [Arc<dyn Router>]) {
    routers.sort_by_key(|r| r.priority());
}

/// Applies `routers` lowest priority first (equal priorities in slice order), each to what the
/// previous one left.
pub fn route_all(
    routers: &[Arc<dyn Router>],
    invokers: &[Arc<dyn Invoker>],
    consumer: &Url,
    inv: &Invocation,
) -> Vec<Arc<dyn Invoker>> {
    let mut current: Option<Vec<Arc<dyn Invoker>>> = None;
    let mut apply = |router: &Arc<dyn Router>| {
        let input = current.as_deref().unwrap_or(invokers);
        if !input.is_empty() {
            current = Some(router.route(input, consumer, inv));
        }
    };
    if routers.is_sorted_by_key(|r| r.priority()) {
        routers.iter().for_each(&mut apply);
    } else {
        // Unsorted input (see `sort_by_priority`) costs one small allocation per call.
        let mut ordered: Vec<&Arc<dyn Router>> = routers.iter().collect();
        ordered.sort_by_key(|r| r.priority());
        ordered.into_iter().for_each(&mut apply);
    }
    current.unwrap_or_else(|| invokers.to_vec())
}

#[cfg(test)]
mod tests {
    use super::testing::{addresses, call, consumer, providers};
    use super::*;

    #[test]
    fn from_url_builds_a_condition_router_from_an_encoded_rule() {
        let url = Url::parse(
            "condition://0.0.0.0/org.apache.dubbo.demo.DemoService?category=routers&dynamic=false&rule=method%3DsayHello+%3D%3E+region%3Dhz",
        )
        .expect("valid url");
        let router = from_url(&url)
            .expect("valid rule")
            .expect("condition router");
        let routed = router.route(&providers(), &consumer("10.0.0.9", ""), &call("sayHello"));
        assert_eq!(addresses(&routed), ["10.0.0.1:20880", "10.0.0.2:20880"]);
    }

    #[test]
    fn from_url_accepts_route_urls_and_skips_unknown_kinds() {
        let route =
            Url::parse("route://0.0.0.0/com.foo.Bar?router=condition&rule=%3D%3E+region%3Dhz")
                .expect("url");
        assert!(from_url(&route).expect("valid").is_some());
        let script = Url::parse("script://0.0.0.0/com.foo.Bar?rule=x").expect("url");
        assert!(from_url(&script).expect("not an error").is_none());
        let tagged = Url::parse("route://0.0.0.0/com.foo.Bar?router=tag").expect("url");
        assert!(from_url(&tagged).expect("not an error").is_none());
        let broken = Url::parse("condition://0.0.0.0/com.foo.Bar?rule=%3D+x+%3D%3E").expect("url");
        assert!(from_url(&broken).is_err());
    }

    #[test]
    fn route_all_applies_lower_priority_first() {
        // Each rule alone narrows to one host; the second finds its host gone and, without
        // force, keeps what it got. So the result names whichever ran first.
        let to_1: Arc<dyn Router> =
            Arc::new(ConditionRouter::new("=> host = 10.0.0.1", false, true, 0).expect("valid"));
        let to_2: Arc<dyn Router> =
            Arc::new(ConditionRouter::new("=> host = 10.0.0.2", false, true, 5).expect("valid"));
        let (c, inv) = (consumer("10.0.0.9", ""), call("sayHello"));
        let mut routers = vec![to_2.clone(), to_1.clone()];
        assert_eq!(
            addresses(&route_all(&routers, &providers(), &c, &inv)),
            ["10.0.0.1:20880"]
        );
        sort_by_priority(&mut routers);
        assert_eq!(routers[0].priority(), 0);
        assert_eq!(
            addresses(&route_all(&routers, &providers(), &c, &inv)),
            ["10.0.0.1:20880"]
        );
        assert_eq!(route_all(&[], &providers(), &c, &inv).len(), 4);
    }

    #[test]
    fn condition_yaml_makes_one_router_per_condition() {
        // Documents as dubbo-admin writes them, with start and end markers.
        let yaml = "---
configVersion: v3.0
scope: service
key: org.apache.dubbo.demo.DemoService
enabled: true
force: true
runtime: true
priority: 2
conditions:
  - method = sayHello => region = hz
  - method = sayHi => address = *:20881
...
";
        let routers = condition_from_yaml(yaml).expect("valid yaml");
        assert_eq!(routers.len(), 2);
        assert!(routers.iter().all(|r| r.priority() == 2));
        let c = consumer("10.0.0.9", "");
        let hello = route_all(&routers, &providers(), &c, &call("sayHello"));
        assert_eq!(addresses(&hello), ["10.0.0.1:20880", "10.0.0.2:20880"]);
        let hi = route_all(&routers, &providers(), &c, &call("sayHi"));
        assert_eq!(addresses(&hi), ["10.0.0.4:20881"]);
        let disabled = condition_from_yaml(&yaml.replace("enabled: true", "enabled: false"))
            .expect("valid yaml");
        let all = route_all(&disabled, &providers(), &c, &call("sayHello"));
        assert_eq!(all.len(), 4);
    }

    /// The error of `r`; routers are not `Debug`, so `expect_err` is not available.
    fn err_of<T>(r: Result<T, RouterError>) -> RouterError {
        match r {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn bad_yaml_errors_say_what_is_wrong() {
        let err = err_of(condition_from_yaml("conditions: ["));
        assert!(err.to_string().contains("condition router YAML"), "{err}");
        let err = err_of(condition_from_yaml("enabled: true\n"));
        assert!(err.to_string().contains("`conditions`"), "{err}");
        let err = err_of(condition_from_yaml("conditions:\n  - host = => x\n"));
        assert!(err.to_string().contains("`host = => x`"), "{err}");
        let err = err_of(tag_from_yaml(
            "tags:\n  - name: blue\n    addresses: [\"10.0.0.1:http\"]\n",
        ));
        assert!(err.to_string().contains("tag `blue`"), "{err}");
        assert!(err.to_string().contains("port `http`"), "{err}");
        let err = err_of(tag_from_yaml(
            "tags:\n  - name: blue\n    match:\n      - key: k\n        value: {regex: \"(\"}\n",
        ));
        assert!(err.to_string().contains("regex `(`"), "{err}");
    }
}
