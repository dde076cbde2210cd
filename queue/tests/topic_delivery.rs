//! Topic delivery under bad endpoints: one that never answers does not
//! delay another's deliveries, a failing one is parked by its breaker, a
//! delivery's tries are capped, a subscription keeps only its newest
//! deliveries, BACKOFF_RETRY gives up after three more tries and a
//! message's lifetime ends its retries, proxies in the environment are not
//! used, and a public-only subscription's name that resolves to a private
//! address is refused at delivery. Real Postgres and real HTTP servers on
//! 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use queue::{Publication, Pusher, Queues, RetryPolicy, SubscriptionSpec, TopicSettings, Topics};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a local endpoint received: when, the headers, the body.
type Calls = Arc<Mutex<Vec<(Instant, HeaderMap, String)>>>;

/// A local endpoint answering every POST with `status`.
async fn endpoint(status: StatusCode) -> (String, Calls) {
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

/// Topic `events` (tag filter), with subscription `name` of tag `tag` to
/// `url` under `retry`.
async fn subscribed(topics: &Topics, name: &str, tag: &str, url: &str, retry: RetryPolicy) {
    topics
        .ensure_topic("events", &TopicSettings::default())
        .await
        .unwrap();
    let mut spec = SubscriptionSpec::http(url).tags(&[tag]);
    spec.retry = retry;
    topics.subscribe("events", name, &spec).await.unwrap();
}

fn backoff(ms: u64) -> RetryPolicy {
    RetryPolicy::Backoff {
        interval: Duration::from_millis(ms),
    }
}

/// `pusher` running until dropped.
struct Running(CancellationToken);

impl Running {
    fn start(pusher: &Pusher) -> Self {
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
async fn until(patience: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + patience;
    while !done() {
        assert!(Instant::now() < deadline, "waited {patience:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for the backlog of `events`' first subscription to reach 0 (a
/// delivery is finished after its endpoint answered).
async fn drained(topics: &Topics) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while topics.subscriptions("events").await.unwrap()[0].backlog > 0 {
        assert!(Instant::now() < deadline, "the backlog stayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn count(calls: &Calls) -> usize {
    calls.lock().unwrap().len()
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

/// Set in the child process [`proxies_in_the_environment_are_not_used`]
/// starts, with the proxy settings under test.
const CHILD: &str = "DARKROOM_TEST_PROXY_CHILD";

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn delivers_with_the_environments_proxy_settings(pool: PgPool) {
    let Ok(use_env_proxy) = std::env::var(CHILD) else {
        return;
    };
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::OK).await;
    subscribed(&topics, "hook", "h", &url, backoff(100)).await;
    topics
        .publish("events", &[Publication::new("e").tagged(&["h"])])
        .await
        .unwrap();
    let pusher = Pusher::new(queues).use_env_proxy(use_env_proxy == "use");
    let _running = Running::start(&pusher);
    until(Duration::from_secs(5), "the delivery", || {
        count(&calls) == 1
    })
    .await;
}

/// Runs [`delivers_with_the_environments_proxy_settings`] in a child
/// process whose HTTP_PROXY is a dead port (the environment is the
/// process's, shared by every test thread).
fn delivered_through_dead_proxy(use_env_proxy: bool) -> bool {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "delivers_with_the_environments_proxy_settings"])
        .env(CHILD, if use_env_proxy { "use" } else { "ignore" })
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("ALL_PROXY", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    status.success()
}

#[test]
fn proxies_in_the_environment_are_not_used() {
    assert!(delivered_through_dead_proxy(false));
    assert!(
        !delivered_through_dead_proxy(true),
        "with the proxy asked for, the dead proxy stops the delivery"
    );
}

/// A name of this machine that resolves to a loopback address: its own
/// host name (Debian maps it in /etc/hosts), which no check by name alone
/// can tell from a public one.
async fn a_name_for_loopback() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let name = name.trim().to_owned();
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .unwrap()
        .collect();
    assert!(
        addrs.iter().any(|a| a.ip().is_loopback()),
        "this test needs the host name {name} to resolve to a loopback address: {addrs:?}"
    );
    name
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_public_only_delivery_to_a_name_that_resolves_privately_is_refused(pool: PgPool) {
    let queues = Queues::new(pool);
    let topics = Topics::new(queues.clone());
    let (url, calls) = endpoint(StatusCode::OK).await;
    let name = a_name_for_loopback().await;
    let url = url.replace("127.0.0.1", &name);
    // Both pass the check by name at subscription; only one may go private.
    subscribed(&topics, "control", "control", &url, backoff(100)).await;
    let mut guarded = SubscriptionSpec::http(&url).tags(&["guarded"]);
    guarded.retry = backoff(100);
    guarded.public_only = true;
    topics
        .subscribe("events", "guarded", &guarded)
        .await
        .unwrap();
    for tag in ["guarded", "control"] {
        let sent = Publication::new(format!("to {tag}")).tagged(&[tag]);
        topics.publish("events", &[sent]).await.unwrap();
    }
    let _running = Running::start(&Pusher::new(queues));

    until(Duration::from_secs(10), "the control delivery", || {
        count(&calls) >= 1
    })
    .await;
    // Tried every 100 ms meanwhile, each time resolved and refused.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bodies: Vec<String> = calls.lock().unwrap().iter().map(|c| c.2.clone()).collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("to control"), "{bodies:?}");
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
