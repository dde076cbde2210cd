//! Extending and releasing leases.

use std::time::Duration;

use crate::attributes::MAX_LOCK;
use crate::{Error, Queue, Receipt, Result};

impl Queue {
    /// Sets the lease of `receipt` to end `lock` from now: a heartbeat for long
    /// work, or, with [`Duration::ZERO`], a release that makes the message
    /// visible again at once (and the receipt stale).
    pub async fn change_visibility(&self, receipt: &Receipt, lock: Duration) -> Result<()> {
        if lock > MAX_LOCK {
            return Err(Error::InvalidArgument {
                field: "lock",
                message: "must be at most 12 h".into(),
            });
        }
        // As in delete_batch: a concurrent delete can leave the message alone
        // in its row after this statement chose to move it out; a second
        // statement then finds it alone.
        for _ in 0..2 {
            if self.change_visibility_once(receipt, lock).await? {
                return Ok(());
            }
        }
        Err(Error::StaleReceipt)
    }

    async fn change_visibility_once(&self, receipt: &Receipt, lock: Duration) -> Result<bool> {
        // The lease belongs to the receipt's message alone, so when its row
        // holds others too, the message moves to a row of its own (the old
        // row keeps the others and their visibility), recording where it came
        // from: receipts name that row. Rows are found by id, as in
        // delete_batch, and the commit does not wait for the disk, as in
        // receive.
        let changed = sqlx::query_scalar!(
            r#"
            with moved as (
                update queue_messages m
                set ids = array(select x from unnest(m.ids) with ordinality as u(x, i)
                                where x <> $3 order by i)
                where (m.id = $2 or m.origin = $2)
                  and m.queue_id + 0 = $1 and m.lease = $4 and m.visible_at > now()
                  and $3 = any(m.ids) and cardinality(m.ids) > 1
                returning m.queue_id, m.message_group, m.lease, m.receive_count, m.enqueued_at,
                          m.first_received_at, m.dead_letter_source, m.dead_letter_reason,
                          m.visible_at as was,
                          set_config('synchronous_commit', 'off', true)
            ), alone as (
                insert into queue_messages (queue_id, pos, ids, origin, message_group, visible_at,
                                            lease, receive_count, enqueued_at, first_received_at,
                                            dead_letter_source, dead_letter_reason)
                select queue_id, $3, array[$3::int8], $2, message_group,
                       now() + make_interval(secs => $5), lease, receive_count,
                       enqueued_at, first_received_at, dead_letter_source, dead_letter_reason
                from moved
                returning id
            ), single as (
                update queue_messages m
                set visible_at = now() + make_interval(secs => $5)
                where (m.id = $2 or m.origin = $2)
                  and m.queue_id + 0 = $1 and m.lease = $4 and m.visible_at > now()
                  and m.ids = array[$3::int8]
                -- The row as this statement's snapshot saw it, for its old
                -- counter bucket.
                returning m.id,
                          (select o.visible_at from queue_messages o where o.id = m.id) as was,
                          set_config('synchronous_commit', 'off', true)
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live, leased, delayed,
                                                 dead_lettered)
                select d.queue_id, d.bucket, pg_backend_pid(),
                       sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
                from (
                    select $1, queue_bucket(was), 0, -1, 0, 0 from moved
                    union all select $1, queue_bucket(was), 0, -1, 0, 0 from single
                    union all select $1, queue_bucket(now() + make_interval(secs => $5)), 0, 1, 0, 0
                              from (select from moved union all select from single) changed
                              where $5 > 0
                ) as d(queue_id, bucket, live, leased, delayed, dead_lettered)
                where d.queue_id is not null
                group by d.queue_id, d.bucket
                order by d.queue_id, d.bucket
                on conflict (queue_id, bucket, slot) do update set
                    live = c.live + excluded.live,
                    leased = c.leased + excluded.leased,
                    delayed = c.delayed + excluded.delayed,
                    dead_lettered = c.dead_lettered + excluded.dead_lettered
            )
            select (select count(*) from alone) + (select count(*) from single) as "changed!"
            "#,
            self.id(),
            receipt.row,
            receipt.id,
            receipt.lease,
            lock.as_secs_f64(),
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(changed > 0)
    }
}
