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

#[path = "../../worker/benches/photo12mp.rs"]
mod photo12mp;
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use serde_json::{Value, json};
use support::{
    Guard, Job, create_job, create_job_from, form, fresh_database, job_get, peak_rss_mb,
    start_workers, upload,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

const JOBS: usize = 50;
const PACE: Duration = Duration::from_millis(1200);
const ATTACK: Duration = Duration::from_secs(60);
const ATTACKERS: usize = 8;
const TRICKLERS: usize = 16;

/// Where each webhook delivery's body arrived, and when.
type Deliveries = Arc<Mutex<Vec<(String, Instant)>>>;

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

/// One honest job: create (with a webhook to `hook`), upload, wait for
/// every output. Returns its time, whether every output is done, and how
/// long after it was seen done its `job.done` webhook had arrived.
async fn honest_job(
    client: &reqwest::Client,
    base: &str,
    photo: &[u8],
    hook: &Hook,
) -> (Duration, bool, Duration) {
    let started = Instant::now();
    let body = json!({"recipes": honest_recipes(), "webhook": hook.url});
    let job = loop {
        match create_job_from(client, base, &body).await {
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
                let took = started.elapsed();
                let lag = hook.lag(&job.id, Instant::now()).await;
                return (took, status["counts"]["failed"] == 0, lag);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the honest client measured: each job's time and its webhook's lag
/// (both sorted), and how many jobs failed.
struct Measured {
    times: Vec<Duration>,
    lags: Vec<Duration>,
    failed: usize,
}

/// The honest workload: `JOBS` jobs started `PACE` apart.
async fn honest(base: &str, photo: Arc<Vec<u8>>, hook: &Hook) -> Measured {
    let client = client_from("127.0.0.2");
    let mut tasks = Vec::new();
    for i in 0..JOBS {
        let (client, base, photo, hook) =
            (client.clone(), base.to_owned(), photo.clone(), hook.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(PACE * i as u32).await;
            honest_job(&client, &base, &photo, &hook).await
        }));
    }
    let mut m = Measured {
        times: Vec::new(),
        lags: Vec::new(),
        failed: 0,
    };
    for t in tasks {
        let (took, ok, lag) = t.await.unwrap();
        m.times.push(took);
        m.lags.push(lag);
        m.failed += usize::from(!ok);
    }
    m.times.sort();
    m.lags.sort();
    m
}

/// A healthy webhook receiver on loopback.
#[derive(Clone)]
struct Hook {
    url: String,
    arrived: Deliveries,
}

impl Hook {
    async fn start() -> Self {
        let arrived: Deliveries = Arc::default();
        let record = arrived.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: String| {
                let record = record.clone();
                async move { record.lock().unwrap().push((body, Instant::now())) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, arrived }
    }

    /// How long after `seen_done` job `id`'s `job.done` arrived (0 if
    /// before); 60 s when it has not within a minute.
    async fn lag(&self, id: &str, seen_done: Instant) -> Duration {
        let deadline = seen_done + Duration::from_secs(60);
        while Instant::now() < deadline {
            let arrived = self.arrived.lock().unwrap().iter().find_map(|(body, at)| {
                (body.contains(id) && body.contains("job.done")).then_some(*at)
            });
            if let Some(at) = arrived {
                return at.saturating_duration_since(seen_done);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Duration::from_secs(60)
    }
}

/// A webhook endpoint that drops everything: it accepts connections and
/// never reads nor answers, so each delivery waits for its timeout.
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    url
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
fn small_jpeg() -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::RgbImage::new(64, 64)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    jpeg
}

/// A 64×64 JPEG behind 32 full metadata segments (2 MiB): its frame header
/// is past what the web reads to find it.
fn far_header_jpeg() -> Vec<u8> {
    let jpeg = small_jpeg();
    let mut padded = jpeg[..2].to_vec();
    for _ in 0..32 {
        padded.extend_from_slice(&[0xff, 0xe1, 0xff, 0xff]);
        padded.extend_from_slice(&[0u8; 0xffff - 2]);
    }
    padded.extend_from_slice(&jpeg[2..]);
    padded
}

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
    let (png, bomb, far) = (tiny_png(), bomb(), far_header_jpeg());
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
            let status = upload_file(&client, &base, &job, far.clone()).await;
            note(&tally, &format!("header past 1 MiB, {what}"), status);
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

/// Quick jobs, so their events are due at once, whose webhook never
/// answers, until `until`; from an address of its own (127.0.0.3), so the
/// other attacks' rates do not hold it back.
async fn black_holer(base: String, until: Instant, tally: Tally, hole: String) {
    let client = client_from("127.0.0.3");
    let body = json!({
        "recipes": [{"name": "f", "ops": [{"op": "flip", "axis": "vertical"}]}],
        "webhook": hole,
    });
    while Instant::now() < until {
        let job = create_job_from(&client, &base, &body).await;
        note(&tally, "create job, black-holed webhook", created(&job));
        match job {
            Ok(job) => {
                let status = upload_file(&client, &base, &job, tiny_png()).await;
                note(&tally, "tiny PNG, black-holed webhook", status);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// One slow upload after another until `until`: the request's head, 8 MiB
/// − 1 bytes of its body (a small JPEG, then zeros: cheap work, so the
/// work rate lets it through), then a byte a second; from an address of
/// its own (127.0.0.4).
async fn trickler(base: SocketAddr, job: Job, until: Instant, tally: Tally) {
    let mut body =
        b"--B\r\ncontent-disposition: form-data; name=\"file\"; filename=\"t.jpg\"\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&small_jpeg());
    body.resize((8 << 20) - 1, 0);
    let head = format!(
        "POST /api/jobs/{}/images HTTP/1.1\r\nhost: {base}\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=B\r\ncontent-length: {}\r\n\r\n",
        job.id,
        job.token,
        body.len() + 4096
    );
    while Instant::now() < until {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.4:0".parse().unwrap()).unwrap();
        let Ok(mut conn) = socket.connect(base).await else {
            continue;
        };
        let sent = async {
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(&body).await
        };
        let answer = match sent.await {
            Ok(()) => trickle_until(&mut conn, until).await,
            // The server answered before the body was all sent.
            Err(_) => "refused before its body was sent".into(),
        };
        *tally
            .lock()
            .unwrap()
            .entry(format!("trickled upload → {answer}"))
            .or_default() += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sends a byte a second until the server answers (its status line's
/// code) or `until` (then "held to the end").
async fn trickle_until(conn: &mut tokio::net::TcpStream, until: Instant) -> String {
    let mut answer = [0u8; 12];
    loop {
        tokio::select! {
            read = conn.read(&mut answer) => return match read {
                Ok(n) if n >= 12 => String::from_utf8_lossy(&answer[9..12]).into_owned(),
                _ => "connection closed".into(),
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if Instant::now() >= until {
                    return "held to the end".into();
                }
                let _ = conn.write_all(b"\0").await;
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
