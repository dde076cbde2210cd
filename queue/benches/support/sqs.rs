//! What the SQS benches share: their endpoint's key, and a client signing
//! with it.

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use queue::SqsConfig;

const KEY_ID: &str = "AKIDBENCH";
const SECRET: &str = "sqs-bench-secret";

/// The endpoint's settings: the bench key alone.
pub fn config() -> SqsConfig {
    SqsConfig {
        keys: format!("{KEY_ID}:{SECRET}").parse().unwrap(),
        ..SqsConfig::default()
    }
}

/// An SDK client of the endpoint at `base`, signing with the bench key.
pub fn client(base: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(base)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(KEY_ID, SECRET, None, None, "bench"))
            .build(),
    )
}
