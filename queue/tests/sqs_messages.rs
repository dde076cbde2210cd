//! The SQS endpoint's message actions driven by the Rust AWS SDK (AWS JSON
//! 1.0, SigV4), each test over its own database. The boto3 suite
//! (`sqs_boto3.rs`) covers both protocols from Python.

mod common;

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use common::{WAKE_BOUND, await_listeners, listeners};
use md5::{Digest, Md5};
use queue::Router;
use sqlx::PgPool;
use testkit::sqs::{
    attributes, client, create, delete, receive, receive_up_to, send, serve, serve_router,
};

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
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

    delete(&sqs, &q, m.receipt_handle().unwrap()).await;
    let attrs = attributes(&sqs, &q, QueueAttributeName::All).await;
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

    let got = receive_up_to(&sqs, &q, 10).await;
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
    // A second endpoint whose receives only a NOTIFY wakes in time; its
    // listener coming up says its receive waits.
    let (woken_only, _) = serve_router(Router::new(common::woken_only(&pool))).await;
    let before = listeners(&pool).await;
    let receiver = tokio::spawn({
        let (waiting, q) = (client(&woken_only), q.clone());
        async move {
            let started = tokio::time::Instant::now();
            let got = waiting
                .receive_message()
                .queue_url(&q)
                .wait_time_seconds(20)
                .send()
                .await
                .unwrap();
            (got, started.elapsed())
        }
    });
    await_listeners(&pool, before + 1).await;
    send(&sqs, &q, "wake").await;
    let (got, waited) = receiver.await.unwrap();
    assert_eq!(got.messages()[0].body(), Some("wake"));
    assert!(waited < WAKE_BOUND, "waited {waited:?}");

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
async fn visibility_changes_release_and_any_receipt_of_a_standard_queues_message_acts(
    pool: PgPool,
) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "leases").await;
    send(&sqs, &q, "work").await;
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
    let second = receive(&sqs, &q).await;
    let m = &second.messages()[0];
    assert_eq!(
        m.attributes().map(|a| a.len()),
        None,
        "no system attributes unless asked"
    );
    // As SQS on a standard queue: the first receipt still acts on the
    // message the second receive holds.
    sqs.change_message_visibility()
        .queue_url(&q)
        .receipt_handle(&old)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let third = receive(&sqs, &q).await;
    assert_eq!(
        third.messages()[0].body(),
        Some("work"),
        "released by the first receipt"
    );
    delete(&sqs, &q, &old).await;
    let stats = attributes(&sqs, &q, QueueAttributeName::ApproximateNumberOfMessages).await;
    assert_eq!(stats[&QueueAttributeName::ApproximateNumberOfMessages], "0");
    let stats = attributes(
        &sqs,
        &q,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    )
    .await;
    assert_eq!(
        stats[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible],
        "0",
        "deleted by the first receipt"
    );
    // Once the message is gone, no receipt of it is in flight.
    let err = sqs
        .change_message_visibility()
        .queue_url(&q)
        .receipt_handle(m.receipt_handle().unwrap())
        .visibility_timeout(60)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_message_not_inflight(), "{err:?}");
    delete(&sqs, &q, m.receipt_handle().unwrap()).await;
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_receipt_whose_lock_ran_out_still_deletes(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create(&sqs, "late").await;
    send(&sqs, &q, "work").await;
    // A lock of 0 seconds has run out by the next request.
    let got = sqs
        .receive_message()
        .queue_url(&q)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    delete(&sqs, &q, got.messages()[0].receipt_handle().unwrap()).await;
    let after = sqs.receive_message().queue_url(&q).send().await.unwrap();
    assert!(after.messages().is_empty(), "deleted, not delivered again");
}
