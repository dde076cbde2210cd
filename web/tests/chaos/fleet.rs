//! The processes of the chaos suite: a Postgres cluster of the test's own,
//! an S3 server, `darkroom-web` and the `darkroom-worker`s, each started,
//! stopped and restarted as the scenario needs.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::storage::{Storage, StorageArgs};
use sqlx::postgres::PgPoolOptions;

use crate::support::{ChildGuard, release_bin};

pub const WORKERS: usize = 3;
/// Short, so that a killed worker's messages come back within seconds.
const WORKER_LOCK_SECS: &str = "3";
const ACCESS_KEY: &str = "chaos";
const SECRET_KEY: &str = "chaos-secret";
const BUCKET: &str = "chaos";

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

/// Starts `cmd` with no input, `stdout` as given and its stderr appended to
/// the log file `log`.
fn spawn_logged(cmd: &mut Command, stdout: Stdio, log: &Path) -> Child {
    let log = File::options().create(true).append(true).open(log).unwrap();
    let child = cmd.stdin(Stdio::null()).stdout(stdout).stderr(log).spawn();
    child.unwrap_or_else(|e| panic!("start {cmd:?}: {e}"))
}

/// A Postgres cluster of this test's own, so it can be stopped and started.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    pub fn init(work: &Path) -> Self {
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
        let options = ["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"];
        run(pg.cmd("initdb").args(options).arg("-D").arg(&pg.dir));
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

    /// `pg_ctl` on this cluster's data folder.
    fn pg_ctl(&self) -> Command {
        let mut cmd = self.cmd("pg_ctl");
        cmd.arg("-D").arg(&self.dir);
        cmd
    }

    fn start(&self) {
        let options = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        run(self
            .pg_ctl()
            .arg("-l")
            .arg(log)
            .args(["-w", "-o", &options, "start"]));
    }

    /// Stops the server, disconnecting every client.
    fn stop(&self) {
        run(self.pg_ctl().args(["-m", "fast", "-w", "stop"]));
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates the database `name`; returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let admin = PgPoolOptions::new().max_connections(1);
        let admin = admin.connect(&self.url("postgres")).await.unwrap();
        crate::support::sql(&admin, &format!("create database {name}")).await;
        admin.close().await;
        self.url(name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl().args(["-m", "immediate", "stop"]).output();
    }
}

/// MinIO when on PATH, else s3s-fs, on a fixed port and data folder so it
/// can be stopped and started again.
pub struct S3Server {
    dir: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<ChildGuard>,
}

impl S3Server {
    pub fn start(work: &Path) -> Self {
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
            // scripts/test installs s3s-fs.
            let mut cmd = Command::new("s3s-fs");
            cmd.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&self.dir);
            cmd
        };
        let log = File::options().create(true).append(true).open(&self.log);
        let stdout = Stdio::from(log.unwrap());
        self.child = Some(ChildGuard(spawn_logged(&mut cmd, stdout, &self.log)));
        wait_for_port(self.port, "the S3 server");
    }

    fn stop(&mut self) {
        self.child = None;
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The suite's bucket on this server.
    pub async fn storage(&self) -> Storage {
        let args = StorageArgs {
            endpoint_url: Some(self.endpoint()),
            region: "us-east-1".into(),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            bucket: BUCKET.into(),
        };
        Storage::connect(&args).await.unwrap()
    }
}

/// A service the suite takes down for `OUTAGE` and brings back.
pub trait Service {
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

/// Where the fleet's processes find their database and S3 server, and
/// write their logs.
struct Wiring {
    work: PathBuf,
    database_url: String,
    s3_endpoint: String,
}

impl Wiring {
    /// A command for `program` of this workspace, pointed at the database,
    /// the S3 server and the bucket.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(release_bin(program));
        cmd.env("DATABASE_URL", &self.database_url)
            .env("AWS_ENDPOINT_URL", &self.s3_endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("DARKROOM_BUCKET", BUCKET)
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Starts `darkroom-web`; returns it and the URL it says it is up on.
    fn start_web(&self) -> (ChildGuard, String) {
        let mut cmd = self.command("darkroom-web");
        cmd.env("DARKROOM_BIND", "127.0.0.1:0")
            .env("DARKROOM_ADMIN_BIND", "127.0.0.1:0")
            // One client stands for the whole fleet's users here: the work it
            // uploads at once is the point, not a rate to hold it to.
            .env("DARKROOM_RATE_LIMIT_WORK", "0");
        let log = self.work.join("web.log");
        let mut child = spawn_logged(&mut cmd, Stdio::piped(), &log);
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

    fn start_worker(&self, slot: usize) -> ChildGuard {
        let mut cmd = self.command("darkroom-worker");
        cmd.env("DARKROOM_WORKER_CONCURRENCY", "2")
            .env("DARKROOM_WORKER_LOCK", WORKER_LOCK_SECS)
            .env("DARKROOM_WORKER_RETRY_FOR", "120")
            // Every start announced, so `re-run` can count second starts.
            .env("DARKROOM_WORKER_PROCESSING_NOTICE", "0");
        let log = self.work.join(format!("worker-{slot}.log"));
        ChildGuard(spawn_logged(&mut cmd, Stdio::null(), &log))
    }
}

/// The processes under test.
pub struct Fleet {
    wiring: Wiring,
    pub web_url: String,
    _web: ChildGuard,
    workers: Vec<Option<ChildGuard>>,
    pub kills: usize,
}

impl Fleet {
    /// Starts `darkroom-web` on the database and S3 server; no worker yet.
    pub fn start(work: &Path, database_url: &str, s3_endpoint: &str) -> Self {
        let wiring = Wiring {
            work: work.to_owned(),
            database_url: database_url.to_owned(),
            s3_endpoint: s3_endpoint.to_owned(),
        };
        let (web, web_url) = wiring.start_web();
        Fleet {
            wiring,
            web_url,
            _web: web,
            workers: (0..WORKERS).map(|_| None).collect(),
            kills: 0,
        }
    }

    pub fn start_workers(&mut self) {
        for slot in 0..WORKERS {
            self.workers[slot] = Some(self.wiring.start_worker(slot));
        }
    }

    /// SIGKILL, no chance to release anything, then a fresh process.
    pub fn kill_and_restart(&mut self, slot: usize) {
        // Dropping the guard sends SIGKILL and reaps the process.
        if self.workers[slot].take().is_some() {
            self.kills += 1;
        }
        self.workers[slot] = Some(self.wiring.start_worker(slot));
    }
}
