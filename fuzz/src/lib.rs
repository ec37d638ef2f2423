//! The properties the fuzz targets check, as plain functions so that the regression tests in
//! `tests/` (and anyone with a crashing input) can run them on stable `cargo test`, without
//! libFuzzer. Each function panics exactly when the property is broken; the targets in
//! `fuzz_targets/` are one-line wrappers around them.

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use dubbo_wasm_host::generic::hessian_to_json_text;
use dubbo_wasm_host::hessian2::{ClassDef, Decoder, Encoder, Value};
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, Header, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{decode_event, decode_request, decode_response};
use dubbo_wasm_host::wasm::bind::{EnumMapping, Mapping, RecordMapping, Refs};
use wasmtime::component::Val;

/// Decodes `data` as one Hessian2 stream up to its end or its first error, then checks that
/// the values decoded so far survive encode → decode unchanged, and that encoding is stable
/// (encoding the re-decoded values gives the same bytes again).
pub fn hessian2_roundtrip(data: &[u8]) {
    let values = decode_all(data);
    if values.is_empty() {
        return;
    }
    let first = encode_all(&values);
    let again = decode_all(&first);
    assert_eq!(
        again.len(),
        values.len(),
        "re-encoded stream decodes to another number of values\ninput {}\nencoded {}",
        hex(data),
        hex(&first)
    );
    for (i, (a, b)) in values.iter().zip(&again).enumerate() {
        assert!(
            same_value(a, b),
            "value {i} changed through encode/decode\ninput {}\nencoded {}\nbefore {a:?}\nafter {b:?}",
            hex(data),
            hex(&first)
        );
    }
    let second = encode_all(&again);
    assert!(
        first == second,
        "encoding is not stable\ninput {}\nfirst {}\nsecond {}",
        hex(data),
        hex(&first),
        hex(&second)
    );
}

/// Feeds `data` to the frame splitter in pseudo-random pieces, as a socket would deliver it,
/// and runs every body decoder on every frame; nothing may panic, and a frame's body must be
/// as long as its header says.
///
/// The piece sizes come from the input's last byte (and its length), so the raw `.bin` frames
/// of `shared/vectors/dubbo` are meaningful seeds as they are and the fuzzer can still vary
/// the split by mutating one byte.
pub fn dubbo_frames(data: &[u8]) {
    let mut rng = SplitMix(u64::from(*data.last().unwrap_or(&0)) ^ ((data.len() as u64) << 8));
    let mut buf = BytesMut::new();
    let mut rest = data;
    while !rest.is_empty() {
        // Mostly small pieces, sometimes a large one, so headers and bodies straddle reads.
        let r = rng.next();
        let max = if r & 0x7 == 0 { 4096 } else { 24 };
        let n = ((r >> 8) as usize % max + 1).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match split_frame(&mut buf, DEFAULT_PAYLOAD) {
                Ok(Some(frame)) => {
                    assert_eq!(frame.body.len(), frame.header.body_len);
                    let _ = decode_response(&frame.header, &frame.body);
                    let _ = decode_event(&frame.body);
                    let _ = decode_request(&frame.body);
                }
                Ok(None) => break,
                // The connection would be closed here: nothing after a bad header is read.
                Err(_) => return,
            }
        }
    }
}

/// Decodes `data` as the body of an OK response, as the host does for a typed reply, and
/// converts the value into each of a fixed set of guest (WIT) types and into JSON text (the
/// generic path). Nothing may panic, and a conversion that succeeds must give a value of the
/// declared type.
pub fn reply_to_guest(data: &[u8]) {
    let header = Header {
        flags: 0x02,
        status: 20,
        id: 1,
        body_len: data.len(),
    };
    let Ok(reply) = decode_response(&header, data) else {
        return;
    };
    let roots = std::slice::from_ref(&reply.value);
    for t in guest_types() {
        if let Ok(v) = t.to_wit(&reply.value, &Refs::new(roots)) {
            assert!(
                has_type(t, &v),
                "converted to a value of another type\ninput {}\ntype {t:?}\nvalue {v:?}",
                hex(data)
            );
        }
    }
    if let Ok(text) = hessian_to_json_text(&reply.value, roots) {
        // serde_json refuses nesting deeper than 128, which expanded references can reach
        // (128 containers deep, then a reference to a deep one): valid JSON all the same.
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            assert!(
                e.to_string().starts_with("recursion limit exceeded"),
                "printed invalid JSON ({e})\ninput {}\ntext {text}",
                hex(data)
            );
        }
    }
}

/// The WIT types `reply_to_guest` converts into: scalars, `list<u8>`, and records with
/// strings, options, lists and an enum, as `org.apache.dubbo.demo` types would be bound.
fn guest_types() -> &'static [Mapping] {
    static TYPES: OnceLock<Vec<Mapping>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let color = Mapping::Enum(Arc::new(EnumMapping {
            class: "org.apache.dubbo.demo.Color".to_string(),
            wit_names: vec!["red".to_string(), "dark-blue".to_string()],
            java_names: vec!["RED".to_string(), "DARK_BLUE".to_string()],
        }));
        let record = |name: &str, fields: Vec<(&str, &str, Mapping)>| {
            Mapping::Record(Arc::new(RecordMapping {
                class: Arc::new(ClassDef {
                    name: format!("org.apache.dubbo.demo.{name}"),
                    fields: fields.iter().map(|(_, java, _)| java.to_string()).collect(),
                }),
                wit_fields: fields.iter().map(|(wit, _, _)| wit.to_string()).collect(),
                types: fields.into_iter().map(|(_, _, t)| t).collect(),
            }))
        };
        let user = record(
            "User",
            vec![
                ("id", "id", Mapping::Long),
                ("name", "name", Mapping::String),
                (
                    "tags",
                    "tags",
                    Mapping::Nullable(Box::new(Mapping::List(Box::new(Mapping::String)))),
                ),
                ("age", "age", Mapping::Nullable(Box::new(Mapping::Int))),
                ("color", "color", Mapping::Nullable(Box::new(color.clone()))),
            ],
        );
        let team = record(
            "Team",
            vec![
                ("lead", "lead", Mapping::Nullable(Box::new(user.clone()))),
                ("members", "members", Mapping::List(Box::new(user.clone()))),
                ("avatar", "avatar", Mapping::Bytes),
                ("score", "score", Mapping::Double),
                ("flag", "flag", Mapping::Boolean),
                ("initial", "initial", Mapping::Char),
            ],
        );
        vec![
            Mapping::String,
            Mapping::Nullable(Box::new(Mapping::Int)),
            Mapping::Byte,
            Mapping::Short,
            Mapping::Float,
            Mapping::Bytes,
            Mapping::List(Box::new(Mapping::String)),
            Mapping::List(Box::new(Mapping::List(Box::new(Mapping::Long)))),
            color,
            Mapping::Nullable(Box::new(user.clone())),
            Mapping::List(Box::new(user)),
            team,
        ]
    })
}

/// Whether `v` is a value of the WIT type `t` is bound to.
fn has_type(t: &Mapping, v: &Val) -> bool {
    match (t, v) {
        (Mapping::String, Val::String(_))
        | (Mapping::Boolean, Val::Bool(_))
        | (Mapping::Byte, Val::S8(_))
        | (Mapping::Short, Val::S16(_))
        | (Mapping::Int, Val::S32(_))
        | (Mapping::Long, Val::S64(_))
        | (Mapping::Float, Val::Float32(_))
        | (Mapping::Double, Val::Float64(_))
        | (Mapping::Char, Val::Char(_))
        | (Mapping::Nullable(_), Val::Option(None)) => true,
        (Mapping::Bytes, Val::List(items)) => items.iter().all(|i| matches!(i, Val::U8(_))),
        (Mapping::Nullable(inner), Val::Option(Some(v))) => has_type(inner, v),
        (Mapping::List(inner), Val::List(items)) => items.iter().all(|i| has_type(inner, i)),
        (Mapping::Record(r), Val::Record(fields)) => {
            fields.len() == r.types.len()
                && fields
                    .iter()
                    .zip(r.wit_fields.iter().zip(&r.types))
                    .all(|((name, v), (wit, t))| name == wit && has_type(t, v))
        }
        (Mapping::Enum(e), Val::Enum(case)) => e.wit_names.contains(case),
        _ => false,
    }
}

fn decode_all(data: &[u8]) -> Vec<Value> {
    let mut dec = Decoder::new(data);
    let mut values = Vec::new();
    while !dec.is_at_end() {
        match dec.read_value() {
            Ok(v) => values.push(v),
            Err(_) => break,
        }
    }
    values
}

fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut enc = Encoder::new(&mut out);
    for v in values {
        enc.write_value(v);
    }
    out.to_vec()
}

pub use dubbo_wasm_host::testing::same_value;

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tiny deterministic generator (SplitMix64) for the piece sizes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
