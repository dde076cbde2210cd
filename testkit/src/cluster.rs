//! Private Postgres clusters of the installed server, for shard tests: each
//! on a free port of 127.0.0.1 with a throw-away folder (no fsync), stopped
//! and removed when dropped. A test can stop one and start it again, as an
//! outage would.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

/// The newest installed server's programs (Debian's layout).
fn server_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = std::fs::read_dir(root)
        .expect("PostgreSQL server installed under /usr/lib/postgresql")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    root.join(versions.last().expect("a server version").to_string())
        .join("bin")
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A server program, run as the `postgres` user when we are root (the
/// server refuses to run as root).
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(program: &Path, args: &[&str]) {
    let out = command(program)
        .args(args)
        .output()
        .expect("start a server program");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free port never handed out before in this process: a stopped
/// cluster's port must stay its own until it starts again, though nothing
/// listens on it meanwhile.
fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Cluster {
    /// initdb and start a new cluster.
    pub fn start() -> Cluster {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "darkroom-shard-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let chown = Command::new("chown").arg("postgres").arg(&dir).status();
            assert!(chown.unwrap().success(), "chown the cluster folder");
        }
        let port = free_port();
        let cluster = Cluster {
            bin: server_bin(),
            dir,
            port,
        };
        let data = cluster.data();
        run(
            &cluster.bin.join("initdb"),
            &["--no-sync", "-A", "trust", "-U", "postgres", "-D", &data],
        );
        cluster.resume();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The CPU time the cluster's processes have used so far: the running
    /// ones' and, through the postmaster's children totals, the exited
    /// ones'. Linux only (read from /proc).
    pub fn cpu_time(&self) -> std::time::Duration {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap();
        let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        let mut ticks = 0u64;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let pid: u32 = head.split(' ').next().unwrap_or("0").parse().unwrap_or(0);
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // After the state: ppid is f[0], utime f[10], stime f[11],
            // cutime f[12], cstime f[13].
            if pid == postmaster {
                ticks += f[10] + f[11] + f[12] + f[13];
            } else if f[0] == u64::from(postmaster) {
                ticks += f[10] + f[11];
            }
        }
        // USER_HZ, 100 on every Linux this runs on.
        std::time::Duration::from_millis(ticks * 10)
    }

    /// Stops the server at once, as a crash or an outage would.
    pub fn halt(&self) {
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// Starts the (stopped) server again on its port.
    pub fn resume(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c fsync=off -c unix_socket_directories={}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = command(&self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
