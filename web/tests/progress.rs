//! Progress and downloads: the SSE stream, the zip archive, originals and
//! metrics, on real Postgres and a real S3 server.

mod support;

use std::io::Read;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{
    Job, TestApp, assert_needs_token, copies, expect_json, header, image_id, photo, spawn_app,
    spawn_worker,
};

/// One Server-Sent Event.
#[derive(Debug, Default, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// Reads a stream's events until `until` returns true for one of them, or
/// fails after `limit`.
async fn read_events(
    res: reqwest::Response,
    limit: Duration,
    until: impl Fn(&Sse) -> bool,
) -> Vec<Sse> {
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .unwrap_or_else(|_| panic!("no matching event within {limit:?}; got {events:#?}"))
            .expect("stream ended")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = Sse::default();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    event.id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event.event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    event.data = serde_json::from_str(v.trim()).unwrap();
                }
            }
            if event.event.is_empty() {
                continue; // keep-alive comment
            }
            let done = until(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

async fn open_events(app: &TestApp, job: &Job, last_event_id: Option<&str>) -> reqwest::Response {
    let path = format!("/api/jobs/{}/events", job.id);
    let mut req = app.client.get(app.url(&path)).bearer_auth(&job.token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res
}

fn thumb_recipes() -> Value {
    json!([
        {"name":"thumb","ops":[{"op":"thumbnail","width":128,"height":128}]},
        {"name":"gray","ops":[{"op":"recolor","mode":"grayscale"},{"op":"format","format":"png"}]}
    ])
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn events_stream_every_output_change_and_resume_after_last_event_id(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(thumb_recipes()).await;
    // Opened before anything exists: it must wake up for what follows.
    let stream = open_events(&app, &job, None).await;
    app.upload_accepted(&job, "rocket.jpg").await;
    let _worker = spawn_worker(&pool, &app.storage_args);

    let events = read_events(stream, Duration::from_secs(60), |e| {
        e.event == "job" && e.data["state"] == "done"
    })
    .await;
    let outputs: Vec<&Sse> = events.iter().filter(|e| e.event == "output").collect();
    // Each output: queued, then done (processing may be seen or skipped).
    for recipe in ["thumb", "gray"] {
        let states: Vec<&str> = outputs
            .iter()
            .filter(|e| e.data["recipe"] == recipe)
            .map(|e| e.data["state"].as_str().unwrap())
            .collect();
        assert_eq!(states.first(), Some(&"queued"), "{recipe}: {states:?}");
        assert_eq!(states.last(), Some(&"done"), "{recipe}: {states:?}");
    }
    let done = outputs
        .iter()
        .find(|e| e.data["recipe"] == "thumb" && e.data["state"] == "done")
        .unwrap();
    assert_eq!(done.data["name"], "rocket.jpg");
    assert_eq!(
        (done.data["width"].as_u64(), done.data["height"].as_u64()),
        (Some(128), Some(85))
    );
    assert!(done.data["url"].as_str().unwrap().ends_with("/thumb"));
    let last = events.last().unwrap();
    assert_eq!(
        last.data["counts"],
        json!({"total": 2, "done": 2, "failed": 0})
    );

    // Ids increase. A stream resumed after the first event sends the latest
    // state of every output that changed since, and nothing older.
    let ids: Vec<i64> = outputs
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let first = outputs[0].id.clone().unwrap();
    let resumed = open_events(&app, &job, Some(&first)).await;
    let again = read_events(resumed, Duration::from_secs(10), |e| e.event == "job").await;
    let again: Vec<(i64, &str, &str)> = again
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| {
            (
                e.id.as_deref().unwrap().parse().unwrap(),
                e.data["recipe"].as_str().unwrap(),
                e.data["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(
        again
            .iter()
            .all(|(id, _, state)| *id > ids[0] && *state == "done")
    );
    assert_eq!(again.last().unwrap().0, *ids.last().unwrap());
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn events_need_the_job_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_needs_token(&app, thumb_recipes(), "/events").await;
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn archive_holds_every_finished_output_under_unique_names(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(thumb_recipes()).await;

    // Nothing finished yet: a clear 409, not an empty zip.
    let res = app.job_get(&job, "/archive").await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("finished"));

    // Two files with the same name: their entries must not collide.
    let twins = copies(&["photo.jpg", "photo.jpg"], "rocket.jpg");
    assert_eq!(app.upload(&job, &twins).await.status(), 201);
    let _worker = spawn_worker(&pool, &app.storage_args);
    app.wait_done(&job, Duration::from_secs(60)).await;

    let res = app.job_get(&job, "/archive").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert!(header(&res, "content-disposition").starts_with("attachment"));
    let bytes = res.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "photo-gray-2.png",
            "photo-gray.png",
            "photo-thumb-2.jpg",
            "photo-thumb.jpg"
        ]
    );
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let img = image::load_from_memory(&data).unwrap();
        if entry.name().contains("thumb") {
            assert_eq!((img.width(), img.height()), (128, 85));
        } else {
            assert_eq!((img.width(), img.height()), (640, 427));
        }
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn original_is_served_as_uploaded(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(thumb_recipes()).await;
    let original = photo("chelsea.png");
    let res = app.upload(&job, &[("cat.png", original.clone())]).await;
    let uploaded = expect_json(res, 201).await;
    let res = app.original(&job, image_id(&uploaded)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().to_vec(), original);
    let path = format!(
        "/api/jobs/{}/images/{}/original",
        job.id,
        image_id(&uploaded)
    );
    assert_eq!(app.get_as(&path, "nope").await.status(), 404);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn metrics_count_uploads_and_show_queue_depth(pool: PgPool) {
    let app = spawn_app(pool).await;
    let job = app.create_job(thumb_recipes()).await;
    let files = [
        ("a.jpg", photo("rocket.jpg")),
        ("b.txt", b"not an image".to_vec()),
    ];
    app.upload(&job, &files).await;
    let res = app.admin_get("/metrics", None).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing from\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // Other tests in this process may have uploaded too.
    assert!(value("darkroom_uploads_total{outcome=\"accepted\"}") >= 1.0);
    assert!(value("darkroom_uploads_total{outcome=\"rejected\"}") >= 1.0);
    assert!(value("darkroom_upload_bytes_total") >= photo("rocket.jpg").len() as f64);
    // No worker runs: both requests wait in the queue.
    assert_eq!(
        value("darkroom_queue_messages{queue=\"darkroom.requests\",state=\"visible\"}"),
        2.0
    );
}
