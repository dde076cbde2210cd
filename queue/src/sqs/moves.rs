//! Message move tasks (StartMessageMoveTask, ListMessageMoveTasks,
//! CancelMessageMoveTask): SQS's redrive from a dead letter queue. A task
//! runs to its end within the request that starts it; the endpoint
//! remembers the latest thousand for listing.

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::error::{SqsError, SqsResult};
use super::queues::sources_of;
use super::{Ctx, Input};
use crate::Error;

type Output = SqsResult<Map<String, Value>>;

fn output(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A finished message move: redrive runs to its end within the request.
#[derive(Clone, Debug)]
pub(super) struct MoveTask {
    handle: String,
    source_arn: String,
    destination_arn: Option<String>,
    moved: u64,
    started: i64,
}

pub(super) async fn start(ctx: &Ctx<'_>, input: Input) -> Output {
    let source_arn = input.required("SourceArn")?.to_owned();
    let dlq = ctx.native_of_arn(&source_arn)?;
    let destination_arn = input.str("DestinationArn").map(str::to_owned);
    let router = &ctx.sqs.router;
    let dead_letters = match router.open(&dlq).await {
        Ok(q) => q,
        Err(Error::QueueNotFound(_)) => {
            return Err(SqsError::resource_not_found(
                "The resource that you specified for the SourceArn parameter doesn't exist.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let sources = sources_of(ctx, &dlq).await?;
    if sources.is_empty() {
        return Err(SqsError::invalid_parameter(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    let started = Utc::now().timestamp_millis();
    let moved = match &destination_arn {
        // Back where each message came from: the queue's own redrive. A
        // move sends, so the key must be one that may send where it moves.
        None => {
            for source in &sources {
                ctx.access.check("SendMessage", source)?;
            }
            let mut moved = 0;
            for source in &sources {
                moved += router.open(source).await?.redrive().await?;
            }
            moved
        }
        Some(arn) => {
            let name = ctx.native_of_arn(arn)?;
            ctx.access.check("SendMessage", &name)?;
            let destination = router.open(&name).await?;
            move_all(&dead_letters, &destination).await?
        }
    };
    let handle = uuid::Uuid::new_v4().to_string();
    let task = MoveTask {
        handle: handle.clone(),
        source_arn,
        destination_arn,
        moved,
        started,
    };
    let mut moves = ctx.sqs.moves.lock().expect("moves lock");
    moves.push(task);
    // Only the latest tasks are listed, as SQS lists at most ten per source.
    let excess = moves.len().saturating_sub(1000);
    moves.drain(..excess);
    Ok(output(json!({ "TaskHandle": handle })))
}

/// Moves every message of `from` to `to`: receive, send, delete, so a
/// crash in between repeats a message and never loses one.
async fn move_all(from: &crate::Routed, to: &crate::Routed) -> SqsResult<u64> {
    let mut moved = 0;
    loop {
        let batch = from
            .receive(crate::MAX_BATCH, std::time::Duration::from_secs(60))
            .await?;
        if batch.is_empty() {
            return Ok(moved);
        }
        let messages: Vec<_> = batch
            .iter()
            .map(|m| crate::NewMessage::new(m.body.clone()))
            .collect();
        to.send_batch(&messages).await?;
        let receipts: Vec<_> = batch.iter().map(|m| m.receipt).collect();
        from.delete_batch(&receipts).await?;
        moved += batch.len() as u64;
    }
}

pub(super) async fn list(ctx: &Ctx<'_>, input: Input) -> Output {
    let source_arn = input.required("SourceArn")?;
    let max = input.int_in("MaxResults", 1, 10)?.unwrap_or(1) as usize;
    let moves = ctx.sqs.moves.lock().expect("moves lock");
    let results: Vec<Value> = moves
        .iter()
        .rev()
        .filter(|t| t.source_arn == source_arn)
        .take(max)
        .map(|t| {
            let mut v = json!({
                "TaskHandle": t.handle,
                "Status": "COMPLETED",
                "SourceArn": t.source_arn,
                "ApproximateNumberOfMessagesMoved": t.moved,
                "ApproximateNumberOfMessagesToMove": t.moved,
                "StartedTimestamp": t.started,
            });
            if let Some(d) = &t.destination_arn {
                v["DestinationArn"] = json!(d);
            }
            v
        })
        .collect();
    Ok(output(json!({ "Results": results })))
}

pub(super) async fn cancel(ctx: &Ctx<'_>, input: Input) -> Output {
    let handle = input.required("TaskHandle")?;
    let known = ctx
        .sqs
        .moves
        .lock()
        .expect("moves lock")
        .iter()
        .any(|t| t.handle == handle);
    if known {
        Err(SqsError::unsupported(
            "The task has already completed: moves run to their end when started.",
        ))
    } else {
        Err(SqsError::resource_not_found("No such message move task."))
    }
}
