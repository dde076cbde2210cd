//! Darkroom's worker: the image engine and the process that leases request
//! messages, applies recipes and reports results.
//!
//! The web server depends on this crate too, for recipe validation, header
//! probing, the message protocol and storage.
//!
//! # Layout
//! - [`recipe`]: ops and recipes as JSON, with validation that names the field at fault.
//! - [`engine`]: decode (with limits), apply ops, encode.
//! - [`cost`]: what a recipe costs (pixels, work, memory) before decoding.
//! - [`protocol`]: request/response messages and object keys.
//! - [`storage`]: the S3-compatible bucket.
//! - [`isolate`]: the engine in a child process per image (deadline, memory ceiling).
//! - [`runtime`]: the lease → process → respond → delete loop.
//! - [`config`]: the `darkroom-worker` command line.
//! - [`telemetry`]: logging and shutdown signals.

pub mod config;
pub mod cost;
pub mod engine;
pub mod isolate;
pub mod protocol;
pub mod recipe;
pub mod runtime;
pub mod storage;
pub mod telemetry;
