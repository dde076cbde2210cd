//! Request logs never carry query strings: download links and event streams
//! put job tokens there. (A file of its own: it installs the process-wide
//! log subscriber.)

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use support::spawn_app;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn request_logs_leave_out_query_strings(pool: PgPool) {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("web=trace,tower_http=trace,axum=trace,sqlx=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let app = spawn_app(pool).await;
    let secret = "s3cr3t-t0ken-in-the-url";
    let res = app
        .get(&format!(
            "/api/jobs/00000000-0000-0000-0000-000000000000/archive?token={secret}"
        ))
        .await;
    assert_eq!(res.status(), 404);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(r#"path="/api/jobs/00000000-0000-0000-0000-000000000000/archive""#),
        "{logs}"
    );
    assert!(!logs.contains(secret), "{logs}");
}
