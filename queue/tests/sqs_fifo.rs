//! FIFO queues over the SQS endpoint, driven by the Rust AWS SDK: order
//! within a message group under concurrent receivers, a group's batch per
//! receive, sequence numbers, deduplication.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use sqlx::PgPool;
use testkit::sqs::{client, delete, receive_up_to, serve};

/// Creates the FIFO queue `name`, deduplicating by content when
/// `by_content`; returns its URL.
async fn create_fifo(sqs: &aws_sdk_sqs::Client, name: &str, by_content: bool) -> String {
    sqs.create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(
            QueueAttributeName::ContentBasedDeduplication,
            by_content.to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Sends `body` to the FIFO queue `q` in group `group`, deduplicated by
/// content.
async fn send_in_group(
    sqs: &aws_sdk_sqs::Client,
    q: &str,
    body: &str,
    group: &str,
) -> SendMessageOutput {
    sqs.send_message()
        .queue_url(q)
        .message_body(body)
        .message_group_id(group)
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn fifo_queue_keeps_group_order_and_deduplicates_within_the_window(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create_fifo(&sqs, "orders.fifo", true).await;
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    for i in 0..3 {
        let sent = send_in_group(&sqs, &q, &format!("step {i}"), "order-1").await;
        ids.push(sent.message_id.unwrap());
        seqs.push(sent.sequence_number.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The same body again: content-based deduplication answers with the
    // first send's message and sends nothing.
    let again = send_in_group(&sqs, &q, "step 0", "order-1").await;
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
            delete(&sqs, &q, m.receipt_handle().unwrap()).await;
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

/// Sends `body` to the FIFO queue `q` in group `g` with deduplication id
/// `dedup`; returns the message id the endpoint answers with.
async fn send_deduplicated(sqs: &aws_sdk_sqs::Client, q: &str, body: &str, dedup: &str) -> String {
    let sent = sqs
        .send_message()
        .queue_url(q)
        .message_body(body)
        .message_group_id("g")
        .message_deduplication_id(dedup)
        .send()
        .await
        .unwrap();
    sent.message_id.unwrap()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_deduplication_id_is_forgotten_five_minutes_after_its_send(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create_fifo(&sqs, "window.fifo", false).await;
    let first = send_deduplicated(&sqs, &q, "first", "once").await;
    // The window is SQS's five minutes, counted from the first send.
    let remembered_for: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - now())::float8 from queue_sqs_dedup",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (290.0..=300.0).contains(&remembered_for),
        "remembered for {remembered_for} s"
    );
    // A second before the window ends the id still deduplicates; time is
    // moved on by rewriting the row, not slept through.
    common::exec(
        &pool,
        "update queue_sqs_dedup set expires_at = now() + interval '1 second'",
    )
    .await;
    assert_eq!(send_deduplicated(&sqs, &q, "again", "once").await, first);
    common::exec(
        &pool,
        "update queue_sqs_dedup set expires_at = now() - interval '1 second'",
    )
    .await;
    let after = send_deduplicated(&sqs, &q, "after", "once").await;
    assert_ne!(after, first, "past the window the send is a new message");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&q)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let queued = &attrs.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages];
    assert_eq!(queued, "2", "the first and the one after the window");
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_fifo_receive_takes_a_groups_batch_with_uuid_message_ids(pool: PgPool) {
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create_fifo(&sqs, "batches.fifo", true).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        let r = send_in_group(&sqs, &q, &format!("step {i}"), "order-1").await;
        sent.push(r.message_id.unwrap());
    }
    let got = receive_up_to(&sqs, &q, 10).await;
    let ids: Vec<_> = got
        .messages()
        .iter()
        .map(|m| m.message_id().unwrap())
        .collect();
    assert_eq!(ids, sent, "the whole group, in order, in one receive");
    for id in ids {
        let id: uuid::Uuid = id.parse().unwrap();
        assert_eq!(id.get_version_num(), 8);
    }
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn four_receivers_take_twenty_groups_each_in_order_and_nothing_twice(pool: PgPool) {
    const GROUPS: usize = 20;
    const EACH: usize = 10;
    let (url, _) = serve(&pool).await;
    let sqs = client(&url);
    let q = create_fifo(&sqs, "many.fifo", true).await;
    for i in 0..EACH {
        for groups in (0..GROUPS).collect::<Vec<_>>().chunks(10) {
            let entries = groups
                .iter()
                .map(|g| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("g{g}"))
                        .message_body(format!("{g}:{i}"))
                        .message_group_id(g.to_string())
                        .build()
                        .unwrap()
                })
                .collect();
            let sent = sqs
                .send_message_batch()
                .queue_url(&q)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert!(sent.failed().is_empty());
        }
    }
    // Each group's messages as handed out: noted before the delete that
    // lets the group's next batch go, so in the order they went out.
    let handed: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let (sqs, q, handed) = (sqs.clone(), q.clone(), handed.clone());
            tokio::spawn(async move {
                let mut idle = 0;
                while idle < 5 {
                    let got = receive_up_to(&sqs, &q, 10).await;
                    if got.messages().is_empty() {
                        idle += 1;
                        continue;
                    }
                    idle = 0;
                    let mut entries = Vec::new();
                    {
                        let mut handed = handed.lock().unwrap();
                        for (k, m) in got.messages().iter().enumerate() {
                            let (g, i) = m.body().unwrap().split_once(':').unwrap();
                            handed.entry(g.into()).or_default().push(i.parse().unwrap());
                            entries.push(
                                DeleteMessageBatchRequestEntry::builder()
                                    .id(k.to_string())
                                    .receipt_handle(m.receipt_handle().unwrap())
                                    .build()
                                    .unwrap(),
                            );
                        }
                    }
                    sqs.delete_message_batch()
                        .queue_url(&q)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for r in receivers {
        r.await.unwrap();
    }
    let handed = handed.lock().unwrap();
    assert_eq!(handed.len(), GROUPS);
    for (g, order) in handed.iter() {
        assert_eq!(
            *order,
            (0..EACH).collect::<Vec<_>>(),
            "group {g}: in order, once each"
        );
    }
}
