//! Router rules as Dubbo 2.7+ keeps them in the config center: YAML documents at
//! `/dubbo/config/dubbo/{ruleKey}.condition-router` and `{providerApp}.tag-router`.
//!
//! Only the fields that change routing are read; `configVersion`, `scope`, `key` and `runtime`
//! are accepted and ignored (the caller knows the key from the path, and every rule is
//! evaluated per call).

use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;

use super::address::AddressPattern;
use super::condition::ConditionRouter;
use super::tag::{ParamMatch, StringMatch, TagRouter, TagRule, TagSpec, DEFAULT_TAG_PRIORITY};
use super::{Router, RouterError};

fn yes() -> bool {
    true
}

/// A condition rule document.
#[derive(Deserialize)]
struct ConditionDoc {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    conditions: Vec<String>,
}

/// A tag rule document.
#[derive(Deserialize)]
struct TagDoc {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    force: bool,
    priority: Option<i32>,
    #[serde(default)]
    tags: Vec<TagEntry>,
}

#[derive(Deserialize)]
struct TagEntry {
    name: String,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default, rename = "match")]
    matches: Vec<ParamMatchEntry>,
}

#[derive(Deserialize)]
struct ParamMatchEntry {
    key: String,
    value: StringMatchEntry,
}

#[derive(Deserialize)]
struct StringMatchEntry {
    exact: Option<String>,
    prefix: Option<String>,
    regex: Option<String>,
    wildcard: Option<String>,
    empty: Option<String>,
    noempty: Option<String>,
}

/// One router per entry of `conditions`, each with the document's `force`, `enabled` and
/// `priority`, in document order.
pub(crate) fn condition_routers(text: &str) -> Result<Vec<Arc<dyn Router>>, RouterError> {
    let doc: ConditionDoc = serde_norway::from_str(text).map_err(|e| RouterError::BadYaml {
        kind: "condition",
        reason: format!(
            "{e}; expected `conditions` to be a list of `when => then` strings (configVersion \
             v3.1 multi-destination conditions are not supported)"
        ),
    })?;
    if doc.conditions.is_empty() {
        return Err(RouterError::BadYaml {
            kind: "condition",
            reason: "`conditions` is missing or empty".into(),
        });
    }
    doc.conditions
        .iter()
        .map(|c| {
            ConditionRouter::new(c, doc.force, doc.enabled, doc.priority)
                .map(|r| Arc::new(r) as Arc<dyn Router>)
        })
        .collect()
}

/// The tag router a tag rule document describes.
pub(crate) fn tag_router(text: &str) -> Result<TagRouter, RouterError> {
    let doc: TagDoc = serde_norway::from_str(text).map_err(|e| RouterError::BadYaml {
        kind: "tag",
        reason: e.to_string(),
    })?;
    let priority = doc.priority.unwrap_or(DEFAULT_TAG_PRIORITY);
    if !doc.enabled {
        return Ok(TagRouter::with_rule(None, priority));
    }
    let tags = doc
        .tags
        .into_iter()
        .map(tag_spec)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TagRouter::with_rule(
        Some(TagRule {
            force: doc.force,
            tags,
        }),
        priority,
    ))
}

fn tag_spec(entry: TagEntry) -> Result<TagSpec, RouterError> {
    let bad = |reason: String| RouterError::BadTag {
        tag: entry.name.clone(),
        reason,
    };
    if entry.name.is_empty() {
        return Err(bad("the tag has no `name`".into()));
    }
    let addresses = entry
        .addresses
        .iter()
        .map(|a| AddressPattern::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let matches = entry
        .matches
        .iter()
        .map(|m| {
            string_match(&m.value)
                .map(|value| ParamMatch {
                    key: m.key.clone(),
                    value,
                })
                .map_err(|reason| bad(format!("`match` on `{}`: {reason}", m.key)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TagSpec {
        name: entry.name.clone(),
        addresses,
        matches,
    })
}

/// The first condition set, in Dubbo's order of precedence.
fn string_match(m: &StringMatchEntry) -> Result<StringMatch, String> {
    if let Some(e) = &m.exact {
        return Ok(StringMatch::Exact(e.clone()));
    }
    if let Some(p) = &m.prefix {
        return Ok(StringMatch::Prefix(p.clone()));
    }
    if let Some(r) = &m.regex {
        // Java's `String.matches` must match the whole value.
        return Regex::new(&format!("^(?:{r})$"))
            .map(StringMatch::Regex)
            .map_err(|e| format!("regex `{r}` is not valid: {e}"));
    }
    if let Some(w) = &m.wildcard {
        return Ok(StringMatch::Wildcard(w.clone()));
    }
    if m.empty.is_some() {
        return Ok(StringMatch::Empty);
    }
    if m.noempty.is_some() {
        return Ok(StringMatch::NoEmpty);
    }
    Err("expected one of `exact`, `prefix`, `regex`, `wildcard`, `empty`, `noempty`".into())
}
