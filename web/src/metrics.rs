//! Prometheus metrics, served at `/metrics`.
//!
//! - `darkroom_uploads_total{outcome="accepted|rejected"}`: files uploaded.
//! - `darkroom_upload_bytes_total`: bytes of accepted files.
//! - `darkroom_output_seconds{state="done|failed"}`: from upload to an
//!   output's final state (histogram).
//! - `darkroom_queue_messages{queue,state}`: request and response queue depth
//!   (visible, in_flight, delayed, dead_lettered), read at scrape time.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use queue::Stats;

/// The process's recorder (see `common::telemetry::metrics`), with this
/// server's metrics described.
pub fn handle() -> &'static PrometheusHandle {
    static DESCRIBED: OnceLock<()> = OnceLock::new();
    let handle = common::telemetry::metrics();
    DESCRIBED.get_or_init(|| {
        describe_counter!("darkroom_uploads_total", "Files uploaded, by outcome");
        describe_counter!("darkroom_upload_bytes_total", "Bytes of accepted uploads");
        describe_histogram!(
            "darkroom_output_seconds",
            metrics::Unit::Seconds,
            "Time from upload to an output's final state"
        );
        describe_gauge!("darkroom_queue_messages", "Messages in a queue, by state");
    });
    handle
}

pub fn upload_accepted(bytes: u64) {
    counter!("darkroom_uploads_total", "outcome" => "accepted").increment(1);
    counter!("darkroom_upload_bytes_total").increment(bytes);
}

pub fn upload_rejected() {
    counter!("darkroom_uploads_total", "outcome" => "rejected").increment(1);
}

pub fn output_finished(state: &'static str, seconds: f64) {
    histogram!("darkroom_output_seconds", "state" => state).record(seconds);
}

pub fn queue_depth(queue: &str, stats: &Stats) {
    for (state, n) in [
        ("visible", stats.visible),
        ("in_flight", stats.in_flight),
        ("delayed", stats.delayed),
        ("dead_lettered", stats.dead_lettered),
    ] {
        gauge!("darkroom_queue_messages", "queue" => queue.to_owned(), "state" => state)
            .set(n as f64);
    }
}
