//! What Darkroom's web server and workers share, and nothing of the image
//! engine: the messages between them and their queues, recipes and their
//! validation, limits and what a recipe costs, reading an image's header,
//! the S3 bucket, logging and metrics, and the database set-up.
//!
//! # Layout
//! - [`protocol`]: request and response messages, object keys, the app's
//!   queues ([`protocol::declare_queues`]), the typed [`OutputState`].
//! - [`recipe`]: ops and recipes as users write them, validated field by field.
//! - [`limits`]: the deployment's [`Limits`] and what breaks them.
//! - [`cost`]: a recipe's largest output, work and memory, before decoding.
//! - [`probe`]: format and dimensions from a file's header; the estimate for
//!   a real file.
//! - [`storage`]: the S3-compatible bucket.
//! - [`health`]: whether Postgres and the bucket answer.
//! - [`telemetry`]: logging, metrics, shutdown signals.
//! - [`db`]: [`db::connect_and_migrate`] and every migration ([`db::MIGRATOR`]).

pub mod cost;
pub mod db;
pub mod health;
pub mod limits;
pub mod probe;
pub mod protocol;
pub mod recipe;
pub mod storage;
pub mod telemetry;

pub use db::MIGRATOR;
pub use limits::Limits;
pub use protocol::OutputState;
