//! A response body decoded as the host does for a typed reply, then converted into guest
//! (WIT) values of a fixed set of types and into JSON text; nothing may panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dubbo_wasm_host_fuzz::reply_to_guest(data));
