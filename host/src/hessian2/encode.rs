//! Hessian 2.0 encoder that writes exactly the bytes hessian-lite 4.0.3 (the Hessian of
//! Dubbo 3.3) writes for the same value: the smallest int/long forms, the compact double forms
//! including `0x5f` "mills", strings chunked at 32768 UTF-16 units with non-BMP characters as
//! two 3-byte surrogate halves, and class definitions and type names written once per stream
//! and referenced by index afterwards.
//!
//! Java's binary chunk sizes depend on how full its 8 KiB output buffer is, so the encoder
//! tracks where that buffer would stand (`java_buffer`) and flushes it at the same points as
//! `Hessian2Output`. Nothing else depends on it.

use std::collections::HashMap;

use bytes::{BufMut, BytesMut};

use super::value::{ClassDef, List, Map, Object, Value};

/// Size of hessian-lite 4.0.3's output buffer (`Hessian2Output.SIZE`).
const JAVA_BUFFER_SIZE: usize = 8 * 1024;

/// Longest string chunk, in UTF-16 units.
const STRING_CHUNK_UNITS: usize = 0x8000;

/// Writes Hessian 2.0 values to a buffer; one encoder is one stream (one Dubbo body).
pub struct Encoder<'a> {
    out: &'a mut BytesMut,
    /// Class definitions already written, by content, with their index.
    classes: HashMap<ClassDef, u32>,
    /// Type names already written, with their index.
    types: HashMap<String, u32>,
    /// Where hessian-lite's output buffer would stand: bytes written since its last flush.
    java_buffer: usize,
}

impl<'a> Encoder<'a> {
    /// A new stream appending to `out`, with empty class-definition and type tables.
    pub fn new(out: &'a mut BytesMut) -> Self {
        Encoder {
            out,
            classes: HashMap::new(),
            types: HashMap::new(),
            java_buffer: 0,
        }
    }

    /// Writes any value; containers are written recursively, so the depth is the caller's.
    pub fn write_value(&mut self, v: &Value) {
        match v {
            Value::Null => self.write_null(),
            Value::Bool(b) => self.write_bool(*b),
            Value::Int(i) => self.write_int(*i),
            Value::Long(l) => self.write_long(*l),
            Value::Double(d) => self.write_double(*d),
            Value::Date(ms) => self.write_date(*ms),
            Value::String(s) => self.write_string(s),
            Value::Binary(b) => self.write_binary(b),
            Value::List(l) => self.write_list(l),
            Value::Map(m) => self.write_map(m),
            Value::Object(o) => self.write_object(o),
            Value::Ref(r) => self.write_ref(*r),
        }
    }

    /// Writes `N`.
    pub fn write_null(&mut self) {
        self.flush_if(16, true);
        self.put_u8(b'N');
    }

    /// Writes `T` or `F`.
    pub fn write_bool(&mut self, b: bool) {
        self.flush_if(16, false);
        self.put_u8(if b { b'T' } else { b'F' });
    }

    /// Writes an int in its smallest form.
    pub fn write_int(&mut self, i: i32) {
        self.flush_if(16, true);
        match i {
            -0x10..=0x2f => self.put_u8((i + 0x90) as u8),
            -0x800..=0x7ff => self.put(&[(0xc8 + (i >> 8)) as u8, i as u8]),
            -0x40000..=0x3ffff => self.put(&[(0xd4 + (i >> 16)) as u8, (i >> 8) as u8, i as u8]),
            _ => {
                self.put_u8(b'I');
                self.put(&i.to_be_bytes());
            }
        }
    }

    /// Writes a long in its smallest form.
    pub fn write_long(&mut self, l: i64) {
        self.flush_if(16, true);
        match l {
            -0x08..=0x0f => self.put_u8((l + 0xe0) as u8),
            -0x800..=0x7ff => self.put(&[(0xf8 + (l >> 8)) as u8, l as u8]),
            -0x40000..=0x3ffff => self.put(&[(0x3c + (l >> 16)) as u8, (l >> 8) as u8, l as u8]),
            _ => {
                if let Ok(i) = i32::try_from(l) {
                    self.put_u8(0x59);
                    self.put(&i.to_be_bytes());
                } else {
                    self.put_u8(b'L');
                    self.put(&l.to_be_bytes());
                }
            }
        }
    }

    /// Writes a double in the form Java picks: zero, one, byte, short, mills or 8 bytes.
    pub fn write_double(&mut self, d: f64) {
        self.flush_if(16, true);
        // `as i32` saturates and maps NaN to 0 exactly like Java's `(int)` cast, and the
        // comparisons below are Java's, so -0.0 becomes 0x5b and NaN falls through to `D`.
        let int_value = d as i32;
        if f64::from(int_value) == d {
            match int_value {
                0 => return self.put_u8(0x5b),
                1 => return self.put_u8(0x5c),
                -0x80..=0x7f => return self.put(&[0x5d, int_value as u8]),
                -0x8000..=0x7fff => {
                    self.put_u8(0x5e);
                    return self.put(&(int_value as i16).to_be_bytes());
                }
                _ => {}
            }
        }
        let mills = (d * 1000.0) as i32;
        if 0.001 * f64::from(mills) == d {
            self.put_u8(0x5f);
            self.put(&mills.to_be_bytes());
        } else {
            self.put_u8(b'D');
            self.put(&d.to_bits().to_be_bytes());
        }
    }

    /// Writes a date (milliseconds since the epoch), as minutes when it is a whole minute.
    pub fn write_date(&mut self, ms: i64) {
        self.flush_if(32, false);
        if ms % 60_000 == 0 {
            if let Ok(minutes) = i32::try_from(ms / 60_000) {
                self.put_u8(0x4b);
                return self.put(&minutes.to_be_bytes());
            }
        }
        self.put_u8(0x4a);
        self.put(&ms.to_be_bytes());
    }

    /// Writes a string, chunked like Java at 32768 UTF-16 units (32767 to keep a pair whole).
    pub fn write_string(&mut self, s: &str) {
        self.flush_if(16, true);
        self.out.reserve(s.len() + 8);
        let mut units = utf16_len(s);
        let mut rest = s;
        while units > STRING_CHUNK_UNITS {
            self.flush_if(16, true);
            let (split, chunk_units) = split_at_units(rest, STRING_CHUNK_UNITS);
            self.put_u8(b'R');
            self.put(&(chunk_units as u16).to_be_bytes());
            self.print_string(&rest[..split]);
            rest = &rest[split..];
            units -= chunk_units;
        }
        self.flush_if(16, true);
        if units <= 0x1f {
            self.put_u8(units as u8);
        } else if units <= 0x3ff {
            self.put(&[0x30 + (units >> 8) as u8, units as u8]);
        } else {
            self.put_u8(b'S');
            self.put(&(units as u16).to_be_bytes());
        }
        self.print_string(rest);
    }

    /// Writes a byte array, chunked where hessian-lite's output buffer would fill up.
    pub fn write_binary(&mut self, b: &[u8]) {
        self.out.reserve(b.len() + 8);
        let mut rest = b;
        loop {
            // Java computes the free space as a signed int; keep its arithmetic.
            let free = JAVA_BUFFER_SIZE as isize - self.java_buffer as isize - 3;
            if free >= rest.len() as isize {
                break;
            }
            let mut sublen = free;
            if sublen < 16 {
                self.java_buffer = 0;
                sublen = (JAVA_BUFFER_SIZE - 3).min(rest.len()) as isize;
            }
            let sublen = sublen as usize;
            self.put_u8(b'A');
            self.put(&(sublen as u16).to_be_bytes());
            self.put(&rest[..sublen]);
            rest = &rest[sublen..];
            self.java_buffer = 0;
        }
        self.flush_if(16, false);
        let len = rest.len();
        if len <= 0x0f {
            self.put_u8(0x20 + len as u8);
        } else if len <= 0x3ff {
            self.put(&[0x34 + (len >> 8) as u8, len as u8]);
        } else {
            self.put_u8(b'B');
            self.put(&(len as u16).to_be_bytes());
        }
        self.put(rest);
    }

    /// Untyped map of string keys and string values, as Dubbo writes attachments (`H` ... `Z`).
    pub fn write_string_map<'k>(&mut self, entries: impl IntoIterator<Item = (&'k str, &'k str)>) {
        self.flush_if(32, false);
        self.put_u8(b'H');
        for (k, v) in entries {
            self.write_string(k);
            self.write_string(v);
        }
        self.flush_if(32, false);
        self.put_u8(b'Z');
    }

    fn write_list(&mut self, l: &List) {
        self.flush_if(32, false);
        let len = l.items.len();
        match (&l.type_name, l.fixed_length) {
            (Some(t), false) => {
                self.put_u8(0x55);
                self.write_type(t);
            }
            (None, false) => self.put_u8(0x57),
            (Some(t), true) if len <= 7 => {
                self.put_u8(0x70 + len as u8);
                self.write_type(t);
            }
            (None, true) if len <= 7 => self.put_u8(0x78 + len as u8),
            (Some(t), true) => {
                self.put_u8(b'V');
                self.write_type(t);
                self.write_int(len_as_i32(len));
            }
            (None, true) => {
                self.put_u8(0x58);
                self.write_int(len_as_i32(len));
            }
        }
        for item in &l.items {
            self.write_value(item);
        }
        if !l.fixed_length {
            self.flush_if(32, false);
            self.put_u8(b'Z');
        }
    }

    fn write_map(&mut self, m: &Map) {
        self.flush_if(32, false);
        match &m.type_name {
            Some(t) => {
                self.put_u8(b'M');
                self.write_type(t);
            }
            None => self.put_u8(b'H'),
        }
        for (k, v) in &m.entries {
            self.write_value(k);
            self.write_value(v);
        }
        self.flush_if(32, false);
        self.put_u8(b'Z');
    }

    /// Writes the class definition the first time a class is seen in this stream, then the
    /// instance. A field without a value is written as null, and values beyond the class's
    /// fields are dropped, so that the stream stays well-formed.
    fn write_object(&mut self, o: &Object) {
        let index = match self.classes.get(&*o.class) {
            Some(&i) => i,
            None => {
                let i = self.classes.len() as u32;
                self.classes.insert((*o.class).clone(), i);
                self.flush_if(32, false);
                self.put_u8(b'C');
                self.write_string(&o.class.name);
                self.write_int(len_as_i32(o.class.fields.len()));
                for f in &o.class.fields {
                    self.write_string(f);
                }
                i
            }
        };
        self.flush_if(32, false);
        if index <= 0x0f {
            self.put_u8(0x60 + index as u8);
        } else {
            self.put_u8(b'O');
            self.write_int(index as i32);
        }
        for i in 0..o.class.fields.len() {
            self.write_value(o.values.get(i).unwrap_or(&Value::Null));
        }
    }

    fn write_ref(&mut self, r: u32) {
        self.flush_if(16, false);
        self.put_u8(0x51);
        // Refs beyond i32::MAX cannot occur in a stream Java could read; keep the bits.
        self.write_int(r as i32);
    }

    /// A list or map type: the name the first time, its index in the type table afterwards.
    fn write_type(&mut self, t: &str) {
        self.flush_if(32, false);
        if let Some(&i) = self.types.get(t) {
            self.write_int(i as i32);
        } else {
            let i = self.types.len() as u32;
            self.types.insert(t.to_owned(), i);
            self.write_string(t);
        }
    }

    /// Emits the characters of one chunk: UTF-8 for BMP characters (identical to Java's
    /// bytes) and two 3-byte surrogate halves for the others, tracking Java's buffer.
    fn print_string(&mut self, s: &str) {
        const LIMIT: usize = JAVA_BUFFER_SIZE - 16;
        if s.is_ascii() {
            self.out.extend_from_slice(s.as_bytes());
            // Java flushes before a character whenever the buffer holds LIMIT bytes or more.
            let mut n = s.len();
            while n > 0 {
                if self.java_buffer >= LIMIT {
                    self.java_buffer = 0;
                }
                let take = n.min(LIMIT - self.java_buffer);
                self.java_buffer += take;
                n -= take;
            }
            return;
        }
        for ch in s.chars() {
            let mut units = [0u16; 2];
            for &unit in ch.encode_utf16(&mut units).iter() {
                if self.java_buffer >= LIMIT {
                    self.java_buffer = 0;
                }
                let c = u32::from(unit);
                if c < 0x80 {
                    self.out.put_u8(c as u8);
                    self.java_buffer += 1;
                } else if c < 0x800 {
                    self.out
                        .put_slice(&[0xc0 | (c >> 6) as u8, 0x80 | (c & 0x3f) as u8]);
                    self.java_buffer += 2;
                } else {
                    self.out.put_slice(&[
                        0xe0 | (c >> 12) as u8,
                        0x80 | ((c >> 6) & 0x3f) as u8,
                        0x80 | (c & 0x3f) as u8,
                    ]);
                    self.java_buffer += 3;
                }
            }
        }
    }

    /// Resets the emulated Java buffer where `Hessian2Output` would flush before writing:
    /// when fewer than `room` bytes are free (`inclusive`: when at most `room` are free).
    fn flush_if(&mut self, room: usize, inclusive: bool) {
        let needed = self.java_buffer + room;
        if needed > JAVA_BUFFER_SIZE || (inclusive && needed == JAVA_BUFFER_SIZE) {
            self.java_buffer = 0;
        }
    }

    fn put_u8(&mut self, b: u8) {
        self.out.put_u8(b);
        self.java_buffer += 1;
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out.put_slice(bytes);
        self.java_buffer += bytes.len();
    }
}

/// A container length as the int Java writes; Rust lengths beyond `i32::MAX` cannot be sent.
fn len_as_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Length of `s` in UTF-16 units: one per character, two for the 4-byte UTF-8 ones.
fn utf16_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            0x80..=0xbf => 0,
            0xf0..=0xff => 2,
            _ => 1,
        })
        .sum()
}

/// The byte index ending the first chunk of at most `max_units` UTF-16 units, and its unit
/// count; a surrogate pair is never split, so the chunk may be one unit short.
fn split_at_units(s: &str, max_units: usize) -> (usize, usize) {
    let mut units = 0;
    for (i, ch) in s.char_indices() {
        let n = ch.len_utf16();
        if units + n > max_units {
            return (i, units);
        }
        units += n;
    }
    (s.len(), units)
}
