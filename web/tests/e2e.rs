//! The whole path on real parts: web (in process) → request queue → two
//! `darkroom-worker` processes → S3 + response queue → web.

mod support;

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use support::{
    count, expect_json, photo, photos, poll, scalar, spawn_app, spawn_worker, thumbnail,
};

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

/// HEIC, AVIF and JPEG XL go through the sandboxed engine child of a real
/// worker: sniffed at upload, decoded by libheif and jxl-oxide, and AVIF
/// made by libaom.
#[sqlx::test(migrator = "common::MIGRATOR")]
async fn heic_avif_and_jpeg_xl_uploads_come_back_as_jpeg_and_avif(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let _worker = spawn_worker(&pool, &app.storage_args);
    let recipes = json!([
        {"name": "thumb", "ops": [{"op": "thumbnail", "width": 256, "height": 256}]},
        {"name": "avif", "ops": [{"op": "thumbnail", "width": 300, "height": 300},
                                 {"op": "format", "format": "avif", "quality": 60}]},
    ]);
    let job = app.create_job(recipes).await;
    let files = [
        ("rocket.heic", photo("heif/rocket.heic")),
        ("rocket.avif", photo("heif/rocket.avif")),
        ("rocket.jxl", photo("jxl/rocket.jxl")),
    ];
    let uploaded = expect_json(app.upload(&job, &files).await, 201).await;
    let formats: Vec<&str> = uploaded["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["heic", "avif", "jxl"]);

    let status = app.wait_done(&job, Duration::from_secs(120)).await;
    assert_eq!(
        status["counts"],
        json!({"total": 6, "done": 6, "failed": 0})
    );
    for image in status["images"].as_array().unwrap() {
        let by_recipe = |recipe: &str| {
            image["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["recipe"] == recipe)
                .unwrap()
                .clone()
        };
        // Without a format op a HEIC or JPEG XL becomes a JPEG and an
        // AVIF stays AVIF.
        let default = if image["name"] == "rocket.avif" {
            "avif"
        } else {
            "jpeg"
        };
        let thumb = by_recipe("thumb");
        assert_eq!(thumb["format"], default, "{image}");
        assert_eq!(
            (thumb["width"].as_u64(), thumb["height"].as_u64()),
            (Some(256), Some(171))
        );
        let avif = by_recipe("avif");
        assert_eq!(avif["format"], "avif");
        let res = app.get_as(avif["url"].as_str().unwrap(), &job.token).await;
        assert_eq!(res.headers()["content-type"], "image/avif");
        let bytes = res.bytes().await.unwrap();
        assert_eq!(&bytes[4..12], b"ftypavif", "{image}");
    }
    originals_browsers_cannot_show_get_a_jpeg_before(&app, &job).await;
}

/// Browsers show an AVIF but not a HEIC nor a JPEG XL: each of those gets a
/// JPEG of its original as its "before", made by the worker like a result
/// yet counted as none, kept out of the zip, listed on its image.
async fn originals_browsers_cannot_show_get_a_jpeg_before(
    app: &support::TestApp,
    job: &support::Job,
) {
    let status = poll(Duration::from_secs(60), async || {
        let status = app.job_status(job).await;
        let images = status["images"].as_array().unwrap();
        let previews = images.iter().filter(|i| i["before"].is_string()).count();
        match previews {
            2 => Ok(status),
            n => Err(format!("{n} of 2 previews made: {status:#}")),
        }
    })
    .await;
    assert_eq!(status["counts"]["total"], 6, "{status:#}");
    for image in status["images"].as_array().unwrap() {
        assert_eq!(image["outputs"].as_array().unwrap().len(), 2, "{image}");
        let Some(before) = image["before"].as_str() else {
            assert_eq!(image["name"], "rocket.avif");
            continue;
        };
        let res = app.get_as(before, &job.token).await;
        assert_eq!(res.headers()["content-type"], "image/jpeg", "{image}");
        let jpeg = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!((jpeg.width(), jpeg.height()), (640, 427), "{image}");
    }
    let res = app
        .get_as(&format!("/api/jobs/{}/archive", job.id), &job.token)
        .await;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(res.bytes().await.unwrap().to_vec()));
    assert_eq!(zip.unwrap().len(), 6, "the zip holds a preview");
}
