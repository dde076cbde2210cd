//! Limits that keep one client from taking the service down: recipe cost and
//! output size, request size, per-job quota, per-client rates and streams.

mod common;

use common::spawn_app;
use serde_json::{Value, json};
use sqlx::PgPool;

async fn create(app: &common::TestApp, recipes: Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/api/jobs"))
        .json(&json!({ "recipes": recipes }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn resize_past_the_pixel_cap_is_refused_at_job_creation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, body) = create(
        &app,
        json!([{"name":"huge","ops":[{"op":"resize","width":16384,"height":16384}]}]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("recipes[0] (huge)") && error.contains("DARKROOM_MAX_PIXELS"),
        "{error}"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn recipe_over_the_cost_budget_is_refused_with_its_cost(pool: PgPool) {
    let app = spawn_app(pool).await;
    let blurs: Vec<Value> = (0..31)
        .map(|_| json!({"op":"blur","sigma":100.0}))
        .collect();
    let (status, body) = create(&app, json!([{"name":"heavy","ops": blurs}])).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("DARKROOM_MAX_RECIPE_COST") && error.contains("passes"),
        "{error}"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn heavy_ops_after_a_thumbnail_are_within_budget(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut ops = vec![json!({"op":"thumbnail","width":256,"height":256})];
    ops.extend((0..31).map(|_| json!({"op":"blur","sigma":100.0})));
    let (status, body) = create(&app, json!([{"name":"small","ops": ops}])).await;
    assert_eq!(status, 201, "{body}");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn original_is_a_reserved_recipe_name(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (status, body) = create(
        &app,
        json!([{"name":"original","ops":[{"op":"flip","axis":"vertical"}]}]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("reserved"),
        "{body}"
    );
}
