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
