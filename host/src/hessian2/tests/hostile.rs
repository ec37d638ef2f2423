//! Hostile replies, built byte by byte: dangling references, undefined class definitions and
//! types, and streams whose decoded values would take far more memory than their bytes.

use bytes::BytesMut;

use super::super::{decoded_size, DecodeError, Decoder, Encoder, List, Object, Value};
use super::{decode_all, manifest};
use crate::testing::Refused;

/// The bytes of a fixed-length untyped list header (`0x58` and the length as an int).
fn list_header(len: u32) -> Vec<u8> {
    let mut out = BytesMut::new();
    Encoder::new(&mut out).write_int(len as i32);
    let mut bytes = vec![0x58];
    bytes.extend_from_slice(&out);
    bytes
}

/// A Dubbo response body as a provider sends it: the flag int 1 (`0x91`, "a value") first.
fn reply_body(value: &[u8]) -> Vec<u8> {
    let mut body = vec![0x91];
    body.extend_from_slice(value);
    body
}

/// Decodes a response body as `decode_response` does: the flag, then the value.
fn decode_reply(body: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder::new(body);
    assert_eq!(d.read_int().expect("flag"), 1);
    d.read_value()
}

#[test]
fn a_reference_to_no_container_is_refused_with_its_offset() {
    // `Q 0` right after the flag: no list, map or object was started.
    let err = decode_reply(&reply_body(&[0x51, 0x90])).refused();
    assert!(
        matches!(
            err,
            DecodeError::BadRef {
                index: 0,
                offset: 1,
                count: 0
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "reference 0 at byte 1 points past the 0 containers read so far"
    );
    // Two nested lists are refs 0 and 1; ref 2 inside them points past them.
    let err = decode_one(&[0x79, 0x79, 0x51, 0x92]).refused();
    assert!(
        matches!(
            err,
            DecodeError::BadRef {
                index: 2,
                offset: 2,
                count: 2
            }
        ),
        "{err:?}"
    );
    // A negative index, in the 4-byte int form.
    let err = decode_one(&[0x79, 0x51, b'I', 0xff, 0xff, 0xff, 0xff]).refused();
    assert!(
        matches!(
            err,
            DecodeError::BadRef {
                index: -1,
                offset: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // A million references to an object never defined: refused at the first one.
    let mut body = vec![0x57];
    for _ in 0..1_000_000 {
        body.extend_from_slice(&[0x51, 0x91]);
    }
    body.push(b'Z');
    let err = decode_one(&body).refused();
    assert!(
        matches!(
            err,
            DecodeError::BadRef {
                index: 1,
                count: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn references_to_started_containers_still_decode() {
    // A list holding itself, and an object whose field refers back to the object (what Java
    // writes for a parent pointer, or for `Throwable.cause == this`).
    assert_eq!(
        decode_one(&[0x79, 0x51, 0x90]).unwrap(),
        Value::List(List::untyped(vec![Value::Ref(0)]))
    );
    let node = [
        b'C', 0x04, b'N', b'o', b'd', b'e', 0x91, 0x04, b's', b'e', b'l', b'f',
    ];
    let mut bytes = node.to_vec();
    bytes.extend_from_slice(&[0x60, 0x51, 0x90]);
    let v = decode_one(&bytes).unwrap();
    assert_eq!(
        v,
        Value::Object(Object::new("Node", vec![("self".into(), Value::Ref(0))]))
    );
}

#[test]
fn an_object_of_an_undefined_class_definition_is_refused_with_its_offset() {
    // The compact form 0x60 + index, with nothing defined.
    let err = decode_reply(&reply_body(&[0x60])).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownClassDef {
                index: 0,
                offset: 1,
                count: 0
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "object at byte 1 uses class definition 0, but only 0 are defined"
    );
    // One definition (`C "T" 0 fields`), then an instance of definition 1.
    let err = decode_one(&[b'C', 0x01, b'T', 0x90, 0x61]).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownClassDef {
                index: 1,
                offset: 4,
                count: 1
            }
        ),
        "{err:?}"
    );
    // The long form `O` + int, with a large and a negative index.
    let err = decode_one(&[b'C', 0x01, b'T', 0x90, b'O', 0xc8, 0x20]).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownClassDef {
                index: 32,
                offset: 4,
                ..
            }
        ),
        "{err:?}"
    );
    let err = decode_one(&[b'O', 0x8f]).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownClassDef {
                index: -1,
                offset: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_typed_list_or_map_of_an_undefined_type_is_refused_with_its_offset() {
    // 0x71: typed fixed list of one item; its type is index 0, but no type name was read.
    let err = decode_reply(&reply_body(&[0x71, 0x90, b'N'])).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownTypeRef {
                index: 0,
                offset: 2,
                count: 0
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "type reference 0 at byte 2, but only 0 type names are known"
    );
    // `V` (typed, length given): type "[int" is index 0, then a list of type index 1.
    let mut bytes = vec![b'V', 0x04, b'[', b'i', b'n', b't', 0x90];
    bytes.extend_from_slice(&[b'V', 0x91, 0x90]);
    let err = decode_one(&[&[0x7a][..], &bytes].concat()).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownTypeRef {
                index: 1,
                offset: 9,
                count: 1
            }
        ),
        "{err:?}"
    );
    // A variable-length typed list (0x55) and a typed map (`M`).
    let err = decode_one(&[0x55, 0x93, b'Z']).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownTypeRef {
                index: 3,
                offset: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let err = decode_one(&[b'M', 0x90, b'Z']).refused();
    assert!(
        matches!(
            err,
            DecodeError::UnknownTypeRef {
                index: 0,
                offset: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

fn decode_one(bytes: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(bytes).read_value()
}

/// The error of a decode that must fail (without printing a huge value when it does not).
const SLOT: usize = std::mem::size_of::<Value>();

#[test]
fn a_value_slot_takes_56_bytes() {
    // The budget factor is chosen against this size; see `Decoder::BUDGET_FACTOR`.
    assert_eq!(SLOT, 56);
}

/// The 2 MB reply of the issue: a list of a million `Q 0` (each a reference to the list
/// itself, 2 bytes on the wire and a 56-byte value in memory).
fn million_self_refs(fixed_length: bool) -> Vec<u8> {
    let mut value = if fixed_length {
        list_header(1_000_000)
    } else {
        vec![0x57]
    };
    for _ in 0..1_000_000 {
        value.extend_from_slice(&[0x51, 0x90]);
    }
    if !fixed_length {
        value.push(b'Z');
    }
    reply_body(&value)
}

#[test]
fn a_million_back_references_are_refused_by_the_memory_budget() {
    let body = million_self_refs(true);
    assert!(body.len() > 2_000_000);
    let limit = Decoder::BUDGET_FACTOR * body.len();
    let err = decode_reply(&body).refused();
    // Refused at the list's header, before its 56 MB of slots are allocated.
    assert!(
        matches!(err, DecodeError::OverBudget { offset: 1, limit: l, input } if l == limit && input == body.len()),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "the values decoded up to byte 1 would take more than {limit} bytes of memory, the budget for a {}-byte stream (24x its size",
            body.len()
        )),
        "{err}"
    );
    // Without a length up front the list grows until the budget stops it, somewhere inside.
    let body = million_self_refs(false);
    let mut d = Decoder::new(&body);
    d.read_int().unwrap();
    match d.read_value().refused() {
        DecodeError::OverBudget { offset, limit, .. } => {
            assert!(offset > 2 && offset < body.len(), "{offset}");
            assert_eq!(limit, Decoder::BUDGET_FACTOR * body.len());
        }
        other => panic!("{other:?}"),
    }
    assert!(d.decoded_bytes() <= Decoder::BUDGET_FACTOR * body.len());
}

#[test]
fn a_type_name_copied_by_one_byte_indexes_is_counted() {
    // A variable-length list typed with a 60 000-character name, then 20 000 empty lists of
    // type index 0 (`0x70 0x90`, two bytes each): every one carries a copy of the name, 1.2 GB
    // in all from a 100 KB stream.
    let name = "x".repeat(60_000);
    let mut bytes = vec![0x55];
    let mut s = BytesMut::new();
    Encoder::new(&mut s).write_string(&name);
    bytes.extend_from_slice(&s);
    for _ in 0..20_000 {
        bytes.extend_from_slice(&[0x70, 0x90]);
    }
    bytes.push(b'Z');
    let mut d = Decoder::new(&bytes);
    let err = d.read_value().refused();
    assert!(matches!(err, DecodeError::OverBudget { .. }), "{err:?}");
    assert!(d.decoded_bytes() <= Decoder::BUDGET_FLOOR);
    // The same list with ten such items is fine.
    let mut few = bytes[..1 + s.len()].to_vec();
    for _ in 0..10 {
        few.extend_from_slice(&[0x70, 0x90]);
    }
    few.push(b'Z');
    let v = decode_one(&few).unwrap();
    let Value::List(l) = v else { panic!() };
    assert_eq!(l.items.len(), 10);
}

#[test]
fn a_small_budget_refuses_what_the_default_accepts() {
    // 1 000 small ints in a list: 56 KB of slots from 1 KB of input, within the floor.
    let mut bytes = list_header(1000);
    bytes.extend(std::iter::repeat_n(0x91, 1000));
    assert!(decode_one(&bytes).is_ok());
    let err = Decoder::with_budget(&bytes, 1000 * SLOT - 1)
        .read_value()
        .refused();
    assert!(
        matches!(err, DecodeError::OverBudget { offset: 0, .. }),
        "{err:?}"
    );
    let mut d = Decoder::with_budget(&bytes, 1000 * SLOT);
    assert!(d.read_value().is_ok());
    assert_eq!(d.decoded_bytes(), 1000 * SLOT);
}

/// A reply such as a real service sends: 20 000 users with names, tags and nested lists, in
/// the bytes our encoder writes (what hessian-lite writes).
fn big_legitimate_reply() -> (Value, Vec<u8>) {
    let users: Vec<Value> = (0..20_000)
        .map(|i| {
            Value::Object(Object::new(
                "org.apache.dubbo.demo.User",
                vec![
                    ("id".into(), Value::Long(i)),
                    ("name".into(), Value::String(format!("user number {i}"))),
                    (
                        "tags".into(),
                        Value::List(List::typed(
                            "java.util.ArrayList",
                            vec![Value::String("a".into()), Value::String("bb".into())],
                        )),
                    ),
                    ("age".into(), Value::Int((i % 90) as i32)),
                ],
            ))
        })
        .collect();
    let value = Value::List(List::typed("java.util.ArrayList", users));
    let mut out = BytesMut::new();
    Encoder::new(&mut out).write_value(&value);
    (value, out.to_vec())
}

#[test]
fn a_big_legitimate_reply_decodes_within_its_budget() {
    let (value, bytes) = big_legitimate_reply();
    assert!(bytes.len() > 500_000, "{}", bytes.len());
    // Without the floor: the reply fits in its budget relative to its own size.
    let mut d = Decoder::with_budget(&bytes, Decoder::BUDGET_FACTOR * bytes.len());
    assert_eq!(d.read_value().unwrap(), value);
    assert!(d.is_at_end());
    let used = d.decoded_bytes();
    assert!(used <= Decoder::BUDGET_FACTOR * bytes.len());
    eprintln!(
        "{} bytes decode to {used} bytes of values: {:.1}x",
        bytes.len(),
        used as f64 / bytes.len() as f64
    );
    // `decoded_size` measures what the decoder charged (Vec capacities aside).
    let measured = decoded_size(std::slice::from_ref(&value));
    assert!(
        measured <= used + SLOT && measured * 2 > used,
        "{measured} vs {used}"
    );
}

#[test]
fn every_vector_decodes_within_the_default_budget() {
    let (dir, rows) = manifest();
    let mut worst = (0.0f64, String::new());
    for row in &rows {
        let bytes = row.bytes(&dir);
        let values = decode_all(&bytes).unwrap_or_else(|e| panic!("{}: {e}", row.file));
        let mut d = Decoder::new(&bytes);
        while !d.is_at_end() {
            d.read_value().unwrap();
        }
        let ratio = d.decoded_bytes() as f64 / bytes.len().max(1) as f64;
        if ratio > worst.0 {
            worst = (ratio, row.file.clone());
        }
        assert!(!values.is_empty() || bytes.is_empty(), "{}", row.file);
    }
    // The smallest vectors are lists of one-byte ints: 56 bytes of slot per byte, which is
    // why the budget has a floor.
    eprintln!(
        "largest amplification among the vectors: {:.1}x ({})",
        worst.0, worst.1
    );
    assert!(worst.0 < 128.0, "{worst:?}");
}
