//! Wire protocols spoken with providers: the `dubbo://` exchange over Hessian 2.0 (the
//! serialization itself is [`crate::hessian2`], a leaf every layer may use). Nothing here
//! knows about Wasm.

pub mod dubbo;
