//! Java names as WIT identifiers: `getUser` → `get-user`, `HTTPServer` → `http-server`,
//! `DARK_RED` → `dark-red`, keywords escaped with `%`. The binder turns WIT names back with
//! [`crate::java::lower_camel`] and [`crate::java::screaming_snake`]; whether a name survives
//! that round trip decides whether the generator needs a `java-name` (methods) or must refuse
//! (record fields and enum constants, which have no per-name override).

/// Words WIT reserves; an identifier spelled like one is written `%word`.
const KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "error-context",
    "export",
    "f32",
    "f64",
    "flags",
    "from",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "own",
    "option",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u16",
    "u32",
    "u64",
    "u8",
    "use",
    "variant",
    "with",
    "world",
];

/// A Java identifier (or dotted name, or `Outer$Inner`) in kebab-case: words split at `_`,
/// `$`, `.`, `-`, before an upper-case letter that follows a lower-case one or a digit, and
/// before the last capital of an acronym followed by lower case (`HTTPServer` →
/// `http-server`). Digits stay with the word before them (`sha256Sum` → `sha256-sum`), since a
/// WIT word may not start with one.
pub fn kebab(java: &str) -> String {
    let chars: Vec<char> = java.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if matches!(c, '_' | '$' | '.' | '-') || !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && !word.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                words.push(std::mem::take(&mut word));
            }
        }
        if c.is_ascii_digit() && word.is_empty() {
            // Glued to the previous word: `value_2` → `value2`.
            if let Some(last) = words.last_mut() {
                last.push(c);
                continue;
            }
            word.push('n');
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    let words: Vec<String> = words
        .into_iter()
        .map(|w| {
            w.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return "x".to_string();
    }
    words.join("-")
}

/// `name` as it is written in a WIT file: `%name` when it is a keyword.
pub fn escaped(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("%{name}")
    } else {
        name.to_string()
    }
}

/// Whether the binder's Java spelling of `wit` (lowerCamelCase) is `java`.
pub fn camel_round_trips(java: &str, wit: &str) -> bool {
    crate::java::lower_camel(wit) == java
}

/// Whether the binder's enum constant spelling of `wit` (SCREAMING_SNAKE) is `java`.
pub fn constant_round_trips(java: &str, wit: &str) -> bool {
    crate::java::screaming_snake(wit) == java
}

/// Whether `text` is a WIT identifier (`word(-word)*`, each word starting with a letter).
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('-').all(|w| {
            let mut chars = w.chars();
            chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_names_become_kebab_case_words() {
        assert_eq!(kebab("getUser"), "get-user");
        assert_eq!(kebab("listUsers"), "list-users");
        assert_eq!(kebab("HTTPServer"), "http-server");
        assert_eq!(kebab("userID"), "user-id");
        assert_eq!(kebab("DARK_RED"), "dark-red");
        assert_eq!(kebab("sha256Sum"), "sha256-sum");
        assert_eq!(kebab("value_2"), "value2");
        assert_eq!(kebab("Outer$Inner"), "outer-inner");
        assert_eq!(kebab("User"), "user");
        assert!(is_identifier(&kebab("_3d")));
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(escaped("type"), "%type");
        assert_eq!(escaped("list"), "%list");
        assert_eq!(escaped("name"), "name");
    }

    #[test]
    fn round_trips_tell_which_names_the_binder_spells_back() {
        assert!(camel_round_trips("getUser", &kebab("getUser")));
        assert!(!camel_round_trips("user_name", &kebab("user_name")));
        assert!(!camel_round_trips("ID", &kebab("ID")));
        assert!(constant_round_trips("DARK_RED", &kebab("DARK_RED")));
        assert!(!constant_round_trips("Red", &kebab("Red")));
    }
}
