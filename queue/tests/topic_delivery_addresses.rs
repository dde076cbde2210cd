//! Where a topic's deliveries go: proxies in the environment are not used
//! unless asked for, and a public-only subscription's name that resolves to
//! a private address is refused at delivery. Real Postgres and real HTTP
//! servers on 127.0.0.1.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::delivery::{Running, backoff, count, endpoint, subscribed, until};
use queue::{Publication, Pusher, Queues, SubscriptionSpec, Topics};
use sqlx::PgPool;

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
