//! The `darkroom-queue` command line against a real Postgres.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{ConnectOptions, PgPool};
use testkit::sqs::{KEY_ID, SECRET, client, client_with, create, delete, receive, send};

/// `darkroom-queue` on the test's own database.
fn darkroom_queue(pool: &PgPool) -> Command {
    let url: String = pool.connect_options().to_url_lossy().into();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_darkroom-queue"));
    cmd.env("DATABASE_URL", url);
    cmd
}

/// Runs `darkroom-queue args`, which must succeed.
fn cli(pool: &PgPool, args: &[&str]) -> Output {
    let out = darkroom_queue(pool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "darkroom-queue {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn create_send_receive_stats_rewind_purge(pool: PgPool) {
    assert!(
        stdout(&cli(
            &pool,
            &["create", "jobs", "--visibility-timeout", "45"]
        ))
        .contains("created")
    );
    let ids = stdout(&cli(&pool, &["send", "jobs", "one", "two"]));
    let ids: Vec<i64> = ids.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(ids.len(), 2);

    let received = stdout(&cli(&pool, &["receive", "jobs", "--max", "10", "--delete"]));
    let bodies: Vec<String> = received
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["body"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(bodies, ["one", "two"]);

    let stats: Value = serde_json::from_str(&stdout(&cli(&pool, &["stats", "jobs"]))).unwrap();
    assert_eq!(stats["stats"]["visible"], 0);

    let to_id = ids[0].to_string();
    assert!(stdout(&cli(&pool, &["rewind", "jobs", "--to-id", &to_id])).starts_with("2 "));
    assert!(stdout(&cli(&pool, &["purge", "jobs"])).starts_with("2 "));
}

#[test]
fn missing_database_url_is_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_darkroom-queue"))
        .env_remove("DATABASE_URL")
        .args(["stats", "jobs"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL is not set"));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn unknown_queue_is_a_clear_error(pool: PgPool) {
    let out = darkroom_queue(&pool)
        .args(["stats", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("queue `nope` does not exist")
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn serve_refuses_a_weak_admin_token(pool: PgPool) {
    let out = darkroom_queue(&pool)
        .env("DARKROOM_ADMIN_TOKEN", "change-me")
        .env("DARKROOM_QUEUE_BIND", "127.0.0.1:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("DARKROOM_ADMIN_TOKEN is"), "{stderr}");
}

/// `darkroom-queue serve` on a free port with `env` set, and the first
/// line it printed (where it listens).
fn serve(pool: &PgPool, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = darkroom_queue(pool)
        .env("DARKROOM_QUEUE_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn serve_stops_cleanly_on_sigterm(pool: PgPool) {
    let (mut child, line) = serve(
        &pool,
        &[("DARKROOM_ADMIN_TOKEN", "serve-sigterm-test-token-5e8b2d")],
    );
    assert!(line.starts_with("queue API on http://127.0.0.1:"), "{line}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("darkroom-queue serve ignored SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn shards_are_added_listed_and_queues_placed_from_the_command_line(pool: PgPool) {
    let cluster = testkit::cluster::Cluster::start();
    let added = stdout(&cli(&pool, &["shard", "add", "s1", &cluster.url()]));
    assert_eq!(added.trim(), "shard 1 added as s1");
    cli(&pool, &["create", "photos", "--shards", "s1"]);
    let listed = stdout(&cli(&pool, &["shard", "list"]));
    assert!(listed.contains("0\tcontrol\t0 queues"), "{listed}");
    assert!(listed.contains("1\ts1\t1 queues"), "{listed}");

    let ids = stdout(&cli(&pool, &["send", "photos", "a", "b"]));
    assert!(ids.lines().all(|l| l.starts_with("1:")), "{ids}");
    let received = stdout(&cli(&pool, &["receive", "photos", "--max", "10"]));
    for line in received.lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        assert!(m["receipt"].as_str().unwrap().starts_with("1:"), "{m}");
    }
    // Spread back over the control database too: stats cover both.
    cli(&pool, &["queue", "spread", "photos", "s1", "control"]);
    cli(&pool, &["send", "photos", "c", "d"]);
    let stats: Value = serde_json::from_str(&stdout(&cli(&pool, &["stats", "photos"]))).unwrap();
    assert_eq!(stats["stats"]["in_flight"], 2, "{stats}");
    assert_eq!(stats["stats"]["visible"], 2, "{stats}");

    let out = darkroom_queue(&pool)
        .args(["queue", "place", "photos", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no shard named `nowhere`"));
}

/// `darkroom-queue serve` answers SQS with the keys it was given, and a
/// queue made and used over SQS is rewound by `darkroom-queue rewind`.
#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn serve_speaks_sqs_and_rewind_reaches_sqs_queues(pool: PgPool) {
    let keys = format!("{KEY_ID}:{SECRET}");
    let (mut child, line) = serve(&pool, &[("DARKROOM_SQS_ACCESS_KEYS", &keys)]);
    let url = line
        .trim()
        .rsplit_once("SQS endpoint on ")
        .map(|(_, u)| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("no SQS endpoint in {line}"));
    let sqs = client(&url);
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let q = create(&sqs, "from-sqs").await;
    send(&sqs, &q, "replay me").await;
    let got = receive(&sqs, &q).await;
    delete(&sqs, &q, got.messages()[0].receipt_handle().unwrap()).await;

    let out = cli(
        &pool,
        &["rewind", "from-sqs", "--to-time", &before.to_rfc3339()],
    );
    assert!(out.status.success(), "{out:?}");
    let again = receive(&sqs, &q).await;
    assert_eq!(again.messages()[0].body(), Some("replay me"));
    let wrong = client_with(&url, KEY_ID, "not-the-secret");
    assert!(wrong.list_queues().send().await.is_err());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn topics_are_made_subscribed_and_published_from_the_command_line(pool: PgPool) {
    common::queue(&pool, "inbox").await;
    let run = |args: &[&str]| stdout(&cli(&pool, args));
    run(&["topic", "create", "events", "--filter", "tag"]);
    run(&[
        "topic",
        "subscribe",
        "events",
        "reds",
        "--queue",
        "inbox",
        "--tag",
        "red",
    ]);
    run(&["topic", "publish", "events", "a red one", "--tag", "red"]);
    run(&["topic", "publish", "events", "a blue one", "--tag", "blue"]);
    let subs = run(&["topic", "subscriptions", "events"]);
    assert!(
        subs.contains("reds") && subs.contains("backlog 1"),
        "{subs}"
    );
    let listed = run(&["topic", "list"]);
    assert!(
        listed.contains("events") && listed.contains("1 subscriptions"),
        "{listed}"
    );
    run(&["topic", "unsubscribe", "events", "reds"]);
    run(&["topic", "delete", "events"]);
    let out = darkroom_queue(&pool)
        .args(["topic", "publish", "events", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("topic `events` does not exist"));
}

/// A pusher killed (SIGKILL) while an endpoint holds its delivery leaves
/// the delivery leased; once the lease runs out, the next pusher delivers
/// it. At least once, nothing lost.
#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn killed_pusher_leaves_its_delivery_to_the_next(pool: PgPool) {
    use std::sync::{Arc, Mutex};

    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let first = Arc::new(tokio::sync::Notify::new());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (calls, first) = (calls.clone(), first.clone());
            move |body: String| async move {
                let n = {
                    let mut calls = calls.lock().unwrap();
                    calls.push(body);
                    calls.len()
                };
                if n == 1 {
                    // Held until the pusher dies.
                    first.notify_one();
                    std::future::pending::<()>().await;
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let topics = queue::Topics::new(queue::Queues::new(pool.clone()));
    topics
        .put_topic("events", &queue::TopicSettings::default())
        .await
        .unwrap();
    topics
        .subscribe("events", "hook", &queue::SubscriptionSpec::http(&url))
        .await
        .unwrap();
    topics
        .publish("events", &[queue::Publication::new("must arrive")])
        .await
        .unwrap();

    // Leases of 3 s (three times the push timeout).
    let env = [("DARKROOM_TOPIC_PUSH_TIMEOUT", "1")];
    let (mut pusher, _) = serve(&pool, &env);
    tokio::time::timeout(Duration::from_secs(30), first.notified())
        .await
        .expect("the first pusher never delivered");
    pusher.kill().unwrap();
    pusher.wait().unwrap();

    let (mut next, _) = serve(&pool, &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let backlog = || async { topics.subscriptions("events").await.unwrap()[0].backlog };
    while (calls.lock().unwrap().len() < 2 || backlog().await > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    next.kill().unwrap();
    next.wait().unwrap();
    let calls = calls.lock().unwrap().clone();
    assert!(calls.len() >= 2, "never delivered again: {calls:?}");
    assert!(calls.iter().all(|b| b.contains("must arrive")));
    assert_eq!(backlog().await, 0);
}
