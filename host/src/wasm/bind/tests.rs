//! Binding rules pinned without a component: names, matching, mappings and conversions.

use std::collections::BTreeMap;

use wasmtime::component::{Type, Val};

use super::*;
use crate::java::{screaming_snake, upper_camel};

fn no_names() -> (Vec<(String, Type)>, BTreeMap<String, String>) {
    (Vec::new(), BTreeMap::new())
}

#[test]
fn wit_names_become_java_names() {
    assert_eq!(crate::java::lower_camel("say-hello"), "sayHello");
    assert_eq!(crate::java::lower_camel("get-user-by-id"), "getUserById");
    assert_eq!(upper_camel("user-info"), "UserInfo");
    assert_eq!(screaming_snake("dark-red"), "DARK_RED");
}

#[test]
fn reference_wit_matches_imports_with_or_without_version() {
    let import = "org-apache-dubbo:demo/demo-service@1.0.0";
    assert!(interface_matches(
        import,
        "org-apache-dubbo:demo/demo-service"
    ));
    assert!(interface_matches(
        import,
        "org-apache-dubbo:demo/demo-service@1.0.0"
    ));
    assert!(!interface_matches(
        import,
        "org-apache-dubbo:demo/demo-service@2.0.0"
    ));
    assert!(!interface_matches(import, "org-apache-dubbo:demo/other"));
}

#[test]
fn scalars_map_to_java_descriptors_and_values() {
    let (named, types) = no_names();
    let names = TypeNames {
        named: &named,
        java_package: "org.x",
        java_types: &types,
    };
    assert_eq!(
        Mapping::from_wit(&Type::String, &names),
        Ok(Mapping::String)
    );
    assert_eq!(Mapping::Long.descriptor(), "J");
    assert_eq!(
        Mapping::Nullable(Box::new(Mapping::Int)).descriptor(),
        "Ljava/lang/Integer;"
    );
    assert_eq!(
        Mapping::Char.to_hessian(&Val::Char('😀')),
        Ok(Value::String("😀".into()))
    );
    let refs = Refs::new(&[]);
    assert_eq!(Mapping::Long.to_wit(&Value::Int(7), &refs), Ok(Val::S64(7)));
    assert!(
        Mapping::Int.to_wit(&Value::Long(1 << 40), &refs).is_err(),
        "out of range must not wrap"
    );
    assert!(
        Mapping::String.to_wit(&Value::Null, &refs).is_err(),
        "null needs option<..>"
    );
    assert_eq!(
        Mapping::Nullable(Box::new(Mapping::String)).to_wit(&Value::Null, &refs),
        Ok(Val::Option(None))
    );
    assert!(Mapping::from_wit(&Type::U32, &names).is_err());
}

#[test]
fn biz_exception_becomes_the_rpc_error_record() {
    let v = rpc_error_val(&RpcError::BizException {
        class_name: "java.lang.IllegalStateException".into(),
        message: "no".into(),
    });
    let Val::Result(Err(Some(e))) = v else {
        panic!("not an error: {v:?}")
    };
    let Val::Variant(case, Some(payload)) = *e else {
        panic!("not a variant")
    };
    assert_eq!(case, "biz-exception");
    assert_eq!(
        *payload,
        Val::Record(vec![
            (
                "class-name".into(),
                Val::String("java.lang.IllegalStateException".into())
            ),
            ("message".into(), Val::String("no".into())),
        ])
    );
}

fn string_to_int() -> Mapping {
    Mapping::Map(Box::new(Mapping::String), Box::new(Mapping::Int))
}

fn pair(k: &str, v: i32) -> Val {
    Val::Tuple(vec![Val::String(k.into()), Val::S32(v)])
}

#[test]
fn maps_are_lists_of_pairs_in_entry_order_both_ways() {
    let m = string_to_int();
    assert_eq!(m.descriptor(), "Ljava/util/Map;");
    assert_eq!(
        crate::wasm::bind::mapping::describe(&m),
        "java.util.Map<java.lang.String, int>"
    );
    // Not sorted: "z" stays before "a" on the wire and back.
    let guest = Val::List(vec![pair("z", 1), pair("a", 2)]);
    let Ok(Value::Map(wire)) = m.to_hessian(&guest) else {
        panic!("not a map")
    };
    assert_eq!(wire.type_name.as_deref(), Some("java.util.LinkedHashMap"));
    assert_eq!(
        wire.entries,
        vec![
            (Value::String("z".into()), Value::Int(1)),
            (Value::String("a".into()), Value::Int(2)),
        ]
    );
    let reply = Value::Map(crate::hessian2::Map::untyped(wire.entries.clone()));
    assert_eq!(m.to_wit(&reply, &Refs::new(&[])), Ok(guest));
}

#[test]
fn map_entries_that_do_not_fit_are_refused_with_the_entry() {
    let m = string_to_int();
    let reply = Value::Map(crate::hessian2::Map::untyped(vec![(
        Value::String("k".into()),
        Value::Null,
    )]));
    let err = m.to_wit(&reply, &Refs::new(&[])).expect_err("null value");
    assert!(err.to_string().starts_with("map value: "), "{err}");
    let err = m
        .to_hessian(&Val::List(vec![Val::String("x".into())]))
        .expect_err("not a tuple");
    assert!(err.to_string().contains("entry 0"), "{err}");
    assert!(m.to_wit(&Value::Int(1), &Refs::new(&[])).is_err());
}

#[test]
fn mocked_maps_are_realized_in_order() {
    use crate::cluster::mock::MockValue;
    let m = string_to_int();
    let json = serde_json::json!({"b": 2, "a": "1"});
    let Ok(Value::Map(map)) = m.realize(&MockValue::Json(json)) else {
        panic!("not a map")
    };
    assert_eq!(
        map.entries,
        vec![
            (Value::String("b".into()), Value::Int(2)),
            (Value::String("a".into()), Value::Int(1)),
        ]
    );
    let Ok(Value::Map(empty)) = m.realize(&MockValue::Empty) else {
        panic!("not a map")
    };
    assert!(empty.entries.is_empty());
    let pairs = serde_json::json!([["x", 5]]);
    assert!(
        matches!(m.realize(&MockValue::Json(pairs)), Ok(Value::Map(p)) if p.entries.len() == 1)
    );
}

/// A value hessian-lite 4.0.3 wrote (`shared/vectors/hessian2/java-hessian-lite-4.0.3`).
fn java_value(file: &str) -> Value {
    let dir =
        crate::testing::vectors_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "hessian2");
    let bytes = std::fs::read(dir.join("java-hessian-lite-4.0.3").join(file)).expect("vector");
    crate::hessian2::Decoder::new(&bytes)
        .read_value()
        .expect("decodes")
}

#[test]
fn dates_and_decimals_reach_the_guest_as_s64_and_string() {
    let refs = Refs::new(&[]);
    let date = java_value("date_2020_01_01_millis.bin");
    assert_eq!(
        Mapping::Long.to_wit(&date, &refs),
        Ok(Val::S64(1_577_836_800_123))
    );
    let decimal = java_value("bigdecimal_123.45.bin");
    assert_eq!(
        Mapping::String.to_wit(&decimal, &refs),
        Ok(Val::String("123.45".into()))
    );
}

#[test]
fn parameters_declared_date_or_decimal_are_sent_as_java_writes_them() {
    let how = SentAs::of(&Mapping::Long, "java.util.Date").expect("a date");
    assert_eq!(how.convert(Value::Long(7)), Value::Date(7));
    let how = SentAs::of(&Mapping::String, "java.math.BigDecimal").expect("a decimal");
    let sent = how.convert(Value::String("1.50".into()));
    let Value::Object(o) = &sent else {
        panic!("not an object: {sent:?}")
    };
    assert_eq!(o.class.name, "java.math.BigDecimal");
    assert_eq!(o.get("value"), Some(&Value::String("1.50".into())));
    // As hessian-lite writes it, so the provider reads it back.
    let java = java_value("bigdecimal_123.45.bin");
    let Value::Object(j) = &java else {
        panic!("not an object")
    };
    assert_eq!(j.class.fields, o.class.fields);
    assert_eq!(SentAs::of(&Mapping::Long, "long"), None);
    assert_eq!(SentAs::of(&Mapping::String, "java.lang.String"), None);
    // An option is sent as its inner type; one whose inner type is not the declared one's
    // is sent as it is.
    let optional = |m| Mapping::Nullable(Box::new(m));
    assert_eq!(
        SentAs::of(&optional(Mapping::Long), "java.util.Date"),
        Some(SentAs::Date)
    );
    assert_eq!(
        SentAs::of(&optional(Mapping::String), "java.util.Date"),
        None
    );
    assert_eq!(
        SentAs::of(&optional(Mapping::Long), "java.math.BigDecimal"),
        None
    );
}

use crate::testing::Refused;

/// `record blob { data: string }` bound to `org.x.Blob`.
fn blob_type() -> Mapping {
    Mapping::Record(std::sync::Arc::new(mapping::RecordMapping {
        class: std::sync::Arc::new(crate::hessian2::ClassDef {
            name: "org.x.Blob".into(),
            fields: vec!["data".into()],
        }),
        wit_fields: vec!["data".into()],
        types: vec![Mapping::String],
    }))
}

use crate::testing::blob_and_refs;

#[test]
fn shared_objects_are_copied_into_guest_values_within_the_budget() {
    let t = Mapping::List(Box::new(blob_type()));
    let v = blob_and_refs(10, 2);
    let out = t.to_wit(&v, &Refs::new(std::slice::from_ref(&v))).unwrap();
    let one = Val::Record(vec![("data".into(), Val::String("x".repeat(10)))]);
    assert_eq!(out, Val::List(vec![one.clone(), one.clone(), one]));
}

#[test]
fn references_copying_past_the_budget_are_refused() {
    // 1 MiB copied 40 times from a reply that decoded to about 1 MiB.
    let t = Mapping::List(Box::new(blob_type()));
    let v = blob_and_refs(1 << 20, 40);
    let err = t.to_wit(&v, &Refs::new(std::slice::from_ref(&v))).refused();
    let decoded = crate::hessian2::decoded_size(std::slice::from_ref(&v));
    assert_eq!(
        err.to_string(),
        format!(
            "org.x.Blob.data: the reply's back-references copy more than {} bytes into guest values (a reply that decoded to {decoded} bytes may copy at most 2x that, at least {} bytes)",
            mapping::COPY_BUDGET_FLOOR,
            mapping::COPY_BUDGET_FLOOR
        )
    );
    // Without references the same amount of data converts: only copies are counted.
    let big = Value::Binary(vec![7; 4 << 20]);
    let out = Mapping::Bytes
        .to_wit(&big, &Refs::new(std::slice::from_ref(&big)))
        .unwrap();
    assert!(matches!(out, Val::List(items) if items.len() == 4 << 20));
}

#[test]
fn a_list_that_contains_itself_ends_at_the_types_depth() {
    use crate::hessian2::List;
    let v = Value::List(List::untyped(vec![Value::Ref(0)]));
    let t = Mapping::List(Box::new(Mapping::List(Box::new(Mapping::List(Box::new(
        Mapping::String,
    ))))));
    let err = t.to_wit(&v, &Refs::new(std::slice::from_ref(&v))).refused();
    assert_eq!(
        err.to_string(),
        "the provider returned list, which does not fit string"
    );
}
