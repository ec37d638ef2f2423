//! The fuzz properties on known inputs, on stable `cargo test` (no libFuzzer): every golden
//! vector and every prefix of it, plus the inputs the fuzzers once broke on (none so far) and
//! the corner cases the properties must allow.

use std::path::{Path, PathBuf};

use dubbo_wasm_host_fuzz::{dubbo_frames, hessian2_roundtrip};

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
