//! The tag bound of tag topics: a subscription lists, and a message
//! carries, at most `MAX_TAGS` (5) tags, as the README promises; one more
//! is refused before anything is stored or delivered.

mod common;

use queue::{Error, MAX_TAGS, Publication, Queues, SubscriptionSpec, TopicSettings, Topics};
use sqlx::PgPool;

/// `n` distinct tags.
fn tags(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{i}")).collect()
}

fn refs(tags: &[String]) -> Vec<&str> {
    tags.iter().map(String::as_str).collect()
}

fn refused_for_tags<T: std::fmt::Debug>(result: queue::Result<T>) {
    match result {
        Err(Error::InvalidArgument { field: "tags", .. }) => {}
        other => panic!("expected tags to be refused, got {other:?}"),
    }
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_subscription_with_more_than_five_tags_is_refused(pool: PgPool) {
    assert_eq!(MAX_TAGS, 5);
    let topics = Topics::new(Queues::new(pool.clone()));
    topics
        .put_topic("events", &TopicSettings::default())
        .await
        .unwrap();
    common::queue(&pool, "inbox").await;
    let (five, six) = (tags(5), tags(6));
    let spec = SubscriptionSpec::queue("inbox");
    refused_for_tags(
        topics
            .subscribe("events", "six", &spec.clone().tags(&refs(&six)))
            .await,
    );
    assert!(topics.subscriptions("events").await.unwrap().is_empty());
    topics
        .subscribe("events", "five", &spec.tags(&refs(&five)))
        .await
        .unwrap();
    assert_eq!(topics.subscriptions("events").await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_message_with_more_than_five_tags_is_refused_and_its_batch_with_it(pool: PgPool) {
    let queues = Queues::new(pool.clone());
    let topics = Topics::new(queues.clone());
    topics
        .put_topic("events", &TopicSettings::default())
        .await
        .unwrap();
    let inbox = common::queue(&pool, "inbox").await;
    topics
        .subscribe("events", "inbox", &SubscriptionSpec::queue("inbox"))
        .await
        .unwrap();
    let (five, six) = (tags(5), tags(6));
    let batch = [
        Publication::new("five").tagged(&refs(&five)),
        Publication::new("six").tagged(&refs(&six)),
    ];
    refused_for_tags(topics.publish("events", &batch).await);
    assert!(common::receive_bodies(&inbox, 10).await.is_empty());
    topics.publish("events", &batch[..1]).await.unwrap();
    assert_eq!(common::receive_bodies(&inbox, 10).await, ["five"]);
}
