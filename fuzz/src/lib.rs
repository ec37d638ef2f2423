//! The properties the fuzz targets check, as plain functions so that the regression tests in
//! `tests/` (and anyone with a crashing input) can run them on stable `cargo test`, without
//! libFuzzer. Each function panics exactly when the property is broken; the targets in
//! `fuzz_targets/` are one-line wrappers around them.

use bytes::BytesMut;
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{decode_event, decode_request, decode_response};
use dubbo_wasm_host::hessian2::{Decoder, Encoder, Value};

/// Decodes `data` as one Hessian2 stream up to its end or its first error, then checks that
/// the values decoded so far survive encode → decode unchanged, and that encoding is stable
/// (encoding the re-decoded values gives the same bytes again).
pub fn hessian2_roundtrip(data: &[u8]) {
    let values = decode_all(data);
    if values.is_empty() {
        return;
    }
    let first = encode_all(&values);
    let again = decode_all(&first);
    assert_eq!(
        again.len(),
        values.len(),
        "re-encoded stream decodes to another number of values\ninput {}\nencoded {}",
        hex(data),
        hex(&first)
    );
    for (i, (a, b)) in values.iter().zip(&again).enumerate() {
        assert!(
            same_value(a, b),
            "value {i} changed through encode/decode\ninput {}\nencoded {}\nbefore {a:?}\nafter {b:?}",
            hex(data),
            hex(&first)
        );
    }
    let second = encode_all(&again);
    assert!(
        first == second,
        "encoding is not stable\ninput {}\nfirst {}\nsecond {}",
        hex(data),
        hex(&first),
        hex(&second)
    );
}

/// Feeds `data` to the frame splitter in pseudo-random pieces, as a socket would deliver it,
/// and runs every body decoder on every frame; nothing may panic, and a frame's body must be
/// as long as its header says.
///
/// The piece sizes come from the input's last byte (and its length), so the raw `.bin` frames
/// of `shared/vectors/dubbo` are meaningful seeds as they are and the fuzzer can still vary
/// the split by mutating one byte.
pub fn dubbo_frames(data: &[u8]) {
    let mut rng = SplitMix(u64::from(*data.last().unwrap_or(&0)) ^ ((data.len() as u64) << 8));
    let mut buf = BytesMut::new();
    let mut rest = data;
    while !rest.is_empty() {
        // Mostly small pieces, sometimes a large one, so headers and bodies straddle reads.
        let r = rng.next();
        let max = if r & 0x7 == 0 { 4096 } else { 24 };
        let n = ((r >> 8) as usize % max + 1).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match split_frame(&mut buf, DEFAULT_PAYLOAD) {
                Ok(Some(frame)) => {
                    assert_eq!(frame.body.len(), frame.header.body_len);
                    let _ = decode_response(&frame.header, &frame.body);
                    let _ = decode_event(&frame.body);
                    let _ = decode_request(&frame.body);
                }
                Ok(None) => break,
                // The connection would be closed here: nothing after a bad header is read.
                Err(_) => return,
            }
        }
    }
}

fn decode_all(data: &[u8]) -> Vec<Value> {
    let mut dec = Decoder::new(data);
    let mut values = Vec::new();
    while !dec.is_at_end() {
        match dec.read_value() {
            Ok(v) => values.push(v),
            Err(_) => break,
        }
    }
    values
}

fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut enc = Encoder::new(&mut out);
    for v in values {
        enc.write_value(v);
    }
    out.to_vec()
}

pub use dubbo_wasm_host::testing::same_value;

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tiny deterministic generator (SplitMix64) for the piece sizes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
