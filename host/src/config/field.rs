//! Where a TOML error is, in the config's own words: the byte offset serde reports becomes a
//! field path (`reference[1].timeout`) and a line, and the kind of error a fix.

use std::collections::HashMap;

/// What to do about a TOML parse or type error, by what serde said.
pub(super) fn parse_fix(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "remove the key or correct its spelling (keys are kebab-case); the known keys are listed above"
    } else if message.starts_with("missing field") {
        "add the field to this table (see README, Configuration)"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed above"
    } else {
        "correct the value at that line (see README, Configuration)"
    }
}

/// The 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// The config field at byte `offset` of `text`, as the config's own messages name fields:
/// `reference[1].timeout`, `reference[0].methods.say-hello.retries`, `http.listen`, or the
/// table (`guest[2]`) when the offset is on a table header.
pub(super) fn field_at(text: &str, offset: usize) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    // The last array-of-tables header: its name and the index of the current entry.
    let mut array: Option<(String, usize)> = None;
    let mut table = String::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let trimmed = line.trim();
        let header = if let Some(name) = trimmed
            .strip_prefix("[[")
            .and_then(|r| r.split_once("]]"))
            .map(|(n, _)| n.trim().to_string())
        {
            let n = counts.entry(name.clone()).or_insert(0);
            array = Some((name.clone(), *n));
            *n += 1;
            table = format!("{name}[{}]", *n - 1);
            true
        } else if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(n, _)| n.trim().to_string())
        {
            table = match &array {
                Some((a, i)) if name.starts_with(&format!("{a}.")) => {
                    format!("{a}[{i}]{}", &name[a.len()..])
                }
                _ => name,
            };
            true
        } else {
            false
        };
        if offset < end || end == text.len() {
            if header {
                return table;
            }
            let key = trimmed.split_once('=').map_or(trimmed, |(k, _)| k).trim();
            let key = key.trim_matches('"');
            return match (table.is_empty(), key.is_empty()) {
                (true, _) => key.to_string(),
                (false, true) => table,
                (false, false) => format!("{table}.{key}"),
            };
        }
        start = end;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[application]\nname = \"x\"\n\n[[reference]]\nid = \"a\"\ninterface = \"I\"\n\n[[reference]]\nid = \"b\"\ninterface = \"I\"\ntimeuot = 3\n\n[reference.methods.say-hello]\nretries = 1\n\n[http]\nlisten = \"x\"\n";

    fn offset(needle: &str) -> usize {
        TEXT.find(needle).unwrap_or(usize::MAX)
    }

    #[test]
    fn field_at_names_keys_by_table_and_array_index() {
        assert_eq!(field_at(TEXT, offset("name")), "application.name");
        assert_eq!(field_at(TEXT, offset("timeuot")), "reference[1].timeuot");
        assert_eq!(
            field_at(TEXT, offset("retries")),
            "reference[1].methods.say-hello.retries"
        );
        assert_eq!(field_at(TEXT, offset("listen")), "http.listen");
        assert_eq!(
            field_at(TEXT, offset("[[reference]]\nid = \"b\"")),
            "reference[1]"
        );
    }

    #[test]
    fn unknown_key_is_reported_at_its_field_with_its_line() {
        let err = super::super::Config::parse(TEXT, std::path::Path::new("bad.toml"))
            .expect_err("a config with `timeuot` is refused");
        let super::super::ConfigError::Parse {
            field,
            line,
            problem,
            fix,
            ..
        } = &err
        else {
            panic!("not a parse error: {err}")
        };
        assert_eq!(field.as_deref(), Some("reference[1].timeuot"));
        assert_eq!(*line, Some(line_of(TEXT, offset("timeuot"))));
        assert!(problem.contains("unknown field `timeuot`"), "{problem}");
        assert!(fix.contains("spelling"), "{fix}");
        let text = err.to_string();
        assert!(
            text.contains("bad.toml line 11 (`reference[1].timeuot`)"),
            "{text}"
        );
    }
}
