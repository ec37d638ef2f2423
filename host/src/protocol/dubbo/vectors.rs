//! Checks the frame codec against `dubbo://` frames written by Java Dubbo 2.7.23 and
//! dubbo-remoting (`shared/vectors/dubbo/`): every frame's header must read as its manifest row
//! says, every body must decode to the outcome the row describes, and the requests this host
//! builds for the same calls must be byte-identical to Java's.

use std::path::PathBuf;

use bytes::BytesMut;

use super::frame::{split_frame, DEFAULT_PAYLOAD};
use super::message::{decode_event, decode_request, decode_response, encode_request, Event};
use crate::hessian2::Value;
use crate::rpc::{Invocation, RpcError, ServiceKey};

fn vectors_dir() -> PathBuf {
    crate::testing::vectors_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), "dubbo")
}

struct Row {
    file: String,
    value: String,
}

fn manifest() -> Vec<Row> {
    let dir = vectors_dir();
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            Row {
                file: cols.next().unwrap_or_default().to_string(),
                value: cols.next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// The number after `key` in a manifest description, e.g. `id 7` or `body length 195`.
fn number_after(text: &str, key: &str) -> u64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("`{key}` missing in: {text}"));
    let rest = text[at + key.len()..].trim_start();
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).expect("hex number"),
        None => digits.parse().expect("number"),
    }
}

fn frame_of(row: &Row) -> super::frame::Frame {
    let bytes = std::fs::read(vectors_dir().join(&row.file)).expect("read vector");
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = split_frame(&mut buf, DEFAULT_PAYLOAD)
        .unwrap_or_else(|e| panic!("{}: {e}", row.file))
        .unwrap_or_else(|| panic!("{}: not a whole frame", row.file));
    assert!(buf.is_empty(), "{}: bytes left after the frame", row.file);
    frame
}

#[test]
fn every_frame_header_reads_as_its_manifest_row_says() {
    let rows = manifest();
    assert!(rows.len() >= 38, "expected the whole vector set");
    for row in &rows {
        let f = frame_of(row);
        let h = f.header;
        assert_eq!(
            h.flags as u64,
            number_after(&row.value, "0xdabb, flag"),
            "{}",
            row.file
        );
        assert_eq!(
            h.status as u64,
            number_after(&row.value, "status byte"),
            "{}",
            row.file
        );
        assert_eq!(h.id, number_after(&row.value, ", id"), "{}", row.file);
        assert_eq!(
            h.body_len as u64,
            number_after(&row.value, "body length"),
            "{}",
            row.file
        );
    }
}

#[test]
fn every_body_decodes_to_the_outcome_its_manifest_row_describes() {
    let mut checked = 0;
    for row in manifest() {
        let f = frame_of(&row);
        let name = row.file.rsplit('/').next().unwrap_or_default();
        let h = f.header;
        if h.is_event() {
            let expected = if name.starts_with("heartbeat") {
                Event::Heartbeat
            } else {
                Event::ReadOnly
            };
            assert_eq!(
                decode_event(&f.body).expect(&row.file),
                expected,
                "{}",
                row.file
            );
        } else if h.is_request() {
            let req = decode_request(&f.body).unwrap_or_else(|e| panic!("{}: {e}", row.file));
            assert_eq!(req.dubbo_version, "2.0.2", "{}", row.file);
            assert_eq!(
                req.path, "org.apache.dubbo.demo.DemoService",
                "{}",
                row.file
            );
            assert!(
                row.value
                    .contains(&format!("method name: string \"{}\"", req.method)),
                "{}: method {}",
                row.file,
                req.method
            );
            assert_eq!(req.attachment("timeout"), Some("3000"), "{}", row.file);
        } else {
            let outcome = decode_response(&h, &f.body);
            let expected_ok = |v: &Value| match &outcome {
                Ok(r) => assert_eq!(&r.value, v, "{}", row.file),
                Err(e) => panic!("{}: {e}", row.file),
            };
            match name {
                n if n.starts_with("resp_value_string") => {
                    expected_ok(&Value::String("Hello world".into()))
                }
                "resp_value_int.bin" => expected_ok(&Value::Int(42)),
                "resp_value_extra_attachments.bin" => {
                    expected_ok(&Value::String("ok".into()));
                    let r = outcome.as_ref().expect("ok");
                    assert!(r
                        .attachments
                        .iter()
                        .any(|(k, v)| k == "traceId" && v.as_str() == Some("abc123")));
                }
                "resp_value_object.bin" => {
                    let r = outcome.as_ref().expect("ok");
                    let Value::Object(o) = &r.value else {
                        panic!("{}: not an object", row.file)
                    };
                    assert_eq!(o.class.name, "org.apache.dubbo.demo.User");
                    assert_eq!(o.get("name"), Some(&Value::String("bob".into())));
                    assert_eq!(o.get("id"), Some(&Value::Long(2)));
                }
                n if n.starts_with("resp_null") => expected_ok(&Value::Null),
                n if n.starts_with("resp_exception") => assert_eq!(
                    outcome,
                    Err(RpcError::BizException {
                        class_name: "java.lang.RuntimeException".into(),
                        message: "boom".into()
                    }),
                    "{}",
                    row.file
                ),
                "resp_status_server_timeout.bin" => assert_eq!(
                    outcome,
                    Err(RpcError::Timeout("timeout".into())),
                    "{}",
                    row.file
                ),
                "resp_status_service_not_found.bin" => assert!(
                    matches!(&outcome, Err(RpcError::NoProvider(m)) if m.contains("service not found")),
                    "{}: {outcome:?}",
                    row.file
                ),
                "resp_status_bad_request_null_msg.bin" => assert!(
                    matches!(&outcome, Err(RpcError::Serialization(m)) if m.contains("40")),
                    "{}: {outcome:?}",
                    row.file
                ),
                // dubbo-remoting omits the response flag; Java rejects it, and so do we
                // (as a serialization error on that call, not a panic or a dropped connection).
                "INVALID_resp_null_value.bin" => assert!(
                    matches!(&outcome, Err(RpcError::Serialization(_))),
                    "{}: {outcome:?}",
                    row.file
                ),
                other => panic!("no expectation for response vector {other}: add one"),
            }
        }
        checked += 1;
    }
    assert!(checked >= 38);
}

fn demo(version: Option<&str>) -> ServiceKey {
    ServiceKey {
        interface: "org.apache.dubbo.demo.DemoService".into(),
        version: version.map(str::to_string),
        group: None,
    }
}

fn encoded(id: u64, service: &ServiceKey, method: &str, desc: &str, args: Vec<Value>) -> Vec<u8> {
    let inv = Invocation {
        method: method.into(),
        parameter_types: desc.into(),
        args,
        attachments: Vec::new(),
    };
    let mut out = BytesMut::new();
    encode_request(&mut out, id, true, service, None, &inv, 3000);
    out.to_vec()
}

fn java(name: &str) -> Vec<u8> {
    std::fs::read(vectors_dir().join("java-dubbo-2.7.23").join(name)).expect("read vector")
}

#[test]
fn say_hello_request_is_byte_identical_to_java_dubbo() {
    let args = vec![Value::String("world".into())];
    let ours = encoded(
        1,
        &demo(Some("1.0.0")),
        "sayHello",
        "Ljava/lang/String;",
        args.clone(),
    );
    assert_eq!(ours, java("req_sayhello.bin"));
    let ours = encoded(
        0x0102030405060708,
        &demo(Some("1.0.0")),
        "sayHello",
        "Ljava/lang/String;",
        args,
    );
    assert_eq!(ours, java("req_sayhello_id_0102030405060708.bin"));
}

#[test]
fn no_arg_request_without_version_is_byte_identical_to_java_dubbo() {
    assert_eq!(
        encoded(4, &demo(None), "ping", "", vec![]),
        java("req_no_args.bin")
    );
}

#[test]
fn primitive_args_request_is_byte_identical_to_java_dubbo() {
    let args = vec![
        Value::Int(1),
        Value::Long(2),
        Value::Double(3.5),
        Value::Bool(true),
    ];
    let ours = encoded(5, &demo(Some("1.0.0")), "add", "IJDZ", args);
    assert_eq!(ours, java("req_primitive_args.bin"));
}

#[test]
fn object_list_and_map_args_request_is_byte_identical_to_java_dubbo() {
    use crate::hessian2::{List, Map, Object};
    let user = Object::new(
        "org.apache.dubbo.demo.User",
        vec![
            (
                "tags".into(),
                Value::List(List::typed(
                    "java.util.ArrayList",
                    vec![Value::String("a".into()), Value::String("b".into())],
                )),
            ),
            ("name".into(), Value::String("alice".into())),
            ("id".into(), Value::Long(1)),
        ],
    );
    let args = vec![
        Value::Object(user),
        Value::List(List::typed(
            "java.util.ArrayList",
            vec![Value::Int(1), Value::Int(2)],
        )),
        Value::Map(Map::untyped(vec![(
            Value::String("k".into()),
            Value::String("v".into()),
        )])),
    ];
    let desc = "Lorg/apache/dubbo/demo/User;Ljava/util/List;Ljava/util/Map;";
    let ours = encoded(6, &demo(Some("1.0.0")), "saveUser", desc, args);
    assert_eq!(ours, java("req_object_args.bin"));
}

#[test]
fn one_way_request_is_byte_identical_to_java_dubbo() {
    let inv = Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String("oneway".into())],
        attachments: Vec::new(),
    };
    let mut out = BytesMut::new();
    encode_request(&mut out, 3, false, &demo(Some("1.0.0")), None, &inv, 3000);
    assert_eq!(out.to_vec(), java("req_oneway.bin"));
}
