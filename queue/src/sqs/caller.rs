//! STS's GetCallerIdentity, answered here: tools and test fixtures look up
//! the account id that way before they build queue URLs and ARNs, and
//! would otherwise need a second service beside this endpoint. Like STS,
//! it needs no grant.

use serde_json::{Map, Value, json};

use super::Ctx;
use super::error::SqsResult;

pub(super) fn identity(ctx: &Ctx<'_>) -> SqsResult<Map<String, Value>> {
    let account = &ctx.sqs.config.account_id;
    let key = ctx.access.key_id();
    let Value::Object(out) = json!({
        "UserId": key,
        "Account": account,
        "Arn": format!("arn:aws:iam::{account}:user/{key}"),
    }) else {
        unreachable!("a JSON object literal")
    };
    Ok(out)
}
