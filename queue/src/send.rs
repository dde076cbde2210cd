//! Enqueueing messages.

use std::time::Duration;

use sqlx::PgConnection;

use crate::attributes::{MAX_BATCH, MAX_DELAY, check_batch};
use crate::group::{GROUP_UP_TO, Held, fail_all};
use crate::{Error, Queue, Result};

/// Most messages in one live row, and in one chunk of bodies (see the
/// migrations; `queue_chunk_of` has it too). Small enough that a live row
/// stays well under Postgres' 2 kB TOAST threshold and that receiving one
/// message never detoasts many bodies, large enough that a batch of 100 is
/// one row and one chunk.
pub(crate) const ROW_MESSAGES: i64 = 128;

/// A message to send.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {
    pub body: String,
    /// Overrides the queue's delay.
    pub delay: Option<Duration>,
    /// Message group of an ordered queue (ignored by concurrent queues).
    pub group: Option<String>,
}

impl NewMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Default::default()
        }
    }
}

impl Queue {
    /// Sends one message and returns its id.
    pub async fn send(&self, body: impl Into<String>) -> Result<i64> {
        let ids = self.send_batch(&[NewMessage::new(body)]).await?;
        Ok(ids[0])
    }

    /// Sends up to 1000 messages atomically; ids are returned in message order.
    ///
    /// Small batches sent concurrently through one handle (its clones
    /// included) share a statement (see `group`): still atomic each, ids
    /// still consecutive within each batch.
    pub async fn send_batch(&self, messages: &[NewMessage]) -> Result<Vec<i64>> {
        if messages.len() > GROUP_UP_TO {
            return self.send_now(messages).await;
        }
        // Checked before joining, so a bad batch fails alone.
        check_batch("messages", messages.len())?;
        for m in messages {
            self.check_message(m)?;
        }
        let q = self.clone();
        let run = move || async move { q.run_sends().await };
        self.inner.sends.join(messages.to_vec(), run).await
    }

    async fn send_now(&self, messages: &[NewMessage]) -> Result<Vec<i64>> {
        let mut conn = self.pool.acquire().await?;
        self.send_on(&mut conn, messages).await
    }

    /// Sends `messages` in a statement of their own on `conn`, then wakes
    /// long-polling receivers.
    async fn send_on(&self, conn: &mut PgConnection, messages: &[NewMessage]) -> Result<Vec<i64>> {
        let ids = self.send_batch_in(conn, messages).await?;
        self.notify();
        Ok(ids)
    }

    /// Sends the waiting batches a group at a time, until none waits.
    async fn run_sends(&self) {
        let mut runner = self.inner.sends.runner();
        let mut held = Held::new(&self.pool);
        loop {
            held.share();
            let mut group = runner.next(MAX_BATCH, Vec::len, |_| None::<()>).await;
            if group.is_empty() {
                return;
            }
            let mut all = Vec::with_capacity(group.iter().map(|m| m.request.len()).sum());
            let ends: Vec<usize> = group
                .iter_mut()
                .map(|m| {
                    all.append(&mut m.request);
                    all.len()
                })
                .collect();
            match held.with(async |conn| self.send_on(conn, &all).await).await {
                Ok(ids) => {
                    let mut start = 0;
                    for (m, end) in group.into_iter().zip(ends) {
                        m.answer(Ok(ids[start..end].to_vec()));
                        start = end;
                    }
                }
                Err(e) => fail_all(group, e),
            }
        }
    }

    /// Like [`Queue::send_batch`], on the caller's connection, so the messages
    /// are committed together with the caller's own rows. Call
    /// [`Queue::notify`] after committing to wake long-polling receivers at
    /// once (they otherwise notice within a second).
    pub async fn send_batch_in(
        &self,
        conn: &mut PgConnection,
        messages: &[NewMessage],
    ) -> Result<Vec<i64>> {
        let outgoing = self.outgoing(messages)?;
        let n = messages.len() as i64;
        let mut sent = self.insert(conn, &outgoing).await;
        if self.partitions_made(&sent).await? {
            sent = self.insert(conn, &outgoing).await;
        }
        let first = sent?;
        Ok((first..first + n).collect())
    }

    /// `messages` checked against the queue's limits and cut into runs.
    pub(crate) fn outgoing<'a>(&self, messages: &'a [NewMessage]) -> Result<Outgoing<'a>> {
        check_batch("messages", messages.len())?;
        let ordered = self.ordered();
        let mut bodies = Vec::with_capacity(messages.len());
        let mut groups = Vec::with_capacity(messages.len());
        let mut delays = Vec::with_capacity(messages.len());
        for m in messages {
            bodies.push(m.body.as_str());
            groups.push(m.group.as_deref().unwrap_or(""));
            delays.push(self.check_message(m)?.as_secs_f64());
        }
        let runs = Runs::cut(ordered, &delays);
        Ok(Outgoing {
            queue: self.id(),
            ordered,
            bodies,
            groups,
            runs,
        })
    }

    /// Makes the body partitions a send that failed for want of one needs:
    /// a batch crossing into an id range with no partition yet fails as a
    /// whole (rare: every 10M sends), and is then sent again.
    pub(crate) async fn partitions_made<T>(&self, sent: &sqlx::Result<T>) -> Result<bool> {
        let lacking = matches!(sent, Err(sqlx::Error::Database(e))
            if e.message().contains("no partition of relation"));
        if lacking {
            crate::Maintenance::new(self.pool.clone())
                .ensure_partitions()
                .await?;
        }
        Ok(lacking)
    }

    /// Checks a message against the queue's limits; returns its delay.
    fn check_message(&self, m: &NewMessage) -> Result<Duration> {
        let limit = self.attributes().max_message_bytes as usize;
        if m.body.len() > limit {
            return Err(Error::MessageTooLarge {
                size: m.body.len(),
                limit,
            });
        }
        let delay = m.delay.unwrap_or(self.attributes().delay);
        if delay > MAX_DELAY {
            return Err(Error::InvalidArgument {
                field: "delay",
                message: "must be between 0 and 3600 s".into(),
            });
        }
        Ok(delay)
    }

    /// Sends `outgoing`; returns the first message's id.
    async fn insert(&self, conn: &mut PgConnection, outgoing: &Outgoing<'_>) -> sqlx::Result<i64> {
        // One statement writes the bodies once, in chunks (kept for rewind),
        // a live row per run and the counters. Ids are drawn in message
        // order from one value of the global sequence, so only that value
        // comes back, and a run's ids are the range it covers from there.
        // The runs reach the planner as subqueries: seeing their length, it
        // would find a plan for each batch cheaper than the generic one and
        // plan every send (150 us, twice the statement's execution).
        let o = outgoing;
        sqlx::query_file_scalar!(
            "sql/send.sql",
            o.queue,
            &o.bodies as &[&str],
            &o.groups as &[&str],
            &o.runs.starts,
            &o.runs.lens,
            ROW_MESSAGES as i32,
            o.ordered,
            &o.runs.delays,
        )
        .fetch_one(&mut *conn)
        .await
    }
}

/// A batch ready to send: its bodies, groups and runs, the parameters of
/// `sql/send.sql` after the queue.
pub(crate) struct Outgoing<'a> {
    pub(crate) queue: i32,
    pub(crate) ordered: bool,
    pub(crate) bodies: Vec<&'a str>,
    pub(crate) groups: Vec<&'a str>,
    pub(crate) runs: Runs,
}

/// The live rows of a send: runs of consecutive messages that share a
/// delay, up to [`ROW_MESSAGES`] long (one message each on ordered queues),
/// as the offset of their first message in the batch, their length and
/// their delay. Consecutive, so the statement makes each row's ids from a
/// range instead of sorting and grouping the batch.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Runs {
    pub(crate) starts: Vec<i32>,
    pub(crate) lens: Vec<i32>,
    pub(crate) delays: Vec<f64>,
}

impl Runs {
    fn cut(ordered: bool, delays: &[f64]) -> Self {
        let mut runs = Runs::default();
        for (i, &delay) in delays.iter().enumerate() {
            let extends = !ordered
                && runs.delays.last() == Some(&delay)
                && runs
                    .lens
                    .last()
                    .is_some_and(|&len| i64::from(len) < ROW_MESSAGES);
            if extends {
                *runs.lens.last_mut().expect("a run is open") += 1;
            } else {
                runs.starts.push(i as i32);
                runs.lens.push(1);
                runs.delays.push(delay);
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_delay_and_size() {
        let n = ROW_MESSAGES as usize + 4;
        let mut delays = vec![0.0; n];
        delays[1] = 5.0;
        let runs = Runs::cut(false, &delays);
        // The delayed message has a row of its own and ends the first run;
        // the others fill a row to ROW_MESSAGES and start the next.
        let rest = n as i32 - 2;
        let full = ROW_MESSAGES as i32;
        assert_eq!(runs.starts, vec![0, 1, 2, 2 + full]);
        assert_eq!(runs.lens, vec![1, 1, full, rest - full]);
        assert_eq!(runs.delays, vec![0.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn ordered_queue_rows_hold_one_message() {
        let runs = Runs::cut(true, &[0.0; 3]);
        assert_eq!((runs.starts, runs.lens), (vec![0, 1, 2], vec![1, 1, 1]));
    }
}
