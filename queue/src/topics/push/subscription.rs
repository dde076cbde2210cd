//! What a delivery reads of its subscription, read for each delivery rather
//! than kept, so a pusher goes by the subscription as it is now (or finds
//! it gone) and needs no word of changes.

use sqlx::PgPool;

use crate::Result;

/// A delivery's subscription, as a pusher needs it.
#[derive(sqlx::FromRow)]
pub(super) struct Subscription {
    pub(super) name: String,
    pub(super) endpoint: String,
    pub(super) retry: String,
    pub(super) retry_interval_ms: i64,
    pub(super) format: String,
    pub(super) secret: Option<String>,
    pub(super) public_only: bool,
    /// Deliveries ever published to it.
    pub(super) published: i64,
    pub(super) topic: String,
    pub(super) message_lifetime_ms: i64,
}

impl Subscription {
    /// Subscription `id`, unless it has been unsubscribed.
    pub(super) async fn read(pool: &PgPool, id: i32) -> Result<Option<Self>> {
        let s = sqlx::query_as(include_str!("../../../sql/topic_push_subscription.sql"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
        Ok(s)
    }
}
