//! The generator against definitions real providers published (`shared/vectors/dubbo3`) and a
//! Dubbo 2.7 nested definition.

use std::path::Path;

use super::*;

fn vector(name: &str) -> String {
    let dir = crate::testing::vectors_dir(Path::new(env!("CARGO_MANIFEST_DIR")), "dubbo3");
    let path = dir.join("zookeeper").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn java_users() -> ServiceDefinition {
    let text = vector(
        "dubbo__metadata__org.apache.dubbo.samples.UserService__1.0.0__provider__users-app.json",
    );
    ServiceDefinition::from_json(&text).expect("the captured definition reads")
}

fn service(definition: ServiceDefinition) -> Service {
    Service {
        definition,
        version: Some("1.0.0".into()),
        group: None,
        reference_id: None,
        wit_name: None,
    }
}

/// Fails unless `wit` is a WIT package that resolves against the host's `dubbo:host`.
fn parses(wit: &str) {
    let mut resolve = wit_parser::Resolve::default();
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/dubbo-host/types.wit");
    resolve.push_file(&host).expect("dubbo:host parses");
    if let Err(e) = resolve.push_str("generated.wit", wit) {
        panic!("generated WIT does not parse: {e:#}\n{wit}");
    }
}

fn options(package: &str) -> Options {
    Options {
        package: package.parse().expect("package"),
        nullable: Vec::new(),
        lenient: false,
    }
}

/// A Dubbo 2.7 definition of the same interface: nested type definitions, `$ref` for a
/// type met again, an enum under `enum`, `parameters` beside `parameterTypes`.
const NESTED_27: &str = r#"{
  "canonicalName": "org.apache.dubbo.samples.UserService",
  "codeSource": "file:/x.jar",
  "methods": [
    {"name": "getUser", "parameterTypes": ["long"], "returnType": "org.apache.dubbo.samples.User",
     "parameters": [{"type": "long"}]},
    {"name": "listUsers", "parameterTypes": ["int"], "returnType": "java.util.List<org.apache.dubbo.samples.User>"},
    {"name": "byColor", "parameterTypes": ["org.apache.dubbo.samples.Color"], "returnType": "java.util.Set<org.apache.dubbo.samples.User>",
     "parameters": [{"type": "org.apache.dubbo.samples.Color", "enum": ["RED", "DARK_BLUE"]}]}
  ],
  "types": [
    {"id": "user", "type": "org.apache.dubbo.samples.User", "properties": {
      "id": {"type": "long"},
      "name": {"type": "java.lang.String"},
      "age": {"type": "int"},
      "tags": {"type": "java.util.List<java.lang.String>", "items": [{"type": "java.lang.String"}]},
      "favourite": {"type": "org.apache.dubbo.samples.Color", "enums": ["RED", "DARK_BLUE"]}
    }},
    {"type": "java.util.List<org.apache.dubbo.samples.User>", "items": [{"$ref": "user"}]}
  ]
}"#;

#[test]
fn dubbo3_flat_definitions_are_read() {
    let d = java_users();
    assert_eq!(d.interface, "org.apache.dubbo.samples.UserService");
    let get = d
        .methods
        .iter()
        .find(|m| m.name == "getUser")
        .expect("getUser");
    assert_eq!(get.parameter_types, ["long"]);
    assert_eq!(get.return_type, "org.apache.dubbo.samples.User");
    let user = &d.types["org.apache.dubbo.samples.User"];
    let fields: Vec<(&str, &str)> = user
        .properties
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("name", "java.lang.String"),
            ("id", "long"),
            ("age", "int"),
            ("tags", "java.util.List<java.lang.String>")
        ],
        "properties in the published order"
    );
    assert_eq!(
        d.types["java.util.Map<java.lang.String,java.lang.Integer>"].items,
        ["java.lang.String", "java.lang.Integer"]
    );
}

#[test]
fn dubbo27_nested_definitions_are_read_into_the_same_model() {
    let d = ServiceDefinition::from_json(NESTED_27).expect("2.7 definition");
    let user = &d.types["org.apache.dubbo.samples.User"];
    assert_eq!(user.properties.len(), 5);
    assert_eq!(
        d.types["java.util.List<org.apache.dubbo.samples.User>"].items,
        ["org.apache.dubbo.samples.User"],
        "$ref resolved through the id"
    );
    assert_eq!(
        d.types["org.apache.dubbo.samples.Color"].enum_constants,
        ["RED", "DARK_BLUE"]
    );
    let generated = generate(&[service(d)], &options("acme:users")).expect("generates");
    parses(&generated.wit);
    assert!(
        generated
            .wit
            .contains("    enum color {\n        red,\n        dark-blue,\n    }"),
        "{}",
        generated.wit
    );
    assert!(
        generated
            .wit
            .contains("by-color: func(color: color) -> result<list<user>, rpc-error>;"),
        "{}",
        generated.wit
    );
    assert!(generated.wit.contains("        favourite: color,"));
}

#[test]
fn the_captured_java_provider_gives_the_acceptance_wit() {
    let generated = generate(&[service(java_users())], &options("acceptance:users"))
        .expect("the Java 3.2 definition maps");
    let wit = &generated.wit;
    parses(wit);
    assert_eq!(generated.file_name, "users.wit");
    assert!(wit.starts_with("package acceptance:users;\n"), "{wit}");
    assert!(wit.contains("interface user-service {"), "{wit}");
    assert!(wit.contains("use dubbo:host/types@0.1.0.{rpc-error};"));
    assert!(
        wit.contains("    get-user: func(id: s64) -> result<user, rpc-error>;"),
        "{wit}"
    );
    assert!(
        wit.contains("    list-users: func(arg0: s32) -> result<list<user>, rpc-error>;"),
        "{wit}"
    );
    assert!(
        wit.contains(
            "    echo-map: func(arg0: list<tuple<string, s32>>) -> result<list<tuple<string, s32>>, rpc-error>;"
        ),
        "{wit}"
    );
    assert!(wit.contains("    fail: func(arg0: string) -> result<_, rpc-error>;"));
    assert!(wit.contains("    find-by-name: func(name: string) -> result<user, rpc-error>;"));
    for field in [
        "        id: s64,\n",
        "        name: string,\n",
        "        age: s32,\n",
        "        tags: list<string>,\n",
    ] {
        assert!(wit.contains(field), "{field} in {wit}");
    }
    assert!(
        wit.contains("    /// Java: `org.apache.dubbo.samples.User getUser(long)`.\n    get-user:")
    );
    let toml = generated.reference_toml(
        &[service(java_users())],
        &Providers::NewRegistry {
            id: "zk".into(),
            address: "zookeeper://127.0.0.1:2181".into(),
        },
    );
    assert!(
        toml.contains("wit = \"acceptance:users/user-service\""),
        "{toml}"
    );
    assert!(
        toml.contains("java-types = { user = \"org.apache.dubbo.samples.User\" }"),
        "{toml}"
    );
    assert!(!toml.contains("[reference.methods"), "no overloads: {toml}");
}

#[test]
fn the_reference_toml_is_a_config_the_host_accepts() {
    let generated =
        generate(&[service(java_users())], &options("acceptance:users@1.0.0")).expect("generates");
    parses(&generated.wit);
    let toml = generated.reference_toml(
        &[service(java_users())],
        &Providers::NewRegistry {
            id: "zk".into(),
            address: "zookeeper://127.0.0.1:2181".into(),
        },
    );
    let dir = std::env::temp_dir().join(format!("witgen-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("host.toml");
    std::fs::write(&file, &toml).expect("write");
    let config = crate::config::Config::load(&file);
    let _ = std::fs::remove_dir_all(&dir);
    let config = config.unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let r = &config.references[0];
    assert_eq!(
        r.wit.as_deref(),
        Some("acceptance:users/user-service@1.0.0")
    );
    assert_eq!(r.version.as_deref(), Some("1.0.0"));
    assert_eq!(r.registry, ["zk"]);
}

#[test]
fn overloads_get_deterministic_names_and_their_java_signature_in_config() {
    let text = r#"{"canonicalName": "org.x.UserService", "methods": [
        {"name": "getUser", "parameterTypes": ["java.lang.String"], "returnType": "java.lang.String"},
        {"name": "getUser", "parameterTypes": ["long", "int"], "returnType": "java.lang.String"},
        {"name": "getUser", "parameterTypes": ["long"], "returnType": "java.lang.String"},
        {"name": "count", "parameterTypes": ["java.util.Set<java.lang.Integer>", "java.lang.Long"], "returnType": "java.util.Date"}
    ], "types": []}"#;
    let d = ServiceDefinition::from_json(text).expect("reads");
    let services = [service(d)];
    let generated = generate(&services, &options("x:users")).expect("generates");
    let wit = &generated.wit;
    parses(wit);
    assert!(
        wit.contains("    get-user: func(id: s64) -> result<string, rpc-error>;"),
        "{wit}"
    );
    assert!(
        wit.contains("    get-user-by-string: func(arg0: string)"),
        "{wit}"
    );
    assert!(
        wit.contains("    get-user-by-long-and-int: func(arg0: s64, arg1: s32)"),
        "{wit}"
    );
    assert!(wit.contains("count: func(arg0: list<s32>, arg1: s64) -> result<s64, rpc-error>;"));
    let toml =
        generated.reference_toml(&services, &Providers::Url("dubbo://127.0.0.1:20880".into()));
    for expected in [
        "[reference.methods.get-user]\njava-name = \"getUser\"\nparameter-types = [\"long\"]",
        "[reference.methods.get-user-by-string]\njava-name = \"getUser\"\nparameter-types = [\"java.lang.String\"]",
        "[reference.methods.get-user-by-long-and-int]\njava-name = \"getUser\"\nparameter-types = [\"long\", \"int\"]",
        // Not overloaded, but a Set and a boxed Long are not the binder's default descriptors.
        "[reference.methods.count]\nparameter-types = [\"java.util.Set\", \"java.lang.Long\"]",
    ] {
        assert!(toml.contains(expected), "{expected}\nin\n{toml}");
    }
    // The published order does not matter.
    let mut reversed = services[0].clone();
    reversed.definition.methods.reverse();
    let again = generate(&[reversed], &options("x:users")).expect("generates");
    assert_eq!(again.wit, generated.wit);
}

#[test]
fn unmappable_types_name_the_method_and_the_type_or_go_to_generic_when_lenient() {
    let text = r#"{"canonicalName": "org.x.Echo", "methods": [
        {"name": "echo", "parameterTypes": ["java.lang.Object"], "returnType": "java.lang.Object"},
        {"name": "ping", "parameterTypes": [], "returnType": "java.lang.String"}
    ]}"#;
    let d = ServiceDefinition::from_json(text).expect("reads");
    let err = generate(&[service(d.clone())], &options("x:echo")).expect_err("Object");
    let message = err.to_string();
    assert!(
        message.starts_with("org.x.Echo#echo(java.lang.Object): parameter 1 `java.lang.Object`"),
        "{message}"
    );
    assert!(message.contains("--lenient"), "{message}");
    let mut lenient = options("x:echo");
    lenient.lenient = true;
    let generated = generate(&[service(d)], &lenient).expect("lenient");
    parses(&generated.wit);
    assert!(generated
        .wit
        .contains("ping: func() -> result<string, rpc-error>;"));
    assert!(!generated.wit.contains("echo: func"), "{}", generated.wit);
    assert!(
        generated.wit.contains(
            "dubbo:host/generic.invoke(<reference>, \"echo\", [\"java.lang.Object\"], args-json)"
        ),
        "{}",
        generated.wit
    );
    assert_eq!(generated.skipped().len(), 1);
}

#[test]
fn nullable_methods_get_options_for_object_types_only() {
    let mut opts = options("acceptance:users");
    opts.nullable = vec!["UserService.findByName".into()];
    let generated = generate(&[service(java_users())], &opts).expect("generates");
    parses(&generated.wit);
    assert!(
        generated.wit.contains(
            "    find-by-name: func(name: option<string>) -> result<option<user>, rpc-error>;"
        ),
        "{}",
        generated.wit
    );
    assert!(generated
        .wit
        .contains("get-user: func(id: s64) -> result<user, rpc-error>;"));
    opts.nullable = vec!["UserService.nope".into()];
    let err = generate(&[service(java_users())], &opts).expect_err("unknown method");
    assert!(err.to_string().contains("has no method `nope`"), "{err}");
}

#[test]
fn several_interfaces_share_one_package_and_one_record_each() {
    let demo = ServiceDefinition::from_json(&vector(
        "dubbo__metadata__org.apache.dubbo.demo.DemoService__1.0.0__provider__users-app.json",
    ))
    .expect("demo");
    let nested = ServiceDefinition::from_json(NESTED_27).expect("2.7");
    let mut admin = nested.clone();
    admin.interface = "org.apache.dubbo.samples.AdminService".into();
    let services = [service(java_users()), service(admin), service(demo)];
    let generated = generate(&services, &options("acme:all")).expect("generates");
    let wit = &generated.wit;
    parses(wit);
    assert_eq!(wit.matches("record user {").count(), 1, "{wit}");
    assert!(wit.contains("interface types {"), "{wit}");
    // The 2.7 definition's User (with its `favourite` color) is the fuller one, so both
    // services that reach it also reach the enum.
    assert!(wit.contains("interface user-service {\n    use dubbo:host/types@0.1.0.{rpc-error};\n    use types.{color, user};"), "{wit}");
    assert_eq!(wit.matches("use types.{color, user};").count(), 2, "{wit}");
    assert!(wit.contains("interface demo-service {"));
    assert!(wit.contains("say-hello: func(arg0: string) -> result<string, rpc-error>;"));
}

#[test]
fn packages_and_bad_definitions_are_refused_with_the_reason() {
    assert!("acme:users@1.0.0".parse::<PackageName>().is_ok());
    assert!("acme".parse::<PackageName>().is_err());
    assert!("Acme:users".parse::<PackageName>().is_err());
    assert!("acme:users@1".parse::<PackageName>().is_err());
    assert_eq!(
        PackageName::of_interface("org-x:users/user-service@1.0.0").map(|p| p.to_string()),
        Ok("org-x:users@1.0.0".to_string())
    );
    assert_eq!(
        PackageName::of_java("org.apache.dubbo.samples.UserService").to_string(),
        "org-apache-dubbo:samples"
    );
    let e = ServiceDefinition::from_json("{\"methods\": []}").expect_err("no interface");
    assert!(e.problem.contains("canonicalName"), "{e}");
    let e = ServiceDefinition::from_json(
        r#"{"canonicalName": "a.B", "methods": [{"name": "m", "parameterTypes": [1]}]}"#,
    )
    .expect_err("bad parameter");
    assert!(
        e.problem
            .starts_with("methods[0] (method `m`).parameterTypes[0]"),
        "{e}"
    );
    let e = ServiceDefinition::from_json("[").expect_err("not JSON");
    assert!(e.to_string().contains("not JSON"), "{e}");
}

#[test]
fn default_descriptors_agree_with_the_binder() {
    use crate::wasm::bind::Mapping;
    fn b<T>(t: T) -> Box<T> {
        Box::new(t)
    }
    let pairs = [
        (WitType::Bool, Mapping::Boolean),
        (WitType::S8, Mapping::Byte),
        (WitType::S16, Mapping::Short),
        (WitType::S32, Mapping::Int),
        (WitType::S64, Mapping::Long),
        (WitType::F32, Mapping::Float),
        (WitType::F64, Mapping::Double),
        (WitType::Char, Mapping::Char),
        (WitType::String, Mapping::String),
        (WitType::Bytes, Mapping::Bytes),
        (
            WitType::List(b(WitType::S64)),
            Mapping::List(b(Mapping::Long)),
        ),
        (
            WitType::Map(b(WitType::String), b(WitType::S32)),
            Mapping::Map(b(Mapping::String), b(Mapping::Int)),
        ),
        (
            WitType::Option(b(WitType::S32)),
            Mapping::Nullable(b(Mapping::Int)),
        ),
        (
            WitType::Option(b(WitType::Char)),
            Mapping::Nullable(b(Mapping::Char)),
        ),
        (
            WitType::Option(b(WitType::String)),
            Mapping::Nullable(b(Mapping::String)),
        ),
    ];
    for (wit, binder) in pairs {
        assert_eq!(wit.binder_descriptor(), binder.descriptor(), "{wit:?}");
    }
}

#[test]
fn wit_keywords_are_escaped_where_java_uses_them_as_names() {
    let text = r#"{"canonicalName": "org.x.Catalog", "methods": [
        {"name": "list", "parameterTypes": ["org.x.Item"], "returnType": "org.x.Item"}
    ], "types": [{"type": "org.x.Item", "properties": {"type": "java.lang.String", "record": "int"}}]}"#;
    let d = ServiceDefinition::from_json(text).expect("reads");
    let generated = generate(&[service(d)], &options("x:catalog")).expect("generates");
    parses(&generated.wit);
    assert!(
        generated.wit.contains("        %type: string,"),
        "{}",
        generated.wit
    );
    assert!(
        generated
            .wit
            .contains("    %list: func(item: item) -> result<item, rpc-error>;"),
        "{}",
        generated.wit
    );
}

#[test]
fn fields_and_constants_the_binder_cannot_spell_back_are_refused_naming_them() {
    let text = r#"{"canonicalName": "org.x.Users", "methods": [
        {"name": "get", "parameterTypes": [], "returnType": "org.x.User"}
    ], "types": [{"type": "org.x.User", "properties": {"user_name": "java.lang.String"}}]}"#;
    let d = ServiceDefinition::from_json(text).expect("reads");
    let err = generate(&[service(d)], &options("x:users")).expect_err("snake_case field");
    let message = err.to_string();
    assert!(
        message.starts_with("org.x.Users: field `user_name` of org.x.User"),
        "{message}"
    );
}

#[test]
fn every_java_collection_and_map_the_generic_path_sends_maps_to_list_and_map() {
    let types = std::collections::BTreeMap::new();
    let mut mapper = super::mapping::Mapper::new(&types);
    let map = |m: &mut super::mapping::Mapper<'_>, t: &str| {
        m.map(&crate::java::TypeName::parse(t).expect("type"))
            .expect("mappable")
    };
    for list in [
        "java.util.List<java.lang.String>",
        "java.util.Vector<java.lang.String>",
        "java.util.concurrent.CopyOnWriteArrayList<java.lang.String>",
        "java.util.ArrayDeque<java.lang.String>",
    ] {
        let wit = map(&mut mapper, list);
        assert_eq!(wit.binder_descriptor(), "Ljava/util/List;", "{list}");
    }
    for m in [
        "java.util.Map<java.lang.String,java.lang.Long>",
        "java.util.Properties<java.lang.String,java.lang.String>",
        "java.util.concurrent.ConcurrentHashMap<java.lang.String,java.lang.Long>",
    ] {
        let wit = map(&mut mapper, m);
        assert_eq!(wit.binder_descriptor(), "Ljava/util/Map;", "{m}");
    }
}
