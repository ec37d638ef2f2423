//! Dubbo 3 migration between interface-level and application-level discovery, as Java's
//! `MigrationInvoker`, `MigrationRuleHandler` and `DefaultMigrationAddressComparator` do it:
//! the step (`FORCE_INTERFACE`, `APPLICATION_FIRST` — the default — or `FORCE_APPLICATION`)
//! and threshold that apply to one reference, from the rule its application has in the config
//! center (`{application}.migration`, group `DUBBO_SERVICEDISCOVERY_MIGRATION`), else the
//! reference's `migration.step` / `migration.threshold`; and which provider set that makes the
//! reference use.

use serde::Deserialize;

use crate::url::Url;

/// A migration step, by its Dubbo name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Step {
    /// Interface-level providers only (`/dubbo/{interface}/providers`).
    #[serde(rename = "FORCE_INTERFACE")]
    ForceInterface,
    /// Application-level providers when there are any (and enough, by the threshold), else
    /// interface-level ones: Dubbo 3's default.
    #[serde(rename = "APPLICATION_FIRST")]
    ApplicationFirst,
    /// Application-level providers only.
    #[serde(rename = "FORCE_APPLICATION")]
    ForceApplication,
}

impl Step {
    /// The step called `name` (`FORCE_INTERFACE`, `APPLICATION_FIRST`, `FORCE_APPLICATION`).
    pub fn by_name(name: &str) -> Option<Step> {
        match name.trim() {
            "FORCE_INTERFACE" => Some(Step::ForceInterface),
            "APPLICATION_FIRST" => Some(Step::ApplicationFirst),
            "FORCE_APPLICATION" => Some(Step::ForceApplication),
            _ => None,
        }
    }

    /// The Dubbo name.
    pub fn name(self) -> &'static str {
        match self {
            Step::ForceInterface => "FORCE_INTERFACE",
            Step::ApplicationFirst => "APPLICATION_FIRST",
            Step::ForceApplication => "FORCE_APPLICATION",
        }
    }
}

/// Which provider set a reference uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Interface,
    Application,
}

impl Side {
    /// `interface` or `application`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Interface => "interface",
            Side::Application => "application",
        }
    }
}

/// Why a migration rule is not taken; the previous rule stays in effect.
#[derive(Debug, thiserror::Error)]
#[error("migration rule: {0}")]
pub struct RuleError(String);

/// A migration rule document (Java's `MigrationRule`); `key`, `proportion` and `delay` are
/// accepted (`delay` only matters to a consumer that waits before comparing, which this one
/// does not need: it compares on every change).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub key: Option<String>,
    pub step: Option<Step>,
    pub threshold: Option<f64>,
    pub force: Option<bool>,
    pub proportion: Option<i64>,
    pub delay: Option<i64>,
    #[serde(default)]
    pub interfaces: Vec<SubRule>,
    #[serde(default)]
    pub applications: Vec<SubRule>,
}

/// A rule for one interface (`serviceKey` = `interface[:version]`) or one provider application.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubRule {
    pub service_key: String,
    pub step: Option<Step>,
    pub threshold: Option<f64>,
    pub force: Option<bool>,
}

impl Rule {
    /// Parses the YAML of a rule. Blank text is no rule (Dubbo treats it as deleted).
    pub fn parse(text: &str) -> Result<Option<Rule>, RuleError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_norway::from_str(text)
            .map(Some)
            .map_err(|e| RuleError(e.to_string()))
    }
}

/// The step, threshold and force that apply to one reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub step: Step,
    /// `app / interface` providers at least this for the application-level set to win.
    pub threshold: f64,
    /// Switch a `FORCE_*` step without comparing the sets.
    pub force: bool,
}

/// The policy of the reference whose consumer URL is `consumer`, whose interface the
/// applications `apps` provide: per field, its interface's entry in `rule` (`interface` or
/// `interface:version`, as Dubbo's display service key), then the first of its applications
/// with an entry, then the rule itself, then the reference's `migration.step` /
/// `migration.threshold` / `migration.force`, then `APPLICATION_FIRST`, 0, false.
pub fn policy(rule: Option<&Rule>, consumer: &Url, apps: &[String]) -> Policy {
    let interface = consumer
        .param("interface")
        .filter(|i| !i.is_empty())
        .unwrap_or(&consumer.path);
    let display = match consumer.param("version").filter(|v| !v.is_empty()) {
        Some(v) => format!("{interface}:{v}"),
        None => interface.to_string(),
    };
    let by_interface = rule.and_then(|r| r.interfaces.iter().find(|s| s.service_key == display));
    let by_app = |pick: &dyn Fn(&SubRule) -> bool| {
        rule.and_then(|r| {
            let mut sorted: Vec<&String> = apps.iter().collect();
            sorted.sort();
            sorted.into_iter().find_map(|app| {
                r.applications
                    .iter()
                    .find(|s| &s.service_key == app && pick(s))
            })
        })
    };
    let step = by_interface
        .and_then(|s| s.step)
        .or_else(|| by_app(&|s| s.step.is_some()).and_then(|s| s.step))
        .or_else(|| rule.and_then(|r| r.step))
        .or_else(|| consumer.param("migration.step").and_then(Step::by_name))
        .unwrap_or(Step::ApplicationFirst);
    let threshold = by_interface
        .and_then(|s| s.threshold)
        .or_else(|| by_app(&|s| s.threshold.is_some()).and_then(|s| s.threshold))
        .or_else(|| rule.and_then(|r| r.threshold))
        .or_else(|| {
            consumer
                .param("migration.threshold")
                .and_then(|t| t.trim().parse().ok())
        })
        .filter(|t: &f64| *t >= 0.0)
        .unwrap_or(0.0);
    let force = by_interface
        .and_then(|s| s.force)
        .or_else(|| by_app(&|s| s.force.is_some()).and_then(|s| s.force))
        .or_else(|| rule.and_then(|r| r.force))
        .unwrap_or_else(|| consumer.param_bool("migration.force", false));
    Policy {
        step,
        threshold,
        force,
    }
}

/// Dubbo's `shouldMigrate(new, old)`: the new set has providers, and the old has none or
/// `new / old >= threshold`.
fn should_migrate(new: usize, old: usize, threshold: f64) -> bool {
    new > 0 && (old == 0 || new as f64 / old as f64 >= threshold)
}

/// The set a reference uses with `application` and `interface` providers listed, having used
/// `current` so far (`None` before the first choice). `APPLICATION_FIRST` takes the
/// application-level set when it should migrate to it, else the interface-level one. A
/// `FORCE_*` step moves to its set at once the first time, when forced, or when the comparison
/// allows; otherwise the current set stays, as Dubbo keeps its invoker when a switch fails.
pub fn choose(
    policy: &Policy,
    application: usize,
    interface: usize,
    current: Option<Side>,
) -> Side {
    match policy.step {
        Step::ApplicationFirst => {
            if should_migrate(application, interface, policy.threshold) {
                Side::Application
            } else {
                Side::Interface
            }
        }
        Step::ForceApplication => match current {
            Some(Side::Interface)
                if !policy.force && !should_migrate(application, interface, policy.threshold) =>
            {
                Side::Interface
            }
            _ => Side::Application,
        },
        Step::ForceInterface => match current {
            Some(Side::Application)
                if !policy.force && !should_migrate(interface, application, policy.threshold) =>
            {
                Side::Application
            }
            _ => Side::Interface,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(query: &str) -> Url {
        Url::parse(&format!(
            "consumer://10.0.0.9/org.x.DemoService?interface=org.x.DemoService&application=c&{query}"
        ))
        .expect("valid url")
    }

    const RULE: &str = "key: c
step: FORCE_INTERFACE
threshold: 0.5
proportion: 60
delay: 60
force: false
interfaces:
  - serviceKey: org.x.DemoService:1.0.0
    step: FORCE_APPLICATION
    threshold: 1.0
applications:
  - serviceKey: users-app
    step: APPLICATION_FIRST
    force: true
";

    fn rule() -> Rule {
        Rule::parse(RULE).expect("valid").expect("a rule")
    }

    #[test]
    fn rule_fields_parse_as_dubbo_writes_them() {
        let r = rule();
        assert_eq!(r.step, Some(Step::ForceInterface));
        assert_eq!(r.threshold, Some(0.5));
        assert_eq!(r.interfaces[0].service_key, "org.x.DemoService:1.0.0");
        assert_eq!(r.applications[0].force, Some(true));
        assert!(Rule::parse("  \n").expect("blank").is_none());
        for bad in ["step: SOMETIMES", "threshold: high", "- a list"] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_interface_entry_then_the_application_then_the_rule_then_the_url_decide() {
        let r = rule();
        let p = policy(Some(&r), &consumer("version=1.0.0"), &["users-app".into()]);
        assert_eq!(
            (p.step, p.threshold, p.force),
            (Step::ForceApplication, 1.0, true)
        );
        let p = policy(Some(&r), &consumer("version=2.0.0"), &["users-app".into()]);
        assert_eq!(
            (p.step, p.threshold, p.force),
            (Step::ApplicationFirst, 0.5, true)
        );
        let p = policy(Some(&r), &consumer("version=2.0.0"), &["other".into()]);
        assert_eq!(
            (p.step, p.threshold, p.force),
            (Step::ForceInterface, 0.5, false)
        );
        let p = policy(
            None,
            &consumer("migration.step=FORCE_APPLICATION&migration.threshold=2"),
            &[],
        );
        assert_eq!((p.step, p.threshold), (Step::ForceApplication, 2.0));
        let p = policy(None, &consumer(""), &[]);
        assert_eq!(
            (p.step, p.threshold, p.force),
            (Step::ApplicationFirst, 0.0, false)
        );
    }

    fn with(step: Step, threshold: f64, force: bool) -> Policy {
        Policy {
            step,
            threshold,
            force,
        }
    }

    #[test]
    fn application_first_takes_the_application_set_when_it_has_enough() {
        let p = with(Step::ApplicationFirst, 0.0, false);
        assert_eq!(choose(&p, 1, 5, None), Side::Application);
        assert_eq!(choose(&p, 0, 5, None), Side::Interface);
        assert_eq!(choose(&p, 0, 0, None), Side::Interface);
        let p = with(Step::ApplicationFirst, 0.8, false);
        assert_eq!(choose(&p, 3, 5, Some(Side::Application)), Side::Interface);
        assert_eq!(choose(&p, 4, 5, Some(Side::Interface)), Side::Application);
        assert_eq!(choose(&p, 1, 0, None), Side::Application);
    }

    #[test]
    fn force_steps_switch_when_allowed_and_keep_the_current_set_otherwise() {
        let p = with(Step::ForceApplication, 1.0, false);
        assert_eq!(choose(&p, 0, 3, None), Side::Application, "first choice");
        assert_eq!(choose(&p, 1, 3, Some(Side::Interface)), Side::Interface);
        assert_eq!(choose(&p, 3, 3, Some(Side::Interface)), Side::Application);
        assert_eq!(choose(&p, 0, 3, Some(Side::Application)), Side::Application);
        let forced = with(Step::ForceApplication, 1.0, true);
        assert_eq!(
            choose(&forced, 0, 3, Some(Side::Interface)),
            Side::Application
        );
        let p = with(Step::ForceInterface, 0.0, false);
        assert_eq!(choose(&p, 3, 1, Some(Side::Application)), Side::Interface);
        assert_eq!(choose(&p, 3, 0, Some(Side::Application)), Side::Application);
    }
}
