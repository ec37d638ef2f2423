//! Hessian 2.0 decoder for untrusted input: every form hessian-lite writes and reads, with
//! class definitions, type names and the reference count kept across calls (one Dubbo body is
//! one stream holding several top-level values).
//!
//! It never panics, checks every length against the bytes that are left before reserving
//! memory, refuses references, class definitions and type indexes that were not defined yet,
//! refuses containers nested deeper than [`Decoder::MAX_DEPTH`], and keeps the memory the
//! decoded values take within a budget relative to the input ([`Decoder::BUDGET_FACTOR`]
//! times its bytes, at least [`Decoder::BUDGET_FLOOR`]): a hostile stream cannot make a few
//! bytes decode into a lot of memory (a 2-byte back-reference is a 56-byte [`Value`], a
//! 1-byte type index a copy of a type name of any length).
//!
//! Strings: Java writes a character outside the BMP as two 3-byte surrogate halves (CESU-8
//! style); the decoder joins the halves (also across chunk boundaries) and accepts 4-byte
//! UTF-8 as well. A lone surrogate cannot live in a Rust `String` and becomes U+FFFD.

use std::sync::Arc;

use super::value::{ClassDef, List, Map, Object, Value};

/// Why a Hessian stream could not be decoded; every variant names the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input at byte {offset} while reading {what}")]
    UnexpectedEnd {
        /// Offset at which more bytes were needed.
        offset: usize,
        /// What was being read, e.g. "a string of 40 UTF-16 units".
        what: String,
    },
    /// A byte that starts no Hessian value.
    #[error("unknown tag 0x{tag:02x} at byte {offset}")]
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// A value of another type than the caller or the grammar asked for.
    #[error("expected {expected} at byte {offset}, found {found}")]
    UnexpectedType {
        /// What was expected, e.g. "a string".
        expected: &'static str,
        /// What the tag at `offset` starts, e.g. "int".
        found: &'static str,
        /// Offset of the tag.
        offset: usize,
    },
    /// A string whose bytes are not UTF-8 (nor Java's surrogate-half variant of it).
    #[error("invalid UTF-8 in a string at byte {offset}")]
    InvalidUtf8 {
        /// Offset of the offending byte.
        offset: usize,
    },
    /// A length or count that is negative or larger than the input could hold.
    #[error("invalid {what} {length} at byte {offset}: {reason}")]
    InvalidLength {
        /// What the length counts, e.g. "list length".
        what: &'static str,
        /// The length as written.
        length: i64,
        /// Offset of the value after the length.
        offset: usize,
        /// Why it is refused.
        reason: String,
    },
    /// A back-reference to a container that has not started yet.
    #[error("reference {index} at byte {offset} points past the {count} containers read so far")]
    BadRef {
        /// The reference as written.
        index: i64,
        /// Offset of the `0x51` tag.
        offset: usize,
        /// Containers read so far.
        count: u32,
    },
    /// An object whose class definition index is not defined.
    #[error("object at byte {offset} uses class definition {index}, but only {count} are defined")]
    UnknownClassDef {
        /// The index as written.
        index: i64,
        /// Offset of the object's tag.
        offset: usize,
        /// Definitions read so far.
        count: usize,
    },
    /// A type given by an index that is not in the type table.
    #[error("type reference {index} at byte {offset}, but only {count} type names are known")]
    UnknownTypeRef {
        /// The index as written.
        index: i64,
        /// Offset of the index.
        offset: usize,
        /// Type names read so far.
        count: usize,
    },
    /// Containers nested deeper than [`Decoder::MAX_DEPTH`].
    #[error("containers nested deeper than {limit} at byte {offset}")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// Offset of the container that went too deep.
        offset: usize,
    },
    /// The decoded values would take more memory than the stream's budget.
    #[error("the values decoded up to byte {offset} would take more than {limit} bytes of memory, the budget for a {input}-byte stream ({factor}x its size, at least {floor} bytes)", factor = Decoder::BUDGET_FACTOR, floor = Decoder::BUDGET_FLOOR)]
    OverBudget {
        /// Offset of the value (or the container) that went over.
        offset: usize,
        /// The budget, in bytes.
        limit: usize,
        /// The stream's size in bytes.
        input: usize,
    },
}

/// Reads Hessian 2.0 values from a byte slice; one decoder is one stream.
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    classes: Vec<Arc<ClassDef>>,
    types: Vec<String>,
    refs: u32,
    depth: usize,
    /// Bytes of memory the decoded values may still take.
    budget_left: usize,
    /// The whole budget, for messages.
    budget: usize,
}

/// A tag's value kind, for "found ..." in messages.
fn kind_of(tag: u8) -> &'static str {
    match tag {
        0x00..=0x1f | 0x30..=0x33 | b'R' | b'S' => "string",
        0x20..=0x2f | 0x34..=0x37 | b'A' | b'B' => "binary",
        0x80..=0xd7 | b'I' => "int",
        0x38..=0x3f | 0xd8..=0xff | b'L' | 0x59 => "long",
        0x5b..=0x5f | b'D' => "double",
        0x4a | 0x4b => "date",
        b'N' => "null",
        b'T' | b'F' => "boolean",
        b'H' | b'M' => "map",
        0x55..=0x58 | 0x70..=0x7f => "list",
        b'O' | 0x60..=0x6f => "object",
        b'C' => "class definition",
        b'Q' => "ref",
        b'Z' => "end marker 'Z'",
        _ => "unknown tag",
    }
}

impl<'a> Decoder<'a> {
    /// How many lists, maps and objects may nest inside each other.
    pub const MAX_DEPTH: usize = 128;

    /// The decoded values of a stream may take at most this many times its bytes of memory
    /// (counted as the decoder allocates: value slots of lists, maps and objects, strings,
    /// byte arrays, type names, class definitions) ...
    ///
    /// A value slot is 56 bytes and the smallest value one byte, so a list of small ints or
    /// nulls takes 56 times its bytes; Java objects with strings take about 15 times (see
    /// the tests). 24 stays below the 28 times of a list of 2-byte back-references (`Q 0`),
    /// the cheapest way to make a reply large in memory, so that one is refused at once.
    pub const BUDGET_FACTOR: usize = 24;
    /// ... or this many bytes, whichever is more, so that small streams are never refused.
    pub const BUDGET_FLOOR: usize = 16 << 20;

    /// A new stream over `input`, with empty class-definition, type and reference tables and
    /// the default memory budget (see [`Self::BUDGET_FACTOR`]).
    pub fn new(input: &'a [u8]) -> Self {
        let budget = input
            .len()
            .saturating_mul(Self::BUDGET_FACTOR)
            .max(Self::BUDGET_FLOOR);
        Self::with_budget(input, budget)
    }

    /// A new stream over `input` whose decoded values may take at most `budget` bytes.
    pub fn with_budget(input: &'a [u8], budget: usize) -> Self {
        Decoder {
            input,
            pos: 0,
            classes: Vec::new(),
            types: Vec::new(),
            refs: 0,
            depth: 0,
            budget_left: budget,
            budget,
        }
    }

    /// Bytes of memory the values decoded so far were charged (their heap allocations, not
    /// the top-level values themselves).
    pub fn decoded_bytes(&self) -> usize {
        self.budget - self.budget_left
    }

    /// Reads the next value, including any class definitions in front of it.
    pub fn read_value(&mut self) -> Result<Value, DecodeError> {
        loop {
            let offset = self.pos;
            let tag = self.byte("a value")?;
            if tag == b'C' {
                self.read_class_def()?;
                continue;
            }
            return self.value_from_tag(tag, offset);
        }
    }

    /// Reads a string value; any other type, null included, is an error.
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let offset = self.pos;
        let tag = self.byte("a string")?;
        match tag {
            0x00..=0x1f | 0x30..=0x33 | b'R' | b'S' => self.string_body(tag, offset),
            _ => {
                self.pos = offset;
                Err(DecodeError::UnexpectedType {
                    expected: "a string",
                    found: kind_of(tag),
                    offset,
                })
            }
        }
    }

    /// Reads an int value (any of the int forms); any other type is an error.
    pub fn read_int(&mut self) -> Result<i32, DecodeError> {
        let offset = self.pos;
        let tag = self.byte("an int")?;
        match self.int_body(tag)? {
            Some(i) => Ok(i),
            None => {
                self.pos = offset;
                Err(DecodeError::UnexpectedType {
                    expected: "an int",
                    found: kind_of(tag),
                    offset,
                })
            }
        }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether all input has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    /// Takes `bytes` from the memory budget, or refuses the value at `offset`.
    fn charge(&mut self, bytes: usize, offset: usize) -> Result<(), DecodeError> {
        match self.budget_left.checked_sub(bytes) {
            Some(left) => {
                self.budget_left = left;
                Ok(())
            }
            None => Err(DecodeError::OverBudget {
                offset,
                limit: self.budget,
                input: self.input.len(),
            }),
        }
    }

    /// Appends to a container of unknown length, charging each growth of its allocation
    /// before it happens (doubling, as `Vec` does), so the budget counts real capacity.
    fn push_counted<T>(
        &mut self,
        items: &mut Vec<T>,
        item: T,
        offset: usize,
    ) -> Result<(), DecodeError> {
        if items.len() == items.capacity() {
            let more = items.capacity().max(4);
            self.charge(more.saturating_mul(std::mem::size_of::<T>()), offset)?;
            items.reserve_exact(more);
        }
        items.push(item);
        Ok(())
    }

    /// A vector for `n` announced items of `T`, charged in full before it is allocated.
    fn reserve_counted<T>(&mut self, n: usize, offset: usize) -> Result<Vec<T>, DecodeError> {
        self.charge(n.saturating_mul(std::mem::size_of::<T>()), offset)?;
        Ok(Vec::with_capacity(n))
    }

    fn byte(&mut self, what: &str) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.end(what)),
        }
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).filter(|&e| e <= self.input.len());
        match end.and_then(|e| self.input.get(self.pos..e)) {
            Some(slice) => {
                let mut out = [0u8; N];
                out.copy_from_slice(slice);
                self.pos += N;
                Ok(out)
            }
            None => Err(self.end(what)),
        }
    }

    fn end(&self, what: &str) -> DecodeError {
        DecodeError::UnexpectedEnd {
            offset: self.input.len(),
            what: what.to_owned(),
        }
    }

    fn value_from_tag(&mut self, tag: u8, offset: usize) -> Result<Value, DecodeError> {
        if let Some(i) = self.int_body(tag)? {
            return Ok(Value::Int(i));
        }
        if let Some(l) = self.long_body(tag)? {
            return Ok(Value::Long(l));
        }
        match tag {
            b'N' => Ok(Value::Null),
            b'T' => Ok(Value::Bool(true)),
            b'F' => Ok(Value::Bool(false)),
            0x5b => Ok(Value::Double(0.0)),
            0x5c => Ok(Value::Double(1.0)),
            0x5d => Ok(Value::Double(f64::from(self.byte("a byte double")? as i8))),
            0x5e => {
                let b = self.bytes::<2>("a short double")?;
                Ok(Value::Double(f64::from(i16::from_be_bytes(b))))
            }
            0x5f => {
                // Not a float32: Java writes a count of thousandths and reads 0.001 * count.
                let b = self.bytes::<4>("a mills double")?;
                Ok(Value::Double(0.001 * f64::from(i32::from_be_bytes(b))))
            }
            b'D' => {
                let b = self.bytes::<8>("a double")?;
                Ok(Value::Double(f64::from_bits(u64::from_be_bytes(b))))
            }
            0x4a => {
                let b = self.bytes::<8>("a date")?;
                Ok(Value::Date(i64::from_be_bytes(b)))
            }
            0x4b => {
                let b = self.bytes::<4>("a date in minutes")?;
                Ok(Value::Date(i64::from(i32::from_be_bytes(b)) * 60_000))
            }
            0x00..=0x1f | 0x30..=0x33 | b'R' | b'S' => {
                Ok(Value::String(self.string_body(tag, offset)?))
            }
            0x20..=0x2f | 0x34..=0x37 | b'A' | b'B' => {
                Ok(Value::Binary(self.binary_body(tag, offset)?))
            }
            0x55..=0x58 | 0x70..=0x7f => self.list(tag, offset),
            b'H' | b'M' => self.map(tag, offset),
            b'O' | 0x60..=0x6f => self.object(tag, offset),
            b'Q' => {
                let index = self.read_int()?;
                if index < 0 || index as u32 >= self.refs {
                    return Err(DecodeError::BadRef {
                        index: i64::from(index),
                        offset,
                        count: self.refs,
                    });
                }
                Ok(Value::Ref(index as u32))
            }
            _ => Err(DecodeError::UnknownTag { tag, offset }),
        }
    }

    /// The int encoded after `tag`, or `None` if `tag` starts no int.
    fn int_body(&mut self, tag: u8) -> Result<Option<i32>, DecodeError> {
        let t = i32::from(tag);
        Ok(Some(match tag {
            0x80..=0xbf => t - 0x90,
            0xc0..=0xcf => ((t - 0xc8) << 8) | i32::from(self.byte("a 2-byte int")?),
            0xd0..=0xd7 => {
                let b = self.bytes::<2>("a 3-byte int")?;
                ((t - 0xd4) << 16) | i32::from(u16::from_be_bytes(b))
            }
            b'I' => i32::from_be_bytes(self.bytes::<4>("an int")?),
            _ => return Ok(None),
        }))
    }

    /// The long encoded after `tag`, or `None` if `tag` starts no long.
    fn long_body(&mut self, tag: u8) -> Result<Option<i64>, DecodeError> {
        let t = i64::from(tag);
        Ok(Some(match tag {
            0xd8..=0xef => t - 0xe0,
            0xf0..=0xff => ((t - 0xf8) << 8) | i64::from(self.byte("a 2-byte long")?),
            0x38..=0x3f => {
                let b = self.bytes::<2>("a 3-byte long")?;
                ((t - 0x3c) << 16) | i64::from(u16::from_be_bytes(b))
            }
            0x59 => i64::from(i32::from_be_bytes(self.bytes::<4>("a 4-byte long")?)),
            b'L' => i64::from_be_bytes(self.bytes::<8>("a long")?),
            _ => return Ok(None),
        }))
    }

    /// Refuses a length that the rest of the input cannot hold, at `min_bytes` bytes per item.
    fn check_length(
        &self,
        what: &'static str,
        length: i64,
        min_bytes: i64,
    ) -> Result<usize, DecodeError> {
        let available = self.remaining() as i64;
        let reason = if length < 0 {
            "negative".to_owned()
        } else if length.saturating_mul(min_bytes) > available {
            format!("only {available} bytes are left")
        } else {
            return Ok(length as usize);
        };
        Err(DecodeError::InvalidLength {
            what,
            length,
            offset: self.pos,
            reason,
        })
    }

    /// A string's chunks, starting with `tag`; lengths count UTF-16 units.
    fn string_body(&mut self, mut tag: u8, offset: usize) -> Result<String, DecodeError> {
        let mut out = String::new();
        let mut pending_high: Option<u16> = None;
        let mut tag_offset = offset;
        loop {
            let (len, last) = match tag {
                0x00..=0x1f => (usize::from(tag), true),
                0x30..=0x33 => {
                    let low = self.byte("a string length")?;
                    ((usize::from(tag - 0x30) << 8) | usize::from(low), true)
                }
                b'S' | b'R' => {
                    let len = u16::from_be_bytes(self.bytes::<2>("a string length")?);
                    (usize::from(len), tag == b'S')
                }
                _ => {
                    return Err(DecodeError::UnexpectedType {
                        expected: "a string chunk",
                        found: kind_of(tag),
                        offset: tag_offset,
                    })
                }
            };
            // Every UTF-16 unit takes at least one byte.
            if len > self.remaining() {
                return Err(DecodeError::UnexpectedEnd {
                    offset: self.input.len(),
                    what: format!("a string of {len} UTF-16 units starting at byte {tag_offset}"),
                });
            }
            out.reserve(len);
            self.string_chunk(len, &mut out, &mut pending_high)?;
            if last {
                break;
            }
            tag_offset = self.pos;
            tag = self.byte("the next string chunk")?;
        }
        if pending_high.is_some() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
        // Charged once it is read: a string never takes much more than its own bytes.
        self.charge(out.capacity(), offset)?;
        Ok(out)
    }

    /// Decodes `len` UTF-16 units of one chunk into `out`.
    fn string_chunk(
        &mut self,
        len: usize,
        out: &mut String,
        pending_high: &mut Option<u16>,
    ) -> Result<(), DecodeError> {
        // Fast path: a chunk of plain ASCII is its own UTF-8.
        if let Some(ascii) = self.input.get(self.pos..self.pos + len) {
            if ascii.is_ascii() {
                if pending_high.take().is_some() {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
                out.extend(ascii.iter().map(|&b| char::from(b)));
                self.pos += len;
                return Ok(());
            }
        }
        let mut units = 0;
        while units < len {
            let start = self.pos;
            let b0 = u32::from(self.byte("a string character")?);
            let (code, extra) = match b0 {
                0x00..=0x7f => (b0, 0),
                0xc0..=0xdf => (b0 & 0x1f, 1),
                0xe0..=0xef => (b0 & 0x0f, 2),
                0xf0..=0xf7 => (b0 & 0x07, 3),
                _ => return Err(DecodeError::InvalidUtf8 { offset: start }),
            };
            let mut code = code;
            for _ in 0..extra {
                let at = self.pos;
                let b = u32::from(self.byte("a string character")?);
                if b & 0xc0 != 0x80 {
                    return Err(DecodeError::InvalidUtf8 { offset: at });
                }
                code = (code << 6) | (b & 0x3f);
            }
            if code > 0xffff {
                // 4-byte UTF-8 (not what Java writes, but valid): one character, two units.
                units += 2;
                if units > len || code > 0x10ffff {
                    return Err(DecodeError::InvalidUtf8 { offset: start });
                }
                if pending_high.take().is_some() {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            } else {
                units += 1;
                push_unit(code as u16, out, pending_high);
            }
        }
        Ok(())
    }

    /// A byte array's chunks, starting with `tag`.
    fn binary_body(&mut self, mut tag: u8, offset: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        let mut tag_offset = offset;
        loop {
            let (len, last) = match tag {
                0x20..=0x2f => (usize::from(tag - 0x20), true),
                0x34..=0x37 => {
                    let low = self.byte("a binary length")?;
                    ((usize::from(tag - 0x34) << 8) | usize::from(low), true)
                }
                b'B' | b'A' => {
                    let len = u16::from_be_bytes(self.bytes::<2>("a binary length")?);
                    (usize::from(len), tag == b'B')
                }
                _ => {
                    return Err(DecodeError::UnexpectedType {
                        expected: "a binary chunk",
                        found: kind_of(tag),
                        offset: tag_offset,
                    })
                }
            };
            match self.input.get(self.pos..self.pos + len) {
                Some(chunk) => out.extend_from_slice(chunk),
                None => {
                    return Err(DecodeError::UnexpectedEnd {
                        offset: self.input.len(),
                        what: format!(
                            "a binary chunk of {len} bytes starting at byte {tag_offset}"
                        ),
                    })
                }
            }
            self.pos += len;
            if last {
                self.charge(out.capacity(), offset)?;
                return Ok(out);
            }
            tag_offset = self.pos;
            tag = self.byte("the next binary chunk")?;
        }
    }

    /// A list or map type: a string (added to the type table) or an index into that table.
    fn read_type(&mut self) -> Result<String, DecodeError> {
        let offset = self.pos;
        let tag = self.byte("a type")?;
        if let 0x00..=0x1f | 0x30..=0x33 | b'R' | b'S' = tag {
            let name = self.string_body(tag, offset)?;
            // The table keeps a copy.
            self.charge(name.len(), offset)?;
            self.types.push(name.clone());
            return Ok(name);
        }
        let index = match self.int_body(tag)? {
            Some(i) => i,
            None => {
                return Err(DecodeError::UnexpectedType {
                    expected: "a type name or type index",
                    found: kind_of(tag),
                    offset,
                })
            }
        };
        let len = usize::try_from(index)
            .ok()
            .and_then(|i| self.types.get(i))
            .map(String::len)
            .ok_or(DecodeError::UnknownTypeRef {
                index: i64::from(index),
                offset,
                count: self.types.len(),
            })?;
        // A 1-byte index copies a name of any length: the copy is what must be counted.
        self.charge(len, offset)?;
        Ok(self.types[index as usize].clone())
    }

    /// Enters a container, refusing to go deeper than [`Self::MAX_DEPTH`].
    fn enter(&mut self, offset: usize) -> Result<(), DecodeError> {
        if self.depth >= Self::MAX_DEPTH {
            return Err(DecodeError::TooDeep {
                limit: Self::MAX_DEPTH,
                offset,
            });
        }
        self.depth += 1;
        Ok(())
    }

    fn list(&mut self, tag: u8, offset: usize) -> Result<Value, DecodeError> {
        self.enter(offset)?;
        let result = self.list_inner(tag, offset);
        self.depth -= 1;
        result
    }

    fn list_inner(&mut self, tag: u8, offset: usize) -> Result<Value, DecodeError> {
        let type_name = match tag {
            0x55 | b'V' | 0x70..=0x77 => Some(self.read_type()?),
            _ => None,
        };
        let length = match tag {
            0x55 | 0x57 => None,
            b'V' | 0x58 => Some(i64::from(self.read_int()?)),
            0x70..=0x77 => Some(i64::from(tag - 0x70)),
            _ => Some(i64::from(tag - 0x78)),
        };
        // The list is referable from its start, before its items (a list may contain itself).
        self.refs = self.refs.saturating_add(1);
        let items = match length {
            Some(n) => {
                let n = self.check_length("list length", n, 1)?;
                let mut items = self.reserve_counted(n, offset)?;
                for _ in 0..n {
                    items.push(self.read_value()?);
                }
                items
            }
            None => {
                let mut items = Vec::new();
                while !self.at_end_marker("a variable-length list")? {
                    let at = self.pos;
                    let item = self.read_value()?;
                    self.push_counted(&mut items, item, at)?;
                }
                items
            }
        };
        Ok(Value::List(List {
            type_name,
            items,
            fixed_length: length.is_some(),
        }))
    }

    /// Consumes a `Z` if it is next; an input that ends here is an error.
    fn at_end_marker(&mut self, what: &str) -> Result<bool, DecodeError> {
        match self.input.get(self.pos) {
            Some(b'Z') => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.end(what)),
        }
    }

    fn map(&mut self, tag: u8, offset: usize) -> Result<Value, DecodeError> {
        self.enter(offset)?;
        let result = self.map_inner(tag);
        self.depth -= 1;
        result
    }

    fn map_inner(&mut self, tag: u8) -> Result<Value, DecodeError> {
        let type_name = if tag == b'M' {
            Some(self.read_type()?)
        } else {
            None
        };
        self.refs = self.refs.saturating_add(1);
        let mut entries = Vec::new();
        while !self.at_end_marker("a map")? {
            let at = self.pos;
            let key = self.read_value()?;
            let value = self.read_value()?;
            self.push_counted(&mut entries, (key, value), at)?;
        }
        Ok(Value::Map(Map { type_name, entries }))
    }

    /// A class definition `C`: name, field count, field names.
    fn read_class_def(&mut self) -> Result<(), DecodeError> {
        let name = self.read_string()?;
        let count = i64::from(self.read_int()?);
        let count = self.check_length("class field count", count, 1)?;
        let at = self.pos;
        let mut fields = self.reserve_counted::<String>(count, at)?;
        for _ in 0..count {
            fields.push(self.read_string()?);
        }
        self.classes.push(Arc::new(ClassDef { name, fields }));
        Ok(())
    }

    fn object(&mut self, tag: u8, offset: usize) -> Result<Value, DecodeError> {
        let index = match tag {
            b'O' => self.read_int()?,
            _ => i32::from(tag - 0x60),
        };
        let class = usize::try_from(index)
            .ok()
            .and_then(|i| self.classes.get(i))
            .cloned()
            .ok_or(DecodeError::UnknownClassDef {
                index: i64::from(index),
                offset,
                count: self.classes.len(),
            })?;
        self.enter(offset)?;
        self.refs = self.refs.saturating_add(1);
        let result = self.object_fields(class, offset);
        self.depth -= 1;
        result
    }

    fn object_fields(&mut self, class: Arc<ClassDef>, offset: usize) -> Result<Value, DecodeError> {
        let n = class.fields.len();
        let mut values = self.reserve_counted(n, offset)?;
        for _ in 0..n {
            values.push(self.read_value()?);
        }
        Ok(Value::Object(Object { class, values }))
    }
}

/// Appends one UTF-16 unit, joining surrogate halves; a lone half becomes U+FFFD.
fn push_unit(unit: u16, out: &mut String, pending_high: &mut Option<u16>) {
    match unit {
        0xd800..=0xdbff => {
            if pending_high.replace(unit).is_some() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
        0xdc00..=0xdfff => match pending_high.take() {
            Some(high) => {
                let code =
                    0x10000 + ((u32::from(high) - 0xd800) << 10) + (u32::from(unit) - 0xdc00);
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            None => out.push(char::REPLACEMENT_CHARACTER),
        },
        _ => {
            if pending_high.take().is_some() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            out.push(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
}
