//! Jobs expire with their files, and no object outlives the rows that point
//! to it.

mod support;

use std::time::Duration;

use common::protocol::output_key;
use serde_json::Value;
use sqlx::PgPool;
use support::{app_with, copies, done_response, expect_retry, poll, spawn_app};

fn flip() -> Value {
    support::flip("f")
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_job_says_when_it_expires(pool: PgPool) {
    let app = app_with(pool, |s| s.job_ttl = Duration::from_secs(3600)).await;
    let (status, created) = app.create(flip()).await;
    assert_eq!(status, 201, "{created}");
    let expires: chrono::DateTime<chrono::Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!((expires - in_an_hour).num_seconds().abs() < 60, "{created}");
    let job = support::Job::from_created(&created);
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
        app.upload_one(j, "rocket.jpg").await;
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
    assert_eq!(app.job_get(&job, "").await.status(), 404);

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
    let kept_files = app.storage.list(&format!("jobs/{}/", kept.id)).await;
    assert_eq!(kept_files.unwrap().len(), 1);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn an_upload_whose_rows_cannot_be_written_leaves_no_object(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let job = app.create_job(flip()).await;
    // The database refuses this one file's rows.
    support::sql(
        &pool,
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
    .await;
    let files = copies(&["fine.jpg", "doomed.jpg"], "rocket.jpg");
    let (_, body) = expect_retry(app.upload(&job, &files).await, 503).await;
    assert_eq!(body["images"][0]["name"], "fine.jpg", "{body}");
    assert_eq!(body["errors"][0]["name"], "doomed.jpg", "{body}");
    assert_eq!(app.originals(&job).await, 1);
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
    support::send_responses(&pool, &[done_response(job_id, image_id, "f", &key)]).await;
    poll(Duration::from_secs(20), async || {
        let left = app.storage.list(&key).await.unwrap();
        match left.is_empty() {
            true => Ok(()),
            false => Err(format!("the late result is still there: {left:?}")),
        }
    })
    .await;
}
