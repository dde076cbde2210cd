//! The SQS endpoint on a free port over the test's database, and an AWS
//! SDK client signed with one of its keys.

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use queue::{AccessKeys, Queues, Router, SqsConfig};
use sqlx::PgPool;

pub const KEY_ID: &str = "AKIDDARKROOMTEST";
pub const SECRET: &str = "darkroom-test-secret";

/// Serves the endpoint (and the queue API beside it, as `darkroom-queue
/// serve` does) until the test ends; returns its URL and the router.
pub async fn serve(pool: &PgPool) -> (String, Router) {
    let router = Router::new(Queues::new(pool.clone()));
    let config = SqsConfig {
        keys: format!("{KEY_ID}:{SECRET}").parse::<AccessKeys>().unwrap(),
        ..SqsConfig::default()
    };
    let app = queue::sqs_router(router.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, router)
}

/// A client of the endpoint at `url` signing with `key_id` / `secret`.
pub fn client_with(url: &str, key_id: &str, secret: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

pub fn client(url: &str) -> aws_sdk_sqs::Client {
    client_with(url, KEY_ID, SECRET)
}

/// Creates queue `name` with SQS's defaults; returns its URL.
pub async fn create(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}
