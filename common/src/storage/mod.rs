//! S3-compatible object storage (MinIO, AWS S3, s3s-fs, ...).

use std::time::Duration;

mod upload;

use anyhow::Context;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;

/// S3 settings shared by every binary.
#[derive(clap::Args, Clone, Debug)]
pub struct StorageArgs {
    /// S3 endpoint URL, e.g. http://127.0.0.1:9000 for MinIO (default: AWS S3).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// S3 region (default us-east-1).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// S3 access key (default: the AWS credential chain).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key_id: Option<String>,
    /// S3 secret key (default: the AWS credential chain).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// Bucket for originals and outputs, created when missing (default darkroom).
    #[arg(long, env = "DARKROOM_BUCKET", default_value = "darkroom")]
    pub bucket: String,
}

/// Storage failures. All but [`StorageError::NotFound`] and
/// [`StorageError::TooLarge`] are worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object `{0}` does not exist")]
    NotFound(String),
    #[error("upload is over the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("reading the upload failed: {0}")]
    Source(String),
    #[error("S3 request failed: {0}")]
    S3(String),
}

fn s3_error<E: std::error::Error + 'static>(e: E) -> StorageError {
    StorageError::S3(DisplayErrorContext(e).to_string())
}

/// The `x-amz-checksum-crc32` header of a body we send, from its CRC32
/// (computed as the body arrives, see `upload`). The server checks it, so
/// the payload need not be signed: SigV4's payload hash costs a SHA-256 pass
/// on both ends for the same protection, and these bodies are whole photos.
fn crc32_header(crc: u32) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// Sends a request whose body carries its `crc32`, unsigned (see there).
/// A macro because each operation's request is a type of its own.
macro_rules! send_unsigned {
    ($request:expr) => {
        $request
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(s3_error)
    };
}
use send_unsigned;

/// A bucket on an S3-compatible server.
#[derive(Clone, Debug)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    bucket: String,
    endpoint: String,
}

impl Storage {
    /// Builds the client and creates the bucket when missing.
    pub async fn connect(args: &StorageArgs) -> anyhow::Result<Storage> {
        let storage = Self::new(args).await;
        storage.ensure_bucket().await?;
        Ok(storage)
    }

    /// Builds the client without touching the network.
    pub async fn new(args: &StorageArgs) -> Storage {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(args.region.clone()))
            .load()
            .await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            // MinIO and most self-hosted servers only do path-style buckets.
            .force_path_style(true)
            // Many S3-compatible servers reject the newer default checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(endpoint) = &args.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        if let (Some(key), Some(secret)) = (&args.access_key_id, &args.secret_access_key) {
            config = config.credentials_provider(Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "darkroom-config",
            ));
        }
        Storage {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: args.bucket.clone(),
            endpoint: args
                .endpoint_url
                .clone()
                .unwrap_or_else(|| "AWS S3".to_owned()),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn ensure_bucket(&self) -> anyhow::Result<()> {
        let hint = || {
            format!(
                "cannot use bucket `{}` at {}: is the S3 server running and are \
                 AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY right?",
                self.bucket, self.endpoint
            )
        };
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
            Err(e) => return Err(anyhow::anyhow!("{}", DisplayErrorContext(e))).with_context(hint),
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!("{}", DisplayErrorContext(e))).with_context(hint),
        }
    }

    /// Answers when the bucket is reachable.
    pub async fn health(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.put_body(key, upload::Body::whole(body), content_type)
            .await
    }

    /// Keys of every object whose key starts with `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(s3_error)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }

    /// Deletes an object; deleting one that is not there succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    /// Deletes every object whose key starts with `prefix`, a thousand per
    /// request. Returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let keys = self.list(prefix).await?;
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|key| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(s3_error)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(s3_error)?,
                )
                .send()
                .await
                .map_err(s3_error)?;
            if let Some(error) = out.errors().first() {
                return Err(StorageError::S3(format!(
                    "deleting `{}`: {}",
                    error.key().unwrap_or("?"),
                    error.message().unwrap_or("failed")
                )));
            }
        }
        Ok(keys.len())
    }

    /// Opens an object for streaming.
    pub async fn get_stream(&self, key: &str) -> Result<ByteStream, StorageError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(out.body),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                Err(StorageError::NotFound(key.to_owned()))
            }
            Err(e) => Err(s3_error(e)),
        }
    }
}
