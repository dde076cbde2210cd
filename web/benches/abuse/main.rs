//! An honest client beside an attacker, on one web server and two workers.
//!
//! The honest client (from 127.0.0.2) makes `JOBS` jobs, one every
//! `PACE`: each a 12 MP photo with a thumbnail and a 1600×1200 resize; a
//! job's time runs from its creation to its last output being final. It
//! runs alone first (the baseline), then again while an attacker (from
//! 127.0.0.1, `ATTACKERS` connections, loopback only) sends for
//! `ATTACK` the worst requests it can find, round after round:
//! - jobs with the heaviest recipes the budget lets through, and ones over
//!   it;
//! - tiny PNGs for those recipes (a 64×64 image blown up to 49 MP, then
//!   teeth whitening), with 16 recipes at once and with one;
//! - decompression bombs, and 64 MB of garbage as a "photo";
//! - JPEGs whose header lies past the first MiB, behind 32 metadata
//!   segments (the web charges them as the largest image allowed);
//! - uploads that send 8 MiB − 1 bytes and then a byte a second
//!   (`TRICKLERS` at once, each starting again when refused or cut);
//! - quick jobs whose webhook points at a black hole (a listener that
//!   accepts and never answers), so its deliveries pile up and time out
//!   (from 127.0.0.3, the trickled uploads from 127.0.0.4: each attack
//!   has its own address, so the others' rates do not hold it back);
//! - progress streams held open, and floods of status and unknown URLs.
//!
//! Every honest job has a webhook to a healthy receiver too; its `job.done`
//! delivery's lag behind the job being seen done is reported alone and
//! under attack.
//!
//! Reported: whether every honest job finished, the honest p50/p95 job
//! time alone and under attack and their ratio, the honest webhooks' p95
//! lag, the attacker's answers by status, the web server's peak RSS, and
//! whether any process died. All limits are the defaults, but webhooks may
//! reach loopback (`DARKROOM_WEBHOOK_ALLOW_PRIVATE`), where both receivers
//! are.
//!
//! Run with `scripts/bench-abuse` (provisions Postgres and the S3 server,
//! builds the release binaries).

#[path = "../support/mod.rs"]
mod support;

mod attack;
mod honest;

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Guard, Job, create_job, fresh_database, peak_rss_mb, start_workers};
use testkit::photo12mp;

use attack::{Tally, attacker, black_hole, black_holer, trickler};
use honest::{Hook, honest, percentile};

const JOBS: usize = 50;
const PACE: Duration = Duration::from_millis(1200);
const ATTACK: Duration = Duration::from_secs(60);
const ATTACKERS: usize = 8;
const TRICKLERS: usize = 16;

/// A client whose connections come from `ip`, so that each party is rated
/// on an address of its own.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

#[tokio::main]
async fn main() {
    let db = fresh_database("darkroom_bench_abuse").await;
    let bucket = format!("bench-abuse-{}", uuid::Uuid::new_v4().simple());
    let env = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", db.as_str())
            .env("DARKROOM_BUCKET", &bucket)
            .env("RUST_LOG", "warn")
            .env("DARKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
            .stderr(Stdio::null());
    };
    let (mut web, base) = support::start_web(env).await;
    let mut workers = start_workers(2, |cmd| {
        env(cmd);
        cmd.stdin(Stdio::null());
    });
    let photo = Arc::new(std::fs::read(photo12mp::input()).unwrap());
    let hook = Hook::start().await;
    eprintln!("baseline: {JOBS} honest jobs, one every {PACE:?}, no attacker");
    let alone = honest(&base, photo.clone(), &hook).await;

    eprintln!("attack: the same honest jobs, {ATTACKERS} attacker connections for {ATTACK:?}");
    let tally: Tally = Arc::default();
    let streams = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + ATTACK;
    let hole = black_hole().await;
    let mut attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            tokio::spawn(attacker(
                base.clone(),
                until,
                tally.clone(),
                streams.clone(),
            ))
        })
        .collect();
    attackers.push(tokio::spawn(black_holer(
        base.clone(),
        until,
        tally.clone(),
        hole,
    )));
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let flip = json!([{"name": "f", "ops": [{"op": "flip", "axis": "vertical"}]}]);
    let slow_job = create_job(&client_from("127.0.0.4"), &base, &flip)
        .await
        .expect("the tricklers' job");
    for _ in 0..TRICKLERS {
        let job = Job {
            id: slow_job.id.clone(),
            token: slow_job.token.clone(),
        };
        attackers.push(tokio::spawn(trickler(addr, job, until, tally.clone())));
    }
    let attacked = honest(&base, photo.clone(), &hook).await;
    for a in attackers {
        a.await.unwrap();
    }
    let held = streams.lock().unwrap().len();
    streams.lock().unwrap().clear();

    let alive = |g: &mut Guard| g.0.try_wait().unwrap().is_none();
    let web_alive = alive(&mut web);
    let workers_alive = workers.iter_mut().map(alive).filter(|a| *a).count();
    let rss = peak_rss_mb(web.0.id());
    let p95a = percentile(&alone.times, 0.95);
    println!(
        "\n| honest client ({JOBS} jobs) | finished | failed | p50 s | p95 s | p95 ratio | webhook p95 lag s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (what, m) in [("alone", &alone), ("under attack", &attacked)] {
        let p95 = percentile(&m.times, 0.95);
        println!(
            "| {what} | {} | {} | {:.2} | {p95:.2} | **{:.2}×** | {:.2} |",
            m.times.len(),
            m.failed,
            percentile(&m.times, 0.5),
            p95 / p95a,
            percentile(&m.lags, 0.95),
        );
    }
    println!("\n| attacker's request → answer | count |\n|---|---:|");
    for (what, n) in tally.lock().unwrap().iter() {
        println!("| {what} | {n} |");
    }
    println!(
        "\nweb peak RSS {rss:.0} MB; processes alive after the attack: web {}, workers {workers_alive}/2; \
         progress streams the attacker got open: {held}",
        if web_alive { "yes" } else { "NO" }
    );
    assert!(web_alive && workers_alive == 2, "a process died");
    assert_eq!(alone.failed + attacked.failed, 0, "honest outputs failed");
}
