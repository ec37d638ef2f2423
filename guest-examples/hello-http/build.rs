//! Links the guest with a 64 KiB stack instead of Rust's default 1 MiB.
//!
//! The host serves every request on a fresh instance and, when the request
//! ends, resets the instance's linear memory for the next one. The reset asks
//! the kernel which pages were written, and the kernel walks every page the
//! memory has. A Rust guest's stack is the start of its memory, so with the
//! default stack this guest starts with 17 pages of 64 KiB, 16 of them stack.
//! Its handler needs a few KiB of stack; 64 KiB (what `wasm-ld` gives C
//! programs) leaves room to spare, and the memory starts at 2 pages.
//! BENCHMARKS.md (run 8) has what it saves.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-cdylib-link-arg=-zstack-size=65536");
    }
}
