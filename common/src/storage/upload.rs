//! Streamed uploads: a single PUT for small objects, a multipart upload
//! (aborted on any failure) for large ones, one part in memory at a time.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::{Storage, StorageError, crc32, s3_error, send_unsigned};

/// Smallest part S3 accepts in a multipart upload (but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;

impl Storage {
    /// Streams `head` then `rest` into one object, holding at most one part
    /// in memory: a single PUT for small objects, a multipart upload (aborted
    /// on any failure) for large ones. Returns the size.
    pub async fn put_stream<S, E>(
        &self,
        key: &str,
        content_type: &str,
        head: Bytes,
        mut rest: S,
        max_bytes: u64,
    ) -> Result<u64, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        // A part's worth reserved up front: growing by doubling would copy
        // the bytes again and briefly hold two buffers.
        let mut buf = BytesMut::with_capacity(PART_SIZE);
        buf.extend_from_slice(&head);
        let mut total = head.len() as u64;
        let mut upload: Option<MultipartUpload> = None;
        let result = async {
            while let Some(chunk) = rest.next().await {
                let chunk = chunk.map_err(|e| StorageError::Source(e.to_string()))?;
                total += chunk.len() as u64;
                if total > max_bytes {
                    return Err(StorageError::TooLarge { limit: max_bytes });
                }
                buf.extend_from_slice(&chunk);
                if buf.len() >= PART_SIZE {
                    let part = buf.split().freeze();
                    buf.reserve(PART_SIZE);
                    if upload.is_none() {
                        upload = Some(self.start_multipart(key, content_type).await?);
                    }
                    if let Some(u) = upload.as_mut() {
                        self.upload_part(u, part).await?;
                    }
                }
            }
            match upload.as_mut() {
                None => self.put(key, buf.split().freeze(), content_type).await,
                Some(u) => {
                    if !buf.is_empty() {
                        self.upload_part(u, buf.split().freeze()).await?;
                    }
                    self.complete_multipart(u).await
                }
            }
        }
        .await;
        if result.is_err()
            && let Some(u) = &upload
        {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&u.key)
                .upload_id(&u.id)
                .send()
                .await;
        }
        result.map(|()| total)
    }

    async fn start_multipart(
        &self,
        key: &str,
        content_type: &str,
    ) -> Result<MultipartUpload, StorageError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // Declared up front: S3 refuses parts that carry a checksum of a
            // kind the upload was not created with.
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(s3_error)?;
        Ok(MultipartUpload {
            key: key.to_owned(),
            id: out.upload_id.unwrap_or_default(),
            parts: Vec::new(),
        })
    }

    async fn upload_part(&self, u: &mut MultipartUpload, body: Bytes) -> Result<(), StorageError> {
        let number = u.parts.len() as i32 + 1;
        let checksum = crc32(&body);
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&u.key)
            .upload_id(&u.id)
            .part_number(number)
            .checksum_crc32(checksum.clone())
            .body(ByteStream::from(body));
        let out = send_unsigned!(request)?;
        u.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .checksum_crc32(checksum)
                .build(),
        );
        Ok(())
    }

    async fn complete_multipart(&self, u: &mut MultipartUpload) -> Result<(), StorageError> {
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&u.key)
            .upload_id(&u.id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut u.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }
}

struct MultipartUpload {
    key: String,
    id: String,
    parts: Vec<CompletedPart>,
}
