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
//! - progress streams held open, and floods of status and unknown URLs.
//!
//! Reported: whether every honest job finished, the honest p50/p95 job
//! time alone and under attack and their ratio, the attacker's answers by
//! status, the web server's peak RSS, and whether any process died. All
//! limits are the defaults.
//!
//! Run with `scripts/bench-abuse` (provisions Postgres and the S3 server,
//! builds the release binaries).

#[path = "../../worker/benches/photo12mp.rs"]
mod photo12mp;
mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use serde_json::{Value, json};
use support::{
    Guard, Job, create_job, form, fresh_database, job_get, peak_rss_mb, start_workers, upload,
};

const JOBS: usize = 50;
const PACE: Duration = Duration::from_millis(1200);
const ATTACK: Duration = Duration::from_secs(60);
const ATTACKERS: usize = 8;

fn honest_recipes() -> Value {
    json!([
        {"name": "thumb", "ops": [{"op": "thumbnail", "width": 256, "height": 256}]},
        {"name": "web", "ops": [{"op": "resize", "width": 1600, "height": 1200}]}
    ])
}

/// Within the cost budget on the largest image: a 49 MP upscale, then the
/// slowest op there is, encoded as PNG.
fn heavy_recipe(name: &str) -> Value {
    json!({"name": name, "ops": [
        {"op": "resize", "width": 7000, "height": 7000, "fit": "fill"},
        {"op": "teeth_whiten", "strength": 1.0},
        {"op": "format", "format": "png"}
    ]})
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// One honest job: create, upload, wait for every output. Returns its time
/// and whether every output is done.
async fn honest_job(client: &reqwest::Client, base: &str, photo: &[u8]) -> (Duration, bool) {
    let started = Instant::now();
    let job = loop {
        match create_job(client, base, &honest_recipes()).await {
            Ok(job) => break job,
            Err(0) => panic!("darkroom-web did not answer"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    loop {
        let part = Part::bytes(photo.to_vec()).file_name("photo.jpg");
        let res = upload(client, base, &job, form([part])).await.unwrap();
        match res.status().as_u16() {
            201 => break,
            429 | 503 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!(
                "honest upload answered {other}: {}",
                res.text().await.unwrap()
            ),
        }
    }
    loop {
        let res = job_get(client, base, &job, "").await.unwrap();
        if res.status() == 200 {
            let status: Value = res.json().await.unwrap();
            if status["state"] == "done" {
                return (started.elapsed(), status["counts"]["failed"] == 0);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The honest workload: `JOBS` jobs started `PACE` apart. Returns each
/// job's time, and how many failed.
async fn honest(base: &str, photo: Arc<Vec<u8>>) -> (Vec<Duration>, usize) {
    let client = client_from("127.0.0.2");
    let mut tasks = Vec::new();
    for i in 0..JOBS {
        let (client, base, photo) = (client.clone(), base.to_owned(), photo.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(PACE * i as u32).await;
            honest_job(&client, &base, &photo).await
        }));
    }
    let mut times = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (took, ok) = t.await.unwrap();
        times.push(took);
        failed += usize::from(!ok);
    }
    times.sort();
    (times, failed)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64()
}

/// A 64×64 PNG: nothing to upload, everything to blow up.
fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 90]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A PNG whose header claims 100000×100000 pixels.
fn bomb() -> Vec<u8> {
    let mut png = tiny_png();
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

type Tally = Arc<Mutex<BTreeMap<String, usize>>>;

fn note(tally: &Tally, what: &str, status: u16) {
    *tally
        .lock()
        .unwrap()
        .entry(format!("{what} → {status}"))
        .or_default() += 1;
}

/// The status of a job creation's answer (0 when there was none).
fn created(job: &Result<Job, u16>) -> u16 {
    job.as_ref().map_or_else(|status| *status, |_| 201)
}

/// Uploads `bytes` as one file; returns the answer's status, or 0.
async fn upload_file(client: &reqwest::Client, base: &str, job: &Job, bytes: Vec<u8>) -> u16 {
    let part = Part::bytes(bytes).file_name("x.png");
    let res = upload(client, base, job, form([part])).await;
    res.map_or(0, |r| r.status().as_u16())
}

/// One attacker connection: the worst requests it can find, round after
/// round, until `until`.
async fn attacker(
    base: String,
    until: Instant,
    tally: Tally,
    streams: Arc<Mutex<Vec<reqwest::Response>>>,
) {
    let client = client_from("127.0.0.1");
    let many: Vec<Value> = (0..16).map(|i| heavy_recipe(&format!("h{i}"))).collect();
    let over: Vec<Value> = (0..31)
        .map(|_| json!({"op": "blur", "sigma": 100.0}))
        .collect();
    let garbage = vec![0x5au8; 64 << 20];
    let (png, bomb) = (tiny_png(), bomb());
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        // Jobs with the heaviest recipes allowed, and over the budget.
        let heavy = create_job(&client, &base, &json!(many)).await;
        note(&tally, "create job, 16 heavy recipes", created(&heavy));
        let refused = create_job(&client, &base, &json!([{"name": "b", "ops": over}])).await;
        note(&tally, "create job, over budget", created(&refused));
        let single = create_job(&client, &base, &json!([heavy_recipe("one")])).await;
        for (job, what) in [(heavy, "16 heavy recipes"), (single, "1 heavy recipe")] {
            let Ok(job) = job else { continue };
            let status = upload_file(&client, &base, &job, png.clone()).await;
            note(&tally, &format!("tiny PNG, {what}"), status);
            let status = upload_file(&client, &base, &job, bomb.clone()).await;
            note(&tally, "decompression bomb", status);
            if round.is_multiple_of(8) {
                let status = upload_file(&client, &base, &job, garbage.clone()).await;
                note(&tally, "64 MB of garbage", status);
            }
            if let Ok(res) = job_get(&client, &base, &job, "/events").await {
                note(&tally, "open progress stream", res.status().as_u16());
                streams.lock().unwrap().push(res);
            }
        }
        for path in [
            "/api/jobs/00000000-0000-0000-0000-000000000000",
            "/nope",
            "/",
        ] {
            for _ in 0..20 {
                let status = client
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16());
                note(&tally, "flood of GETs", status);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let db = fresh_database("darkroom_bench_abuse").await;
    let bucket = format!("bench-abuse-{}", uuid::Uuid::new_v4().simple());
    let env = |cmd: &mut Command| {
        cmd.env("DATABASE_URL", db.as_str())
            .env("DARKROOM_BUCKET", &bucket)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null());
    };
    let (mut web, base) = support::start_web(env).await;
    let mut workers = start_workers(2, |cmd| {
        env(cmd);
        cmd.stdin(Stdio::null());
    });
    let photo = Arc::new(std::fs::read(photo12mp::input()).unwrap());
    eprintln!("baseline: {JOBS} honest jobs, one every {PACE:?}, no attacker");
    let (alone, alone_failed) = honest(&base, photo.clone()).await;

    eprintln!("attack: the same honest jobs, {ATTACKERS} attacker connections for {ATTACK:?}");
    let tally: Tally = Arc::default();
    let streams = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + ATTACK;
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            tokio::spawn(attacker(
                base.clone(),
                until,
                tally.clone(),
                streams.clone(),
            ))
        })
        .collect();
    let (attacked, attacked_failed) = honest(&base, photo.clone()).await;
    for a in attackers {
        a.await.unwrap();
    }
    let held = streams.lock().unwrap().len();
    streams.lock().unwrap().clear();

    let alive = |g: &mut Guard| g.0.try_wait().unwrap().is_none();
    let web_alive = alive(&mut web);
    let workers_alive = workers.iter_mut().map(alive).filter(|a| *a).count();
    let rss = peak_rss_mb(web.0.id());
    let (p50a, p95a) = (percentile(&alone, 0.5), percentile(&alone, 0.95));
    let (p50b, p95b) = (percentile(&attacked, 0.5), percentile(&attacked, 0.95));

    println!("\n| honest client ({JOBS} jobs) | finished | failed | p50 s | p95 s | p95 ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| alone | {} | {alone_failed} | {p50a:.2} | {p95a:.2} | 1.00× |",
        alone.len()
    );
    println!(
        "| under attack | {} | {attacked_failed} | {p50b:.2} | {p95b:.2} | **{:.2}×** |",
        attacked.len(),
        p95b / p95a
    );
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
    assert_eq!(alone_failed + attacked_failed, 0, "honest outputs failed");
}
