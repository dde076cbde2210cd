//! Regions, as SQS keeps them apart: a queue lives in the region its
//! requests are signed for, and the same name in two regions is two queues.
//!
//! The endpoint's own region (`DARKROOM_SQS_REGION`) keeps its queues under
//! their names, so the native API, the CLI and the product's `darkroom.`
//! queues see them as they are. Another region's queue `orders` is the
//! native queue `us-west-2.orders`: SQS names hold no `.` before `.fifo`,
//! so no queue of the endpoint's region can be mistaken for one.

use super::error::{SqsError, SqsResult};

/// The native queue behind the SQS queue `name` of `region`.
pub(crate) fn native(name: &str, region: &str, home: &str) -> String {
    if region == home || region.is_empty() {
        name.to_owned()
    } else {
        format!("{region}.{name}")
    }
}

/// The region and SQS name of the native queue `native`.
pub(crate) fn split<'n>(native: &'n str, home: &'n str) -> (&'n str, &'n str) {
    match native.split_once('.') {
        Some((region, name)) if is_region(region) => (region, name),
        _ => (home, native),
    }
}

/// The native queue an SQS queue ARN names.
pub(crate) fn native_of_arn(arn: &str, home: &str) -> SqsResult<String> {
    let name = name_of_arn(arn)?;
    let region = arn.split(':').nth(3).unwrap_or_default();
    Ok(native(name, region, home))
}

/// The queue name an ARN names (`arn:aws:sqs:region:account:name`).
fn name_of_arn(arn: &str) -> SqsResult<&str> {
    match arn.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "sqs", _, _, name] if !name.is_empty() => Ok(name),
        _ => Err(SqsError::invalid_parameter(format!(
            "`{}` is not an SQS queue ARN.",
            arn.chars().take(200).collect::<String>()
        ))),
    }
}

/// Whether `s` reads as an AWS region: `us-west-2`, `eu-central-1`,
/// `us-gov-west-1`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_region_keeps_names_and_others_prefix_them() {
        assert_eq!(native("orders", "us-east-1", "us-east-1"), "orders");
        assert_eq!(
            native("orders", "us-west-2", "us-east-1"),
            "us-west-2.orders"
        );
        assert_eq!(
            split("us-west-2.orders.fifo", "us-east-1"),
            ("us-west-2", "orders.fifo")
        );
        assert_eq!(split("orders", "us-east-1"), ("us-east-1", "orders"));
        // Native names with a dot that is no region stay the home region's.
        assert_eq!(
            split("darkroom.requests", "us-east-1"),
            ("us-east-1", "darkroom.requests")
        );
        assert_eq!(
            split("us-gov-west-1.q", "us-east-1"),
            ("us-gov-west-1", "q")
        );
    }

    #[test]
    fn an_arn_names_the_queue_of_its_region() {
        let home = "us-east-1";
        let arn = "arn:aws:sqs:eu-west-1:000000000000:dlq";
        assert_eq!(native_of_arn(arn, home).unwrap(), "eu-west-1.dlq");
        let arn = "arn:aws:sqs:us-east-1:000000000000:dlq";
        assert_eq!(native_of_arn(arn, home).unwrap(), "dlq");
        assert!(native_of_arn("arn:aws:s3:::bucket", home).is_err());
    }
}
