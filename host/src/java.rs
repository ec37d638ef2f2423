//! Java's naming rules, shared by every layer that turns WIT or JSON into a Dubbo call: WIT
//! kebab-case names as Java spells them (`get-user` → `getUser`, `user-info` → `UserInfo`,
//! `dark-red` → `DARK_RED`), and Java type names (`java.util.Map<String, Long>`, `int[]`,
//! `[Ljava.lang.String;`) parsed into a [`TypeName`] that knows its JVM descriptor.

/// Why a text is not a Java type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{java_type}` is not a Java type name: {problem}")]
pub struct TypeNameError {
    pub java_type: String,
    pub problem: String,
}

/// kebab-case to lowerCamelCase (`get-user-by-id` → `getUserById`).
pub fn lower_camel(wit: &str) -> String {
    let mut out = String::with_capacity(wit.len());
    let mut upper = false;
    for c in wit.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// kebab-case to UpperCamelCase (`user-info` → `UserInfo`).
pub fn upper_camel(wit: &str) -> String {
    let lower = lower_camel(wit);
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => lower,
    }
}

/// kebab-case to SCREAMING_SNAKE_CASE (`dark-red` → `DARK_RED`), Java's enum constant style.
pub fn screaming_snake(wit: &str) -> String {
    wit.replace('-', "_").to_uppercase()
}

/// A parsed Java type: erased class or primitive name, generic arguments and array dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName {
    /// The class or primitive name, `java.lang` spelled out: `java.util.Map`, `int`.
    pub name: String,
    /// Generic arguments, erased on the wire but kept for conversions.
    pub args: Vec<TypeName>,
    /// Array dimensions.
    pub dims: usize,
}

const PRIMITIVES: [(&str, char); 9] = [
    ("int", 'I'),
    ("long", 'J'),
    ("boolean", 'Z'),
    ("byte", 'B'),
    ("short", 'S'),
    ("char", 'C'),
    ("float", 'F'),
    ("double", 'D'),
    ("void", 'V'),
];

/// `java.lang` types a Java source file names without their package.
const JAVA_LANG: [&str; 12] = [
    "String",
    "Object",
    "Integer",
    "Long",
    "Short",
    "Byte",
    "Character",
    "Boolean",
    "Float",
    "Double",
    "Number",
    "CharSequence",
];

impl TypeName {
    /// Parses a type name in Java source syntax (`java.util.List<String>`, `int[]`) or as
    /// `Class.getName()` prints arrays (`[I`, `[Ljava.lang.String;`).
    pub fn parse(text: &str) -> Result<TypeName, TypeNameError> {
        let bad = |problem: &str| TypeNameError {
            java_type: text.to_string(),
            problem: problem.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        if trimmed.starts_with('[') {
            return TypeName::parse_jvm_array(trimmed).ok_or_else(|| {
                bad("a JVM array name is `[` followed by a primitive code (e.g. `[I`) or `Lclass;` (e.g. `[Ljava.lang.String;`)")
            });
        }
        let mut rest = trimmed;
        let t = TypeName::parse_source(&mut rest, 0).map_err(|p| bad(&p))?;
        if !rest.trim().is_empty() {
            return Err(bad(&format!("unexpected `{}`", rest.trim())));
        }
        Ok(t)
    }

    /// `[I`, `[[J`, `[Ljava.lang.String;` (also with `/`), as `Class.getName()` prints arrays.
    fn parse_jvm_array(s: &str) -> Option<TypeName> {
        let dims = s.bytes().take_while(|&b| b == b'[').count();
        let elem = &s[dims..];
        let name = if let Some(class) = elem.strip_prefix('L').and_then(|e| e.strip_suffix(';')) {
            let class = class.replace('/', ".");
            valid_class_name(&class).then_some(class)?
        } else {
            let code = elem.chars().next().filter(|_| elem.len() == 1)?;
            PRIMITIVES
                .iter()
                .find(|(n, c)| *c == code && *n != "void")
                .map(|(n, _)| n.to_string())?
        };
        Some(TypeName {
            name,
            args: Vec::new(),
            dims,
        })
    }

    /// Source syntax: `a.b.C`, `int`, `java.util.Map<K, V>`, `T[]`, `T...`, `? extends T`,
    /// nested at most [`MAX_TYPE_DEPTH`] deep (type names come from registries too: a name
    /// nested without end must be an error, not a stack overflow).
    fn parse_source(rest: &mut &str, depth: usize) -> Result<TypeName, String> {
        if depth > MAX_TYPE_DEPTH {
            return Err(format!(
                "it nests type arguments more than {MAX_TYPE_DEPTH} deep"
            ));
        }
        *rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('?') {
            *rest = after.trim_start();
            for bound in ["extends", "super"] {
                if let Some(after) = rest.strip_prefix(bound) {
                    *rest = after;
                    let t = TypeName::parse_source(rest, depth + 1)?;
                    // `? super T` accepts anything above T: only Object is safe.
                    return Ok(if bound == "extends" { t } else { object_type() });
                }
            }
            return Ok(object_type());
        }
        let end = rest
            .find(|c: char| matches!(c, '<' | '>' | '[' | ',') || c.is_whitespace())
            .unwrap_or(rest.len());
        let raw = &rest[..end];
        *rest = &rest[end..];
        // `String...` (varargs) is one array dimension glued to the name.
        let varargs = raw.strip_suffix("...");
        let name = canonical_name(varargs.unwrap_or(raw))?;
        let mut args = Vec::new();
        *rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('<') {
            *rest = after;
            loop {
                args.push(TypeName::parse_source(rest, depth + 1)?);
                *rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix(',') {
                    *rest = after;
                } else if let Some(after) = rest.strip_prefix('>') {
                    *rest = after;
                    break;
                } else {
                    return Err("unclosed `<`".to_string());
                }
            }
        }
        let mut dims = usize::from(varargs.is_some());
        loop {
            *rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("[]") {
                *rest = after;
                dims += 1;
            } else if let Some(after) = rest.strip_prefix("...") {
                *rest = after;
                dims += 1;
            } else {
                break;
            }
        }
        if name == "void" && dims > 0 {
            return Err("there are no arrays of void".to_string());
        }
        Ok(TypeName { name, args, dims })
    }

    /// The JVM descriptor: `I`, `Ljava/lang/String;`, `[J`.
    pub fn descriptor(&self) -> String {
        let mut d = "[".repeat(self.dims);
        match primitive_code(&self.name) {
            Some(code) => d.push(code),
            None => {
                d.push('L');
                d.push_str(&self.name.replace('.', "/"));
                d.push(';');
            }
        }
        d
    }

    /// The element type of an array (one dimension less).
    pub fn element(&self) -> TypeName {
        TypeName {
            name: self.name.clone(),
            args: self.args.clone(),
            dims: self.dims.saturating_sub(1),
        }
    }

    /// Whether this is a primitive, not an array of one.
    pub fn is_primitive(&self) -> bool {
        self.dims == 0 && primitive_code(&self.name).is_some()
    }

    /// The list type hessian-lite writes for an array: `[int`, `[string`, `[[int`, `[a.b.C`.
    pub fn hessian_array_type(&self) -> String {
        if self.dims > 0 {
            return format!("[{}", self.element().hessian_array_type());
        }
        match self.name.as_str() {
            "java.lang.String" => "string".to_string(),
            "java.lang.Object" => "object".to_string(),
            "java.util.Date" => "date".to_string(),
            other => other.to_string(),
        }
    }

    /// The `i`-th generic argument.
    pub fn arg(&self, i: usize) -> Option<&TypeName> {
        self.args.get(i)
    }
}

impl std::fmt::Display for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.args.is_empty() {
            f.write_str("<")?;
            for (i, a) in self.args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(">")?;
        }
        for _ in 0..self.dims {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

/// `java.lang.Object`.
/// How deep type arguments may nest in a type name (`List<Map<String, List<Long>>>` is 3).
pub const MAX_TYPE_DEPTH: usize = 32;

pub fn object_type() -> TypeName {
    TypeName {
        name: "java.lang.Object".to_string(),
        args: Vec::new(),
        dims: 0,
    }
}

fn primitive_code(name: &str) -> Option<char> {
    PRIMITIVES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn canonical_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("a class or primitive name is missing".to_string());
    }
    if primitive_code(raw).is_some() {
        return Ok(raw.to_string());
    }
    if JAVA_LANG.contains(&raw) {
        return Ok(format!("java.lang.{raw}"));
    }
    if !valid_class_name(raw) {
        return Err(format!(
            "`{raw}` is not a class name like `java.lang.String`"
        ));
    }
    Ok(raw.to_string())
}

/// Whether `name` is a dotted Java class name (`org.x.User`, `a.B$C`).
pub fn valid_class_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

/// The JVM descriptor of a Java type name: `int` → `I`, `java.lang.String[]` → `[Ljava/lang/String;`.
pub fn java_descriptor(java_type: &str) -> Result<String, TypeNameError> {
    Ok(TypeName::parse(java_type)?.descriptor())
}

/// Splits a comma-separated list of Java type names, keeping commas inside `<...>` together.
pub fn split_type_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(text[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last.to_string());
    }
    out
}

/// The list type hessian-lite writes for a collection type: `Some(None)` for an untyped list
/// (an `ArrayList`, and what the provider builds for `List`/`Collection`), `None` if `name` is
/// not a collection.
pub fn collection_type(name: &str) -> Option<Option<&str>> {
    match name {
        "java.util.List"
        | "java.util.ArrayList"
        | "java.util.Collection"
        | "java.lang.Iterable" => Some(None),
        "java.util.Set" | "java.util.HashSet" => Some(Some("java.util.HashSet")),
        "java.util.SortedSet" | "java.util.NavigableSet" | "java.util.TreeSet" => {
            Some(Some("java.util.TreeSet"))
        }
        "java.util.Queue" | "java.util.Deque" => Some(Some("java.util.LinkedList")),
        _ => {
            let simple = name.rsplit('.').next().unwrap_or(name);
            let java_util = name.starts_with("java.util.") && !simple.contains("Map");
            let collection_like = ["List", "Set", "Queue", "Deque", "Vector", "Stack"]
                .iter()
                .any(|s| simple.ends_with(s));
            (java_util && collection_like).then_some(Some(name))
        }
    }
}

/// The map type hessian-lite writes for a map type: `Some(None)` for an untyped map (a
/// `HashMap`), `None` if `name` is not a map.
pub fn map_type(name: &str) -> Option<Option<&str>> {
    match name {
        "java.util.Map" | "java.util.HashMap" => Some(None),
        "java.util.SortedMap" | "java.util.NavigableMap" => Some(Some("java.util.TreeMap")),
        "java.util.concurrent.ConcurrentMap" => {
            Some(Some("java.util.concurrent.ConcurrentHashMap"))
        }
        "java.util.Hashtable" | "java.util.Properties" => Some(Some(name)),
        _ => (name.starts_with("java.util.") && name.ends_with("Map")).then_some(Some(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_nested_without_end_is_refused_not_a_stack_overflow() {
        let deep = |n: usize| format!("{}String{}", "java.util.List<".repeat(n), ">".repeat(n));
        assert!(TypeName::parse(&deep(MAX_TYPE_DEPTH)).is_ok());
        let err = TypeName::parse(&deep(100_000)).expect_err("too deep");
        assert!(err.to_string().contains("more than 32 deep"), "{err}");
        let wild = format!("{}String", "? extends ".repeat(100_000));
        assert!(TypeName::parse(&wild).is_err());
    }

    #[test]
    fn primitive_and_class_names_become_jvm_descriptors() {
        for (t, d) in [
            ("int", "I"),
            ("long", "J"),
            ("boolean", "Z"),
            ("byte", "B"),
            ("short", "S"),
            ("char", "C"),
            ("float", "F"),
            ("double", "D"),
            ("void", "V"),
            ("java.lang.String", "Ljava/lang/String;"),
            ("String", "Ljava/lang/String;"),
            ("org.x.User", "Lorg/x/User;"),
            ("org.x.Outer$Inner", "Lorg/x/Outer$Inner;"),
        ] {
            assert_eq!(java_descriptor(t).unwrap(), d, "{t}");
        }
    }

    #[test]
    fn arrays_are_accepted_in_source_and_jvm_spelling() {
        for (t, d) in [
            ("int[]", "[I"),
            ("java.lang.String[]", "[Ljava/lang/String;"),
            ("long[][]", "[[J"),
            ("java.lang.String...", "[Ljava/lang/String;"),
            ("[I", "[I"),
            ("[[B", "[[B"),
            ("[Ljava.lang.String;", "[Ljava/lang/String;"),
            ("[Ljava/lang/String;", "[Ljava/lang/String;"),
        ] {
            assert_eq!(java_descriptor(t).unwrap(), d, "{t}");
        }
    }

    #[test]
    fn generics_are_erased() {
        assert_eq!(
            java_descriptor("java.util.List<java.lang.String>").unwrap(),
            "Ljava/util/List;"
        );
        assert_eq!(
            java_descriptor("java.util.Map<String, java.util.List<? extends org.x.User>>[]")
                .unwrap(),
            "[Ljava/util/Map;"
        );
    }

    #[test]
    fn malformed_type_names_are_refused_with_the_name() {
        for t in [
            "",
            "java..String",
            "1abc",
            "java.util.List<String",
            "[X",
            "void[]",
            "String... x",
        ] {
            let err = java_descriptor(t).unwrap_err();
            assert!(err.to_string().contains(&format!("`{t}`")), "{t}: {err}");
        }
    }

    #[test]
    fn type_lists_split_outside_generic_brackets() {
        assert_eq!(
            split_type_list("long, java.util.Map<java.lang.String,java.lang.Long>,int[]"),
            vec![
                "long",
                "java.util.Map<java.lang.String,java.lang.Long>",
                "int[]"
            ]
        );
        assert!(split_type_list("").is_empty());
    }
}
