//! AddPermission and RemovePermission: statements of the queue's `Policy`,
//! kept and read back as SQS keeps them. Access itself is decided by the
//! endpoint's keys and grants (see `grants`), never by a policy.

use serde_json::{Map, Value, json};

use super::error::{SqsError, SqsResult};
use super::{Ctx, Input};

type Output = SqsResult<Map<String, Value>>;

/// The actions SQS lets a queue's owner share.
const SHAREABLE: &[&str] = &[
    "*",
    "ChangeMessageVisibility",
    "DeleteMessage",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
];

/// How many actions one AddPermission may name.
const MAX_ACTIONS: usize = 7;

pub(super) async fn add(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    let label = input.required("Label")?;
    let actions = input.strings("Actions");
    let accounts = input.strings("AWSAccountIds");
    check_statement(&actions, &accounts)?;
    ctx.sqs.router.open(name).await?;
    let mut policy = current(ctx, name).await?;
    let statements = statements(&mut policy);
    if statements.iter().any(|s| s["Sid"] == label) {
        return Err(label_invalid(label, "Already exists."));
    }
    let principals: Vec<String> = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let actions: Vec<String> = actions.iter().map(|a| format!("SQS:{a}")).collect();
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_many(principals)},
        "Action": one_or_many(actions),
        "Resource": ctx.arn(name),
    }));
    store(ctx, name, Some(policy)).await
}

pub(super) async fn remove(ctx: &Ctx<'_>, input: Input) -> Output {
    let name = input.queue()?;
    let label = input.required("Label")?;
    ctx.sqs.router.open(name).await?;
    let mut policy = current(ctx, name).await?;
    let statements = statements(&mut policy);
    let before = statements.len();
    statements.retain(|s| s["Sid"] != label);
    if statements.len() == before {
        return Err(label_invalid(label, "can't find label on existing policy."));
    }
    let left = !statements.is_empty();
    store(ctx, name, left.then_some(policy)).await
}

/// SQS's checks of a statement, in its order.
fn check_statement(actions: &[String], accounts: &[String]) -> SqsResult<()> {
    if actions.is_empty() {
        return Err(SqsError::missing_parameter("Actions"));
    }
    if accounts.is_empty() {
        return Err(SqsError::invalid_parameter(
            "Value [] for parameter PrincipalId is invalid. Reason: Unable to verify.",
        ));
    }
    if actions.len() > MAX_ACTIONS {
        return Err(SqsError::over_limit(format!(
            "{} Actions were found, maximum allowed is {MAX_ACTIONS}.",
            actions.len()
        )));
    }
    if let Some(a) = actions.iter().find(|a| !SHAREABLE.contains(&a.as_str())) {
        return Err(SqsError::invalid_parameter(format!(
            "Value SQS:{a} for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action."
        )));
    }
    Ok(())
}

fn label_invalid(label: &str, why: &str) -> SqsError {
    SqsError::invalid_parameter(format!(
        "Value {label} for parameter Label is invalid. Reason: {why}"
    ))
}

/// The queue's policy, or the empty one SQS starts from.
async fn current(ctx: &Ctx<'_>, name: &str) -> SqsResult<Value> {
    let extra = ctx.sqs.extra.get(ctx.control(), name).await?;
    let stored = extra
        .get("Policy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .filter(Value::is_object);
    Ok(stored.unwrap_or_else(|| {
        json!({
            "Version": "2012-10-17",
            "Id": format!("{}/SQSDefaultPolicy", ctx.arn(name)),
            "Statement": [],
        })
    }))
}

fn statements(policy: &mut Value) -> &mut Vec<Value> {
    if !policy["Statement"].is_array() {
        policy["Statement"] = json!([]);
    }
    policy["Statement"]
        .as_array_mut()
        .expect("made an array above")
}

/// A list of one is written as its item, as IAM policies are.
fn one_or_many(items: Vec<String>) -> Value {
    match <[String; 1]>::try_from(items) {
        Ok([one]) => Value::String(one),
        Err(many) => json!(many),
    }
}

/// Stores `policy`, or removes it when no statement is left.
async fn store(ctx: &Ctx<'_>, name: &str, policy: Option<Value>) -> Output {
    let mut change = Map::new();
    let value = policy.map_or(Value::Null, |p| Value::String(p.to_string()));
    change.insert("Policy".into(), value);
    ctx.sqs.extra.store(ctx.control(), name, &change).await?;
    Ok(Map::new())
}
