//! Darkroom's worker: the image engine and the runtime that leases request
//! messages, processes their images and reports the results. What it shares
//! with the web server (protocol, recipes, limits, storage) is in `common`.
//!
//! # Layout
//! - [`engine`]: decode (with limits), apply ops, encode; one module per step.
//! - [`isolate`]: the engine in a child process per image (deadline, memory
//!   ceiling, empty environment).
//! - [`sandbox`]: what that child shuts itself in (seccomp, Landlock).
//! - [`runtime`]: the lease → process → report (response and delete in one
//!   transaction) loop.
//! - [`health`]: the listener for probes and Prometheus (`/livez`,
//!   `/healthz`, `/drain`, `/metrics`).
//!
//! The `darkroom-worker` command line is `src/main.rs`.

pub mod engine;
pub mod health;
pub mod isolate;
pub mod runtime;
pub mod sandbox;
