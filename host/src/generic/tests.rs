//! The JSON conventions of generic calls, both ways, against hessian-lite's own bytes.

use serde_json::{json, Value as Json};

use super::*;
use crate::hessian2::{List, Map, Object, Value};

fn to_hessian(t: &str, j: Json) -> Value {
    json_to_hessian(t, &j).unwrap_or_else(|e| panic!("{t} {j}: {e}"))
}

/// The tree form, checked against the text form: both print the same JSON.
fn to_json(v: &Value) -> Json {
    let roots = std::slice::from_ref(v);
    let tree = hessian_to_json(v, roots).unwrap_or_else(|e| panic!("{v:?}: {e}"));
    let text = hessian_to_json_text(v, roots).unwrap_or_else(|e| panic!("{v:?}: {e}"));
    assert_eq!(
        text,
        tree.to_string(),
        "text and tree forms differ for {v:?}"
    );
    tree
}

#[test]
fn long_beyond_2_pow_53_stays_exact() {
    let text = "[9007199254740993]";
    let args: Vec<Json> = serde_json::from_str(text).unwrap();
    let v = to_hessian("long", args[0].clone());
    assert_eq!(v, Value::Long(9_007_199_254_740_993));
    assert_eq!(to_json(&v).to_string(), "9007199254740993");
    assert_eq!(
        to_hessian("java.lang.Long", json!(i64::MIN)),
        Value::Long(i64::MIN)
    );
}

#[test]
fn integer_types_are_range_checked_and_refuse_fractions() {
    assert_eq!(to_hessian("int", json!(-5)), Value::Int(-5));
    assert_eq!(to_hessian("short", json!(32767)), Value::Int(32767));
    assert_eq!(to_hessian("java.lang.Byte", json!(-128)), Value::Int(-128));
    let err = json_to_hessian("int", &json!(2_147_483_648_i64)).unwrap_err();
    assert!(err.to_string().contains("out of range for int"), "{err}");
    let err = json_to_hessian("byte", &json!(128)).unwrap_err();
    assert!(err.to_string().contains("out of range for byte"), "{err}");
    let err = json_to_hessian("long", &json!(1.5)).unwrap_err();
    assert!(err.to_string().contains("1.5"), "{err}");
    let err = json_to_hessian("long", &json!(u64::MAX)).unwrap_err();
    assert!(err.to_string().contains("out of range for long"), "{err}");
    let huge: Json = serde_json::from_str("99999999999999999999").unwrap();
    let err = json_to_hessian("long", &huge).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn null_is_refused_for_primitives_but_not_for_boxed_types() {
    let err = json_to_hessian("int", &Json::Null).unwrap_err();
    assert!(err.to_string().contains("primitive type int"), "{err}");
    assert_eq!(to_hessian("java.lang.Integer", Json::Null), Value::Null);
    assert_eq!(to_hessian("org.x.User", Json::Null), Value::Null);
}

#[test]
fn floats_are_written_as_doubles_the_way_java_spells_them() {
    assert_eq!(to_hessian("double", json!(3.5)), Value::Double(3.5));
    assert_eq!(to_hessian("double", json!(2)), Value::Double(2.0));
    assert_eq!(to_hessian("float", json!(0.1)), Value::Double(0.1));
    assert_eq!(
        to_hessian("float", json!(0.123456789)),
        Value::Double(0.12345679)
    );
    assert!(json_to_hessian("float", &json!(1e300)).is_err());
}

#[test]
fn chars_must_be_one_utf16_unit() {
    assert_eq!(to_hessian("char", json!("A")), Value::String("A".into()));
    let err = json_to_hessian("char", &json!("😀")).unwrap_err();
    assert!(err.to_string().contains("two UTF-16 units"), "{err}");
    assert!(json_to_hessian("char", &json!("AB")).is_err());
}

#[test]
fn byte_arrays_become_binary_from_signed_or_unsigned_numbers() {
    assert_eq!(
        to_hessian("byte[]", json!([0, 1, -1, 255])),
        Value::Binary(vec![0, 1, 255, 255])
    );
    let err = json_to_hessian("byte[]", &json!([1, 256])).unwrap_err();
    assert!(err.to_string().starts_with("at [1]: "), "{err}");
}

#[test]
fn arrays_are_typed_lists_as_hessian_lite_writes_them() {
    assert_eq!(
        to_hessian("java.lang.String[]", json!(["x", "y"])),
        Value::List(List::typed("[string", vec!["x".into(), "y".into()]))
    );
    assert_eq!(
        to_hessian("[I", json!([1, 2])),
        Value::List(List::typed("[int", vec![1.into(), 2.into()]))
    );
    assert_eq!(
        to_hessian("long[][]", json!([[1]])),
        Value::List(List::typed(
            "[[long",
            vec![Value::List(List::typed("[long", vec![Value::Long(1)]))]
        ))
    );
    assert_eq!(
        to_hessian("org.x.User[]", json!([{"id": 1}])),
        Value::List(List::typed(
            "[org.x.User",
            vec![Value::Object(Object::new(
                "org.x.User",
                vec![("id".into(), Value::Int(1))]
            ))]
        ))
    );
}

#[test]
fn lists_are_untyped_like_an_array_list_and_sets_are_typed() {
    assert_eq!(
        to_hessian("java.util.List", json!([1, "a", 5_000_000_000_i64])),
        Value::List(List::untyped(vec![
            Value::Int(1),
            "a".into(),
            Value::Long(5_000_000_000)
        ]))
    );
    assert_eq!(
        to_hessian("java.util.List<java.lang.Long>", json!([1])),
        Value::List(List::untyped(vec![Value::Long(1)]))
    );
    assert_eq!(
        to_hessian("java.util.Set<String>", json!(["x"])),
        Value::List(List::typed("java.util.HashSet", vec!["x".into()]))
    );
    assert_eq!(
        to_hessian("java.util.LinkedList", json!([])),
        Value::List(List::typed("java.util.LinkedList", vec![]))
    );
}

#[test]
fn maps_are_untyped_with_string_keys_and_nested_values_converted_without_a_type() {
    let v = to_hessian(
        "java.util.Map",
        json!({"k": "v", "n": 1, "l": [true], "m": {"x": null}}),
    );
    assert_eq!(
        v,
        Value::Map(Map::untyped(vec![
            ("k".into(), "v".into()),
            ("n".into(), Value::Int(1)),
            (
                "l".into(),
                Value::List(List::untyped(vec![Value::Bool(true)]))
            ),
            (
                "m".into(),
                Value::Map(Map::untyped(vec![("x".into(), Value::Null)]))
            ),
        ]))
    );
    assert_eq!(
        to_hessian("java.util.Map<java.lang.Long, long>", json!({"7": 8})),
        Value::Map(Map::untyped(vec![(Value::Long(7), Value::Long(8))]))
    );
    assert_eq!(
        to_hessian("java.util.TreeMap", json!({})),
        Value::Map(Map::typed("java.util.TreeMap", vec![]))
    );
}

#[test]
fn object_with_class_key_becomes_typed_object() {
    let v = to_hessian(
        "java.lang.Object",
        json!({"class": "org.x.User", "name": "alice", "id": 1}),
    );
    assert_eq!(
        v,
        Value::Object(Object::new(
            "org.x.User",
            vec![
                ("name".into(), "alice".into()),
                ("id".into(), Value::Int(1))
            ]
        ))
    );
    // A subclass named by "class" wins over the declared type.
    let v = to_hessian("org.x.User", json!({"class": "org.x.Admin", "id": 1}));
    assert!(matches!(&v, Value::Object(o) if o.class.name == "org.x.Admin"));
}

#[test]
fn object_without_class_key_takes_the_declared_class() {
    let v = to_hessian("org.x.User", json!({"id": 1, "tags": ["a"]}));
    assert_eq!(
        v,
        Value::Object(Object::new(
            "org.x.User",
            vec![
                ("id".into(), Value::Int(1)),
                ("tags".into(), Value::List(List::untyped(vec!["a".into()])))
            ]
        ))
    );
}

#[test]
fn enum_constant_given_as_string_becomes_an_object_with_its_name() {
    assert_eq!(
        to_hessian("org.x.Color", json!("GREEN")),
        Value::Object(Object::new(
            "org.x.Color",
            vec![("name".into(), "GREEN".into())]
        ))
    );
}

#[test]
fn dates_are_epoch_milliseconds_both_ways() {
    let v = to_hessian("java.util.Date", json!(1_577_836_800_123_i64));
    assert_eq!(v, Value::Date(1_577_836_800_123));
    assert_eq!(to_json(&v), json!(1_577_836_800_123_i64));
}

#[test]
fn wrong_json_shape_names_the_argument_the_type_and_the_value() {
    let err = invocation(
        "save",
        &["long".into(), "java.util.List<java.lang.String>".into()],
        &[json!(1), json!(["a", 2])],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "argument 1 (java.util.List<java.lang.String>): at [1]: expected a string for java.lang.String, got 2"
    );
}

#[test]
fn invocation_joins_descriptors_and_checks_the_argument_count() {
    let inv = invocation(
        "add",
        &["int".into(), "java.lang.String".into()],
        &[json!(1), json!("x")],
    )
    .unwrap();
    assert_eq!(&*inv.parameter_types, "ILjava/lang/String;");
    assert_eq!(inv.args, vec![Value::Int(1), "x".into()]);
    let err = invocation("add", &["int".into()], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            GenericError::Count {
                types: 1,
                args: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn types_are_inferred_from_json_values() {
    for (j, t) in [
        (json!("x"), "java.lang.String"),
        (json!(1), "int"),
        (json!(9_007_199_254_740_993_i64), "long"),
        (json!(1.5), "double"),
        (json!(true), "boolean"),
        (json!({"a": 1}), "java.util.Map"),
        (json!({"class": "org.x.User"}), "org.x.User"),
        (json!([1]), "java.util.List"),
    ] {
        assert_eq!(infer_java_type(&j), t, "{j}");
    }
}

#[test]
fn non_bmp_text_round_trips() {
    let v = to_hessian("java.lang.String", json!("a😀b"));
    assert_eq!(to_json(&v), json!("a😀b"));
    assert_eq!(to_json(&v).to_string(), "\"a😀b\"");
}

#[test]
fn objects_print_with_class_first_and_fields_in_wire_order() {
    let v = Value::Object(Object::new(
        "org.x.User",
        vec![
            ("tags".into(), Value::List(List::untyped(vec!["a".into()]))),
            ("name".into(), "alice".into()),
            ("id".into(), Value::Long(1)),
        ],
    ));
    assert_eq!(
        to_json(&v).to_string(),
        r#"{"class":"org.x.User","tags":["a"],"name":"alice","id":1}"#
    );
}

#[test]
fn ref_to_shared_object_prints_the_object_again() {
    // [U, ref 1]: the list is ref 0, U is ref 1 (as java-hessian-lite ref_shared_in_list).
    let user = Value::Object(Object::new(
        "org.x.User",
        vec![("name".into(), "shared".into())],
    ));
    let list = Value::List(List::untyped(vec![user, Value::Ref(1)]));
    let shared = json!({"class": "org.x.User", "name": "shared"});
    assert_eq!(to_json(&list), json!([shared.clone(), shared]));
}

#[test]
fn ref_to_an_ancestor_prints_as_a_ref_marker() {
    // An exception whose cause is itself, as Java writes "no cause".
    let e = Value::Object(Object::new(
        "java.lang.RuntimeException",
        vec![
            ("cause".into(), Value::Ref(0)),
            ("detailMessage".into(), "boom".into()),
        ],
    ));
    assert_eq!(
        to_json(&e),
        json!({"class": "java.lang.RuntimeException", "cause": {"$ref": 0}, "detailMessage": "boom"})
    );
}

#[test]
fn maps_with_non_string_keys_print_the_keys_as_text() {
    let m = Value::Map(Map::untyped(vec![
        (Value::Int(16), "fie".into()),
        (Value::Long(1), "fee".into()),
        (Value::Bool(true), Value::Null),
    ]));
    assert_eq!(
        to_json(&m).to_string(),
        r#"{"16":"fie","1":"fee","true":null}"#
    );
}

#[test]
fn binary_prints_as_numbers_and_special_doubles_as_java_text() {
    assert_eq!(to_json(&Value::Binary(vec![0, 255])), json!([0, 255]));
    assert_eq!(to_json(&Value::Double(f64::NAN)), json!("NaN"));
    assert_eq!(
        to_json(&Value::Double(f64::NEG_INFINITY)),
        json!("-Infinity")
    );
}

/// A file of the third-party golden vectors in `shared/vectors/hessian2`.
fn vector(name: &str) -> Vec<u8> {
    let start = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = crate::testing::vectors_dir(start, "hessian2");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn json_arguments_encode_to_the_bytes_hessian_lite_writes() {
    let cases = [
        (
            "java.lang.String[]",
            json!(["a", "b"]),
            "list_string_array.bin",
        ),
        ("int[]", json!([1, 2, 3]), "list_int_array.bin"),
        ("double[]", json!([1.5, 0.0]), "list_double_array.bin"),
        ("boolean[]", json!([true, false]), "list_boolean_array.bin"),
        (
            "java.lang.Object[]",
            json!([1, "x", null]),
            "list_object_array.bin",
        ),
        (
            "java.util.List",
            json!([1, 2, 3, 4, 5, 6, 7]),
            "list_arraylist_7.bin",
        ),
        ("java.util.Set", json!(["x"]), "list_hashset_1.bin"),
        (
            "java.util.LinkedList<Integer>",
            json!([1, 2]),
            "list_linkedlist_int.bin",
        ),
        ("java.util.Map", json!({"a": 1}), "map_hashmap_1.bin"),
        (
            "java.util.TreeMap",
            json!({"a": 1, "b": 2}),
            "map_treemap.bin",
        ),
        ("java.lang.Character", json!("A"), "char_A.bin"),
        ("java.lang.Short", json!(7), "short_7.bin"),
        ("java.lang.Float", json!(0.1), "float_0.1.bin"),
        (
            "java.util.Date",
            json!(1_577_836_800_123_i64),
            "date_2020_01_01_millis.bin",
        ),
        (
            "org.apache.dubbo.demo.Color",
            json!("GREEN"),
            "enum_green.bin",
        ),
        (
            "byte[]",
            json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
            "binary_len15.bin",
        ),
        ("java.lang.String", json!("😀"), "string_emoji.bin"),
    ];
    for (t, j, file) in cases {
        let mut out = bytes::BytesMut::new();
        crate::hessian2::Encoder::new(&mut out).write_value(&to_hessian(t, j));
        assert_eq!(
            &out[..],
            &vector(&format!("java-hessian-lite-4.0.3/{file}"))[..],
            "{t} → {file}"
        );
    }
}

fn decoded_json(file: &str) -> Json {
    let bytes = vector(&format!("java-hessian-lite-4.0.3/{file}"));
    let v = crate::hessian2::Decoder::new(&bytes)
        .read_value()
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    to_json(&v)
}

#[test]
fn java_written_values_print_as_generic_json() {
    let shared =
        json!({"class": "org.apache.dubbo.demo.User", "tags": null, "name": "shared", "id": 7});
    assert_eq!(
        decoded_json("ref_shared_in_list.bin"),
        json!([shared.clone(), shared])
    );
    assert_eq!(
        decoded_json("object_two_users_in_list.bin").to_string(),
        r#"[{"class":"org.apache.dubbo.demo.User","tags":["a"],"name":"alice","id":1},{"class":"org.apache.dubbo.demo.User","tags":[],"name":"bob","id":2}]"#
    );
    let e = decoded_json("exception_runtime.bin");
    assert_eq!(e["cause"], json!({"$ref": 0}));
    assert_eq!(e["detailMessage"], json!("boom"));
    assert_eq!(
        decoded_json("map_hashmap_int_keys.bin").to_string(),
        r#"{"16":"fie","256":"foe","1":"fee"}"#
    );
}

use crate::testing::Refused;

#[test]
fn a_chain_of_shared_refs_is_refused_past_the_budget() {
    // Each list holds its predecessor twice: fully expanded this would be 2^40 values.
    let mut lists = vec![Value::List(List::untyped(vec![]))];
    for i in 1..=40u32 {
        lists.push(Value::List(List::untyped(vec![
            Value::Ref(i), // the previous list: ref 0 is the root list below
            Value::Ref(i),
        ])));
    }
    let root = Value::List(List::untyped(lists));
    let roots = std::slice::from_ref(&root);
    for err in [
        hessian_to_json(&root, roots).refused(),
        hessian_to_json_text(&root, roots).refused(),
    ] {
        let JsonError::OverBudget { limit, decoded } = err else {
            panic!("{err}")
        };
        assert_eq!(limit, super::to_json::BUDGET_FLOOR);
        assert_eq!(decoded, crate::hessian2::decoded_size(roots));
    }
    // Nothing is written when the result is over budget.
    let mut out = Vec::new();
    let err = write_hessian_json(&root, roots, &mut out).refused();
    assert!(
        err.to_string().starts_with(&format!(
            "the result would print as more than {} bytes of JSON",
            super::to_json::BUDGET_FLOOR
        )),
        "{err}"
    );
    assert!(out.is_empty());
}

use crate::testing::blob_and_refs as refs_to_one_big_object;

#[test]
fn references_to_one_large_object_are_refused_past_the_budget() {
    // 1 MB printed 100 times from a reply of about 1 MB.
    let v = refs_to_one_big_object(1 << 20, 100);
    let roots = std::slice::from_ref(&v);
    let err = hessian_to_json_text(&v, roots).refused();
    assert!(matches!(err, JsonError::OverBudget { .. }), "{err}");
    assert!(hessian_to_json(&v, roots).is_err());
    // A few copies fit: shared objects print expanded, as Java's generic invoke does.
    let v = refs_to_one_big_object(1 << 20, 3);
    let text = hessian_to_json_text(&v, std::slice::from_ref(&v)).unwrap();
    assert_eq!(text.matches("org.x.Blob").count(), 4);
    assert!(text.len() > 4 << 20);
}

#[test]
fn a_list_that_contains_itself_prints_the_cycle_as_a_ref() {
    let v = Value::List(List::untyped(vec![
        Value::Int(1),
        Value::Ref(0),
        Value::Ref(0),
    ]));
    assert_eq!(to_json(&v).to_string(), r#"[1,{"$ref":0},{"$ref":0}]"#);
    // A map holding itself, and an object whose field is itself (Throwable.cause == this).
    let m = Value::Map(Map::untyped(vec![(Value::from("me"), Value::Ref(0))]));
    assert_eq!(to_json(&m).to_string(), r#"{"me":{"$ref":0}}"#);
    let list_of_self_refs = Value::List(List::untyped(vec![Value::Ref(0); 100_000]));
    let text =
        hessian_to_json_text(&list_of_self_refs, std::slice::from_ref(&list_of_self_refs)).unwrap();
    assert_eq!(text.len(), 1 + 100_000 * 11);
}

#[test]
fn a_huge_field_name_repeated_by_small_objects_is_refused() {
    // One class with a 64 KiB field name, and 300 instances of it (2 bytes each on the wire):
    // 19 MB of JSON keys from a reply of a few hundred bytes past the class definition.
    let name = "f".repeat(65_535);
    let one = Object::new("T", vec![(name, Value::Null)]);
    let v = Value::List(List::untyped(vec![Value::Object(one); 300]));
    let err = hessian_to_json_text(&v, std::slice::from_ref(&v)).refused();
    assert!(matches!(err, JsonError::OverBudget { .. }), "{err}");
}

#[test]
fn a_big_legitimate_result_prints_within_the_budget() {
    // 120 000 users, about 10 MB of JSON (more than the floor): a plain reply prints in full.
    let users: Vec<Value> = (0..120_000)
        .map(|i| {
            Value::Object(Object::new(
                "org.apache.dubbo.demo.User",
                vec![
                    ("id".into(), Value::Long(i)),
                    ("name".into(), Value::String(format!("user {i}"))),
                    (
                        "tags".into(),
                        Value::List(List::untyped(vec![Value::from("a")])),
                    ),
                ],
            ))
        })
        .collect();
    let v = Value::List(List::untyped(users));
    let text = hessian_to_json_text(&v, std::slice::from_ref(&v)).unwrap();
    assert!(text.len() > super::to_json::BUDGET_FLOOR, "{}", text.len());
    let back: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(back[119_999]["name"], json!("user 119999"));
}
