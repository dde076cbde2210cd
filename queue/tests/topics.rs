//! Topics: filters, fan-out into queues in one transaction, HTTP push with
//! CMQ's retries, and a pusher killed mid-delivery.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use queue::{
    Publication, Pusher, QueueAttributes, Queues, RetryPolicy, SubscriptionSpec, TopicFilter,
    TopicSettings, Topics,
};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LOCK: Duration = Duration::from_secs(30);

async fn bodies(queues: &Queues, name: &str) -> Vec<String> {
    let q = queues.open(name).await.unwrap();
    let mut out: Vec<String> = q
        .receive(1000, LOCK)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    out.sort();
    out
}

/// Makes queue `queue` and subscribes it to `topic` as `spec` says.
async fn subscribe_queue(
    pool: &PgPool,
    topics: &Topics,
    topic: &str,
    queue: &str,
    spec: SubscriptionSpec,
) {
    common::queue(pool, queue).await;
    topics.subscribe(topic, queue, &spec).await.unwrap();
}

/// A tag topic `events` with a queue subscribed (taking every message) for
/// each of `names`.
async fn events_feeding(pool: &PgPool, names: &[&str]) -> (Queues, Topics) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    topic(&topics, "events", TopicFilter::Tag).await;
    for queue in names {
        subscribe_queue(
            pool,
            &topics,
            "events",
            queue,
            SubscriptionSpec::queue(queue),
        )
        .await;
    }
    (queues, topics)
}

async fn topic(topics: &Topics, name: &str, filter: TopicFilter) {
    let settings = TopicSettings {
        filter,
        ..Default::default()
    };
    topics.put_topic(name, &settings).await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn tag_subscriptions_get_their_messages_in_every_queue_at_once(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    topic(&topics, "events", TopicFilter::Tag).await;
    for (queue, tags) in [
        ("all", &[][..]),
        ("reds", &["red"][..]),
        ("blues", &["blue"][..]),
    ] {
        common::queue(&pool, queue).await;
        topics
            .subscribe("events", queue, &SubscriptionSpec::queue(queue).tags(tags))
            .await
            .unwrap();
    }
    let ids = topics
        .publish(
            "events",
            &[
                Publication::new("plain"),
                Publication::new("red").tagged(&["red"]),
                Publication::new("both").tagged(&["blue", "red"]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(bodies(&queues, "all").await, ["both", "plain", "red"]);
    assert_eq!(bodies(&queues, "reds").await, ["both", "red"]);
    assert_eq!(bodies(&queues, "blues").await, ["both"]);
    let subs = topics.subscriptions("events").await.unwrap();
    assert_eq!(subs.len(), 3);
    assert!(subs.iter().all(|s| s.backlog > 0));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_publish_that_one_queue_refuses_reaches_none(pool: PgPool) {
    let (queues, topics) = events_feeding(&pool, &["one", "two"]).await;
    // The third queue takes messages of 4 bytes at most.
    let small = QueueAttributes {
        max_message_bytes: 4,
        ..Default::default()
    };
    common::queue_with(&pool, "three", &small).await;
    topics
        .subscribe("events", "three", &SubscriptionSpec::queue("three"))
        .await
        .unwrap();
    let err = topics
        .publish(
            "events",
            &[Publication::new("short"), Publication::new("a longer body")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, queue::Error::MessageTooLarge { .. }),
        "{err:?}"
    );
    for queue in ["one", "two", "three"] {
        assert!(bodies(&queues, queue).await.is_empty(), "{queue}");
    }
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn routing_subscriptions_get_what_their_binding_keys_match(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    topic(&topics, "jobs", TopicFilter::Routing).await;
    for (queue, keys) in [
        ("done", &["job.*.done"][..]),
        ("everything", &["#"][..]),
        ("failures", &["job.#.failed", "image.failed"][..]),
    ] {
        common::queue(&pool, queue).await;
        topics
            .subscribe(
                "jobs",
                queue,
                &SubscriptionSpec::queue(queue).binding_keys(keys),
            )
            .await
            .unwrap();
    }
    topics
        .publish(
            "jobs",
            &[
                Publication::new("j1 done").routed("job.j1.done"),
                Publication::new("j1 img failed").routed("job.j1.image.failed"),
                Publication::new("img failed").routed("image.failed"),
                Publication::new("no key"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(bodies(&queues, "done").await, ["j1 done"]);
    assert_eq!(
        bodies(&queues, "everything").await,
        ["img failed", "j1 done", "j1 img failed"]
    );
    assert_eq!(
        bodies(&queues, "failures").await,
        ["img failed", "j1 img failed"]
    );
}

/// A local endpoint that answers 500 to its first `fail` calls and 200
/// after, recording when each call came and its headers.
#[derive(Clone, Default)]
struct Endpoint {
    calls: Arc<Mutex<Vec<Call>>>,
}

/// When a call came, its headers and body.
type Call = (Instant, HeaderMap, String);

impl Endpoint {
    async fn start(self, fail: usize) -> String {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let calls = self.calls.clone();
                async move {
                    let mut calls = calls.lock().unwrap();
                    calls.push((Instant::now(), headers, body));
                    if calls.len() <= fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }
}

/// A pusher that ran until `endpoint` had `n` calls (or 20 s passed), and
/// the calls.
async fn pushed(queues: &Queues, endpoint: &Endpoint, n: usize) -> (Pusher, Vec<Call>) {
    let pusher = Pusher::new(queues.clone()).timeout(Duration::from_secs(2));
    let calls = endpoint.calls.clone();
    push_until(&pusher, Duration::from_secs(20), || {
        calls.lock().unwrap().len() >= n
    })
    .await;
    let calls = endpoint.calls.lock().unwrap().clone();
    (pusher, calls)
}

/// Runs `pusher` until `done` says so or `patience` runs out.
async fn push_until(pusher: &Pusher, patience: Duration, done: impl Fn() -> bool) {
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pusher.clone().run(shutdown.clone()));
    let deadline = Instant::now() + patience;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn http_push_retries_with_backoff_until_the_endpoint_takes_it(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    topic(&topics, "events", TopicFilter::Tag).await;
    let endpoint = Endpoint::default();
    let url = endpoint.clone().start(2).await;
    let mut spec = SubscriptionSpec::http(&url).tags(&["job-1"]);
    spec.retry = RetryPolicy::Backoff {
        interval: Duration::from_secs(1),
    };
    spec.secret = Some("hook-secret".into());
    topics.subscribe("events", "hook", &spec).await.unwrap();
    let ids = topics
        .publish("events", &[Publication::new("job.done").tagged(&["job-1"])])
        .await
        .unwrap();

    let (pusher, calls) = pushed(&queues, &endpoint, 3).await;
    assert_eq!(calls.len(), 3, "two refusals, then the delivery");
    for pair in calls.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(950),
            "retried after {gap:?}, not 1 s"
        );
    }
    let (_, headers, body) = &calls[2];
    assert_eq!(headers["x-cmq-message-id"], ids[0].to_string().as_str());
    assert_eq!(headers["x-cmq-message-tag"], "job-1");
    assert_eq!(headers["x-cmq-attempt"], "3");
    assert_eq!(
        headers["x-cmq-signature"],
        queue::topic_signature("hook-secret", body).as_str()
    );
    let signed = headers["darkroom-signature"].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let tolerance = Duration::from_secs(300);
    assert!(Pusher::verify_signature(
        "hook-secret",
        signed,
        body,
        now,
        tolerance
    ));
    assert!(
        !Pusher::verify_signature("hook-secret", signed, body, now + 301, tolerance),
        "a replay after the tolerance is refused"
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["msgBody"], "job.done");
    assert_eq!(json["topicName"], "events");
    // Delivered: nothing left to push.
    push_until(&pusher, Duration::from_millis(500), || false).await;
    assert_eq!(endpoint.calls.lock().unwrap().len(), 3);
    assert_eq!(topics.subscriptions("events").await.unwrap()[0].backlog, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn http_push_decays_exponentially(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    topic(&topics, "events", TopicFilter::Tag).await;
    let endpoint = Endpoint::default();
    let url = endpoint.clone().start(2).await;
    topics
        .subscribe("events", "hook", &SubscriptionSpec::http(&url))
        .await
        .unwrap();
    topics
        .publish("events", &[Publication::new("x")])
        .await
        .unwrap();
    let (_, calls) = pushed(&queues, &endpoint, 3).await;
    assert_eq!(calls.len(), 3);
    let gaps: Vec<Duration> = calls.windows(2).map(|p| p[1].0 - p[0].0).collect();
    assert!(gaps[0] >= Duration::from_millis(950), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(1950), "{gaps:?}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_subscribed_queue_deleted_since_is_skipped(pool: PgPool) {
    let (queues, topics) = events_feeding(&pool, &["kept", "gone"]).await;
    queues.delete("gone").await.unwrap();
    topics
        .publish("events", &[Publication::new("still here")])
        .await
        .unwrap();
    assert_eq!(bodies(&queues, "kept").await, ["still here"]);
}
