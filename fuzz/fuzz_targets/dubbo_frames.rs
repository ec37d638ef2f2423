//! dubbo:// frame splitting and body decoding on arbitrary bytes in arbitrary pieces.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dubbo_wasm_host_fuzz::dubbo_frames(data));
