//! Support for the end-to-end tests: the test Dubbo provider, and helpers that run the host
//! and the provider as processes, the way a user runs them.

pub mod admin;
pub mod config;
pub mod definition;
pub mod discovery;
pub mod faults;
pub mod hostile;
pub mod metadata;
pub mod process;
pub mod provider;
pub mod registration;
pub mod zookeeper;
