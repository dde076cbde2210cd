//! The whole path on real parts: web (in process) → request queue → two
//! `darkroom-worker` processes → S3 + response queue → web.

mod support;

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use support::{count, expect_json, photos, poll, scalar, spawn_app, spawn_worker, thumbnail};

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn photo_goes_through_both_queues_and_comes_back_as_thumbnail(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let _workers = [
        spawn_worker(&pool, &app.storage_args),
        spawn_worker(&pool, &app.storage_args),
    ];
    let job = app.create_job(thumbnail("thumb", 256)).await;

    let files = photos(&["rocket.jpg", "chelsea.png"]);
    let uploaded = expect_json(app.upload(&job, &files).await, 201).await;
    assert_eq!(count(&uploaded["images"]), 2);

    let status = app.wait_done(&job, Duration::from_secs(60)).await;
    assert_eq!(
        status["counts"],
        json!({"total": 2, "done": 2, "failed": 0})
    );

    let rocket = status["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "rocket.jpg")
        .unwrap();
    let output = &rocket["outputs"][0];
    assert_eq!(output["state"], "done");
    // rocket.jpg is 640×427: fit in 256×256 keeping the aspect ratio.
    assert_eq!(
        (output["width"].as_u64(), output["height"].as_u64()),
        (Some(256), Some(171))
    );
    assert_eq!(output["format"], "jpeg");

    let res = app
        .get_as(output["url"].as_str().unwrap(), &job.token)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let bytes = res.bytes().await.unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (256, 171));

    // Every request was deleted once processed; every response consumed.
    poll(Duration::from_secs(10), async || {
        match scalar(&pool, "select count(*) from queue_messages").await {
            0 => Ok(()),
            left => Err(format!("{left} messages left behind in the queues")),
        }
    })
    .await;
}
