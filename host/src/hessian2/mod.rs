//! Hessian 2.0, the serialization behind Apache Dubbo's `dubbo://` protocol: a [`Value`] model
//! that keeps what is needed to reproduce the wire bytes, an [`Encoder`] that writes what
//! hessian-lite 4.0.3 (Dubbo 3.3) writes, and a [`Decoder`] hardened for untrusted input.
//! An encoder or decoder is one stream: class definitions, type names and back-references are
//! shared by all the values of a Dubbo body.

mod decode;
mod encode;
#[cfg(test)]
mod tests;
mod value;

pub use decode::{DecodeError, Decoder};
pub use encode::Encoder;
pub use value::{decoded_size, ref_table, ClassDef, List, Map, Object, Value};
