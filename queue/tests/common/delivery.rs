//! What the topic delivery tests share: local HTTP endpoints that record
//! their calls, a topic with one HTTP subscription, a pusher running for the
//! length of a test, and waits for calls and backlogs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use queue::{Pusher, RetryPolicy, SubscriptionSpec, TopicSettings, Topics};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a local endpoint received: when, the headers, the body.
pub type Calls = Arc<Mutex<Vec<(Instant, HeaderMap, String)>>>;

/// A local endpoint answering every POST with `status`.
pub async fn endpoint(status: StatusCode) -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let calls = calls.clone();
            move |headers: HeaderMap, body: String| async move {
                calls.lock().unwrap().push((Instant::now(), headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

/// Topic `events` (tag filter), with subscription `name` of tag `tag` to
/// `url` under `retry`.
pub async fn subscribed(topics: &Topics, name: &str, tag: &str, url: &str, retry: RetryPolicy) {
    topics
        .ensure_topic("events", &TopicSettings::default())
        .await
        .unwrap();
    let mut spec = SubscriptionSpec::http(url).tags(&[tag]);
    spec.retry = retry;
    topics.subscribe("events", name, &spec).await.unwrap();
}

pub fn backoff(ms: u64) -> RetryPolicy {
    RetryPolicy::Backoff {
        interval: Duration::from_millis(ms),
    }
}

/// `pusher` running until dropped.
pub struct Running(CancellationToken);

impl Running {
    pub fn start(pusher: &Pusher) -> Self {
        let shutdown = CancellationToken::new();
        tokio::spawn(pusher.clone().run(shutdown.clone()));
        Self(shutdown)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Waits until `done`, failing the test after `patience`.
pub async fn until(patience: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + patience;
    while !done() {
        assert!(Instant::now() < deadline, "waited {patience:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for the backlog of `events`' first subscription to reach 0 (a
/// delivery is finished after its endpoint answered).
pub async fn drained(topics: &Topics) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while topics.subscriptions("events").await.unwrap()[0].backlog > 0 {
        assert!(Instant::now() < deadline, "the backlog stayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn count(calls: &Calls) -> usize {
    calls.lock().unwrap().len()
}
