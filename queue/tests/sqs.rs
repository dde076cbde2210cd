//! The SQS endpoint driven by the Rust AWS SDK (AWS JSON 1.0, SigV4), each
//! test over its own database. The boto3 suite (`sqs_boto3.rs`) covers
//! both protocols from Python.

mod common;

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use common::sqs::{client, client_with, serve};
use md5::{Digest, Md5};
use queue::RewindTo;
use sqlx::PgPool;

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

async fn create(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn sdk_sends_receives_and_deletes_with_attributes_and_digests(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "photos").await;
    assert_eq!(q, format!("{url}/000000000000/photos"));

    let color = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("red")
        .build()
        .unwrap();
    let blob = MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![0u8, 1, 2, 255]))
        .build()
        .unwrap();
    let sent = sqs
        .send_message()
        .queue_url(&q)
        .message_body("hello <sqs> & ünïcode")
        .message_attributes("color", color.clone())
        .message_attributes("blob", blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        sent.md5_of_message_body(),
        Some(md5_hex("hello <sqs> & ünïcode").as_str())
    );
    let attributes_md5 = sent.md5_of_message_attributes().unwrap().to_owned();

    let got = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = got.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.body(), Some("hello <sqs> & ünïcode"));
    assert_eq!(m.message_id(), sent.message_id());
    assert_eq!(m.md5_of_body(), sent.md5_of_message_body());
    assert_eq!(m.md5_of_message_attributes(), Some(attributes_md5.as_str()));
    let attrs = m.message_attributes().unwrap();
    assert_eq!(attrs["color"], color);
    assert_eq!(attrs["blob"], blob);
    let system = m.attributes().unwrap();
    assert_eq!(
        system[&MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    let sent_at: i64 = system[&MessageSystemAttributeName::SentTimestamp]
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp_millis() - sent_at).abs() < 60_000);

    sqs.delete_message()
        .queue_url(&q)
        .receipt_handle(m.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&q)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
    assert_eq!(attrs[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    assert_eq!(
        attrs[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0"
    );
    assert_eq!(
        attrs[&QueueAttributeName::QueueArn],
        "arn:aws:sqs:us-east-1:000000000000:photos"
    );
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn batches_send_receive_and_delete_ten_and_report_bad_entries(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "batch").await;
    let entries: Vec<_> = (0..10)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(format!("body {i}"))
                .build()
                .unwrap()
        })
        .collect();
    let sent = sqs
        .send_message_batch()
        .queue_url(&q)
        .set_entries(Some(entries.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.successful().len(), 10);
    assert!(sent.failed().is_empty());

    let mut too_many = entries.clone();
    too_many.push(entries[0].clone().to_builder_with_id("m10"));
    let err = sqs
        .send_message_batch()
        .queue_url(&q)
        .set_entries(Some(too_many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("AWS.SimpleQueueService.TooManyEntriesInBatchRequest")
    );
    let err = sqs
        .send_message_batch()
        .queue_url(&q)
        .set_entries(Some(vec![entries[0].clone(), entries[0].clone()]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some("AWS.SimpleQueueService.BatchEntryIdsNotDistinct")
    );

    let got = sqs
        .receive_message()
        .queue_url(&q)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 10);
    let mut deletes: Vec<_> = got
        .messages()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("d{i}"))
                .receipt_handle(m.receipt_handle().unwrap())
                .build()
                .unwrap()
        })
        .collect();
    deletes[9] = DeleteMessageBatchRequestEntry::builder()
        .id("bad")
        .receipt_handle("not-a-receipt")
        .build()
        .unwrap();
    let deleted = sqs
        .delete_message_batch()
        .queue_url(&q)
        .set_entries(Some(deletes))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.successful().len(), 9);
    assert_eq!(deleted.failed().len(), 1);
    assert_eq!(deleted.failed()[0].id(), "bad");
    assert_eq!(deleted.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert!(deleted.failed()[0].sender_fault());
}

trait WithId {
    fn to_builder_with_id(self, id: &str) -> SendMessageBatchRequestEntry;
}

impl WithId for SendMessageBatchRequestEntry {
    fn to_builder_with_id(self, id: &str) -> SendMessageBatchRequestEntry {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(self.message_body())
            .build()
            .unwrap()
    }
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn long_poll_returns_as_soon_as_a_message_is_sent(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "waiting").await;
    // With nothing to receive, the wait runs its course.
    let started = tokio::time::Instant::now();
    let empty = sqs
        .receive_message()
        .queue_url(&q)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(empty.messages().is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1));
    let receiver = tokio::spawn({
        let (sqs, q) = (sqs.clone(), q.clone());
        async move {
            let started = tokio::time::Instant::now();
            let got = sqs
                .receive_message()
                .queue_url(&q)
                .wait_time_seconds(20)
                .send()
                .await
                .unwrap();
            (got, started.elapsed())
        }
    });
    // The receive is waiting once the queue has a waiter; the send wakes
    // it whenever it lands.
    sqs.send_message()
        .queue_url(&q)
        .message_body("wake")
        .send()
        .await
        .unwrap();
    let (got, waited) = receiver.await.unwrap();
    assert_eq!(got.messages()[0].body(), Some("wake"));
    assert!(waited < Duration::from_secs(20), "waited {waited:?}");

    let err = sqs
        .receive_message()
        .queue_url(&q)
        .wait_time_seconds(21)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterValue"));
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn fifo_queue_keeps_group_order_and_deduplicates_within_the_window(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = sqs
        .create_queue()
        .queue_name("orders.fifo")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    for i in 0..3 {
        let sent = sqs
            .send_message()
            .queue_url(&q)
            .message_body(format!("step {i}"))
            .message_group_id("order-1")
            .send()
            .await
            .unwrap();
        ids.push(sent.message_id.unwrap());
        seqs.push(sent.sequence_number.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The same body again: content-based deduplication answers with the
    // first send's message and sends nothing.
    let again = sqs
        .send_message()
        .queue_url(&q)
        .message_body("step 0")
        .message_group_id("order-1")
        .send()
        .await
        .unwrap();
    assert_eq!(again.message_id(), Some(ids[0].as_str()));
    assert_eq!(again.sequence_number(), Some(seqs[0].as_str()));
    // An explicit id deduplicates different bodies.
    for body in ["x", "y"] {
        sqs.send_message()
            .queue_url(&q)
            .message_body(body)
            .message_group_id("order-2")
            .message_deduplication_id("same")
            .send()
            .await
            .unwrap();
    }

    let mut bodies = Vec::new();
    for _ in 0..10 {
        let got = sqs
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let attrs = m.attributes().unwrap();
            assert!(attrs.contains_key(&MessageSystemAttributeName::SequenceNumber));
            bodies.push((
                attrs[&MessageSystemAttributeName::MessageGroupId].clone(),
                m.body().unwrap().to_owned(),
            ));
            sqs.delete_message()
                .queue_url(&q)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let order1: Vec<_> = bodies
        .iter()
        .filter(|(g, _)| g == "order-1")
        .map(|(_, b)| b.as_str())
        .collect();
    assert_eq!(order1, ["step 0", "step 1", "step 2"]);
    let order2: Vec<_> = bodies.iter().filter(|(g, _)| g == "order-2").collect();
    assert_eq!(order2.len(), 1, "{bodies:?}");

    let err = sqs
        .send_message()
        .queue_url(&q)
        .message_body("no group")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("MissingParameter"));
}

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
    let big = "x".repeat(256 * 1024 + 1);
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
    let err = client_with(&url, common::sqs::KEY_ID, "wrong-secret-value")
        .list_queues()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    let err = client_with(&url, "AKIDUNKNOWN", common::sqs::SECRET)
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
async fn visibility_changes_release_and_stale_receipts_are_not_in_flight(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "leases").await;
    sqs.send_message()
        .queue_url(&q)
        .message_body("work")
        .send()
        .await
        .unwrap();
    let first = sqs
        .receive_message()
        .queue_url(&q)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap();
    let old = first.messages()[0].receipt_handle().unwrap().to_owned();
    assert!(
        sqs.receive_message()
            .queue_url(&q)
            .send()
            .await
            .unwrap()
            .messages()
            .is_empty()
    );
    sqs.change_message_visibility()
        .queue_url(&q)
        .receipt_handle(&old)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let second = sqs.receive_message().queue_url(&q).send().await.unwrap();
    let m = &second.messages()[0];
    assert_eq!(
        m.attributes().map(|a| a.len()),
        None,
        "no system attributes unless asked"
    );
    let err = sqs
        .change_message_visibility()
        .queue_url(&q)
        .receipt_handle(&old)
        .visibility_timeout(60)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_message_not_inflight(), "{err:?}");
    // As SQS: a delete with the outdated receipt succeeds and deletes
    // nothing; the latest receipt deletes.
    sqs.delete_message()
        .queue_url(&q)
        .receipt_handle(&old)
        .send()
        .await
        .unwrap();
    let stats = sqs
        .get_queue_attributes()
        .queue_url(&q)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stats.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "1"
    );
    sqs.delete_message()
        .queue_url(&q)
        .receipt_handle(m.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
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
    sqs.send_message()
        .queue_url(&q)
        .message_body("poison")
        .send()
        .await
        .unwrap();
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 1);
    // Received once already: the next receive moves it to the DLQ.
    let got = sqs.receive_message().queue_url(&q).send().await.unwrap();
    assert!(got.messages().is_empty());
    let sources = sqs
        .list_dead_letter_source_queues()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap();
    assert_eq!(sources.queue_urls(), std::slice::from_ref(&q));
    let dead = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        dead.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages],
        "1"
    );

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
    let back = sqs.receive_message().queue_url(&q).send().await.unwrap();
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
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&q)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
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
    sqs.send_message()
        .queue_url(&q)
        .message_body("once")
        .send()
        .await
        .unwrap();
    let got = sqs.receive_message().queue_url(&q).send().await.unwrap();
    sqs.delete_message()
        .queue_url(&q)
        .receipt_handle(got.messages()[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let rewound = router
        .open("replayed")
        .await
        .unwrap()
        .rewind(RewindTo::Time(before))
        .await
        .unwrap();
    assert_eq!(rewound, 1);
    let again = sqs.receive_message().queue_url(&q).send().await.unwrap();
    assert_eq!(again.messages()[0].body(), Some("once"));
}
