//! Criterion benchmarks of the protocol codecs, with no socket and no Wasm: Hessian2 encode and
//! decode over the whole golden vector set, `dubbo://` frame split + body decode for the frame
//! shapes a consumer sees most, `encode_request` for a typical call, and a 1000-object list
//! response both ways. The numbers and how to read them against the loopback floor are in
//! BENCHMARKS.md at the repository root.
//!
//! Run with `cargo bench -p dubbo-wasm-host --bench codec`; the golden vectors are read from
//! `shared/vectors`, found by walking up from this crate's directory.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dubbo_wasm_host::hessian2::{Decoder, Encoder, List, Object, Value};
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{
    decode_request, decode_response, encode_request, encode_response, Reply,
};
use dubbo_wasm_host::rpc::{Invocation, ServiceKey};

/// `shared/vectors/<sub>`.
fn vectors_dir(sub: &str) -> PathBuf {
    dubbo_wasm_host::testing::vectors_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), sub)
}

/// Every `.bin` file under `dir`, in a stable order.
fn bin_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            bin_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "bin") {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path, bytes));
        }
    }
}

/// All values of one Hessian2 stream.
fn decode_stream(bytes: &[u8]) -> Vec<Value> {
    let mut dec = Decoder::new(bytes);
    let mut values = Vec::new();
    while !dec.is_at_end() {
        values.push(dec.read_value().expect("golden vector decodes"));
    }
    values
}

fn encode_stream(values: &[Value], out: &mut BytesMut) {
    let mut enc = Encoder::new(out);
    for v in values {
        enc.write_value(v);
    }
}

/// Files below this size are the "small" subset: per-tag cost rather than copying of the large
/// strings and byte arrays, which dominate the whole set's bytes.
const SMALL_FILE: usize = 1024;

fn hessian2_vector_set(c: &mut Criterion) {
    let mut files = Vec::new();
    bin_files(&vectors_dir("hessian2"), &mut files);
    let all: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
    let small: Vec<&[u8]> = all
        .iter()
        .copied()
        .filter(|b| b.len() < SMALL_FILE)
        .collect();
    bench_streams(c, "hessian2_vectors", &all);
    bench_streams(c, "hessian2_vectors_small", &small);
}

/// Decode, then encode, of every stream in `streams`, each with its own decoder or encoder.
fn bench_streams(c: &mut Criterion, group_name: &str, streams: &[&[u8]]) {
    let decoded: Vec<Vec<Value>> = streams.iter().map(|b| decode_stream(b)).collect();
    let total: usize = streams.iter().map(|b| b.len()).sum();
    let values: usize = decoded.iter().map(Vec::len).sum();
    let mut out = BytesMut::with_capacity(total);
    for values in &decoded {
        encode_stream(values, &mut out);
    }
    let encoded_total = out.len();
    eprintln!(
        "{group_name}: {} files, {values} top-level values, {total} bytes as stored, \
         {encoded_total} bytes re-encoded",
        streams.len()
    );

    let mut group = c.benchmark_group(group_name);
    group.sample_size(50);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for bytes in streams {
                black_box(decode_stream(black_box(bytes)));
            }
        })
    });
    group.throughput(Throughput::Bytes(encoded_total as u64));
    group.bench_function("encode", |b| {
        let mut out = BytesMut::with_capacity(encoded_total);
        b.iter(|| {
            out.clear();
            // One encoder per file: each vector is its own stream, as each Dubbo body is.
            for values in &decoded {
                encode_stream(black_box(values), &mut out);
            }
            black_box(out.len())
        })
    });
    group.finish();
}

fn dubbo_vector(name: &str) -> Vec<u8> {
    let path = vectors_dir("dubbo").join("java-dubbo-2.7.23").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Split + body decode of one whole frame, from the bytes a read would have buffered.
fn bench_frame_decode<T>(
    c: &mut Criterion,
    name: &str,
    frame: &[u8],
    decode: impl Fn(&dubbo_wasm_host::protocol::dubbo::frame::Frame) -> T,
) {
    let mut group = c.benchmark_group("dubbo_decode");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || BytesMut::from(frame),
            |buf| {
                let frame = split_frame(buf, DEFAULT_PAYLOAD)
                    .expect("valid frame")
                    .expect("whole frame");
                decode(&frame)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn dubbo_frames(c: &mut Criterion) {
    bench_frame_decode(c, "req_sayhello", &dubbo_vector("req_sayhello.bin"), |f| {
        decode_request(&f.body).expect("request decodes")
    });
    bench_frame_decode(
        c,
        "resp_value_string_attach",
        &dubbo_vector("resp_value_string_attach.bin"),
        |f| decode_response(&f.header, &f.body).expect("response decodes"),
    );
    bench_frame_decode(
        c,
        "resp_value_object",
        &dubbo_vector("resp_value_object.bin"),
        |f| decode_response(&f.header, &f.body).expect("response decodes"),
    );

    let service = ServiceKey {
        interface: "org.apache.dubbo.demo.DemoService".into(),
        version: Some("1.0.0".into()),
        group: None,
    };
    let inv = Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args: vec![Value::String("world".into())],
        attachments: Vec::new(),
    };
    let mut out = BytesMut::new();
    encode_request(&mut out, 1, true, &service, None, &inv, 3000);
    assert_eq!(&out[..], &dubbo_vector("req_sayhello.bin")[..]);
    let mut group = c.benchmark_group("dubbo_encode");
    group.throughput(Throughput::Bytes(out.len() as u64));
    group.bench_function("req_sayhello", |b| {
        // A connection reuses its write buffer, so the bench does too.
        let mut out = BytesMut::with_capacity(1024);
        let mut id = 0u64;
        b.iter(|| {
            out.clear();
            id += 1;
            encode_request(
                &mut out,
                id,
                true,
                black_box(&service),
                None,
                black_box(&inv),
                3000,
            );
            black_box(out.len())
        })
    });
    group.finish();
}

/// A `List<User>` of `n` users, as a provider built in Java would return it.
fn users(n: usize) -> Value {
    let items = (0..n)
        .map(|i| {
            Value::Object(Object::new(
                "org.apache.dubbo.samples.User",
                vec![
                    ("id".to_string(), Value::Long(i as i64)),
                    ("name".to_string(), Value::String(format!("user-{i}"))),
                    ("age".to_string(), Value::Int(18 + (i % 60) as i32)),
                    (
                        "tags".to_string(),
                        Value::List(List::typed(
                            "java.util.ArrayList",
                            vec![
                                Value::String("vip".into()),
                                Value::String(format!("g{}", i % 7)),
                            ],
                        )),
                    ),
                ],
            ))
        })
        .collect();
    Value::List(List::untyped(items))
}

fn thousand_users(c: &mut Criterion) {
    const N: usize = 1000;
    let list = users(N);
    let attachments = [("dubbo", "2.0.2")];
    let mut frame = BytesMut::new();
    encode_response(&mut frame, 7, &Reply::Value(&list), Some(&attachments));
    eprintln!("1000-user response frame: {} bytes", frame.len());

    let mut group = c.benchmark_group("users_1000");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("encode_response", |b| {
        let mut out = BytesMut::with_capacity(frame.len());
        b.iter(|| {
            out.clear();
            encode_response(
                &mut out,
                7,
                &Reply::Value(black_box(&list)),
                Some(&attachments),
            );
            black_box(out.len())
        })
    });
    group.bench_function("decode_response", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |buf| {
                let f = split_frame(buf, DEFAULT_PAYLOAD)
                    .expect("valid frame")
                    .expect("whole frame");
                decode_response(&f.header, &f.body).expect("response decodes")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Short runs: the machine has 2 cores shared with other builds; command-line flags still win.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = codec;
    config = config();
    targets = hessian2_vector_set, dubbo_frames, thousand_users
}
criterion_main!(codec);
