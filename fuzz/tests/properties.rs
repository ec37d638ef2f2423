//! The fuzz properties on known inputs, on stable `cargo test` (no libFuzzer): every golden
//! vector and every prefix of it, plus the inputs the fuzzers once broke on (none so far) and
//! the corner cases the properties must allow.

use std::path::{Path, PathBuf};

use dubbo_wasm_host::protocol::dubbo::frame::Header;
use dubbo_wasm_host::protocol::dubbo::message::decode_response;
use dubbo_wasm_host::rpc::RpcError;
use dubbo_wasm_host_fuzz::{dubbo_frames, hessian2_roundtrip, reply_to_guest};

fn vectors_dir(sub: &str) -> PathBuf {
    dubbo_wasm_host::testing::vectors_dir(Path::new(env!("CARGO_MANIFEST_DIR")), sub)
}

fn bin_files(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            bin_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "bin") {
            out.push(std::fs::read(&path).expect("read vector"));
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_hessian2_vector_and_its_prefixes_round_trip() {
    let mut files = Vec::new();
    bin_files(&vectors_dir("hessian2"), &mut files);
    assert!(files.len() >= 200, "expected the whole hessian2 vector set");
    for data in &files {
        hessian2_roundtrip(data);
        // Prefixes of the small files: every way a value can be cut short.
        if data.len() <= 512 {
            for end in 0..data.len() {
                hessian2_roundtrip(&data[..end]);
            }
        }
    }
}

#[test]
fn every_dubbo_frame_and_their_concatenation_split_and_decode_without_panic() {
    let mut files = Vec::new();
    bin_files(&vectors_dir("dubbo"), &mut files);
    assert!(files.len() >= 38, "expected the whole dubbo vector set");
    for data in &files {
        for end in 0..=data.len() {
            dubbo_frames(&data[..end]);
        }
    }
    dubbo_frames(&files.concat());
}

#[test]
fn nan_doubles_count_as_unchanged_by_a_round_trip() {
    // `D` followed by a quiet NaN, then a NaN with payload bits.
    hessian2_roundtrip(&hex("447ff8000000000000447ff0000000000001"));
}

#[test]
fn negative_zero_round_trips_as_zero() {
    hessian2_roundtrip(&hex("448000000000000000"));
}

#[test]
fn every_hessian2_vector_as_a_reply_converts_into_guest_values_without_panic() {
    let mut files = Vec::new();
    bin_files(&vectors_dir("hessian2"), &mut files);
    for data in &files {
        // The response flag 1 ("a value"), then the stream.
        let body = [&[0x91][..], data].concat();
        reply_to_guest(&body);
        if body.len() <= 512 {
            for end in 0..body.len() {
                reply_to_guest(&body[..end]);
            }
        }
    }
    let mut frames = Vec::new();
    bin_files(&vectors_dir("dubbo"), &mut frames);
    for frame in frames.iter().filter(|f| f.len() > 16 && f[2] & 0xa0 == 0) {
        reply_to_guest(&frame[16..]);
    }
}

#[test]
fn hostile_replies_convert_into_errors_without_panic() {
    // A million `Q 0` in a list (2 MB), a dangling `Q 0`, and refs to one object.
    let mut refs = vec![0x91, 0x58, b'I', 0x00, 0x0f, 0x42, 0x40];
    for _ in 0..1_000_000 {
        refs.extend_from_slice(&[0x51, 0x90]);
    }
    reply_to_guest(&refs);
    reply_to_guest(&hex("915190"));
    let header = |body: &[u8]| Header {
        flags: 0x02,
        status: 20,
        id: 1,
        body_len: body.len(),
    };
    for (body, expected) in [
        (&refs[..], "would take more than"),
        (
            &hex("915190")[..],
            "reference 0 at byte 1 points past the 0 containers",
        ),
    ] {
        match decode_response(&header(body), body) {
            Err(RpcError::Serialization(m)) => assert!(m.contains(expected), "{m}"),
            other => panic!("{:?}", other.map(|_| "a value")),
        }
    }
    // `C "T" 1 field "f"`, then a list of 1001: the object (f = 0) and 1000 refs to it.
    let mut objects = hex("9143015491016658cbe96090");
    for _ in 0..1000 {
        objects.extend_from_slice(&[0x51, 0x91]);
    }
    reply_to_guest(&objects);
}

#[test]
fn a_reference_expanded_past_serde_jsons_depth_limit_still_prints_valid_json() {
    // Found by reply_to_guest: nested lists that, once their references are expanded, print
    // deeper than the 128 levels serde_json parses; the printed text is still valid JSON.
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/regressions/reply_to_guest-deep-expansion.bin"),
    )
    .expect("regression input");
    reply_to_guest(&data);
}
