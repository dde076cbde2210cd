//! The test's database and queues, reached directly.

use common::protocol::{Outcome, RESPONSE_QUEUE, Response};
use sqlx::PgPool;
use uuid::Uuid;

/// A worker's answer that `recipe` of the image is done, stored at `key`.
pub fn done_response(job_id: Uuid, image_id: Uuid, recipe: &str, key: &str) -> Response {
    let format = common::recipe::OutputFormat::Jpeg;
    Response {
        job_id,
        image_id,
        recipe: recipe.into(),
        outcome: Outcome::Done {
            width: 1,
            height: 1,
            bytes: 4,
            format,
            key: key.into(),
        },
    }
}

/// Sends `responses` to the response queue in one batch (so one receive
/// sees them all), as workers would.
pub async fn send_responses(pool: &PgPool, responses: &[Response]) {
    let queue = queue::Queues::new(pool.clone()).open(RESPONSE_QUEUE).await;
    let bodies: Vec<_> = responses
        .iter()
        .map(|r| queue::NewMessage::new(serde_json::to_string(r).unwrap()))
        .collect();
    queue.unwrap().send_batch(&bodies).await.unwrap();
}

/// The request queue's figures.
pub async fn request_stats(pool: &PgPool) -> queue::Stats {
    let queues = queue::Queues::new(pool.clone());
    let requests = queues.open(common::protocol::REQUEST_QUEUE).await;
    requests.unwrap().stats().await.unwrap()
}

/// Runs SQL statements on the test's database.
pub async fn sql(pool: &PgPool, statement: &str) {
    sqlx::raw_sql(statement).execute(pool).await.unwrap();
}

/// A count, by `query`, from the test's database.
pub async fn scalar(pool: &PgPool, query: &str) -> i64 {
    sqlx::query_scalar(query).fetch_one(pool).await.unwrap()
}

/// The URL of the test's own database, for child processes.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set by sqlx::test");
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(
        pool.connect_options()
            .get_database()
            .expect("test database name"),
    );
    url.to_string()
}

/// Makes the Postgres role `name` (shared by every test database of the
/// cluster, so it may exist already) and lets the test's own role act as
/// it (`set role`).
pub async fn ensure_role(pool: &PgPool, name: &str) {
    sqlx::raw_sql(&format!(
        "do $$ begin create role {name} nologin; \
         exception when duplicate_object then null; end $$; \
         grant {name} to current_user"
    ))
    .execute(pool)
    .await
    .expect("the test's Postgres role may create roles (CREATEROLE; scripts/lib.sh gives it)");
}
