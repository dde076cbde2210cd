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
    serve_router(Router::new(Queues::new(pool.clone()))).await
}

/// Like [`serve`], over the given router.
pub async fn serve_router(router: Router) -> (String, Router) {
    let config = SqsConfig {
        keys: format!("{KEY_ID}:{SECRET}").parse::<AccessKeys>().unwrap(),
        ..SqsConfig::default()
    };
    serve_config(router, config).await
}

/// Like [`serve_router`], with the endpoint's whole configuration given.
pub async fn serve_config(router: Router, config: SqsConfig) -> (String, Router) {
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

/// Sends `body` to the queue at `url`.
pub async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// One receive with the queue's defaults.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput {
    sqs.receive_message().queue_url(url).send().await.unwrap()
}

/// One receive of up to `max` messages, the queue's defaults otherwise.
pub async fn receive_up_to(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: i32,
) -> aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .send()
        .await
        .unwrap()
}

/// Deletes the message received under `receipt`.
pub async fn delete(sqs: &aws_sdk_sqs::Client, url: &str, receipt: &str) {
    sqs.delete_message()
        .queue_url(url)
        .receipt_handle(receipt)
        .send()
        .await
        .unwrap();
}

/// The queue attribute `name` (`All`: every one).
pub async fn attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: aws_sdk_sqs::types::QueueAttributeName,
) -> std::collections::HashMap<aws_sdk_sqs::types::QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(name)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
}
