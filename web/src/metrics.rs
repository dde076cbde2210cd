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
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use queue::Stats;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use; call it at start-up so
/// nothing recorded before the first scrape is lost.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("darkroom_output_seconds".into()),
                &[
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Only this module installs a recorder; should something else have,
        // /metrics stays empty rather than the process failing.
        let _ = metrics::set_global_recorder(recorder);
        describe_counter!("darkroom_uploads_total", "Files uploaded, by outcome");
        describe_counter!("darkroom_upload_bytes_total", "Bytes of accepted uploads");
        describe_histogram!(
            "darkroom_output_seconds",
            metrics::Unit::Seconds,
            "Time from upload to an output's final state"
        );
        describe_gauge!("darkroom_queue_messages", "Messages in a queue, by state");
        handle
    })
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
