//! The whole path on real parts: web (in process) → request queue → two
//! `darkroom-worker` processes → S3 + response queue → web.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{photo, spawn_app, spawn_worker};

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn photo_goes_through_both_queues_and_comes_back_as_thumbnail(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let _workers = [
        spawn_worker(&pool, &app.storage_args),
        spawn_worker(&pool, &app.storage_args),
    ];
    let job = app
        .create_job(json!([{"name":"thumb","ops":[{"op":"thumbnail","width":256,"height":256}]}]))
        .await;

    let res = app
        .upload(
            &job,
            &[
                ("rocket.jpg", photo("rocket.jpg")),
                ("chelsea.png", photo("chelsea.png")),
            ],
        )
        .await;
    assert_eq!(res.status(), 201);
    let uploaded: Value = res.json().await.unwrap();
    assert_eq!(uploaded["images"].as_array().unwrap().len(), 2);

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
        .client
        .get(app.url(output["url"].as_str().unwrap()))
        .bearer_auth(&job.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let bytes = res.bytes().await.unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (256, 171));

    // Every request was deleted once processed; every response consumed.
    let left: i64 = sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut left = left;
    while left != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = sqlx::query_scalar("select count(*) from queue_messages")
            .fetch_one(&pool)
            .await
            .unwrap();
    }
    assert_eq!(left, 0, "messages left behind in the queues");
}
