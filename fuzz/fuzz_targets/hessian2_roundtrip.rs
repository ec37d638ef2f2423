//! Hessian2 decoder on arbitrary bytes; what decodes must survive encode → decode unchanged.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dubbo_wasm_host_fuzz::hessian2_roundtrip(data));
