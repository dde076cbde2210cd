//! The SQS endpoint's queue actions, errors and signatures driven by the
//! Rust AWS SDK, each test over its own database.

mod common;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::QueueAttributeName;
use queue::RewindTo;
use sqlx::PgPool;
use testkit::sqs::{attributes, client, client_with, create, delete, receive, send, serve};

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn typed_errors_reach_the_sdk(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let err = sqs
        .get_queue_url()
        .queue_name("missing")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, GetQueueUrlError::QueueDoesNotExist(_)),
        "{err:?}"
    );
    let q = create(&sqs, "errors").await;
    let err = sqs
        .delete_message()
        .queue_url(&q)
        .receipt_handle("garbage")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_receipt_handle_is_invalid(), "{err:?}");
    let err = sqs
        .create_queue()
        .queue_name("errors")
        .attributes(QueueAttributeName::DelaySeconds, "5")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_queue_name_exists(), "{err:?}");
    let err = sqs
        .set_queue_attributes()
        .queue_url(&q)
        .attributes(QueueAttributeName::VisibilityTimeout, "43201")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_attribute_value(), "{err:?}");
    let err = sqs
        .send_message()
        .queue_url(&q)
        .message_body("bad \u{1} char")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_message_contents(), "{err:?}");
    let big = "x".repeat(1024 * 1024 + 1);
    let err = sqs
        .send_message()
        .queue_url(&q)
        .message_body(big)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterValue"));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn requests_without_a_valid_signature_are_refused(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let err = client_with(&url, testkit::sqs::KEY_ID, "wrong-secret-value")
        .list_queues()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    let err = client_with(&url, "AKIDUNKNOWN", testkit::sqs::SECRET)
        .list_queues()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidClientTokenId"));
    let unsigned = reqwest::Client::new()
        .post(&url)
        .header("x-amz-target", "AmazonSQS.ListQueues")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert_eq!(
        unsigned.headers()["x-amzn-query-error"],
        "MissingAuthenticationToken;Sender"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn endpoint_without_keys_refuses_everyone(pool: PgPool) {
    let router = queue::Router::new(queue::Queues::new(pool.clone()));
    let app = queue::sqs_router(router, queue::SqsConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let err = client(&url).list_queues().send().await.unwrap_err();
    assert_eq!(err.code(), Some("MissingAuthenticationToken"));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn redrive_policy_dead_letters_and_a_move_task_brings_messages_back(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let dlq = create(&sqs, "jobs-dlq").await;
    let policy = serde_json::json!({
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:jobs-dlq",
        "maxReceiveCount": "1",
    });
    let q = sqs
        .create_queue()
        .queue_name("jobs")
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    send(&sqs, &q, "poison").await;
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 1);
    // Received once already: the next receive moves it to the DLQ.
    let got = receive(&sqs, &q).await;
    assert!(got.messages().is_empty());
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap();
    assert_eq!(sources.queue_urls(), std::slice::from_ref(&q));
    let dead = attributes(&sqs, &dlq, QueueAttributeName::ApproximateNumberOfMessages).await;
    assert_eq!(dead[&QueueAttributeName::ApproximateNumberOfMessages], "1");

    let task = sqs
        .start_message_move_task()
        .source_arn("arn:aws:sqs:us-east-1:000000000000:jobs-dlq")
        .send()
        .await
        .unwrap();
    assert!(task.task_handle().is_some());
    let listed = sqs
        .list_message_move_tasks()
        .source_arn("arn:aws:sqs:us-east-1:000000000000:jobs-dlq")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.results()[0].status(), Some("COMPLETED"));
    assert_eq!(
        listed.results()[0].approximate_number_of_messages_moved(),
        1
    );
    let back = receive(&sqs, &q).await;
    assert_eq!(back.messages()[0].body(), Some("poison"));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn queue_attributes_and_tags_round_trip(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = sqs
        .create_queue()
        .queue_name("tuned")
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .attributes(QueueAttributeName::DelaySeconds, "2")
        .attributes(QueueAttributeName::MaximumMessageSize, "2048")
        .attributes(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "3")
        .tags("team", "photos")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    // The same attributes again: the existing queue.
    let same = sqs
        .create_queue()
        .queue_name("tuned")
        .attributes(QueueAttributeName::VisibilityTimeout, "45")
        .send()
        .await
        .unwrap();
    assert_eq!(same.queue_url(), Some(q.as_str()));
    sqs.set_queue_attributes()
        .queue_url(&q)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "3600")
        .send()
        .await
        .unwrap();
    let attrs = attributes(&sqs, &q, QueueAttributeName::All).await;
    for (name, value) in [
        (QueueAttributeName::VisibilityTimeout, "45"),
        (QueueAttributeName::DelaySeconds, "2"),
        (QueueAttributeName::MaximumMessageSize, "2048"),
        (QueueAttributeName::ReceiveMessageWaitTimeSeconds, "3"),
        (QueueAttributeName::MessageRetentionPeriod, "3600"),
    ] {
        assert_eq!(attrs[&name], value, "{name}");
    }
    let err = sqs
        .send_message()
        .queue_url(&q)
        .message_body("x".repeat(2049))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterValue"));

    sqs.tag_queue()
        .queue_url(&q)
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    sqs.untag_queue()
        .queue_url(&q)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let tags = sqs.list_queue_tags().queue_url(&q).send().await.unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags["env"], "test");

    let listed = sqs
        .list_queues()
        .queue_name_prefix("tu")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.queue_urls(), std::slice::from_ref(&q));
    sqs.delete_queue().queue_url(&q).send().await.unwrap();
    let listed = sqs.list_queues().send().await.unwrap();
    assert!(listed.queue_urls().is_empty());
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn rewind_reaches_queues_made_over_sqs(pool: PgPool) {
    let (url, router) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "replayed").await;
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    send(&sqs, &q, "once").await;
    let got = receive(&sqs, &q).await;
    delete(&sqs, &q, got.messages()[0].receipt_handle().unwrap()).await;
    let rewound = router
        .open("replayed")
        .await
        .unwrap()
        .rewind(RewindTo::Time(before))
        .await
        .unwrap();
    assert_eq!(rewound, 1);
    let again = receive(&sqs, &q).await;
    assert_eq!(again.messages()[0].body(), Some("once"));
}
