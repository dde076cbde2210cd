//! Streamed uploads: a single PUT for small objects, a multipart upload
//! (aborted on any failure, and when the upload is dropped unfinished) for
//! large ones, at most one part in memory at a time, held as the chunks it
//! arrived in.

use std::convert::Infallible;

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body::Frame;
use http_body_util::StreamBody;

use super::{Storage, StorageError, crc32_header, s3_error, send_unsigned};

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
        let mut held = Held::default();
        held.push(head);
        let mut upload: Option<MultipartUpload> = None;
        let result = async {
            while let Some(chunk) = rest.next().await {
                let chunk = chunk.map_err(|e| StorageError::Source(e.to_string()))?;
                if held.total + chunk.len() as u64 > max_bytes {
                    return Err(StorageError::TooLarge { limit: max_bytes });
                }
                held.push(chunk);
                if held.len >= PART_SIZE {
                    if upload.is_none() {
                        upload = Some(self.start_multipart(key, content_type).await?);
                    }
                    if let Some(u) = upload.as_mut() {
                        self.upload_part(u, held.take()).await?;
                    }
                }
            }
            match upload.as_mut() {
                None => self.put_body(key, held.take(), content_type).await,
                Some(u) => {
                    if held.len > 0 {
                        self.upload_part(u, held.take()).await?;
                    }
                    self.complete_multipart(u).await
                }
            }
        }
        .await;
        result.map(|()| held.total)
    }

    /// One PUT of `body`, with its length and CRC32.
    pub(super) async fn put_body(
        &self,
        key: &str,
        body: Body,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(body.len as i64)
            .checksum_crc32(body.crc32.clone())
            .body(body.stream());
        send_unsigned!(request)?;
        Ok(())
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
            storage: Some(self.clone()),
        })
    }

    async fn upload_part(&self, u: &mut MultipartUpload, body: Body) -> Result<(), StorageError> {
        let number = u.parts.len() as i32 + 1;
        let checksum = body.crc32.clone();
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&u.key)
            .upload_id(&u.id)
            .part_number(number)
            .content_length(body.len as i64)
            .checksum_crc32(checksum.clone())
            .body(body.stream());
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
        u.storage = None;
        Ok(())
    }
}

/// What has arrived of an object and is not sent yet, as the chunks it came
/// in: a part is sent from them as they are, where gathering them into one
/// buffer would copy every byte once more (user-space copies were a fifth
/// of the web's CPU on uploads, 15 % without this one; see the README).
#[derive(Default)]
struct Held {
    chunks: Vec<Bytes>,
    /// Bytes held.
    len: usize,
    /// Bytes of the object so far, sent or held.
    total: u64,
    crc: crc32fast::Hasher,
}

impl Held {
    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.crc.update(&chunk);
        self.len += chunk.len();
        self.total += chunk.len() as u64;
        self.chunks.push(chunk);
    }

    /// The bytes held, as a body to send; holds none after.
    fn take(&mut self) -> Body {
        let crc = std::mem::take(&mut self.crc).finalize();
        Body {
            len: std::mem::take(&mut self.len),
            crc32: crc32_header(crc),
            chunks: std::mem::take(&mut self.chunks),
        }
    }
}

/// A request body of chunks, with its length and `x-amz-checksum-crc32`.
pub(super) struct Body {
    chunks: Vec<Bytes>,
    len: usize,
    crc32: String,
}

impl Body {
    /// `bytes` as a body of one chunk.
    pub(super) fn whole(bytes: Bytes) -> Self {
        let mut held = Held::default();
        held.push(bytes);
        held.take()
    }

    /// The chunks as a stream the SDK can start again on a retry (each
    /// start clones the handles to the chunks, not their bytes).
    fn stream(&self) -> ByteStream {
        let chunks = self.chunks.clone();
        ByteStream::new(SdkBody::retryable(move || {
            let frames = chunks
                .clone()
                .into_iter()
                .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
            SdkBody::from_body_1_x(StreamBody::new(futures::stream::iter(frames)))
        }))
    }
}

struct MultipartUpload {
    key: String,
    id: String,
    parts: Vec<CompletedPart>,
    /// Where to abort it; `None` once completed.
    storage: Option<Storage>,
}

/// An upload that ends unfinished, by an error or because its request was
/// dropped (a client gone, a request timed out), is aborted: its parts
/// would otherwise stay in the bucket, billed and listed under no key,
/// where no job's expiry finds them.
impl Drop for MultipartUpload {
    fn drop(&mut self) {
        let Some(storage) = self.storage.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                key = self.key,
                "an unfinished multipart upload is left with no runtime to abort it"
            );
            return;
        };
        let (key, id) = (std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        runtime.spawn(async move {
            let aborted = storage
                .client
                .abort_multipart_upload()
                .bucket(&storage.bucket)
                .key(&key)
                .upload_id(&id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(key, error = %s3_error(e), "aborting an unfinished multipart upload failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn held_chunks_are_sent_as_they_came_with_the_crc_of_the_whole() {
        let chunks = [
            Bytes::from_static(b"first chunk, "),
            Bytes::new(),
            Bytes::from(vec![7u8; 70_000]),
        ];
        let mut held = Held::default();
        for c in &chunks {
            held.push(c.clone());
        }
        let body = held.take();
        assert_eq!((held.len, held.total), (0, 70_013));
        // The very bytes that arrived, not copies of them.
        let sent: Vec<*const u8> = body.chunks.iter().map(|c| c.as_ptr()).collect();
        assert_eq!(sent, [chunks[0].as_ptr(), chunks[2].as_ptr()]);
        let whole = [&chunks[0][..], &chunks[2][..]].concat();
        assert_eq!(body.len, whole.len());
        assert_eq!(body.crc32, crc32_header(crc32fast::hash(&whole)));
        // The SDK's retry clones the body and starts again from the first byte.
        let first = body.stream().into_inner();
        let retry = first.try_clone().expect("a retryable body");
        for b in [first, retry] {
            let got = ByteStream::new(b).collect().await.unwrap().into_bytes();
            assert_eq!(got, whole);
        }
    }
}
