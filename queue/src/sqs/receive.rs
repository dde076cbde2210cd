//! Receiving, and what follows a receive: ReceiveMessage, DeleteMessage,
//! ChangeMessageVisibility, and their batches.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::error::{SqsError, SqsResult};
use super::message::{self, Envelope};
use super::send::{sequence_number, target};
use super::{Ctx, Input, batch_failure, batch_output};
use crate::delete::Reclaim;
use crate::{Error, MessageRef, QueueKind, Receipt, Routed};

type Output = SqsResult<Map<String, Value>>;

/// A lock of `secs` seconds; SQS's 0 (visible again at once) is the
/// shortest lock the queue takes.
fn lock_of(secs: i64) -> Duration {
    if secs == 0 {
        Duration::from_millis(1)
    } else {
        Duration::from_secs(secs as u64)
    }
}

pub(super) async fn receive(ctx: &Ctx<'_>, input: Input) -> Output {
    let target = target(ctx, &input).await?;
    let attributes = &target.attributes;
    let max = input.int_in("MaxNumberOfMessages", 1, 10)?.unwrap_or(1) as usize;
    let lock = match input.int_in("VisibilityTimeout", 0, 12 * 3600)? {
        Some(secs) => lock_of(secs),
        None if target.extra.visibility_zero() => lock_of(0),
        None => attributes.visibility_timeout,
    };
    let wait = match input.int_in("WaitTimeSeconds", 0, 20)? {
        Some(secs) => Duration::from_secs(secs as u64),
        None => attributes.polling_wait,
    };
    let received = if wait.is_zero() {
        target.queue.receive(max, lock).await?
    } else {
        target.queue.receive_wait(max, lock, wait).await?
    };
    let mut system_names = input.strings("AttributeNames");
    system_names.extend(input.strings("MessageSystemAttributeNames"));
    let attribute_names = input.strings("MessageAttributeNames");
    let messages: Vec<Value> = received
        .iter()
        .map(|m| {
            let (envelope, body) = Envelope::unwrap(&m.body);
            let id = MessageRef {
                shard: m.receipt.shard(),
                id: m.id,
            };
            let mut out = json!({
                "MessageId": id.to_uuid().to_string(),
                "ReceiptHandle": m.receipt.to_string(),
                "MD5OfBody": message::md5_hex(body.as_bytes()),
                "Body": body,
            });
            let system = system_attributes(ctx, m, &envelope, target.fifo, &system_names);
            if !system.is_empty() {
                out["Attributes"] = Value::Object(system);
            }
            let chosen = message::select_attributes(&envelope.attributes, &attribute_names);
            if !chosen.is_empty() {
                out["MD5OfMessageAttributes"] = json!(message::md5_of_attributes(&chosen));
                out["MessageAttributes"] = message::attributes_json(&chosen);
            }
            out
        })
        .collect();
    let mut out = Map::new();
    if !messages.is_empty() {
        out.insert("Messages".into(), Value::Array(messages));
    }
    Ok(out)
}

/// The system attributes a receive asked for (`All` or names).
fn system_attributes(
    ctx: &Ctx<'_>,
    m: &crate::Message,
    envelope: &Envelope,
    fifo: bool,
    names: &[String],
) -> Map<String, Value> {
    if names.is_empty() {
        return Map::new();
    }
    let mut all: BTreeMap<&str, String> = BTreeMap::new();
    all.insert("ApproximateReceiveCount", m.receive_count.to_string());
    all.insert(
        "SentTimestamp",
        m.enqueued_at.timestamp_millis().to_string(),
    );
    all.insert(
        "ApproximateFirstReceiveTimestamp",
        m.first_received_at.timestamp_millis().to_string(),
    );
    all.insert("SenderId", ctx.sqs.config.account_id.clone());
    if fifo {
        all.insert("SequenceNumber", sequence_number(m.id));
        if let Some(g) = &envelope.group {
            all.insert("MessageGroupId", g.clone());
        }
        if let Some(d) = &envelope.dedup_id {
            all.insert("MessageDeduplicationId", d.clone());
        }
    }
    if let Some(source) = &m.dead_letter_source {
        all.insert("DeadLetterQueueSourceArn", ctx.arn(source));
    }
    if let Some(trace) = envelope
        .system
        .get("AWSTraceHeader")
        .and_then(|a| a.string.clone())
    {
        all.insert("AWSTraceHeader", trace);
    }
    all.into_iter()
        .filter(|(k, _)| names.iter().any(|n| n == "All" || n == k))
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect()
}

/// The receipt an input names; `in_batch`: the input is a batch entry,
/// whose failure names the handle.
fn receipt(input: &Input, in_batch: bool) -> SqsResult<Receipt> {
    let handle = input.required("ReceiptHandle")?;
    handle.parse().map_err(|_| {
        if in_batch {
            SqsError::receipt_entry_invalid(handle)
        } else {
            SqsError::receipt_invalid()
        }
    })
}

pub(super) async fn delete(ctx: &Ctx<'_>, input: Input) -> Output {
    // As SQS: a missing queue is reported before a malformed receipt.
    let queue = ctx.sqs.router.open(input.queue()?).await?;
    let receipt = receipt(&input, false)?;
    delete_as_sqs(&queue, &[receipt]).await?;
    Ok(Map::new())
}

/// Deletes with SQS's receipts, which stay good where the native API's do
/// not (see [`current_receipts`]): those the native delete calls stale are
/// exchanged for the receipts that act now and deleted again. A receipt
/// that acts for nothing (its message gone, or on a FIFO queue received
/// again since) deletes nothing, and that is no error either.
async fn delete_as_sqs(queue: &Routed, receipts: &[Receipt]) -> SqsResult<()> {
    let outcome = queue.delete_batch(receipts).await?;
    if !outcome.stale.is_empty() {
        let current = current_receipts(queue, &outcome.stale).await?;
        if !current.is_empty() {
            queue.delete_batch(&current).await?;
        }
    }
    Ok(())
}

/// The receipts that act now for the messages of `stale` receipts. On a
/// standard queue, as on SQS, any receipt a message was ever received with
/// acts on it, even after it was received again; on a FIFO queue only the
/// latest does, until the message is received again.
async fn current_receipts(queue: &Routed, stale: &[Receipt]) -> SqsResult<Vec<Receipt>> {
    let rule = match queue.attributes().await?.kind {
        QueueKind::Ordered => Reclaim::Latest,
        QueueKind::Concurrent => Reclaim::AnyReceipt,
    };
    Ok(queue.reclaim(stale, rule).await?)
}

pub(super) async fn delete_batch(ctx: &Ctx<'_>, mut input: Input) -> Output {
    let queue = ctx.sqs.router.open(input.queue()?).await?;
    let entries = input.entries("DeleteMessageBatch")?;
    let (mut ids, mut receipts, mut failed) = (vec![], vec![], vec![]);
    for entry in &entries {
        let id = entry.required("Id")?;
        match receipt(entry, true) {
            Ok(r) => {
                ids.push(json!({ "Id": id }));
                receipts.push(r);
            }
            Err(e) => failed.push(batch_failure(id, &e)),
        }
    }
    if !receipts.is_empty() {
        delete_as_sqs(&queue, &receipts).await?;
    }
    Ok(batch_output(ids, failed))
}

async fn change_one(queue: &Routed, entry: &Input, in_batch: bool) -> SqsResult<()> {
    let receipt = receipt(entry, in_batch)?;
    let secs = entry
        .int_in("VisibilityTimeout", 0, 12 * 3600)?
        .ok_or_else(|| SqsError::missing_parameter("VisibilityTimeout"))?;
    let lock = Duration::from_secs(secs as u64);
    // As a delete does, a receipt the native API calls stale may still act
    // (see `current_receipts`).
    match queue.change_visibility(&receipt, lock).await {
        Err(Error::StaleReceipt) => match current_receipts(queue, &[receipt]).await?.first() {
            Some(current) => queue.change_visibility(current, lock).await?,
            None => return Err(Error::StaleReceipt.into()),
        },
        done => done?,
    }
    Ok(())
}

pub(super) async fn change_visibility(ctx: &Ctx<'_>, input: Input) -> Output {
    let queue = ctx.sqs.router.open(input.queue()?).await?;
    change_one(&queue, &input, false).await?;
    Ok(Map::new())
}

pub(super) async fn change_visibility_batch(ctx: &Ctx<'_>, mut input: Input) -> Output {
    let queue = ctx.sqs.router.open(input.queue()?).await?;
    let entries = input.entries("ChangeMessageVisibilityBatch")?;
    let (mut successful, mut failed) = (vec![], vec![]);
    for entry in &entries {
        let id = entry.required("Id")?;
        match change_one(&queue, entry, true).await {
            Ok(()) => successful.push(json!({ "Id": id })),
            Err(e) if e.fault == super::error::Fault::Sender => {
                failed.push(batch_failure(id, &e));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(batch_output(successful, failed))
}
