//! Jobs expire with their files, and no object outlives the rows that point
//! to it.

mod support;

use std::time::{Duration, Instant};

use common::protocol::{Outcome, RESPONSE_QUEUE, Response, output_key};
use common::recipe::OutputFormat;
use queue::Queues;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{photo, spawn_app, spawn_app_with};
use web::Settings;

fn flip() -> Value {
    json!([{"name":"f","ops":[{"op":"flip","axis":"vertical"}]}])
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_job_says_when_it_expires(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        Settings {
            job_ttl: Duration::from_secs(3600),
            ..Settings::default()
        },
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/jobs"))
        .json(&json!({ "recipes": flip() }))
        .send()
        .await
        .unwrap();
    let created: Value = res.json().await.unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!((expires - in_an_hour).num_seconds().abs() < 60, "{created}");
    let job = support::Job {
        id: created["id"].as_str().unwrap().to_owned(),
        token: created["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        app.job_status(&job).await["expires_at"],
        created["expires_at"]
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn expired_jobs_are_deleted_with_every_file(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip()).await;
    let kept = app.create_job(flip()).await;
    for j in [&job, &kept] {
        app.upload(j, &[("rocket.jpg", photo("rocket.jpg"))]).await;
    }
    let prefix = format!("jobs/{}/", job.id);
    // A result stored for it as well.
    app.storage
        .put(
            &format!("{prefix}outputs/x/f"),
            b"result".to_vec().into(),
            "image/jpeg",
        )
        .await
        .unwrap();
    sqlx::query("update jobs set expires_at = now() - interval '1 second' where id = $1::uuid")
        .bind(&job.id)
        .execute(&pool)
        .await
        .unwrap();
    // Gone to its owner at once, before any sweep.
    let res = app
        .client
        .get(app.url(&format!("/api/jobs/{}", job.id)))
        .bearer_auth(&job.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    assert_eq!(web::expiry::sweep(&pool, &app.storage).await.unwrap(), 1);
    assert!(app.storage.list(&prefix).await.unwrap().is_empty());
    let rows: i64 = sqlx::query_scalar(
        "select (select count(*) from jobs where id = $1::uuid)
              + (select count(*) from images where job_id = $1::uuid)",
    )
    .bind(&job.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rows, 0);
    // The other job is untouched.
    assert_eq!(app.job_status(&kept).await["counts"]["total"], 1);
    assert_eq!(
        app.storage
            .list(&format!("jobs/{}/", kept.id))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn an_upload_whose_rows_cannot_be_written_leaves_no_object(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip()).await;
    // The database refuses this one file's rows.
    sqlx::raw_sql(
        r#"
        create function refuse_doomed() returns trigger language plpgsql as $$
        begin
            if new.name = 'doomed.jpg' then raise exception 'refused for the test'; end if;
            return new;
        end $$;
        create trigger refuse_doomed before insert on images
            for each row execute function refuse_doomed();
        "#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let res = app
        .upload(
            &job,
            &[
                ("fine.jpg", photo("rocket.jpg")),
                ("doomed.jpg", photo("rocket.jpg")),
            ],
        )
        .await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["images"][0]["name"], "fine.jpg", "{body}");
    assert_eq!(body["errors"][0]["name"], "doomed.jpg", "{body}");
    let originals = app
        .storage
        .list(&format!("jobs/{}/originals/", job.id))
        .await
        .unwrap();
    assert_eq!(originals.len(), 1, "{originals:?}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_result_stored_after_its_job_was_swept_is_deleted(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (job_id, image_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let key = output_key(job_id, image_id, "f");
    app.storage
        .put(&key, b"late".to_vec().into(), "image/jpeg")
        .await
        .unwrap();
    let late = Response {
        job_id,
        image_id,
        recipe: "f".into(),
        outcome: Outcome::Done {
            width: 1,
            height: 1,
            bytes: 4,
            format: OutputFormat::Jpeg,
            key: key.clone(),
        },
    };
    Queues::new(pool)
        .open(RESPONSE_QUEUE)
        .await
        .unwrap()
        .send(serde_json::to_string(&late).unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.storage.list(&key).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the late result is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
