//! Parser for the value notation of the golden vectors' `MANIFEST.tsv` (described in
//! `shared/vectors/README.md`): `int 1 [1-byte]`, `string "a"`, `list#0 untyped fixed [...]`,
//! `object#0(def 0) T{f: v}`, `ref 0` and so on, into [`Value`]s to compare decoded files with.
//!
//! The `[...]` annotations on scalars (encoding forms, chunk sizes) and `(classdef ...)`
//! markers are skipped: the re-encoding test checks the forms byte for byte. A lone surrogate
//! (`\uD83D`) becomes U+FFFD, the decoder's documented policy.

use std::sync::Arc;

use super::super::value::{ClassDef, List, Map, Object, Value};

/// Parses one or more top-level values separated by ` ;; `. A trailing parenthesised comment
/// is allowed, as the `value` column uses them (`double 12.25 (exactly ...)`).
pub fn parse_values(text: &str) -> Result<Vec<Value>, String> {
    let mut p = Parser { s: text, i: 0 };
    let mut values = vec![p.value()?];
    loop {
        p.ws();
        if p.eat(";;") {
            values.push(p.value()?);
            continue;
        }
        if p.rest().starts_with('(') && p.rest().ends_with(')') {
            return Ok(values);
        }
        if p.rest().is_empty() {
            return Ok(values);
        }
        return Err(p.err("trailing text"));
    }
}

struct Parser<'s> {
    s: &'s str,
    i: usize,
}

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        &self.s[self.i..]
    }

    fn err(&self, what: &str) -> String {
        let rest: String = self.rest().chars().take(40).collect();
        format!("{what} at {:?}", rest)
    }

    fn ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.i = self.s.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.i += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        self.ws();
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.err(&format!("expected {token:?}")))
        }
    }

    /// A run of characters up to (not including) any of `stops`.
    fn until(&mut self, stops: &[char]) -> &'s str {
        let rest = self.rest();
        let end = rest.find(|c| stops.contains(&c)).unwrap_or(rest.len());
        self.i += end;
        &rest[..end]
    }

    fn word(&mut self) -> &'s str {
        self.ws();
        self.until(&[' ', ',', ']', '}', '[', '{', ':', ';', '('])
    }

    fn int(&mut self) -> Result<i64, String> {
        let w = self.word();
        w.parse()
            .map_err(|_| self.err(&format!("bad integer {w:?}")))
    }

    /// Skips `[...]` annotations (nested brackets included) after a scalar.
    fn annotations(&mut self) -> Result<(), String> {
        loop {
            let save = self.i;
            self.ws();
            if !self.rest().starts_with('[') {
                self.i = save;
                return Ok(());
            }
            let mut depth = 0;
            for (k, c) in self.rest().char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.i += k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if depth != 0 {
                return Err(self.err("unclosed annotation"));
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        if self.rest().starts_with("(classdef") {
            self.until(&[')']);
            self.expect(")")?;
            self.ws();
        }
        let keyword = self.until(&[' ', '#', ',', ']', '}', ';']);
        let v = match keyword {
            "null" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "boolean" => match self.word() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                w => return Err(self.err(&format!("bad boolean {w:?}"))),
            },
            "int" => {
                let n = self.int()?;
                Value::Int(i32::try_from(n).map_err(|_| self.err("int out of range"))?)
            }
            "long" => Value::Long(self.int()?),
            "double" => {
                let w = self.word();
                Value::Double(
                    w.parse()
                        .map_err(|_| self.err(&format!("bad double {w:?}")))?,
                )
            }
            "date" => {
                self.expect("epoch-ms")?;
                Value::Date(self.int()?)
            }
            "string" => self.string()?,
            "binary" => self.binary()?,
            "ref" => Value::Ref(u32::try_from(self.int()?).map_err(|_| self.err("bad ref"))?),
            "list" => return self.list(),
            "map" => return self.map(),
            "object" => return self.object(),
            other => return Err(self.err(&format!("unknown keyword {other:?}"))),
        };
        self.annotations()?;
        Ok(v)
    }

    fn string(&mut self) -> Result<Value, String> {
        self.ws();
        if self.rest().starts_with('"') {
            return Ok(Value::String(self.quoted()?));
        }
        // `string of N UTF-16 units, all "a"`
        self.expect("of")?;
        let n = usize::try_from(self.int()?).map_err(|_| self.err("bad count"))?;
        self.expect("UTF-16 units")?;
        if self.eat(", all ") {
            let unit = self.quoted()?;
            if unit.encode_utf16().count() != 1 {
                return Err(self.err("`all` needs a single UTF-16 unit"));
            }
            return Ok(Value::String(unit.repeat(n)));
        }
        Err(self.err("abbreviated string (not enough to rebuild the value)"))
    }

    /// A `"..."` literal with `\"`, `\\`, `\uXXXX` and `\u{XXXXX}` escapes.
    fn quoted(&mut self) -> Result<String, String> {
        self.expect("\"")?;
        let mut units: Vec<u16> = Vec::new();
        let mut chars = self.rest().char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.i += k + 1;
                    return Ok(String::from_utf16_lossy(&units));
                }
                '\\' => match chars.next() {
                    Some((_, '"')) => units.push(u16::from(b'"')),
                    Some((_, '\\')) => units.push(u16::from(b'\\')),
                    Some((_, 'u')) => {
                        let mut hex = String::new();
                        let braced = matches!(chars.clone().next(), Some((_, '{')));
                        if braced {
                            chars.next();
                            for (_, h) in chars.by_ref() {
                                if h == '}' {
                                    break;
                                }
                                hex.push(h);
                            }
                        } else {
                            for _ in 0..4 {
                                hex.push(chars.next().map(|(_, h)| h).unwrap_or(' '));
                            }
                        }
                        let code = u32::from_str_radix(&hex, 16)
                            .map_err(|_| self.err(&format!("bad escape \\u{hex}")))?;
                        if braced {
                            let ch = char::from_u32(code).ok_or_else(|| self.err("bad char"))?;
                            units.extend(ch.encode_utf16(&mut [0; 2]).iter());
                        } else {
                            units.push(code as u16);
                        }
                    }
                    _ => return Err(self.err("bad escape")),
                },
                _ => units.extend(c.encode_utf16(&mut [0; 2]).iter()),
            }
        }
        Err(self.err("unterminated string"))
    }

    fn binary(&mut self) -> Result<Value, String> {
        let n = usize::try_from(self.int()?).map_err(|_| self.err("bad count"))?;
        self.ws();
        if !(self.eat("bytes") || self.eat("byte")) {
            return Err(self.err("expected `bytes`"));
        }
        if self.eat(", byte[i] = i mod 256") {
            return Ok(Value::Binary((0..n).map(|i| i as u8).collect()));
        }
        if self.eat(" all 0x") {
            let w = self.word();
            let b = u8::from_str_radix(w, 16).map_err(|_| self.err("bad byte"))?;
            return Ok(Value::Binary(vec![b; n]));
        }
        if self.eat(" (empty)") || n == 0 {
            return Ok(Value::Binary(Vec::new()));
        }
        let hex = self.word();
        if hex.len() != 2 * n {
            return Err(self.err("hex length does not match the byte count"));
        }
        let bytes = (0..n)
            .map(|k| u8::from_str_radix(&hex[2 * k..2 * k + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| self.err("bad hex"))?;
        Ok(Value::Binary(bytes))
    }

    /// Skips `#N` (the reference index) and `(def D)` after a container keyword.
    fn container_marks(&mut self) -> Result<(), String> {
        if self.eat("#") {
            self.int()?;
        }
        if self.eat("(def") {
            self.until(&[')']);
            self.expect(")")?;
        }
        Ok(())
    }

    fn type_name(&mut self) -> Result<Option<String>, String> {
        match self.word() {
            "untyped" => Ok(None),
            "typed" => Ok(Some(self.quoted()?)),
            w => Err(self.err(&format!("expected typed/untyped, got {w:?}"))),
        }
    }

    fn list(&mut self) -> Result<Value, String> {
        self.container_marks()?;
        let type_name = self.type_name()?;
        let fixed_length = match self.word() {
            "fixed" | "fixed-length" => true,
            "variable" | "variable-length" => false,
            w => return Err(self.err(&format!("expected fixed/variable, got {w:?}"))),
        };
        self.expect("[")?;
        let mut items = Vec::new();
        self.ws();
        if !self.eat("]") {
            loop {
                items.push(self.value()?);
                self.ws();
                if self.eat("]") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(Value::List(List {
            type_name,
            items,
            fixed_length,
        }))
    }

    fn map(&mut self) -> Result<Value, String> {
        self.container_marks()?;
        let type_name = self.type_name()?;
        self.expect("{")?;
        let mut entries = Vec::new();
        self.ws();
        if !self.eat("}") {
            loop {
                let k = self.value()?;
                self.expect(":")?;
                let v = self.value()?;
                entries.push((k, v));
                self.ws();
                if self.eat("}") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(Value::Map(Map { type_name, entries }))
    }

    fn object(&mut self) -> Result<Value, String> {
        self.container_marks()?;
        self.ws();
        let name = self.until(&['{', ' ', ',']).to_owned();
        self.expect("{")?;
        let mut fields = Vec::new();
        let mut values = Vec::new();
        self.ws();
        if !self.eat("}") {
            loop {
                self.ws();
                fields.push(self.until(&[':']).trim().to_owned());
                self.expect(":")?;
                values.push(self.value()?);
                self.ws();
                if self.eat("}") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(Value::Object(Object {
            class: Arc::new(ClassDef { name, fields }),
            values,
        }))
    }
}
