//! Clients that send their requests slowly, a byte now and then, are cut off
//! by the header, body-idle and whole-request timeouts, and what they had
//! sent is not kept.

mod support;

use std::time::{Duration, Instant};

use sqlx::PgPool;
use support::{Job, TestApp, app_and_job, assert_error, expect_retry, photo, poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use web::listener::Timeouts;

/// Timeouts short enough to watch, each told apart from the others.
fn short(header: u64, body_idle: u64, request: u64) -> Timeouts {
    Timeouts {
        header: Duration::from_millis(header),
        body_idle: Duration::from_millis(body_idle),
        request: Duration::from_millis(request),
    }
}

/// The head of an upload request of one file, `rocket.jpg` followed by
/// `padding` bytes, and as much of its body as is ever sent: its
/// `content-length` promises more.
fn upload_start(app: &TestApp, job: &Job, padding: usize) -> (String, Vec<u8>) {
    let mut body =
        b"--B\r\ncontent-disposition: form-data; name=\"file\"; filename=\"slow.jpg\"\r\n\
                     content-type: image/jpeg\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&photo("rocket.jpg"));
    body.resize(body.len() + padding, 0);
    let total = body.len() + 1024 + b"\r\n--B--\r\n".len();
    let head = format!(
        "POST /api/jobs/{}/images HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=B\r\ncontent-length: {total}\r\n\r\n",
        job.id, app.addr, job.token
    );
    (head, body)
}

/// Writes `piece` every `every` until the server answers or closes; returns
/// what it answered and when, or fails after `limit`.
async fn trickle(
    mut conn: TcpStream,
    piece: &[u8],
    every: Duration,
    limit: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        tokio::select! {
            read = conn.read(&mut buf) => match read {
                Ok(0) | Err(_) => return (String::from_utf8_lossy(&answer).into(), started.elapsed()),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tokio::time::sleep(every) => {
                // The server may have closed its side; the read says so.
                let _ = conn.write_all(piece).await;
            }
        }
    }
    panic!(
        "still connected after {limit:?}; answered so far: {:?}",
        String::from_utf8_lossy(&answer)
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn headers_trickled_past_the_header_timeout_lose_the_connection(pool: PgPool) {
    let (app, _) = app_and_job(pool, |s| s.timeouts = short(1000, 60_000, 60_000)).await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (_, after) = trickle(
        conn,
        b"x-pad: a\r\n",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        after >= Duration::from_millis(900),
        "cut after {after:?}, before its timeout"
    );
    assert!(after < Duration::from_secs(4), "cut after {after:?}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_body_that_pauses_past_the_idle_timeout_is_cut_and_kept_nowhere(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.timeouts = short(60_000, 1000, 60_000)).await;
    let (head, body) = upload_start(&app, &job, 0);
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body).await.unwrap();
    // Sends nothing more: the piece is empty.
    let (answer, after) = trickle(
        conn,
        b"",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await;
    assert!(after < Duration::from_secs(4), "answered after {after:?}");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert_eq!(app.originals(&job).await, 0);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_body_trickled_past_the_request_timeout_is_answered_408_and_kept_nowhere(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.timeouts = short(60_000, 1000, 2000)).await;
    // Past one part of a multipart upload, so one is under way when cut.
    let (head, body) = upload_start(&app, &job, 9 << 20);
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body).await.unwrap();
    let (answer, after) = trickle(
        conn,
        b"\0",
        Duration::from_millis(200),
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(after < Duration::from_secs(5), "answered after {after:?}");
    assert_eq!(app.originals(&job).await, 0);
    // The server goes on serving others.
    assert_eq!(app.upload_one(&job, "rocket.jpg").await.status(), 201);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_client_has_at_most_its_cap_of_uploads_in_progress(pool: PgPool) {
    let (app, job) = app_and_job(pool, |s| s.max_uploads_per_client = 2).await;
    let open_slow = async || {
        let mut slow = Vec::new();
        for _ in 0..2 {
            let (head, body) = upload_start(&app, &job, 0);
            let mut conn = TcpStream::connect(app.addr).await.unwrap();
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(&body).await.unwrap();
            slow.push(conn);
        }
        slow
    };
    let mut slow = open_slow().await;
    // Both are in the server's hands once a third is refused. A third that
    // reached the server before a slow one took a place, which then was
    // refused itself, is answered 201: the slow ones are opened again, with
    // nothing else in progress.
    let (_, body) = poll(Duration::from_secs(10), async || {
        match app.upload_one(&job, "rocket.jpg").await {
            r if r.status() == 429 => Ok(expect_retry(r, 429).await),
            r => {
                slow = open_slow().await;
                Err(format!("a third upload was answered {}", r.status()))
            }
        }
    })
    .await;
    assert_error(&body, &["DARKROOM_MAX_UPLOADS_PER_CLIENT"]);
    drop(slow.pop());
    poll(Duration::from_secs(10), async || {
        match app.upload_one(&job, "rocket.jpg").await.status().as_u16() {
            201 => Ok(()),
            status => Err(format!("a closed upload kept its place: {status}")),
        }
    })
    .await;
}
