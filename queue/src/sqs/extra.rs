//! Where the SQS-only attributes and tags of queues are kept
//! (`queue_sqs_queues`, in the control database), and a cache of them kept
//! for as long as a route is, so that sends do not read them each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::time::Instant;

use super::settings::Extra;

/// The SQS-only attributes of queues, as the control database has them,
/// kept for a second so sends do not read them each time.
#[derive(Default)]
pub(crate) struct ExtraCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Extra>)>>,
}

impl ExtraCache {
    pub(crate) async fn get(&self, pool: &sqlx::PgPool, queue: &str) -> crate::Result<Arc<Extra>> {
        if let Some((at, extra)) = self.entries.lock().expect("cache lock").get(queue)
            && at.elapsed() < crate::ROUTE_TTL
        {
            return Ok(extra.clone());
        }
        let row = sqlx::query!(
            "select attributes, tags from queue_sqs_queues where queue = $1",
            queue
        )
        .fetch_optional(pool)
        .await?;
        let extra = Arc::new(match row {
            Some(r) => Extra {
                attributes: as_map(r.attributes),
                tags: as_map(r.tags),
            },
            None => Extra::default(),
        });
        self.entries
            .lock()
            .expect("cache lock")
            .insert(queue.to_owned(), (Instant::now(), extra.clone()));
        Ok(extra)
    }

    pub(crate) fn forget(&self, queue: &str) {
        self.entries.lock().expect("cache lock").remove(queue);
    }

    /// Merges `attributes` into queue `queue`'s stored ones (a null removes
    /// one), and forgets what this cache had of it.
    pub(crate) async fn store(
        &self,
        pool: &sqlx::PgPool,
        queue: &str,
        attributes: &Map<String, Value>,
    ) -> crate::Result<()> {
        sqlx::query_file!(
            "sql/store_sqs_attributes.sql",
            queue,
            Value::Object(attributes.clone()),
        )
        .execute(pool)
        .await?;
        self.forget(queue);
        Ok(())
    }

    /// Sets and removes tags of queue `queue`, and forgets what this cache
    /// had of it.
    pub(crate) async fn retag(
        &self,
        pool: &sqlx::PgPool,
        queue: &str,
        set: &Map<String, Value>,
        remove: &[String],
    ) -> crate::Result<()> {
        sqlx::query_file!(
            "sql/retag_sqs_queue.sql",
            queue,
            Value::Object(set.clone()),
            remove,
        )
        .execute(pool)
        .await?;
        self.forget(queue);
        Ok(())
    }
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
