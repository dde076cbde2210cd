//! Chaos suite: the whole fleet as separate processes (a Postgres cluster of
//! the test's own, an S3 server, `darkroom-web`, three `darkroom-worker`s)
//! and the failures the product promises to survive, one phase each:
//!
//! 1. the batch is uploaded while no worker runs, with corrupt files and
//!    decompression bombs mixed in; workers start later;
//! 2. a random worker is killed with SIGKILL every few seconds and restarted;
//! 3. Postgres is stopped for 10 s mid-run, then started again;
//! 4. the S3 server is stopped for 10 s mid-run, then started again.
//!
//! After every phase: each output is `done` or (for the corrupt files)
//! `failed` with a clear error, exactly one result object per done output
//! and it decodes to the recorded size, no request left in the queue, none
//! dead-lettered. The figures are printed at the end.
//!
//! The Postgres cluster is private so that stopping it disturbs nothing
//! else; the outage durations are the scenario itself, not waits for state.

mod support;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::{ChildGuard, photo, workspace_bin};

const WORKERS: usize = 3;
/// Short, so that a killed worker's messages come back within seconds.
const WORKER_LOCK_SECS: &str = "3";
const GOOD_IMAGES: usize = 100;
/// The phase's whole batch must finish within this.
const PHASE_LIMIT: Duration = Duration::from_secs(180);
const OUTAGE: Duration = Duration::from_secs(10);

fn recipes() -> Value {
    json!([
        {"name": "thumb", "ops": [{"op": "thumbnail", "width": 256, "height": 256}]},
        {"name": "poster", "ops": [
            {"op": "resize", "width": 1200, "height": 900, "fit": "cover"},
            {"op": "blur", "sigma": 2.0},
            {"op": "format", "format": "png"}
        ]},
        {"name": "mono", "ops": [
            {"op": "recolor", "mode": "sepia"},
            {"op": "contrast", "amount": 0.3},
            {"op": "sharpen", "amount": 1.0},
            {"op": "format", "format": "webp", "quality": 80}
        ]}
    ])
}
const RECIPES: usize = 3;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A Postgres cluster of this test's own, so it can be stopped and started.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    fn init(work: &Path) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect(
                "PostgreSQL server binaries in /usr/lib/postgresql (scripts/test installs them)",
            )
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = work.join("pg");
        std::fs::create_dir(&dir).unwrap();
        let pg = Self {
            bin,
            dir,
            port: free_port(),
        };
        if is_root() {
            // initdb refuses to run as root.
            run(Command::new("chown").args(["-R", "postgres:"]).arg(&pg.dir));
        }
        run(pg
            .cmd("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&pg.dir));
        pg.start();
        pg
    }

    fn cmd(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if is_root() {
            // Not always on a non-login PATH.
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .unwrap_or("runuser");
            let mut cmd = Command::new(runuser);
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn start(&self) {
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        run(self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &options, "start"]));
    }

    /// Stops the server, disconnecting every client.
    fn stop(&self) {
        run(self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "-w", "stop"]));
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// MinIO when on PATH, else s3s-fs, on a fixed port and data folder so it
/// can be stopped and started again.
struct S3Server {
    dir: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<ChildGuard>,
}

const ACCESS_KEY: &str = "chaos";
const SECRET_KEY: &str = "chaos-secret";

impl S3Server {
    fn start(work: &Path) -> Self {
        let mut s3 = Self {
            dir: work.join("s3"),
            port: free_port(),
            log: work.join("s3.log"),
            child: None,
        };
        std::fs::create_dir(&s3.dir).unwrap();
        s3.restart();
        s3
    }

    fn restart(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let on_path = |name: &str| {
            Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let mut cmd = if on_path("minio") {
            let mut cmd = Command::new("minio");
            cmd.env("MINIO_ROOT_USER", ACCESS_KEY)
                .env("MINIO_ROOT_PASSWORD", SECRET_KEY)
                .args(["server", "--quiet", "--address"])
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("--console-address")
                .arg(format!("127.0.0.1:{}", free_port()))
                .arg(&self.dir);
            cmd
        } else {
            let mut cmd = Command::new("s3s-fs");
            cmd.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&self.dir);
            cmd
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the S3 server (MinIO or s3s-fs; scripts/test installs s3s-fs)");
        self.child = Some(ChildGuard(child));
        wait_for_port(self.port, "the S3 server");
    }

    fn stop(&mut self) {
        self.child = None;
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A service the suite takes down for `OUTAGE` and brings back.
trait Service {
    fn down(&mut self);
    fn up(&mut self);
}

impl Service for Postgres {
    fn down(&mut self) {
        self.stop();
    }

    fn up(&mut self) {
        self.start();
    }
}

impl Service for S3Server {
    fn down(&mut self) {
        self.stop();
    }

    fn up(&mut self) {
        self.restart();
    }
}

/// The processes under test and what they need to find each other.
struct Fleet {
    work: PathBuf,
    database_url: String,
    s3_endpoint: String,
    web_url: String,
    _web: ChildGuard,
    workers: Vec<Option<ChildGuard>>,
    kills: usize,
}

const BUCKET: &str = "chaos";

impl Fleet {
    fn env(&self, cmd: &mut Command) {
        env(cmd, &self.database_url, &self.s3_endpoint);
    }

    fn start_worker(&mut self, slot: usize) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.work.join(format!("worker-{slot}.log")))
            .unwrap();
        let mut cmd = Command::new(workspace_bin("darkroom-worker"));
        self.env(&mut cmd);
        let child = cmd
            .env("DARKROOM_WORKER_CONCURRENCY", "2")
            .env("DARKROOM_WORKER_LOCK", WORKER_LOCK_SECS)
            .env("DARKROOM_WORKER_RETRY_FOR", "120")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start darkroom-worker");
        self.workers[slot] = Some(ChildGuard(child));
    }

    fn start_workers(&mut self) {
        for slot in 0..WORKERS {
            self.start_worker(slot);
        }
    }

    /// SIGKILL, no chance to release anything, then a fresh process.
    fn kill_and_restart(&mut self, slot: usize) {
        // Dropping the guard sends SIGKILL and reaps the process.
        if self.workers[slot].take().is_some() {
            self.kills += 1;
        }
        self.start_worker(slot);
    }
}

fn env(cmd: &mut Command, database_url: &str, s3_endpoint: &str) {
    cmd.env("DATABASE_URL", database_url)
        .env("AWS_ENDPOINT_URL", s3_endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("DARKROOM_BUCKET", BUCKET)
        .env("RUST_LOG", "warn");
}

fn start_web(work: &Path, database_url: &str, s3_endpoint: &str) -> (ChildGuard, String) {
    let log = File::create(work.join("web.log")).unwrap();
    let mut cmd = Command::new(workspace_bin("darkroom-web"));
    env(&mut cmd, database_url, s3_endpoint);
    let mut child = cmd
        .env("DARKROOM_BIND", "127.0.0.1:0")
        .env("DARKROOM_ADMIN_BIND", "127.0.0.1:0")
        // One client stands for the whole fleet's users here: the work it
        // uploads at once is the point, not a rate to hold it to.
        .env("DARKROOM_RATE_LIMIT_WORK", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start darkroom-web");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("Darkroom is up: ")
        .unwrap_or_else(|| panic!("unexpected first line from darkroom-web: {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    // Keep draining so the web server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (ChildGuard(child), url)
}

/// Files that pass the upload's header checks but fail to decode.
fn corrupt_files() -> Vec<(String, Vec<u8>)> {
    let jpeg = photo("rocket.jpg");
    let png = photo("chelsea.png");
    let mut files = Vec::new();
    for i in 0..8 {
        // Cut inside the entropy-coded data: no end-of-image marker.
        let cut = jpeg.len() * (40 + i * 5) / 100;
        files.push((format!("truncated-{i}.jpg"), jpeg[..cut].to_vec()));
    }
    for i in 0..7 {
        // Scramble bytes in the middle of the compressed pixel data.
        let mut bad = png.clone();
        let at = png.len() / 3 + i * 997;
        for b in &mut bad[at..at + 64] {
            *b ^= 0x5a;
        }
        files.push((format!("scrambled-{i}.png"), bad));
    }
    files
}

/// PNG headers claiming 100000×100000 pixels: refused at upload.
fn bombs() -> Vec<(String, Vec<u8>)> {
    (0..5)
        .map(|i| (format!("bomb-{i}.png"), support::png_bomb(100_000, 100_000)))
        .collect()
}

fn good_files() -> Vec<(String, Vec<u8>)> {
    let sources = ["rocket.jpg", "chelsea.png", "coffee.png", "astronaut.png"];
    (0..GOOD_IMAGES)
        .map(|i| {
            let name = sources[i % sources.len()];
            (format!("{i:03}-{name}"), photo(name))
        })
        .collect()
}

struct Job {
    id: String,
    token: String,
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn create_job(&self) -> Job {
        let res = self
            .http
            .post(format!("{}/api/jobs", self.base))
            .json(&json!({ "recipes": recipes() }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        Job {
            id: body["id"].as_str().unwrap().into(),
            token: body["token"].as_str().unwrap().into(),
        }
    }

    /// Uploads in requests of 20 files; returns (accepted, rejected) names.
    async fn upload(&self, job: &Job, files: &[(String, Vec<u8>)]) -> (usize, Vec<Value>) {
        let mut accepted = 0;
        let mut rejected = Vec::new();
        for chunk in files.chunks(20) {
            let mut form = reqwest::multipart::Form::new();
            for (name, bytes) in chunk {
                form = form.part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
                );
            }
            let res = self
                .http
                .post(format!("{}/api/jobs/{}/images", self.base, job.id))
                .bearer_auth(&job.token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert!(
                res.status() == 201 || res.status() == 400,
                "upload: {}",
                res.status()
            );
            let body: Value = res.json().await.unwrap();
            accepted += body["images"].as_array().map_or(0, Vec::len);
            rejected.extend(body["errors"].as_array().cloned().unwrap_or_default());
        }
        (accepted, rejected)
    }

    /// The job's status, or `None` while the server cannot answer (its
    /// database may be down on purpose).
    async fn status(&self, job: &Job) -> Option<Value> {
        let res = self
            .http
            .get(format!("{}/api/jobs/{}?limit=1000", self.base, job.id))
            .bearer_auth(&job.token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if res.status() != 200 {
            return None;
        }
        res.json().await.ok()
    }

    async fn done_count(&self, job: &Job) -> u64 {
        self.status(job).await.map_or(0, |s| {
            s["counts"]["done"].as_u64().unwrap() + s["counts"]["failed"].as_u64().unwrap()
        })
    }

    /// Polls until at least `n` outputs are final.
    async fn wait_final(&self, job: &Job, n: u64) {
        let deadline = Instant::now() + PHASE_LIMIT;
        while self.done_count(job).await < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} outputs final after {PHASE_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_done(&self, job: &Job) -> Value {
        let deadline = Instant::now() + PHASE_LIMIT;
        loop {
            if let Some(status) = self.status(job).await
                && status["state"] == "done"
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "job {} not done after {PHASE_LIMIT:?}: {:#}",
                job.id,
                self.status(job).await.unwrap_or_default()["counts"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn download(&self, job: &Job, url: &str) -> Vec<u8> {
        let res = self
            .http
            .get(format!("{}{url}", self.base))
            .bearer_auth(&job.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        res.bytes().await.unwrap().to_vec()
    }
}

/// What one phase measured.
struct Figures {
    phase: &'static str,
    pairs: usize,
    done: usize,
    failed: usize,
    seconds: f64,
    /// Outputs whose work was started more than once: redelivered after a
    /// kill or an expired lock, or retried in place through an outage.
    reprocessed: i64,
    kills: usize,
}

/// Checks the finished job against everything the product promises, and
/// returns (done, failed).
async fn verify(
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    job: &Job,
    corrupt: usize,
) -> (usize, usize) {
    let status = client.wait_done(job).await;
    let images = status["images"].as_array().unwrap();
    assert_eq!(images.len(), GOOD_IMAGES + corrupt, "images recorded");
    let (mut done, mut failed) = (0, 0);
    for image in images {
        let name = image["name"].as_str().unwrap();
        let broken = name.starts_with("truncated") || name.starts_with("scrambled");
        let outputs = image["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), RECIPES, "{name}: one output per recipe");
        for output in outputs {
            if broken {
                assert_eq!(output["state"], "failed", "{name}: {output}");
                let error = output["error"].as_str().unwrap();
                assert!(
                    error.contains("corrupt") || error.contains("truncated"),
                    "{name}: unclear error {error:?}"
                );
                failed += 1;
                continue;
            }
            assert_eq!(output["state"], "done", "{name}: {output}");
            let bytes = client.download(job, output["url"].as_str().unwrap()).await;
            let img = image::load_from_memory(&bytes)
                .unwrap_or_else(|e| panic!("{name} {}: does not decode: {e}", output["recipe"]));
            assert_eq!(
                (u64::from(img.width()), u64::from(img.height())),
                (
                    output["width"].as_u64().unwrap(),
                    output["height"].as_u64().unwrap()
                ),
                "{name} {}",
                output["recipe"]
            );
            done += 1;
        }
    }

    // Exactly one result object per done output: nothing stray, nothing
    // written twice under another key.
    let objects = s3.list(&format!("jobs/{}/outputs/", job.id)).await.unwrap();
    assert_eq!(objects.len(), done, "result objects in S3: {objects:?}");

    // Nothing left behind: no request waiting, leased or dead-lettered.
    let left: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(m.ids)), 0)::int8
         from queue_messages m join queue_queues q on q.id = m.queue_id
         where q.name in ('darkroom.requests', 'darkroom.requests.dead')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "request messages left behind");
    (done, failed)
}

/// Waits for the phase's job to finish, checks it (see `verify`) and
/// measures it; `kills` is left for the caller.
async fn finish_phase(
    phase: &'static str,
    started: Instant,
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    job: &Job,
    corrupt: usize,
) -> Figures {
    let (done, failed) = verify(client, pool, s3, job, corrupt).await;
    Figures {
        phase,
        pairs: (GOOD_IMAGES + corrupt) * RECIPES,
        done,
        failed,
        seconds: started.elapsed().as_secs_f64(),
        reprocessed: reprocessed(pool, job).await,
        kills: 0,
    }
}

/// Uploads the good images, takes `service` down for `OUTAGE` once a fifth
/// of the batch is final, brings it back and finishes the phase.
async fn outage_phase(
    phase: &'static str,
    service: &mut impl Service,
    client: &Client,
    pool: &PgPool,
    s3: &common::storage::Storage,
    good: &[(String, Vec<u8>)],
) -> Figures {
    let started = Instant::now();
    let job = client.create_job().await;
    client.upload(&job, good).await;
    client
        .wait_final(&job, (GOOD_IMAGES * RECIPES) as u64 / 5)
        .await;
    service.down();
    tokio::time::sleep(OUTAGE).await;
    service.up();
    finish_phase(phase, started, client, pool, s3, &job, 0).await
}

/// Outputs of this job whose work was started more than once (a worker
/// killed or cut off before its delete, or a retry through an outage),
/// counted from the `processing` responses the queue keeps for rewinding.
/// Their final state is still one.
async fn reprocessed(pool: &PgPool, job: &Job) -> i64 {
    sqlx::query_scalar(
        "select count(*) from (
             select 1 from queue_chunks c join queue_queues q on q.id = c.queue_id
             cross join unnest(c.bodies) as b(body)
             where q.name = 'darkroom.responses' and b.body::jsonb ->> 'job_id' = $1
               and b.body::jsonb ->> 'state' = 'processing'
             group by b.body::jsonb ->> 'image_id', b.body::jsonb ->> 'recipe'
             having count(*) > 1) twice",
    )
    .bind(&job.id)
    .fetch_one(pool)
    .await
    .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_loses_nothing_through_kills_outages_and_bad_files() {
    let work = std::env::temp_dir().join(format!("darkroom-chaos-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&work).unwrap();
    let mut pg = Postgres::init(&work);
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url("postgres"))
        .await
        .unwrap();
    sqlx::query("create database darkroom")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let database_url = pg.url("darkroom");
    let mut s3_server = S3Server::start(&work);
    let (web, web_url) = start_web(&work, &database_url, &s3_server.endpoint());
    let mut fleet = Fleet {
        work: work.clone(),
        database_url: database_url.clone(),
        s3_endpoint: s3_server.endpoint(),
        web_url,
        _web: web,
        workers: (0..WORKERS).map(|_| None).collect(),
        kills: 0,
    };
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url)
        .await
        .unwrap();
    let s3 = common::storage::Storage::connect(&common::storage::StorageArgs {
        endpoint_url: Some(s3_server.endpoint()),
        region: "us-east-1".into(),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        bucket: BUCKET.into(),
    })
    .await
    .unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        base: fleet.web_url.clone(),
    };
    let good = good_files();
    let mut figures = Vec::new();
    let mut rng = rand::rng();

    // 1. No worker running: uploads succeed and wait in the queue; corrupt
    //    files are accepted and fail later, bombs are refused at once.
    let started = Instant::now();
    let job = client.create_job().await;
    let corrupt = corrupt_files();
    let mut files: Vec<_> = good.iter().cloned().chain(corrupt.clone()).collect();
    files.extend(bombs());
    files.shuffle(&mut rng);
    let (accepted, rejected) = client.upload(&job, &files).await;
    assert_eq!(accepted, GOOD_IMAGES + corrupt.len());
    assert_eq!(rejected.len(), 5, "bombs refused: {rejected:?}");
    for r in &rejected {
        assert!(r["name"].as_str().unwrap().starts_with("bomb-"), "{r}");
        assert!(
            r["error"].as_str().unwrap().contains("100000"),
            "bomb error names its size: {r}"
        );
    }
    let status = client.status(&job).await.unwrap();
    assert_eq!(status["counts"]["done"], 0);
    let queued: i64 = sqlx::query_scalar(
        "select coalesce(sum(cardinality(m.ids)), 0)::int8
         from queue_messages m join queue_queues q on q.id = m.queue_id
         where q.name = 'darkroom.requests' and m.lease is null",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(queued as usize, (GOOD_IMAGES + corrupt.len()) * RECIPES);
    fleet.start_workers();
    let phase = finish_phase(
        "no workers at upload; 15 corrupt + 5 bombs mixed in",
        started,
        &client,
        &pool,
        &s3,
        &job,
        corrupt.len(),
    )
    .await;
    assert_eq!(phase.failed, corrupt.len() * RECIPES);
    figures.push(phase);

    // 2. SIGKILL a random worker every 1–3 s and restart it.
    let started = Instant::now();
    let job = client.create_job().await;
    client.upload(&job, &good).await;
    let pairs = (GOOD_IMAGES * RECIPES) as u64;
    let kills_before = fleet.kills;
    while client.done_count(&job).await < pairs {
        assert!(started.elapsed() < PHASE_LIMIT, "kill phase did not finish");
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..3000))).await;
        let slot = rng.random_range(0..WORKERS);
        fleet.kill_and_restart(slot);
    }
    figures.push(Figures {
        kills: fleet.kills - kills_before,
        ..finish_phase(
            "kill -9 a random worker every 1-3 s",
            started,
            &client,
            &pool,
            &s3,
            &job,
            0,
        )
        .await
    });
    assert!(fleet.kills > kills_before, "no worker was killed");

    // 3. Postgres down for 10 s mid-run.
    figures.push(
        outage_phase(
            "Postgres stopped for 10 s mid-run",
            &mut pg,
            &client,
            &pool,
            &s3,
            &good,
        )
        .await,
    );

    // 4. S3 server down for 10 s mid-run.
    figures.push(
        outage_phase(
            "S3 server stopped for 10 s mid-run",
            &mut s3_server,
            &client,
            &pool,
            &s3,
            &good,
        )
        .await,
    );

    let mut table = String::from(
        "\nchaos suite: 3 worker processes x 2 slots, 3 recipes per image, lock 3 s\n\
         | phase | pairs | done | failed | lost | duplicated | re-run | kills | seconds |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for f in &figures {
        writeln!(
            table,
            "| {} | {} | {} | {} | 0 | 0 | {} | {} | {:.1} |",
            f.phase, f.pairs, f.done, f.failed, f.reprocessed, f.kills, f.seconds
        )
        .unwrap();
    }
    println!("{table}");
    // The test harness captures stdout; scripts/test prints this file.
    let figures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/chaos.md");
    std::fs::write(&figures, &table).unwrap();
    drop(fleet);
    drop(s3_server);
    drop(pg);
    let _ = std::fs::remove_dir_all(&work);
}
