//! Sending: SendMessage and SendMessageBatch, FIFO deduplication included.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sqlx::PgPool;

use super::error::{SqsError, SqsResult};
use super::message::{self, Envelope};
use super::settings::Extra;
use super::{Ctx, Input, batch_failure, batch_output, contents, fifo};
use crate::{Error, MessageRef, NewMessage, QueueAttributes, QueueKind, Routed};

type Output = SqsResult<Map<String, Value>>;

/// A message ready to send, with the digests its answer carries.
struct Outgoing {
    message: NewMessage,
    md5_body: String,
    md5_attributes: Option<String>,
    md5_system: Option<String>,
    /// The deduplication key of a FIFO message (scoped to its group when
    /// the queue says so).
    dedup: Option<String>,
}

/// What a send made of a message: its id and, on a FIFO queue, its
/// sequence number.
#[derive(Clone)]
struct Sent {
    id: String,
    sequence_number: Option<String>,
}

/// An open queue and what sends and receives need to know of it.
pub(super) struct Target {
    pub(super) name: String,
    pub(super) queue: Routed,
    pub(super) attributes: QueueAttributes,
    /// A FIFO queue: an ordered one.
    pub(super) fifo: bool,
    pub(super) extra: std::sync::Arc<Extra>,
}

pub(super) async fn target(ctx: &Ctx<'_>, input: &Input) -> SqsResult<Target> {
    let name = input.queue()?.to_owned();
    let queue = ctx.sqs.router.open(&name).await?;
    let attributes = queue.attributes().await?;
    let extra = ctx.sqs.extra.get(ctx.control(), &name).await?;
    Ok(Target {
        name,
        queue,
        fifo: attributes.kind == QueueKind::Ordered,
        attributes,
        extra,
    })
}

/// A FIFO message's SequenceNumber: its id, as SQS writes them (20 digits).
pub(super) fn sequence_number(id: i64) -> String {
    format!("{id:020}")
}

/// What every message to a FIFO queue needs; SQS refuses a whole batch when
/// one of its entries lacks it.
fn fifo_requirements(entry: &Input, target: &Target) -> SqsResult<()> {
    if entry.str("MessageGroupId").is_none() {
        return Err(SqsError::missing_parameter("MessageGroupId"));
    }
    if entry.str("MessageDeduplicationId").is_none() && !target.extra.content_based_dedup() {
        return Err(SqsError::invalid_parameter(
            "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
        ));
    }
    Ok(())
}

fn prepare(ctx: &Ctx<'_>, entry: &Input, target: &Target) -> SqsResult<Outgoing> {
    let body = entry.required("MessageBody")?;
    contents::check_body(body)?;
    let attributes = message::parse_attributes(entry.get("MessageAttributes"), false)?;
    let mut system = message::parse_attributes(entry.get("MessageSystemAttributes"), true)?;
    // What X-Ray and Lambda send as a header, SQS keeps as the attribute,
    // unless the message names one itself.
    if let Some(trace) = &ctx.trace_header {
        system
            .entry("AWSTraceHeader".to_owned())
            .or_insert_with(|| message::Attribute::string(trace));
    }
    let size = body.len() + message::attributes_size(&attributes);
    let limit = target.extra.max_message_size() as usize;
    if size > limit {
        return Err(SqsError::invalid_parameter(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
        )));
    }
    let mut delay = match entry.int("DelaySeconds")? {
        Some(d) if !(0..=900).contains(&d) => {
            return Err(SqsError::invalid_parameter(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )));
        }
        d => d,
    };
    let group = entry.str("MessageGroupId");
    let dedup_id = entry.str("MessageDeduplicationId");
    for (name, value) in [
        ("MessageGroupId", group),
        ("MessageDeduplicationId", dedup_id),
    ] {
        if let Some(v) = value
            && (v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(SqsError::invalid_parameter(format!(
                "Value {v} for parameter {name} is invalid. Reason: 1 to 128 printable ASCII characters."
            )));
        }
    }
    let mut envelope = Envelope {
        attributes,
        system,
        ..Default::default()
    };
    let mut dedup = None;
    if target.fifo {
        // A FIFO queue's messages take the queue's delay: an explicit 0 is
        // not an override, any other value is refused.
        if let Some(d) = delay.take().filter(|&d| d > 0) {
            return Err(SqsError::invalid_parameter(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
            )));
        }
        fifo_requirements(entry, target)?;
        let group = group.unwrap_or_default();
        let id = match dedup_id {
            Some(id) => id.to_owned(),
            None => fifo::content_id(body),
        };
        let by_group = target
            .extra
            .attributes
            .get("DeduplicationScope")
            .and_then(Value::as_str)
            == Some("messageGroup");
        dedup = Some(fifo::scoped(&id, by_group.then_some(group)));
        envelope.group = Some(group.to_owned());
        envelope.dedup_id = Some(id);
    }
    // A standard queue ignores MessageGroupId and MessageDeduplicationId,
    // as SQS does, so one send path can serve both kinds of queue.
    let md5_attributes =
        (!envelope.attributes.is_empty()).then(|| message::md5_of_attributes(&envelope.attributes));
    let md5_system =
        (!envelope.system.is_empty()).then(|| message::md5_of_attributes(&envelope.system));
    Ok(Outgoing {
        message: NewMessage {
            body: envelope.wrap(body),
            delay: delay.map(|d| Duration::from_secs(d as u64)),
            group: envelope.group.clone(),
        },
        md5_body: message::md5_hex(body.as_bytes()),
        md5_attributes,
        md5_system,
        dedup,
    })
}

fn sent(r: MessageRef, fifo: bool) -> Sent {
    Sent {
        id: r.to_uuid().to_string(),
        sequence_number: fifo.then(|| sequence_number(r.id)),
    }
}

/// Sends `batch` (in order) and says what became of each message.
async fn send_all(
    ctx: &Ctx<'_>,
    target: &Target,
    batch: &[Outgoing],
) -> SqsResult<Vec<SqsResult<Sent>>> {
    if target.fifo {
        send_fifo(ctx.control(), target, batch).await
    } else {
        send_standard(target, batch).await
    }
}

async fn send_standard(target: &Target, batch: &[Outgoing]) -> SqsResult<Vec<SqsResult<Sent>>> {
    let messages: Vec<NewMessage> = batch.iter().map(|o| o.message.clone()).collect();
    Ok(match target.queue.send_batch(&messages).await {
        Ok(refs) => refs.into_iter().map(|r| Ok(sent(r, false))).collect(),
        Err(Error::PartlySent { sent: refs, cause }) => {
            tracing::warn!(error = %cause, "SQS batch sent in part");
            refs.into_iter()
                .map(|r| r.map(|r| sent(r, false)).ok_or_else(SqsError::unavailable))
                .collect()
        }
        Err(e) => return Err(e.into()),
    })
}

/// Each deduplication key of a FIFO queue is claimed once: a key repeated
/// within the batch, or seen within the window, answers with the first
/// send's message.
async fn send_fifo(
    pool: &PgPool,
    target: &Target,
    batch: &[Outgoing],
) -> SqsResult<Vec<SqsResult<Sent>>> {
    let keys = distinct_keys(batch);
    let claims = fifo::claim(pool, &target.name, &keys).await?;
    let mut known: HashMap<String, Sent> = HashMap::new();
    let mut won = Vec::new();
    for (key, claim) in keys.into_iter().zip(claims) {
        match claim {
            Some((id, seq)) => {
                let first = Sent {
                    id,
                    sequence_number: Some(seq),
                };
                known.insert(key, first);
            }
            None => won.push(key),
        }
    }
    known.extend(send_claimed(pool, target, batch, &won).await?);
    Ok(batch
        .iter()
        .map(|o| {
            o.dedup
                .as_ref()
                .and_then(|k| known.get(k).cloned())
                .ok_or_else(SqsError::unavailable)
        })
        .collect())
}

/// The deduplication keys of `batch`, each once, in order.
fn distinct_keys(batch: &[Outgoing]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for key in batch.iter().filter_map(|o| o.dedup.as_ref()) {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// Sends the first message of each key in `won`, whose claims this batch
/// holds, and says what each key's send became.
async fn send_claimed(
    pool: &PgPool,
    target: &Target,
    batch: &[Outgoing],
    won: &[String],
) -> SqsResult<HashMap<String, Sent>> {
    let to_send: Vec<&Outgoing> = won
        .iter()
        .filter_map(|k| batch.iter().find(|o| o.dedup.as_ref() == Some(k)))
        .collect();
    if to_send.is_empty() {
        return Ok(HashMap::new());
    }
    let messages: Vec<NewMessage> = to_send.iter().map(|o| o.message.clone()).collect();
    let refs = match target.queue.send_batch(&messages).await {
        Ok(refs) => refs.into_iter().map(Some).collect(),
        Err(Error::PartlySent { sent, .. }) => sent,
        Err(e) => {
            fifo::release(pool, &target.name, won).await?;
            return Err(e.into());
        }
    };
    record_claimed(pool, target, won, refs).await
}

/// Records the message each sent key became, so a repeat within the window
/// answers with it, and frees the keys whose message was not sent.
async fn record_claimed(
    pool: &PgPool,
    target: &Target,
    won: &[String],
    refs: Vec<Option<MessageRef>>,
) -> SqsResult<HashMap<String, Sent>> {
    let mut known = HashMap::new();
    let (mut ids, mut messages, mut seqs, mut failed) = (vec![], vec![], vec![], vec![]);
    for (key, r) in won.iter().zip(refs) {
        match r {
            Some(r) => {
                let s = sent(r, true);
                ids.push(key.clone());
                messages.push(s.id.clone());
                seqs.push(s.sequence_number.clone().unwrap_or_default());
                known.insert(key.clone(), s);
            }
            None => failed.push(key.clone()),
        }
    }
    fifo::record(pool, &target.name, &ids, &messages, &seqs).await?;
    fifo::release(pool, &target.name, &failed).await?;
    Ok(known)
}

fn sent_fields(o: &Outgoing, s: &Sent) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("MessageId".into(), json!(s.id));
    out.insert("MD5OfMessageBody".into(), json!(o.md5_body));
    if let Some(md5) = &o.md5_attributes {
        out.insert("MD5OfMessageAttributes".into(), json!(md5));
    }
    if let Some(md5) = &o.md5_system {
        out.insert("MD5OfMessageSystemAttributes".into(), json!(md5));
    }
    if let Some(seq) = &s.sequence_number {
        out.insert("SequenceNumber".into(), json!(seq));
    }
    out
}

pub(super) async fn send(ctx: &Ctx<'_>, input: Input) -> Output {
    let target = target(ctx, &input).await?;
    let outgoing = prepare(ctx, &input, &target)?;
    let mut results = send_all(ctx, &target, std::slice::from_ref(&outgoing)).await?;
    let s = results.pop().expect("one result per message")?;
    Ok(sent_fields(&outgoing, &s))
}

pub(super) async fn send_batch(ctx: &Ctx<'_>, mut input: Input) -> Output {
    let target = target(ctx, &input).await?;
    let entries = input.entries("SendMessageBatch")?;
    // The batch's size is judged before its entries, as SQS does.
    let total: usize = entries
        .iter()
        .map(|e| {
            e.str("MessageBody").map_or(0, str::len)
                + message::parse_attributes(e.get("MessageAttributes"), false)
                    .map_or(0, |a| message::attributes_size(&a))
        })
        .sum();
    let limit = super::settings::MAX_MESSAGE_SIZE as usize;
    if total > limit {
        return Err(SqsError::batch_too_long(total, limit));
    }
    if target.fifo {
        for entry in &entries {
            fifo_requirements(entry, &target)?;
        }
    }
    let mut failed = Vec::new();
    let (mut ids, mut batch) = (Vec::new(), Vec::new());
    for entry in &entries {
        let id = entry.required("Id")?;
        match prepare(ctx, entry, &target) {
            Ok(o) => {
                ids.push(id);
                batch.push(o);
            }
            Err(e) => failed.push(batch_failure(id, &e)),
        }
    }
    let mut successful = Vec::new();
    if !batch.is_empty() {
        let results = send_all(ctx, &target, &batch).await?;
        for ((id, o), result) in ids.into_iter().zip(&batch).zip(results) {
            match result {
                Ok(s) => {
                    let mut fields = sent_fields(o, &s);
                    fields.insert("Id".into(), json!(id));
                    successful.push(Value::Object(fields));
                }
                Err(e) => failed.push(batch_failure(id, &e)),
            }
        }
    }
    Ok(batch_output(successful, failed))
}
