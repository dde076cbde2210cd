//! Acknowledging messages.

use std::collections::HashSet;

use uuid::Uuid;

use crate::attributes::check_batch;
use crate::{Error, Queue, Receipt, Result};

/// Which receipts of a batch delete took effect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub deleted: Vec<Receipt>,
    /// Receipts whose lease expired or whose message was received again.
    pub stale: Vec<Receipt>,
}

impl Queue {
    /// Deletes the message leased under `receipt`.
    ///
    /// Fails with [`Error::StaleReceipt`] when the lease is no longer current,
    /// so a slow receiver never deletes a message another one now holds.
    pub async fn delete(&self, receipt: &Receipt) -> Result<()> {
        let outcome = self.delete_batch(std::slice::from_ref(receipt)).await?;
        if outcome.deleted.is_empty() {
            return Err(Error::StaleReceipt);
        }
        Ok(())
    }

    /// Deletes up to 1000 messages by receipt.
    pub async fn delete_batch(&self, receipts: &[Receipt]) -> Result<DeleteOutcome> {
        check_batch("receipts", receipts.len())?;
        let mut deleted = self.delete_once(receipts).await?;
        // A delete racing another on the same row can find, once it holds
        // the row, that the other left only messages it deletes itself: the
        // row is then to be deleted, not shrunk, which this statement had
        // already ruled out. A second statement deletes it; a receipt still
        // not deleted then is truly stale.
        let missed: Vec<Receipt> = receipts
            .iter()
            .filter(|r| !deleted.contains(r))
            .copied()
            .collect();
        if !missed.is_empty() {
            deleted.extend(self.delete_once(&missed).await?);
        }
        let (deleted, stale) = receipts.iter().partition(|r| deleted.contains(r));
        Ok(DeleteOutcome { deleted, stale })
    }

    /// One delete statement; returns the receipts that took effect.
    async fn delete_once(&self, receipts: &[Receipt]) -> Result<HashSet<Receipt>> {
        let ids: Vec<i64> = receipts.iter().map(|r| r.id).collect();
        let rows: Vec<i64> = receipts.iter().map(|r| r.row).collect();
        let leases: Vec<Uuid> = receipts.iter().map(|r| r.lease).collect();
        // A receipt names the row its message was received in; the message
        // is still there, or, after a visibility change, in a row whose
        // `origin` is that one. So rows are found by id, through the primary
        // key and the origin index, whatever the planner believes about the
        // table. A row losing every message is deleted; any other keeps the
        // rest. The commit does not wait for the disk: a delete lost in a
        // Postgres crash delivers the message again, as SQS may (see
        // docs/queue.md).
        let done = sqlx::query!(
            r#"
            with found as (
                select m.id, m.lease,
                       array(select r.id from unnest($2::int8[], $4::uuid[]) as r(id, lease)
                             where r.lease = m.lease and r.id = any(m.ids)) as gone
                from queue_messages m
                where (m.id = any($3::int8[]) or m.origin = any($3::int8[]))
                  and m.queue_id + 0 = $1 and m.visible_at > now()
            ), hit as (
                select * from found where cardinality(gone) > 0
            ), emptied as (
                delete from queue_messages m
                using hit h
                where m.id = any(array(select id from hit)) and h.id = m.id
                  and m.lease = h.lease and m.visible_at > now() and m.ids <@ h.gone
                returning m.ids, m.lease, m.visible_at, m.dead_letter_source,
                          set_config('synchronous_commit', 'off', true)
            ), shrunk as (
                update queue_messages m
                set ids = array(select x from unnest(m.ids) with ordinality as u(x, i)
                                where x <> all(h.gone) order by i)
                from hit h
                where m.id = any(array(select id from hit)) and h.id = m.id
                  and m.lease = h.lease and m.visible_at > now()
                  and m.ids && h.gone and not m.ids <@ h.gone
                returning m.ids as kept, h.gone, m.lease, m.visible_at, m.dead_letter_source,
                          (select count(*) from unnest(h.gone) x where x <> all(m.ids))::int4
                              as removed,
                          set_config('synchronous_commit', 'off', true)
            ), counted as (
                insert into queue_counters as c (queue_id, bucket, slot, live, leased, delayed,
                                                 dead_lettered)
                select d.queue_id, d.bucket, pg_backend_pid(),
                       sum(d.live), sum(d.leased), sum(d.delayed), sum(d.dead_lettered)
                from (
                    select $1, 0::int8, -cardinality(ids), 0, 0, 0 from emptied
                    union all select $1, queue_bucket(visible_at), 0, -cardinality(ids), 0, 0 from emptied
                    union all select dead_letter_source, 0, 0, 0, 0, -cardinality(ids) from emptied
                    union all select $1, 0, -removed, 0, 0, 0 from shrunk
                    union all select $1, queue_bucket(visible_at), 0, -removed, 0, 0 from shrunk
                    union all select dead_letter_source, 0, 0, 0, 0, -removed from shrunk
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
            select e.ids as "ids!", e.lease as "lease!"
            from emptied e
            union all
            select array(select x from unnest(s.gone) as x where x <> all(s.kept)), s.lease
            from shrunk s
            "#,
            self.id(),
            &ids,
            &rows,
            &leases,
        )
        .fetch_all(&self.pool)
        .await?;
        let done: HashSet<(i64, Uuid)> = done
            .into_iter()
            .flat_map(|r| r.ids.into_iter().map(move |id| (id, r.lease)))
            .collect();
        Ok(receipts
            .iter()
            .filter(|r| done.contains(&(r.id, r.lease)))
            .copied()
            .collect())
    }
}
