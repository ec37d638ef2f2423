//! Focused tests of single behaviours of the codec: robustness against hostile input, the
//! encoding forms Java picks at each boundary, strings and surrogates, and the per-stream
//! tables (class definitions, type names, references).

use std::sync::Arc;

use bytes::BytesMut;

use super::super::{ref_table, ClassDef, DecodeError, Decoder, Encoder, List, Map, Object, Value};
use super::{decode_all, manifest};

fn encode(v: &Value) -> Vec<u8> {
    let mut out = BytesMut::new();
    Encoder::new(&mut out).write_value(v);
    out.to_vec()
}

fn decode_one(bytes: &[u8]) -> Result<Value, DecodeError> {
    Decoder::new(bytes).read_value()
}

fn round_trip(v: &Value) -> Value {
    let bytes = encode(v);
    let mut d = Decoder::new(&bytes);
    let back = d.read_value().expect("our own bytes decode");
    assert!(d.is_at_end(), "trailing bytes after {v:?}");
    back
}

#[test]
fn truncated_string_is_an_error_not_a_panic() {
    let mut bytes = encode(&Value::from("hello, world"));
    bytes.truncate(5);
    let err = decode_one(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::UnexpectedEnd { .. }), "{err}");
    assert!(err.to_string().contains("string"), "{err}");
}

#[test]
fn every_prefix_of_every_vector_is_an_error_not_a_panic() {
    let (dir, rows) = manifest();
    for row in rows.iter().filter(|r| {
        std::fs::metadata(dir.join(&r.file))
            .map(|m| m.len() < 4096)
            .unwrap_or(false)
    }) {
        let bytes = row.bytes(&dir);
        let full = decode_all(&bytes).map(|v| v.len()).unwrap_or(0);
        for cut in 1..bytes.len() {
            // A cut between two top-level values is a valid, shorter stream.
            let complete = decode_all(&bytes[..cut]).map(|v| v.len());
            assert!(
                complete.map(|n| n < full).unwrap_or(true),
                "{}: prefix of {cut} bytes decoded without error",
                row.file
            );
        }
    }
}

#[test]
fn corrupted_vectors_never_panic() {
    let (dir, rows) = manifest();
    // A fixed xorshift sequence: reproducible without a dependency.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for row in rows.iter().filter(|r| {
        std::fs::metadata(dir.join(&r.file))
            .map(|m| m.len() < 4096)
            .unwrap_or(false)
    }) {
        let original = row.bytes(&dir);
        for _ in 0..50 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 3 {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            let _ = decode_all(&bytes);
        }
    }
}

#[test]
fn length_larger_than_input_is_refused_before_allocating() {
    // A fixed untyped list claiming i32::MAX elements, then nothing.
    let err = decode_one(&[0x58, b'I', 0x7f, 0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidLength { .. }), "{err}");
    // A string of 65535 UTF-16 units with two bytes of content.
    let err = decode_one(&[b'S', 0xff, 0xff, b'a', b'b']).unwrap_err();
    assert!(
        err.to_string().contains("a string of 65535 UTF-16 units"),
        "{err}"
    );
    // A binary chunk longer than what is left.
    let err = decode_one(&[b'B', 0x10, 0x00, 1, 2, 3]).unwrap_err();
    assert!(matches!(err, DecodeError::UnexpectedEnd { .. }), "{err}");
    // A class definition claiming a million fields.
    let err = decode_one(&[b'C', 0x01, b'T', b'I', 0x00, 0x0f, 0x42, 0x40]).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidLength { .. }), "{err}");
    // A negative list length.
    let err = decode_one(&[0x58, 0x8f]).unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
}

#[test]
fn nesting_deeper_than_limit_is_refused() {
    let too_deep: Vec<u8> = std::iter::repeat_n(0x79, Decoder::MAX_DEPTH + 1)
        .chain([b'N'])
        .collect();
    let err = decode_one(&too_deep).unwrap_err();
    assert!(matches!(err, DecodeError::TooDeep { .. }), "{err}");

    let at_limit: Vec<u8> = std::iter::repeat_n(0x79, Decoder::MAX_DEPTH)
        .chain([b'N'])
        .collect();
    assert!(decode_one(&at_limit).is_ok());

    // Deep maps are refused the same way, and so are hostile streams of many 'H' bytes.
    let maps = vec![b'H'; 100_000];
    assert!(matches!(
        decode_one(&maps).unwrap_err(),
        DecodeError::TooDeep { .. }
    ));
}

#[test]
fn unknown_tag_error_names_the_tag_and_offset() {
    let err = decode_one(&[0x40]).unwrap_err();
    assert_eq!(err.to_string(), "unknown tag 0x40 at byte 0");
    let err = decode_all(&[0x90, 0x47]).unwrap_err();
    assert_eq!(err.to_string(), "unknown tag 0x47 at byte 1");
}

#[test]
fn read_string_reports_what_it_found_instead() {
    let mut d = Decoder::new(&[0x91]);
    let err = d.read_string().unwrap_err();
    assert_eq!(err.to_string(), "expected a string at byte 0, found int");
    // The decoder did not move, so the caller can read the value another way.
    assert_eq!(d.read_int().unwrap(), 1);
}

#[test]
fn read_string_refuses_null() {
    let err = Decoder::new(b"N").read_string().unwrap_err();
    assert_eq!(err.to_string(), "expected a string at byte 0, found null");
}

#[test]
fn read_int_reads_every_int_form_and_refuses_longs() {
    for i in [
        0,
        -16,
        47,
        48,
        -2048,
        2047,
        2048,
        -262144,
        262143,
        262144,
        i32::MIN,
        i32::MAX,
    ] {
        let bytes = encode(&Value::Int(i));
        assert_eq!(Decoder::new(&bytes).read_int().unwrap(), i);
    }
    let err = Decoder::new(&[0xe1]).read_int().unwrap_err();
    assert_eq!(err.to_string(), "expected an int at byte 0, found long");
}

#[test]
fn int_and_long_use_the_smallest_form_at_each_boundary() {
    let int_sizes = [
        (-16, 1),
        (47, 1),
        (-17, 2),
        (48, 2),
        (-2048, 2),
        (2047, 2),
        (-2049, 3),
        (2048, 3),
        (-262144, 3),
        (262143, 3),
        (-262145, 5),
        (262144, 5),
    ];
    for (i, size) in int_sizes {
        let bytes = encode(&Value::Int(i));
        assert_eq!(bytes.len(), size, "int {i}: {bytes:02x?}");
        assert_eq!(round_trip(&Value::Int(i)), Value::Int(i));
    }
    let long_sizes = [
        (-8, 1),
        (15, 1),
        (-9, 2),
        (16, 2),
        (-2049, 3),
        (262143, 3),
        (262144, 5),
        (i64::from(i32::MIN), 5),
        (i64::from(i32::MAX) + 1, 9),
        (i64::MIN, 9),
    ];
    for (l, size) in long_sizes {
        let bytes = encode(&Value::Long(l));
        assert_eq!(bytes.len(), size, "long {l}: {bytes:02x?}");
        assert_eq!(round_trip(&Value::Long(l)), Value::Long(l));
    }
}

#[test]
fn doubles_use_javas_compact_forms() {
    assert_eq!(encode(&Value::Double(0.0)), [0x5b]);
    assert_eq!(
        encode(&Value::Double(-0.0)),
        [0x5b],
        "Java loses the sign of zero"
    );
    assert_eq!(encode(&Value::Double(1.0)), [0x5c]);
    assert_eq!(encode(&Value::Double(-128.0)), [0x5d, 0x80]);
    assert_eq!(encode(&Value::Double(-129.0)), [0x5e, 0xff, 0x7f]);
    // 0x5f is a count of thousandths, not a float32.
    assert_eq!(encode(&Value::Double(12.25)), [0x5f, 0, 0, 0x2f, 0xda]);
    assert_eq!(encode(&Value::Double(0.001)), [0x5f, 0, 0, 0, 1]);
    assert_eq!(encode(&Value::Double(f64::NAN))[0], b'D');
    assert_eq!(encode(&Value::Double(f64::INFINITY))[0], b'D');
    assert_eq!(encode(&Value::Double(2.5e-4))[0], b'D');
    for d in [
        0.1,
        10.123,
        -2147483.648,
        1e100,
        f64::MIN_POSITIVE,
        f64::MAX,
    ] {
        assert_eq!(round_trip(&Value::Double(d)), Value::Double(d));
    }
}

#[test]
fn dates_use_minutes_only_for_whole_minutes_in_range() {
    assert_eq!(encode(&Value::Date(60_000))[0], 0x4b);
    assert_eq!(encode(&Value::Date(60_001))[0], 0x4a);
    let far = (i64::from(i32::MAX) + 1) * 60_000;
    assert_eq!(encode(&Value::Date(far))[0], 0x4a);
    for ms in [0, -1000, 60_000, 60_001, far, i64::MIN, i64::MAX] {
        assert_eq!(round_trip(&Value::Date(ms)), Value::Date(ms));
    }
}

#[test]
fn non_bmp_char_round_trips_as_surrogate_pair_halves() {
    let v = Value::from("a\u{1F600}b");
    let bytes = encode(&v);
    // Length 4 UTF-16 units, then each surrogate as its own 3-byte sequence.
    assert_eq!(
        bytes,
        [0x04, b'a', 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80, b'b']
    );
    assert_eq!(round_trip(&v), v);
}

#[test]
fn four_byte_utf8_is_accepted_as_two_units() {
    let mut bytes = vec![0x02];
    bytes.extend_from_slice("\u{1F600}".as_bytes());
    assert_eq!(decode_one(&bytes).unwrap(), Value::from("\u{1F600}"));
}

#[test]
fn lone_surrogate_becomes_replacement_char() {
    // "x", lone high surrogate D83D, "y"
    let bytes = [0x03, b'x', 0xed, 0xa0, 0xbd, b'y'];
    assert_eq!(decode_one(&bytes).unwrap(), Value::from("x\u{FFFD}y"));
    // A lone low surrogate, and a high surrogate ending the string.
    let bytes = [0x02, 0xed, 0xb8, 0x80, 0xed, 0xa0, 0xbd];
    assert_eq!(decode_one(&bytes).unwrap(), Value::from("\u{FFFD}\u{FFFD}"));
}

#[test]
fn surrogate_pair_split_across_chunks_is_joined() {
    // Chunk 'R' of 1 unit holding the high half, final chunk of 1 unit holding the low half.
    let bytes = [b'R', 0x00, 0x01, 0xed, 0xa0, 0xbd, 0x01, 0xed, 0xb8, 0x80];
    assert_eq!(decode_one(&bytes).unwrap(), Value::from("\u{1F600}"));
}

#[test]
fn invalid_utf8_is_an_error_with_its_offset() {
    let err = decode_one(&[0x02, b'a', 0xff]).unwrap_err();
    assert_eq!(err.to_string(), "invalid UTF-8 in a string at byte 2");
}

#[test]
fn nul_char_is_a_single_zero_byte() {
    assert_eq!(encode(&Value::from("\0")), [0x01, 0x00]);
}

#[test]
fn long_strings_are_chunked_at_32768_units_without_splitting_a_pair() {
    let s = "a".repeat(65537);
    let bytes = encode(&Value::from(s.as_str()));
    assert_eq!(&bytes[..3], [b'R', 0x80, 0x00]);
    assert_eq!(
        round_trip(&Value::from(s.as_str())),
        Value::from(s.as_str())
    );

    let s = format!("{}\u{1F600}b", "a".repeat(32767));
    let bytes = encode(&Value::from(s.as_str()));
    assert_eq!(&bytes[..3], [b'R', 0x7f, 0xff]);
    assert_eq!(
        round_trip(&Value::from(s.as_str())),
        Value::from(s.as_str())
    );
}

#[test]
fn binary_chunks_follow_javas_buffer_fill() {
    // At the start of a stream, Java's 8192-byte buffer has room for an 8189-byte chunk.
    let data: Vec<u8> = (0..20_000).map(|i| i as u8).collect();
    let bytes = encode(&Value::Binary(data.clone()));
    assert_eq!(&bytes[..3], [b'A', 0x1f, 0xfd]);
    // After a 5-byte int, the first chunk is 5 bytes shorter; later chunks start empty.
    let mut out = BytesMut::new();
    let mut e = Encoder::new(&mut out);
    e.write_int(i32::MAX);
    e.write_binary(&data);
    assert_eq!(&out[5..8], [b'A', 0x1f, 0xf8]);
    assert_eq!(&out[8 + 8184..8 + 8184 + 3], [b'A', 0x1f, 0xfd]);
    let mut d = Decoder::new(&out);
    assert_eq!(d.read_int().unwrap(), i32::MAX);
    assert_eq!(d.read_value().unwrap(), Value::Binary(data));
}

#[test]
fn any_binary_chunking_is_accepted() {
    let bytes = [b'A', 0x00, 0x01, 7, b'A', 0x00, 0x00, 0x22, 8, 9];
    assert_eq!(decode_one(&bytes).unwrap(), Value::Binary(vec![7, 8, 9]));
}

#[test]
fn class_definition_is_written_once_per_stream() {
    let user = |id: i64| {
        Value::Object(Object::new(
            "org.apache.dubbo.demo.User",
            vec![
                ("name".to_owned(), Value::from("u")),
                ("id".to_owned(), Value::Long(id)),
            ],
        ))
    };
    let mut out = BytesMut::new();
    let mut e = Encoder::new(&mut out);
    for id in 0..1000 {
        e.write_value(&user(id));
    }
    let definitions = out
        .windows(27)
        .filter(|w| w.ends_with(b"org.apache.dubbo.demo.User"))
        .count();
    assert_eq!(definitions, 1);
    let mut d = Decoder::new(&out);
    for id in 0..1000 {
        let v = d.read_value().unwrap();
        let Value::Object(o) = v else {
            panic!("not an object")
        };
        assert_eq!(o.get("id"), Some(&Value::Long(id)));
    }
    assert!(d.is_at_end());
}

#[test]
fn seventeenth_class_definition_uses_the_long_object_form() {
    let objects: Vec<Value> = (0..17)
        .map(|i| {
            Value::Object(Object::new(
                format!("C{i}"),
                vec![("f".to_owned(), Value::Int(i))],
            ))
        })
        .collect();
    let mut out = BytesMut::new();
    let mut e = Encoder::new(&mut out);
    for o in &objects {
        e.write_value(o);
    }
    // The last instance is 'O' followed by the int 16 (0xa0), then its field.
    assert_eq!(&out[out.len() - 3..], [b'O', 0xa0, 0xa0]);
    assert_eq!(decode_all(&out).unwrap(), objects);
}

#[test]
fn undefined_class_definition_is_refused() {
    let err = decode_one(&[0x61]).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownClassDef { .. }), "{err}");
}

#[test]
fn ref_to_a_container_not_yet_started_is_refused() {
    let err = decode_one(&[0x51, 0x90]).unwrap_err();
    assert!(matches!(err, DecodeError::BadRef { .. }), "{err}");
    // A list that contains itself is fine.
    assert_eq!(
        decode_one(&[0x79, 0x51, 0x90]).unwrap(),
        Value::List(List::untyped(vec![Value::Ref(0)]))
    );
}

#[test]
fn type_names_are_written_once_then_referenced_by_index() {
    let v = Value::List(List::untyped(vec![
        Value::List(List::typed("[int", vec![Value::Int(1)])),
        Value::List(List::typed("[int", vec![])),
        Value::Map(Map::typed("java.util.TreeMap", vec![])),
    ]));
    let bytes = encode(&v);
    assert_eq!(bytes.windows(4).filter(|w| w == b"[int").count(), 1);
    // Second list: 0x70 (typed, 0 items) and type index 0 (0x90).
    assert!(bytes.windows(2).any(|w| w == [0x70, 0x90]));
    assert_eq!(round_trip(&v), v);
    let err = decode_one(&[0x71, 0x91, 0x90]).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownTypeRef { .. }), "{err}");
}

#[test]
fn variable_length_lists_round_trip() {
    for type_name in [None, Some("java.util.ArrayList".to_owned())] {
        let v = Value::List(List {
            type_name,
            items: vec![Value::Int(1), Value::Null],
            fixed_length: false,
        });
        let bytes = encode(&v);
        assert_eq!(bytes.last(), Some(&b'Z'));
        assert_eq!(round_trip(&v), v);
    }
}

#[test]
fn long_lists_use_the_length_prefixed_forms() {
    let items: Vec<Value> = (0..8).map(Value::Int).collect();
    assert_eq!(
        encode(&Value::List(List::untyped(items.clone())))[..2],
        [0x58, 0x98]
    );
    let typed = Value::List(List::typed("[int", items));
    assert_eq!(encode(&typed)[0], b'V');
    assert_eq!(round_trip(&typed), typed);
}

#[test]
fn string_map_is_written_as_an_untyped_map() {
    let mut out = BytesMut::new();
    Encoder::new(&mut out).write_string_map([("path", "a.B"), ("timeout", "3000")]);
    assert_eq!(out[0], b'H');
    assert_eq!(out[out.len() - 1], b'Z');
    let Value::Map(m) = decode_one(&out).unwrap() else {
        panic!("not a map")
    };
    assert_eq!(m.type_name, None);
    assert_eq!(m.get_str("timeout"), Some(&Value::from("3000")));
}

#[test]
fn decoder_keeps_tables_across_top_level_values() {
    let node = Object::new("N", vec![("v".to_owned(), Value::Int(1))]);
    let mut out = BytesMut::new();
    let mut e = Encoder::new(&mut out);
    e.write_value(&Value::Object(node.clone()));
    e.write_value(&Value::Object(node));
    e.write_value(&Value::Ref(1));
    let values = decode_all(&out).unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[2], Value::Ref(1));
    // The second object reused definition 0: no second 'C'.
    assert_eq!(out.iter().filter(|&&b| b == b'C').count(), 1);
}

#[test]
fn ref_table_lists_containers_in_wire_order() {
    let bytes = {
        let mut out = BytesMut::new();
        let mut e = Encoder::new(&mut out);
        let inner = Value::List(List::untyped(vec![Value::Int(1)]));
        e.write_value(&Value::Map(Map::untyped(vec![
            (Value::from("x"), inner),
            (Value::from("y"), Value::Ref(1)),
        ])));
        e.write_value(&Value::Object(Object::new("T", vec![])));
        out.to_vec()
    };
    let roots = decode_all(&bytes).unwrap();
    let table = ref_table(&roots);
    assert_eq!(table.len(), 3);
    assert!(matches!(table[0], Value::Map(_)));
    assert_eq!(table[1], &Value::List(List::untyped(vec![Value::Int(1)])));
    assert!(matches!(table[2], Value::Object(o) if o.class.name == "T"));
}

#[test]
fn object_accessors_follow_the_class_definition() {
    let o = Object::new(
        "User",
        vec![
            ("name".to_owned(), Value::from("alice")),
            ("id".to_owned(), Value::Long(1)),
        ],
    );
    assert_eq!(
        *o.class,
        ClassDef {
            name: "User".to_owned(),
            fields: vec!["name".to_owned(), "id".to_owned()],
        }
    );
    assert_eq!(o.get("id").and_then(Value::as_i64), Some(1));
    assert_eq!(o.get("name").and_then(Value::as_str), Some("alice"));
    assert_eq!(o.get("missing"), None);
    // Missing values are written as null so that the stream stays well-formed.
    let short = Object {
        class: Arc::clone(&o.class),
        values: vec![Value::from("bob")],
    };
    let Value::Object(back) = round_trip(&Value::Object(short)) else {
        panic!("not an object")
    };
    assert_eq!(back.get("id"), Some(&Value::Null));
}
