//! The condition router (Dubbo's `ConditionStateRouter`): calls that match a rule's when-part
//! go only to providers that match its then-part.
//!
//! If the when-part matches and no provider matches the then-part, `force=false` (the default)
//! keeps every provider, so a stale rule cannot take a service down; `force=true` leaves none.
//! A then-part that is empty or `false` is a blacklist: matching calls get no provider at all.

use std::fmt;
use std::sync::Arc;

use super::condition_rule::{self, ParsedRule};
use super::{Router, RouterError};
use crate::rpc::{Invocation, Invoker};
use crate::url::{decode_component, Url};

/// One `when => then` rule, parsed once.
pub struct ConditionRouter {
    rule: String,
    /// `None` when the rule is disabled: Dubbo does not even parse a disabled rule.
    parsed: Option<ParsedRule>,
    force: bool,
    priority: i32,
}

impl ConditionRouter {
    /// A router for `rule` (e.g. `host = 10.0.0.1 => host = 10.0.0.2`).
    pub fn new(
        rule: &str,
        force: bool,
        enabled: bool,
        priority: i32,
    ) -> Result<ConditionRouter, RouterError> {
        let parsed = if enabled {
            Some(condition_rule::parse(rule)?)
        } else {
            None
        };
        Ok(ConditionRouter {
            rule: rule.to_string(),
            parsed,
            force,
            priority,
        })
    }

    /// A router from `condition://0.0.0.0/{iface}?rule=..&force=..&enabled=..&priority=..`.
    pub fn from_url(url: &Url) -> Result<ConditionRouter, RouterError> {
        let raw = url.param("rule").ok_or_else(|| RouterError::MissingRule {
            url: url.to_string(),
        })?;
        // `Url::parse` decoded the parameter once; a rule that still holds `%XX` escapes was
        // encoded twice (the registry path and `rule=` are each URL-encoded by Dubbo).
        let rule = if has_percent_escape(raw) {
            decode_component(raw).unwrap_or_else(|| raw.to_string())
        } else {
            raw.to_string()
        };
        ConditionRouter::new(
            &rule,
            url.param_bool("force", false),
            url.param_bool("enabled", true),
            i32::try_from(url.param_i64("priority", 0)).unwrap_or(0),
        )
    }

    /// The rule text as given.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

fn has_percent_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

impl fmt::Debug for ConditionRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionRouter")
            .field("rule", &self.rule)
            .field("enabled", &self.parsed.is_some())
            .field("force", &self.force)
            .field("priority", &self.priority)
            .finish()
    }
}

impl Router for ConditionRouter {
    fn route(
        &self,
        invokers: &[Arc<dyn Invoker>],
        consumer: &Url,
        inv: &Invocation,
    ) -> Vec<Arc<dyn Invoker>> {
        let Some(parsed) = &self.parsed else {
            return invokers.to_vec();
        };
        if invokers.is_empty() || !parsed.when.matches_call(consumer, inv) {
            return invokers.to_vec();
        }
        let Some(then) = &parsed.then else {
            tracing::debug!(rule = %self.rule, method = %inv.method, "consumer is blacklisted by condition rule");
            return Vec::new();
        };
        let routed: Vec<_> = invokers
            .iter()
            .filter(|i| then.matches_provider(i.url(), consumer))
            .cloned()
            .collect();
        if !routed.is_empty() || self.force {
            if routed.is_empty() {
                tracing::debug!(rule = %self.rule, method = %inv.method, "condition rule with force=true left no provider");
            }
            return routed;
        }
        invokers.to_vec()
    }

    /// A rule whose when side reads only the consumer's URL (`host = … => …`) routes every
    /// call alike; one on `method`, an argument or an attachment does not.
    fn routes_alike(&self, _inv: &Invocation) -> bool {
        self.parsed
            .as_ref()
            .is_none_or(|p| !p.when.reads_the_call())
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn describe(&self) -> String {
        format!(
            "condition: {} (priority={}, force={}, enabled={})",
            self.rule,
            self.priority,
            self.force,
            self.parsed.is_some()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian2::Value;
    use crate::router::testing::{addresses, call, consumer, providers};

    fn route(rule: &str, from: &Url, inv: &Invocation) -> Vec<String> {
        let router = ConditionRouter::new(rule, false, true, 0).expect("valid rule");
        addresses(&router.route(&providers(), from, inv))
    }

    #[test]
    fn only_rules_on_the_consumer_alone_route_every_call_alike() {
        let alike = |rule: &str| {
            ConditionRouter::new(rule, false, true, 0)
                .expect("valid rule")
                .routes_alike(&call("sayHello"))
        };
        assert!(alike("host = 10.0.0.1 => host = 10.0.0.2"));
        assert!(alike("application = shop-* => region = hz"));
        assert!(alike("=> host != 10.0.0.2"));
        assert!(!alike("method = sayHello => host = 10.0.0.2"));
        assert!(!alike("arguments[0] = Bob => host = 10.0.0.2"));
        assert!(!alike("attachments[k] = v => host = 10.0.0.2"));
        let disabled =
            ConditionRouter::new("method = sayHello => host = 10.0.0.2", false, false, 0)
                .expect("valid rule");
        assert!(disabled.routes_alike(&call("sayHello")));
    }

    #[test]
    fn host_rule_moves_only_that_consumers_traffic() {
        let rule = "host = 10.0.0.1 => host = 10.0.0.2";
        assert_eq!(
            route(rule, &consumer("10.0.0.1", ""), &call("sayHello")),
            ["10.0.0.2:20880"]
        );
        assert_eq!(
            route(rule, &consumer("10.0.0.9", ""), &call("sayHello")).len(),
            providers().len()
        );
    }

    #[test]
    fn not_equal_excludes_and_comma_lists_match_any() {
        let inv = call("sayHello");
        let c = consumer("10.0.0.1", "");
        assert_eq!(
            route("=> host != 10.0.0.2,10.0.0.3", &c, &inv),
            ["10.0.0.1:20880", "10.0.0.4:20881"]
        );
        assert_eq!(
            route("=> host = 10.0.0.2,10.0.0.3", &c, &inv),
            ["10.0.0.2:20880", "10.0.0.3:20880"]
        );
        assert_eq!(
            route("host != 10.0.0.1 => host = 10.0.0.2", &c, &inv).len(),
            providers().len()
        );
        // A mismatch wins over a match of the same value.
        assert_eq!(
            route("=> region = hz,sh & region != sh", &c, &inv),
            ["10.0.0.1:20880", "10.0.0.2:20880"]
        );
    }

    #[test]
    fn wildcards_match_prefix_suffix_and_anything() {
        let c = consumer("10.0.0.1", "application=shop-web");
        let inv = call("sayHello");
        assert_eq!(
            route("application = shop-* => address = *:20881", &c, &inv),
            ["10.0.0.4:20881"]
        );
        assert_eq!(
            route("method = *Hello => host = 10.0.0.3", &c, &inv),
            ["10.0.0.3:20880"]
        );
        assert_eq!(
            route("=> version = *", &c, &inv),
            ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20880"]
        );
        assert_eq!(
            route("application = web* => host = 10.0.0.3", &c, &inv).len(),
            providers().len()
        );
    }

    #[test]
    fn method_rule_sends_say_hello_to_region_hz() {
        let c = consumer("10.0.0.1", "");
        let rule = "method = sayHello => region = hz";
        assert_eq!(
            route(rule, &c, &call("sayHello")),
            ["10.0.0.1:20880", "10.0.0.2:20880"]
        );
        assert_eq!(route(rule, &c, &call("sayHi")).len(), providers().len());
    }

    #[test]
    fn first_argument_vip_goes_to_gold_providers() {
        let c = consumer("10.0.0.1", "");
        let rule = "arguments[0] = vip => dubbo.tag = gold";
        let mut inv = call("sayHello");
        inv.args = vec![Value::String("vip".into())];
        assert_eq!(route(rule, &c, &inv), ["10.0.0.3:20880"]);
        inv.args = vec![Value::String("basic".into())];
        assert_eq!(route(rule, &c, &inv).len(), providers().len());
        inv.args = vec![];
        assert_eq!(route(rule, &c, &inv).len(), providers().len());
    }

    #[test]
    fn numeric_and_boolean_arguments_compare_as_java_prints_them() {
        let c = consumer("10.0.0.1", "");
        let mut inv = call("buy");
        inv.args = vec![
            Value::Long(42),
            Value::Bool(true),
            Value::Double(2.0),
            Value::Int(7),
        ];
        let rule = "arguments[0] = 42 & arguments[1] = true & arguments[2] = 2.0 & arguments[3] = 1~10 => host = 10.0.0.2";
        assert_eq!(route(rule, &c, &inv), ["10.0.0.2:20880"]);
        inv.args[3] = Value::Int(11);
        assert_eq!(route(rule, &c, &inv).len(), providers().len());
    }

    #[test]
    fn attachment_tenant_a_goes_to_its_providers() {
        let c = consumer("10.0.0.1", "");
        let rule = "attachments[tenant] = a => region = sh";
        let mut inv = call("sayHello");
        inv.attachments = vec![("tenant".into(), "a".into())];
        assert_eq!(route(rule, &c, &inv), ["10.0.0.3:20880"]);
        inv.attachments = vec![("tenant".into(), "b".into())];
        assert_eq!(route(rule, &c, &inv).len(), providers().len());
        // A dotted attachment key is read whole.
        inv.attachments = vec![("x.tenant".into(), "a".into())];
        assert_eq!(
            route("attachments[x.tenant] = a => region = sh", &c, &inv),
            ["10.0.0.3:20880"]
        );
    }

    #[test]
    fn blacklist_rule_gives_that_consumer_no_provider() {
        let inv = call("sayHello");
        for rule in ["host = 10.0.0.1 => false", "host = 10.0.0.1 =>"] {
            assert!(route(rule, &consumer("10.0.0.1", ""), &inv).is_empty());
            assert_eq!(
                route(rule, &consumer("10.0.0.2", ""), &inv).len(),
                providers().len()
            );
        }
    }

    #[test]
    fn no_matching_provider_falls_back_to_all_without_force() {
        let rule = "=> region = nowhere";
        assert_eq!(
            route(rule, &consumer("10.0.0.1", ""), &call("sayHello")).len(),
            providers().len()
        );
    }

    #[test]
    fn no_matching_provider_gives_none_with_force() {
        let router = ConditionRouter::new("=> region = nowhere", true, true, 0).expect("valid");
        let routed = router.route(&providers(), &consumer("10.0.0.1", ""), &call("sayHello"));
        assert!(routed.is_empty());
    }

    #[test]
    fn disabled_rule_is_ignored() {
        let router = ConditionRouter::new("=> false", true, false, 0).expect("not parsed");
        let routed = router.route(&providers(), &consumer("10.0.0.1", ""), &call("sayHello"));
        assert_eq!(routed.len(), providers().len());
    }

    #[test]
    fn dollar_reference_routes_to_providers_on_the_consumers_host() {
        let c = consumer("10.0.0.2", "");
        assert_eq!(
            route("=> host = $host", &c, &call("sayHello")),
            ["10.0.0.2:20880"]
        );
    }

    #[test]
    fn url_form_reads_rule_force_enabled_and_priority() {
        let url = Url::parse(
            "condition://0.0.0.0/org.apache.dubbo.demo.DemoService?category=routers&dynamic=false&enabled=true&force=true&priority=3&rule=host+%3D+10.0.0.1+%3D%3E+region+%3D+nowhere",
        )
        .expect("valid url");
        let router = ConditionRouter::from_url(&url).expect("valid rule");
        assert_eq!(router.rule(), "host = 10.0.0.1 => region = nowhere");
        assert_eq!(router.priority(), 3);
        let routed = router.route(&providers(), &consumer("10.0.0.1", ""), &call("sayHello"));
        assert!(routed.is_empty(), "force=true from the URL");
    }

    #[test]
    fn url_form_decodes_a_rule_encoded_twice() {
        let url = Url::parse(
            "condition://0.0.0.0/org.apache.dubbo.demo.DemoService?rule=host%2B%253D%2B10.0.0.1%2B%253D%253E%2Bhost%2B%253D%2B10.0.0.2",
        )
        .expect("valid url");
        let router = ConditionRouter::from_url(&url).expect("valid rule");
        assert_eq!(router.rule(), "host = 10.0.0.1 => host = 10.0.0.2");
    }

    #[test]
    fn url_without_rule_is_an_error_naming_the_url() {
        let url = Url::parse("condition://0.0.0.0/com.foo.Bar?category=routers").expect("url");
        let err = ConditionRouter::from_url(&url).expect_err("no rule");
        assert!(err.to_string().contains("com.foo.Bar"), "{err}");
    }
}
