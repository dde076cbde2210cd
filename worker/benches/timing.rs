//! Timing a command as a user of it would: shared by the benchmarks.

use std::process::Command;

/// Wall seconds, CPU seconds and peak RSS (KiB) of one run, via /usr/bin/time.
pub fn measure(cmd: &[&str]) -> (f64, f64, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M"])
        .args(cmd)
        .output()
        .expect("/usr/bin/time (apt install time)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let f: Vec<f64> = last
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "unexpected /usr/bin/time output: {last}");
    (f[0], f[1] + f[2], f[3] as u64)
}

/// Wall time precise to the microsecond (`/usr/bin/time` rounds to 10 ms).
pub fn wall(cmd: &[&str]) -> f64 {
    let start = std::time::Instant::now();
    let status = Command::new(cmd[0]).args(&cmd[1..]).status().unwrap();
    assert!(status.success(), "{cmd:?}");
    start.elapsed().as_secs_f64()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
