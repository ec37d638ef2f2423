//! The tag router (Dubbo's `TagStateRouter`): a call carrying a tag goes to the providers of that
//! tag; a call without one stays off tagged providers.
//!
//! The request tag is the invocation's `dubbo.tag` attachment, else the consumer URL's
//! `dubbo.tag`. A provider belongs to a tag dynamically (a rule's `addresses`, or its `match` on
//! provider URL parameters) or statically (its own `dubbo.tag` parameter). With a tag, in order:
//! 1. the rule lists the tag: its providers; when none is up, `force: true` in the rule gives
//!    none, otherwise step 3;
//! 2. the rule does not list it: providers whose `dubbo.tag` equals the tag;
//! 3. when still none and `dubbo.force.tag` (attachment, else consumer URL) is not `true`: the
//!    providers in no rule tag and without a `dubbo.tag` of their own.
//!
//! Without a tag: providers in no rule tag whose own `dubbo.tag` is empty or names no tag of the
//! rule. Without a rule (or with a disabled one) only static tags count, exactly as in Dubbo.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use super::address::AddressPattern;
use super::Router;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// The URL parameter and attachment carrying a tag.
pub const TAG_KEY: &str = "dubbo.tag";
/// The attachment or consumer parameter that forbids falling back to untagged providers.
pub const FORCE_TAG_KEY: &str = "dubbo.force.tag";
/// Dubbo's fixed priority of the tag router; condition routers default to 0 and so run first.
pub const DEFAULT_TAG_PRIORITY: i32 = 100;

/// How a `match` entry compares a provider parameter (Dubbo's `StringMatch`).
#[derive(Debug)]
pub(crate) enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    /// Equal, or anything when the pattern is `*`.
    Wildcard(String),
    /// Absent or empty.
    Empty,
    /// Present and not empty.
    NoEmpty,
}

impl StringMatch {
    fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (StringMatch::Exact(e), Some(v)) => v == e,
            (StringMatch::Prefix(p), Some(v)) => v.starts_with(p.as_str()),
            (StringMatch::Regex(r), Some(v)) => r.is_match(v),
            (StringMatch::Wildcard(w), Some(v)) => w == "*" || v == w,
            (StringMatch::Empty, v) => v.is_none_or(str::is_empty),
            (StringMatch::NoEmpty, v) => v.is_some_and(|v| !v.is_empty()),
            (_, None) => false,
        }
    }
}

/// One `match` entry: provider URL parameter `key` must satisfy `value`.
#[derive(Debug)]
pub(crate) struct ParamMatch {
    pub(crate) key: String,
    pub(crate) value: StringMatch,
}

/// One tag of a rule.
#[derive(Debug)]
pub(crate) struct TagSpec {
    pub(crate) name: String,
    pub(crate) addresses: Vec<AddressPattern>,
    /// Used only when `addresses` is empty, as in Dubbo.
    pub(crate) matches: Vec<ParamMatch>,
}

impl TagSpec {
    /// Whether the provider at `url` belongs to this tag.
    fn contains(&self, url: &Url) -> bool {
        if !self.addresses.is_empty() {
            self.addresses
                .iter()
                .any(|a| a.matches(&url.host, url.port))
        } else {
            !self.matches.is_empty()
                && self
                    .matches
                    .iter()
                    .all(|m| m.value.matches(url.param(&m.key)))
        }
    }
}

/// A tag rule (`{app}.tag-router`), parsed once.
#[derive(Debug)]
pub(crate) struct TagRule {
    pub(crate) force: bool,
    pub(crate) tags: Vec<TagSpec>,
}

impl TagRule {
    fn in_any_tag(&self, url: &Url) -> bool {
        self.tags.iter().any(|t| t.contains(url))
    }

    fn names(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.name == tag)
    }
}

/// Routes by request tag, with or without a dynamic tag rule.
pub struct TagRouter {
    rule: Option<TagRule>,
    priority: i32,
}

impl TagRouter {
    /// A tag router that honours only the providers' own `dubbo.tag` (no rule, or a rule that
    /// was deleted or disabled); Dubbo keeps this router in every chain.
    pub fn static_tags() -> TagRouter {
        TagRouter {
            rule: None,
            priority: DEFAULT_TAG_PRIORITY,
        }
    }

    pub(crate) fn with_rule(rule: Option<TagRule>, priority: i32) -> TagRouter {
        TagRouter { rule, priority }
    }
}

impl fmt::Debug for TagRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TagRouter")
            .field("rule", &self.rule)
            .field("priority", &self.priority)
            .finish()
    }
}

fn provider_tag(invoker: &Arc<dyn Invoker>) -> &str {
    invoker.url().param(TAG_KEY).unwrap_or("")
}

fn filter(
    invokers: &[Arc<dyn Invoker>],
    keep: impl Fn(&Arc<dyn Invoker>) -> bool,
) -> Vec<Arc<dyn Invoker>> {
    invokers.iter().filter(|i| keep(i)).cloned().collect()
}

/// The request's tag: attachment first, then consumer URL; empty means none.
fn request_value<'a>(inv: &'a Invocation, consumer: &'a Url, key: &str) -> Option<&'a str> {
    inv.attachments
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .or_else(|| consumer.param(key).filter(|v| !v.is_empty()))
}

/// Java's `Boolean.parseBoolean` of `dubbo.force.tag`, attachment first.
fn force_use_tag(inv: &Invocation, consumer: &Url) -> bool {
    let value = inv
        .attachments
        .iter()
        .find(|(k, _)| k == FORCE_TAG_KEY)
        .map(|(_, v)| v.as_str())
        .or_else(|| consumer.param(FORCE_TAG_KEY));
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl Router for TagRouter {
    fn route(
        &self,
        invokers: &[Arc<dyn Invoker>],
        consumer: &Url,
        inv: &Invocation,
    ) -> Vec<Arc<dyn Invoker>> {
        if invokers.is_empty() {
            return Vec::new();
        }
        let tag = request_value(inv, consumer, TAG_KEY);
        let Some(rule) = &self.rule else {
            return match tag {
                Some(tag) => {
                    let tagged = filter(invokers, |i| provider_tag(i) == tag);
                    if tagged.is_empty() && !force_use_tag(inv, consumer) {
                        filter(invokers, |i| provider_tag(i).is_empty())
                    } else {
                        tagged
                    }
                }
                None => filter(invokers, |i| provider_tag(i).is_empty()),
            };
        };
        let Some(tag) = tag else {
            return filter(invokers, |i| {
                let own = provider_tag(i);
                !rule.in_any_tag(i.url()) && (own.is_empty() || !rule.names(own))
            });
        };
        // Dubbo keeps the last entry when a tag name repeats.
        let spec = rule.tags.iter().rev().find(|t| t.name == tag);
        // A `match` tag counts as listed only when it selects some current provider, the way
        // Dubbo turns it into addresses from the provider list.
        let listed = spec
            .filter(|s| !s.addresses.is_empty() || invokers.iter().any(|i| s.contains(i.url())));
        let result = match listed {
            Some(spec) => {
                let routed = filter(invokers, |i| spec.contains(i.url()));
                if !routed.is_empty() || rule.force {
                    return routed;
                }
                routed
            }
            None => filter(invokers, |i| provider_tag(i) == tag),
        };
        if !result.is_empty() || force_use_tag(inv, consumer) {
            return result;
        }
        filter(invokers, |i| {
            !rule.in_any_tag(i.url()) && provider_tag(i).is_empty()
        })
    }

    /// The tag router reads only the call's `dubbo.tag` and `dubbo.force.tag` attachments (the
    /// consumer URL is the same for every call of a directory).
    fn routes_alike(&self, inv: &Invocation) -> bool {
        !inv.attachments
            .iter()
            .any(|(k, _)| k == TAG_KEY || k == FORCE_TAG_KEY)
    }

    fn priority(&self) -> i32 {
        self.priority
    }

    fn describe(&self) -> String {
        match &self.rule {
            None => format!(
                "tag: providers' own dubbo.tag only (priority={})",
                self.priority
            ),
            Some(rule) => {
                let names: Vec<&str> = rule.tags.iter().map(|t| t.name.as_str()).collect();
                format!(
                    "tag: rule with tags [{}] (priority={}, force={})",
                    names.join(", "),
                    self.priority,
                    rule.force
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::tag_from_yaml;
    use crate::router::testing::{addresses, call, consumer, provider};

    /// Untagged 10.0.0.1 and .2, static `gold` on .3, rule-tagged `blue` at .4 (via YAML).
    fn fleet() -> Vec<Arc<dyn Invoker>> {
        [
            "dubbo://10.0.0.1:20880/com.foo.Bar?application=p",
            "dubbo://10.0.0.2:20880/com.foo.Bar?application=p",
            "dubbo://10.0.0.3:20880/com.foo.Bar?application=p&dubbo.tag=gold",
            "dubbo://10.0.0.4:20880/com.foo.Bar?application=p",
        ]
        .into_iter()
        .map(provider)
        .collect()
    }

    const RULE: &str = "
configVersion: v3.0
force: false
enabled: true
key: p
tags:
  - name: blue
    addresses: [\"10.0.0.4:20880\"]
  - name: gold
";

    fn tagged(tag: &str) -> Invocation {
        let mut inv = call("sayHello");
        inv.attachments = vec![(TAG_KEY.into(), tag.into())];
        inv
    }

    fn route(router: &dyn Router, inv: &Invocation, c: &Url) -> Vec<String> {
        addresses(&router.route(&fleet(), c, inv))
    }

    #[test]
    fn tagged_request_goes_to_tagged_providers() {
        let c = consumer("10.9.9.9", "");
        let router = TagRouter::static_tags();
        assert_eq!(route(&router, &tagged("gold"), &c), ["10.0.0.3:20880"]);
        let router = tag_from_yaml(RULE).expect("valid rule");
        assert_eq!(route(&*router, &tagged("gold"), &c), ["10.0.0.3:20880"]);
    }

    #[test]
    fn yaml_addresses_put_providers_in_a_tag() {
        let c = consumer("10.9.9.9", "");
        let router = tag_from_yaml(RULE).expect("valid rule");
        assert_eq!(route(&*router, &tagged("blue"), &c), ["10.0.0.4:20880"]);
        // The consumer URL's tag is used when the call carries none.
        let c = consumer("10.9.9.9", "dubbo.tag=blue");
        assert_eq!(route(&*router, &call("sayHello"), &c), ["10.0.0.4:20880"]);
    }

    #[test]
    fn tagged_request_falls_back_to_untagged_without_force() {
        let c = consumer("10.9.9.9", "");
        let router = tag_from_yaml(RULE).expect("valid rule");
        assert_eq!(
            route(&*router, &tagged("silver"), &c),
            ["10.0.0.1:20880", "10.0.0.2:20880"]
        );
        assert_eq!(
            route(&TagRouter::static_tags(), &tagged("silver"), &c),
            ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.4:20880"]
        );
    }

    #[test]
    fn tagged_request_gets_none_with_force() {
        let router = tag_from_yaml(RULE).expect("valid rule");
        let mut inv = tagged("silver");
        inv.attachments.push((FORCE_TAG_KEY.into(), "true".into()));
        assert!(route(&*router, &inv, &consumer("10.9.9.9", "")).is_empty());
        let c = consumer("10.9.9.9", "dubbo.force.tag=true");
        assert!(route(&*router, &tagged("silver"), &c).is_empty());
        // `force: true` in the rule applies to a tag whose listed addresses are all down.
        let forced = tag_from_yaml(
            "force: true\ntags:\n  - name: blue\n    addresses: [\"10.0.0.99:20880\"]\n",
        )
        .expect("valid rule");
        assert!(route(&*forced, &tagged("blue"), &consumer("10.9.9.9", "")).is_empty());
        let lenient = tag_from_yaml(
            "force: false\ntags:\n  - name: blue\n    addresses: [\"10.0.0.99:20880\"]\n",
        )
        .expect("valid rule");
        assert_eq!(
            route(&*lenient, &tagged("blue"), &consumer("10.9.9.9", "")),
            ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.4:20880"]
        );
    }

    #[test]
    fn untagged_request_never_goes_to_tagged_providers() {
        let c = consumer("10.9.9.9", "");
        let router = tag_from_yaml(RULE).expect("valid rule");
        assert_eq!(
            route(&*router, &call("sayHello"), &c),
            ["10.0.0.1:20880", "10.0.0.2:20880"]
        );
        assert_eq!(
            route(&TagRouter::static_tags(), &call("sayHello"), &c),
            ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.4:20880"]
        );
    }

    #[test]
    fn disabled_rule_leaves_only_static_tags() {
        let router =
            tag_from_yaml(&RULE.replace("enabled: true", "enabled: false")).expect("valid rule");
        assert_eq!(
            route(&*router, &tagged("blue"), &consumer("10.9.9.9", "")),
            ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.4:20880"]
        );
    }

    #[test]
    fn match_entries_select_providers_by_parameter() {
        let router = tag_from_yaml(
            "tags:\n  - name: canary\n    match:\n      - key: dubbo.tag\n        value:\n          prefix: go\n",
        )
        .expect("valid rule");
        let c = consumer("10.9.9.9", "");
        assert_eq!(route(&*router, &tagged("canary"), &c), ["10.0.0.3:20880"]);
        // Providers a `match` tag selects are off limits to untagged calls.
        assert_eq!(
            route(&*router, &call("sayHello"), &c),
            ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.4:20880"]
        );
    }
}
