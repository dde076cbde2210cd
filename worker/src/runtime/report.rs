//! Final reports: each finished message's response sent and its request
//! deleted in one statement (`Routed::reply_batch`), with those of other
//! messages that finished meanwhile.
//!
//! Reports queue up for one task while it commits the previous ones, as
//! commits do in Postgres' group commit: under load a transaction carries
//! many, at rest each goes at once. Sent and deleted together, a response
//! is never sent for a request that then stays, nor a request deleted
//! without its response. (When the request and response queues are placed
//! on different shards, the response goes first; see
//! `queue::Routed::reply_batch`.) No NOTIFY: the web's consumer looks for
//! responses on a short cadence instead (see its module), as a NOTIFY would
//! cost a transaction in every listening backend of the database.

use queue::{NewMessage, Receipt, Routed};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// Most reports in one statement.
const MOST: usize = 100;

/// What became of a report.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reported {
    /// Sent, and the request deleted.
    Done,
    /// Sent, but the lease had run out: another worker may repeat the work,
    /// and its response changes nothing.
    Stale,
}

struct Report {
    response: String,
    receipt: Receipt,
    reply: oneshot::Sender<Result<Reported, String>>,
}

/// The handle to the task that sends reports; clones share it.
#[derive(Clone)]
pub(super) struct Reporter {
    reports: mpsc::Sender<Report>,
}

impl Reporter {
    /// Starts the task. The two queues share the database (the app declares
    /// them together), so one statement does both.
    pub(super) fn start(requests: Routed, responses: Routed) -> Self {
        let (reports, rx) = mpsc::channel(MOST);
        tokio::spawn(run(rx, requests, responses));
        Self { reports }
    }

    /// Sends `response` and deletes the request leased under `receipt`.
    pub(super) async fn report(
        &self,
        response: String,
        receipt: Receipt,
    ) -> Result<Reported, String> {
        let (reply, answer) = oneshot::channel();
        let report = Report {
            response,
            receipt,
            reply,
        };
        if self.reports.send(report).await.is_err() {
            return Err("the reporter has stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the reporter has stopped".into()))
    }
}

async fn run(mut rx: mpsc::Receiver<Report>, requests: Routed, responses: Routed) {
    let mut batch = Vec::with_capacity(MOST);
    while rx.recv_many(&mut batch, MOST).await > 0 {
        let receipts: Vec<Receipt> = batch.iter().map(|r| r.receipt).collect();
        let bodies: Vec<NewMessage> = batch
            .iter()
            .map(|r| NewMessage::new(r.response.as_str()))
            .collect();
        let outcome = requests.reply_batch(&receipts, &responses, &bodies).await;
        debug!(
            reports = batch.len(),
            ok = outcome.is_ok(),
            "reports committed"
        );
        for report in batch.drain(..) {
            let answer = match &outcome {
                Ok(stale) if stale.contains(&report.receipt) => Ok(Reported::Stale),
                Ok(_) => Ok(Reported::Done),
                Err(e) => Err(e.to_string()),
            };
            let _ = report.reply.send(answer);
        }
    }
}
