//! Topic delivery under bad endpoints: one that never answers does not
//! delay another's deliveries, a failing one is parked by its breaker, a
//! delivery's tries are capped, a subscription keeps only its newest
//! deliveries, BACKOFF_RETRY gives up after three more tries and a
//! message's lifetime ends its retries. Real Postgres and real HTTP servers
//! on 127.0.0.1. Which addresses a delivery goes through is in
//! `topic_delivery_addresses.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use common::delivery::{Running, backoff, count, drained, endpoint, subscribed, until};
use queue::{Publication, Pusher, Queues, RetryPolicy, TopicSettings, Topics};
use sqlx::PgPool;
use tokio::time::Instant;

/// A local address that accepts connections and never answers; counts
/// them.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let accepted = accepted.clone();
        async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::Relaxed);
                held.push(socket);
            }
        }
    });
    (url, accepted)
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn an_endpoint_that_never_answers_does_not_delay_another(pool: PgPool) {
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (hole, accepted) = black_hole().await;
    let (healthy, calls) = endpoint(StatusCode::OK).await;
    // As anyone may make jobs, one client can own forty webhooks to one
    // black hole, each at a path of its own: more than every slot.
    for i in 0..40 {
        let (name, tag) = (format!("hole-{i}"), format!("h{i}"));
        subscribed(&topics, &name, &tag, &format!("{hole}p{i}"), backoff(100)).await;
        let piled: Vec<Publication> = (0..8)
            .map(|j| Publication::new(format!("lost {i}.{j}")).tagged(&[&tag]))
            .collect();
        topics.publish("events", &piled).await.unwrap();
    }
    subscribed(&topics, "healthy", "ok", &healthy, backoff(100)).await;
    // Never parked, so the black hole is tried all along.
    let pusher = Pusher::new(queues)
        .timeout(Duration::from_secs(3))
        .breaker(u32::MAX, Duration::from_secs(1));
    let _running = Running::start(&pusher);
    until(
        Duration::from_secs(5),
        "the black hole's first tries",
        || accepted.load(Ordering::Relaxed) > 0,
    )
    .await;

    let mut published = Vec::new();
    for i in 0..20 {
        let body = format!("event {i}");
        topics
            .publish("events", &[Publication::new(body.clone()).tagged(&["ok"])])
            .await
            .unwrap();
        published.push((body, Instant::now()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until(Duration::from_secs(30), "every healthy event", || {
        count(&calls) >= published.len()
    })
    .await;

    let calls = calls.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = published
        .iter()
        .map(|(body, at)| {
            let (got, _, _) = calls
                .iter()
                .find(|(_, _, b)| b.contains(&format!("\"{body}\"")))
                .unwrap();
            got.saturating_duration_since(*at)
        })
        .collect();
    latencies.sort();
    let p95 = latencies[latencies.len() * 95 / 100 - 1];
    assert!(p95 < Duration::from_secs(2), "p95 {p95:?}: {latencies:?}");
    // Two tries out at the start; a third means it was tried again meanwhile.
    assert!(
        accepted.load(Ordering::Relaxed) >= 3,
        "the black hole was tried meanwhile"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_failing_endpoint_is_parked_after_the_threshold_and_probed_after_its_cool_off(
    pool: PgPool,
) {
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::INTERNAL_SERVER_ERROR).await;
    subscribed(&topics, "failing", "f", &url, backoff(100)).await;
    let many: Vec<Publication> = (0..20)
        .map(|i| Publication::new(format!("e{i}")).tagged(&["f"]))
        .collect();
    topics.publish("events", &many).await.unwrap();
    let cool_off = Duration::from_secs(2);
    // One out at a time, so the count of POSTs before parking is exact.
    let pusher = Pusher::new(queues)
        .per_endpoint(1, Duration::from_millis(50))
        .breaker(3, cool_off);
    let _running = Running::start(&pusher);

    until(Duration::from_secs(5), "three failures", || {
        count(&calls) >= 3
    })
    .await;
    tokio::time::sleep(cool_off * 3 / 4).await;
    assert_eq!(count(&calls), 3, "no POST while parked");
    assert!(pusher.parked() > 0, "deliveries were put back unsent");
    until(cool_off * 2, "the probe", || count(&calls) >= 4).await;
    let quiet = {
        let calls = calls.lock().unwrap();
        calls[3].0 - calls[2].0
    };
    assert!(quiet >= cool_off - Duration::from_millis(100), "{quiet:?}");
    tokio::time::sleep(cool_off).await;
    assert_eq!(count(&calls), 4, "a failed probe parks it for longer");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_delivery_gets_at_most_its_max_attempts(pool: PgPool) {
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::INTERNAL_SERVER_ERROR).await;
    subscribed(&topics, "failing", "f", &url, backoff(100)).await;
    topics
        .publish("events", &[Publication::new("e").tagged(&["f"])])
        .await
        .unwrap();
    let pusher = Pusher::new(queues)
        .max_attempts(2)
        .breaker(u32::MAX, Duration::from_secs(1));
    let _running = Running::start(&pusher);

    until(Duration::from_secs(5), "the delivery dropped", || {
        pusher.dropped_spent() == 1
    })
    .await;
    // BACKOFF_RETRY alone would try twice more, 100 ms apart.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, h, _)| h["x-cmq-attempt"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(attempts, ["1", "2"]);
    drained(&topics).await;
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn only_a_subscriptions_newest_deliveries_are_kept_and_the_dropped_counted(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::OK).await;
    subscribed(&topics, "hook", "h", &url, backoff(100)).await;
    for i in 0..10 {
        let event = Publication::new(format!("e{i}")).tagged(&["h"]);
        topics.publish("events", &[event]).await.unwrap();
    }
    let pusher = Pusher::new(queues).max_pending(3);
    let _running = Running::start(&pusher);

    until(Duration::from_secs(5), "the backlog gone", || {
        pusher.dropped_over_cap() == 7 && count(&calls) == 3
    })
    .await;
    let mut bodies: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, body)| serde_json::from_str::<serde_json::Value>(body).unwrap())
        .map(|json| json["msgBody"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["e7", "e8", "e9"]);
    let (dropped,): (i64,) =
        sqlx::query_as("select dropped from queue_subscriptions where name = 'hook'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(dropped, 7);
    drained(&topics).await;
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn backoff_retry_gives_up_after_three_more_tries(pool: PgPool) {
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::INTERNAL_SERVER_ERROR).await;
    subscribed(&topics, "failing", "f", &url, backoff(100)).await;
    topics
        .publish("events", &[Publication::new("e").tagged(&["f"])])
        .await
        .unwrap();
    let pusher = Pusher::new(queues).breaker(u32::MAX, Duration::from_secs(1));
    let _running = Running::start(&pusher);

    until(Duration::from_secs(10), "the delivery given up", || {
        pusher.dropped_spent() == 1
    })
    .await;
    assert_eq!(count(&calls), 4, "the first try and three more");
    drained(&topics).await;
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_messages_lifetime_ends_its_retries(pool: PgPool) {
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::INTERNAL_SERVER_ERROR).await;
    let short = TopicSettings {
        message_lifetime: Duration::from_secs(2),
        ..TopicSettings::default()
    };
    topics.ensure_topic("events", &short).await.unwrap();
    subscribed(&topics, "failing", "f", &url, RetryPolicy::ExponentialDecay).await;
    topics
        .publish("events", &[Publication::new("e").tagged(&["f"])])
        .await
        .unwrap();
    let pusher = Pusher::new(queues).breaker(u32::MAX, Duration::from_secs(1));
    let _running = Running::start(&pusher);

    // Tried at once and 1 s later; the next, 2 s after that, would come
    // after the message's 2 s are over.
    until(Duration::from_secs(10), "the delivery given up", || {
        pusher.dropped_spent() == 1
    })
    .await;
    assert_eq!(count(&calls), 2);
    drained(&topics).await;
}
