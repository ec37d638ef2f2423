//! Wire protocols spoken with providers: the Hessian 2.0 serialization and the `dubbo://`
//! exchange built on it. Nothing here knows about Wasm.

pub mod dubbo;
pub mod hessian2;
