//! Dead letters: a message received `max_receive_count` times without being
//! deleted moves to the queue's dead letter queue on its next receive (see
//! [`Queue::receive`]): the receive leaves it alone and reports its row,
//! which is moved here, before the receive looks again. It is kept there,
//! inspectable and receivable like any message, until it is redriven,
//! deleted or expires.

use crate::{Error, Queue, Result};

impl Queue {
    /// Moves live rows a receive found past their receive limit to the dead
    /// letter queue. A row another receiver holds, or that has changed since,
    /// is left to whoever holds it. Returns how many messages moved.
    pub(crate) async fn dead_letter(&self, rows: &[i64]) -> Result<u64> {
        let Some((dlq, max_receives)) = self.inner.dead_letter else {
            return Ok(0);
        };
        let moved = sqlx::query_scalar!(
            r#"
            with picked as (
                select id, dead_letter_source
                from queue_messages
                where id = any($3::int8[]) and queue_id = $1 and visible_at <= now()
                  and receive_count >= $4
                for update skip locked
            ), dead as (
                update queue_messages m
                set queue_id = $2, visible_at = now(), lease = null, receive_count = 0,
                    dead_letter_source = $1, dead_letter_reason = 'max_receives'
                from picked p
                where m.id = p.id
                -- A message that had come here as a dead letter of another
                -- queue leaves that queue's dead letter count.
                returning cardinality(m.ids) as n, p.dead_letter_source as was_from
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live, dead_lettered)
                select d.queue_id, 0, pg_backend_pid(), sum(d.live), sum(d.dead_lettered)
                from dead
                cross join lateral (values ($1, -n, n), ($2, n, 0), (was_from, 0, -n))
                    as d(queue_id, live, dead_lettered)
                where d.queue_id is not null
                group by d.queue_id
                order by d.queue_id
                on conflict (queue_id, bucket, slot) do update set
                    live = c.live + excluded.live,
                    dead_lettered = c.dead_lettered + excluded.dead_lettered
            )
            select coalesce(sum(n), 0)::int8 as "moved!" from dead
            "#,
            self.id(),
            dlq,
            rows,
            max_receives,
        )
        .fetch_one(&self.pool)
        .await? as u64;
        Ok(moved)
    }

    /// Moves every message this queue dead-lettered back into it, visible at
    /// once with a fresh receive count. Returns how many moved.
    pub async fn redrive(&self) -> Result<u64> {
        let Some((dlq, _)) = self.inner.dead_letter else {
            return Err(Error::InvalidArgument {
                field: "dead_letter_queue",
                message: format!("queue `{}` has no dead letter queue", self.name()),
            });
        };
        let moved = sqlx::query_scalar!(
            r#"
            with moved as (
                update queue_messages m
                set queue_id = $2, visible_at = now(), lease = null, receive_count = 0,
                    dead_letter_source = null, dead_letter_reason = null
                where m.queue_id = $1 and m.dead_letter_source = $2
                -- The row as this statement's snapshot saw it: one in flight
                -- in the dead letter queue leaves its counter bucket there.
                returning cardinality(m.ids) as n,
                          (select o.visible_at from queue_messages o where o.id = m.id) as was
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live, leased, delayed,
                                                 dead_lettered)
                select d.queue_id, d.bucket, pg_backend_pid(),
                       sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
                from (
                    select $1, 0::int8, -n, 0, 0, 0 from moved
                    union all select $2, 0, n, 0, 0, -n from moved
                    union all select $1, queue_bucket(was), 0, -n, 0, 0 from moved where was > now()
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
            select coalesce(sum(n), 0)::int8 as "moved!" from moved
            "#,
            dlq,
            self.id(),
        )
        .fetch_one(&self.pool)
        .await? as u64;
        if moved > 0 {
            self.notify();
        }
        Ok(moved)
    }
}
