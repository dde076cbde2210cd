//! What Darkroom's tests and benchmarks share across crates (a dev
//! dependency only).
//!
//! # Layout
//! - [`cluster`]: private Postgres clusters, for shard tests and benches.
//! - [`sqs`]: the SQS endpoint on a free port, and an AWS SDK client of it.
//! - [`photo12mp`]: the benchmarks' 12 MP photo, made once.
//! - [`imports`]: which modules of a crate use which, to find circles.

pub mod cluster;
pub mod imports;
pub mod photo12mp;
pub mod sqs;
