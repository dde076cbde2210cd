//! Private Postgres clusters of the installed server, for shard tests: each
//! on a free port of 127.0.0.1 with a throw-away folder (no fsync), stopped
//! and removed when dropped. A test can stop one and start it again, as an
//! outage would.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
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
            &["-D", &self.data(), "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"],
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
