//! Queue actions: create, find, list, delete, attributes, tags and
//! dead letter sources.

use serde_json::{Map, Value, json};

use super::claims::{self, Claim};
use super::error::{SqsError, SqsResult};
use super::settings::{self, READABLE};
use super::{Ctx, Input, is_sqs_word};
use crate::{Error, QueueAttributes, QueueKind};

type Output = SqsResult<Map<String, Value>>;

fn output(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn check_name(name: &str) -> SqsResult<bool> {
    let fifo = name.ends_with(".fifo");
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    if !is_sqs_word(stem) || name.len() > 80 {
        return Err(SqsError::invalid_parameter(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    Ok(fifo)
}

pub(super) async fn create(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.required("QueueName")?;
    let fifo = check_name(ctx.sqs_name(name).unwrap_or(name))?;
    let mut requested = input.map("Attributes");
    let fifo_asked = requested
        .get("FifoQueue")
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if fifo_asked != fifo {
        return Err(SqsError::invalid_parameter(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix: set FifoQueue=true exactly when the name ends in .fifo.",
        ));
    }
    let router = &ctx.sqs.router;
    match router.open(name).await {
        Ok(queue) => {
            // SQS answers with the existing queue when every attribute asked
            // for already has the value asked.
            let current = describe(ctx, name, &queue).await?;
            requested.remove("FifoQueue");
            let differs = requested.iter().any(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                current.get(k).and_then(Value::as_str) != Some(v.as_str())
                    && !(k == "RedrivePolicy" && same_policy(current.get(k), &v))
            });
            if differs || (queue.attributes().await?.kind == QueueKind::Ordered) != fifo {
                return Err(SqsError::queue_exists(name));
            }
        }
        Err(Error::QueueNotFound(_)) => {
            if claims::held(ctx.control(), name, Claim::Deletion).await? {
                return Err(SqsError::deleted_recently());
            }
            let defaults = QueueAttributes::default();
            let change = settings::apply(defaults, &requested, fifo, true, ctx.home())?;
            check_dead_letter_queue(ctx, &change.native, fifo, None).await?;
            router.put(name, &change.native).await?;
            ctx.sqs
                .extra
                .store(ctx.control(), name, &change.extra)
                .await?;
            let tags = match input.get("tags").or(input.get("Tags")) {
                Some(Value::Object(t)) => t.clone(),
                _ => Map::new(),
            };
            if !tags.is_empty() {
                ctx.sqs.extra.retag(ctx.control(), name, &tags, &[]).await?;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(output(json!({ "QueueUrl": ctx.queue_url(name) })))
}

fn same_policy(current: Option<&Value>, asked: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
    let norm = |v: Option<Value>| {
        v.map(|v| {
            (
                v.get("deadLetterTargetArn").cloned(),
                v.get("maxReceiveCount")
                    .map(|m| m.as_str().map(str::to_owned).unwrap_or(m.to_string())),
            )
        })
    };
    norm(current.and_then(Value::as_str).and_then(parse)) == norm(parse(asked))
}

/// A redrive policy must name an existing queue of the same type, and one
/// the key may send to when the request names it: dead-lettering sends
/// there, and a key could otherwise reach a queue it may not send to (the
/// workers' requests) through a queue of its own.
async fn check_dead_letter_queue(
    ctx: &Ctx<'_>,
    native: &QueueAttributes,
    fifo: bool,
    before: Option<&str>,
) -> SqsResult<()> {
    let Some(dlq) = &native.dead_letter_queue else {
        return Ok(());
    };
    if before != Some(dlq.as_str()) {
        ctx.access.check("SendMessage", dlq)?;
    }
    let invalid = |why: &str| {
        SqsError::invalid_parameter(format!(
            "Value for parameter RedrivePolicy is invalid. Reason: {why}"
        ))
    };
    match ctx.sqs.router.open(dlq).await {
        Ok(q) => {
            if (q.attributes().await?.kind == QueueKind::Ordered) != fifo {
                return Err(invalid(
                    "Dead-letter target must be the same type of queue (FIFO or standard) as the source.",
                ));
            }
            Ok(())
        }
        Err(Error::QueueNotFound(_)) => Err(invalid("Dead letter target does not exist.")),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get_url(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.required("QueueName")?;
    ctx.sqs.router.open(name).await?;
    Ok(output(json!({ "QueueUrl": ctx.queue_url(name) })))
}

/// Pages of names after `NextToken` (the last name of the previous page).
fn page(names: Vec<String>, input: &Input, ctx: &Ctx<'_>, key: &str) -> Output {
    let max = input.int_in("MaxResults", 1, 1000)?;
    let after = input.str("NextToken").unwrap_or_default().to_owned();
    let mut names: Vec<String> = names.into_iter().filter(|n| *n > after).collect();
    let mut out = Map::new();
    let limit = max.unwrap_or(1000) as usize;
    if names.len() > limit {
        names.truncate(limit);
        if max.is_some() {
            out.insert("NextToken".into(), json!(names.last()));
        }
    }
    if !names.is_empty() || key == "queueUrls" {
        let urls: Vec<String> = names.iter().map(|n| ctx.queue_url(n)).collect();
        out.insert(key.into(), json!(urls));
    }
    Ok(out)
}

pub(super) async fn list(ctx: &Ctx<'_>, input: Input) -> Output {
    let prefix = input.str("QueueNamePrefix").unwrap_or_default();
    let names = ctx
        .sqs
        .router
        .list()
        .await?
        .into_iter()
        .filter(|n| {
            ctx.sqs_name(n).is_some_and(|s| s.starts_with(prefix))
                && ctx.access.may("ListQueues", n)
        })
        .collect();
    page(names, &input, ctx, "QueueUrls")
}

pub(super) async fn delete(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    ctx.sqs.router.delete(name).await?;
    ctx.sqs.extra.forget(name);
    claims::take(ctx.control(), name, Claim::Deletion).await?;
    Ok(Map::new())
}

async fn describe(ctx: &Ctx<'_>, name: &str, queue: &crate::Routed) -> Output {
    let native = queue.attributes().await?;
    let extra = ctx.sqs.extra.get(ctx.control(), name).await?;
    let stats = queue.stats().await?;
    Ok(settings::describe(
        &native,
        &extra,
        &stats,
        &ctx.arn(name),
        |dlq| ctx.arn(dlq),
    ))
}

pub(super) async fn get_attributes(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    let queue = ctx.sqs.router.open(name).await?;
    let asked = input.strings("AttributeNames");
    for a in &asked {
        if a != "All" && !READABLE.contains(&a.as_str()) {
            return Err(SqsError::invalid_attribute_name(a));
        }
    }
    if asked.is_empty() {
        return Ok(Map::new());
    }
    let all = describe(ctx, name, &queue).await?;
    let attributes: Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| asked.iter().any(|a| a == "All" || a == k))
        .collect();
    if attributes.is_empty() {
        return Ok(Map::new());
    }
    Ok(output(json!({ "Attributes": attributes })))
}

pub(super) async fn set_attributes(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    let queue = ctx.sqs.router.open(name).await?;
    let current = queue.attributes().await?;
    let fifo = current.kind == QueueKind::Ordered;
    let before = current.dead_letter_queue.clone();
    let mut asked = input.map("Attributes");
    asked.retain(|k, _| k != "FifoQueue" || !fifo);
    let change = settings::apply(current, &asked, fifo, false, ctx.home())?;
    check_dead_letter_queue(ctx, &change.native, fifo, before.as_deref()).await?;
    ctx.sqs.router.put(name, &change.native).await?;
    ctx.sqs
        .extra
        .store(ctx.control(), name, &change.extra)
        .await?;
    Ok(Map::new())
}

pub(super) async fn dead_letter_sources(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    ctx.sqs.router.open(name).await?;
    let mut sources = sources_of(ctx, name).await?;
    sources.retain(|n| ctx.access.may("ListDeadLetterSourceQueues", n));
    page(sources, &input, ctx, "queueUrls")
}

/// The queues whose dead letter queue is `dlq`.
pub(super) async fn sources_of(ctx: &Ctx<'_>, dlq: &str) -> SqsResult<Vec<String>> {
    let mut sources = Vec::new();
    for name in ctx.sqs.router.list().await? {
        let Ok(queue) = ctx.sqs.router.open(&name).await else {
            continue;
        };
        if queue.attributes().await?.dead_letter_queue.as_deref() == Some(dlq) {
            sources.push(name);
        }
    }
    Ok(sources)
}

pub(super) async fn tag(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    ctx.sqs.router.open(name).await?;
    let tags = input.map("Tags");
    if tags.is_empty() {
        return Err(SqsError::missing_parameter("Tags"));
    }
    let extra = ctx.sqs.extra.get(ctx.control(), name).await?;
    let after = tags
        .keys()
        .chain(extra.tags.keys())
        .collect::<std::collections::HashSet<_>>()
        .len();
    if after > 50 {
        return Err(SqsError::invalid_parameter(format!(
            "Too many tags added for queue {name}."
        )));
    }
    ctx.sqs.extra.retag(ctx.control(), name, &tags, &[]).await?;
    Ok(Map::new())
}

pub(super) async fn untag(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    ctx.sqs.router.open(name).await?;
    let keys = input.strings("TagKeys");
    if keys.is_empty() || keys.iter().any(|k| k.is_empty() || k.len() > 128) {
        return Err(SqsError::invalid_parameter(
            "Tag keys must be between 1 and 128 characters in length.",
        ));
    }
    ctx.sqs
        .extra
        .retag(ctx.control(), name, &Map::new(), &keys)
        .await?;
    Ok(Map::new())
}

pub(super) async fn list_tags(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    ctx.sqs.router.open(name).await?;
    let extra = ctx.sqs.extra.get(ctx.control(), name).await?;
    if extra.tags.is_empty() {
        return Ok(Map::new());
    }
    Ok(output(json!({ "Tags": extra.tags })))
}
