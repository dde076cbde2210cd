//! One uploaded file: read its head, judge it, charge its work, stream it to
//! S3, record it. A file refused leaves nothing behind.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use common::probe::{self, ImageFormat, Probe, ProbeError};
use common::protocol;
use common::recipe::Recipe;
use common::storage::StorageError;
use futures::StreamExt;

use uuid::Uuid;

use super::record::Image;
use super::{Accepted, Cut, job_full};
use crate::AppState;
use crate::rate::{Limited, PER_MESSAGE};

/// Bytes read before judging a file: enough for the headers of common formats.
const SNIFF_BYTES: usize = 64 * 1024;

/// Why a file was not kept.
pub(super) enum FileError {
    /// This file is refused; the others go on.
    Rejected(String),
    /// The request's size limit was reached while reading this file.
    TooLarge,
    /// The client may not ask for this file's work now.
    Limited(Limited),
    Internal(anyhow::Error),
}

impl FileError {
    /// What to tell the client about the file, and whether the request stops
    /// here.
    pub(super) fn explain(self, upload: &Upload<'_>) -> (String, Option<Cut>) {
        match self {
            FileError::Rejected(error) => {
                crate::metrics::upload_rejected();
                (error, None)
            }
            FileError::TooLarge => (
                format!(
                    "the request went over its limit of {} bytes (DARKROOM_MAX_REQUEST_BYTES) \
                     while this file was read; send it in another request",
                    upload.state.settings.max_request_bytes
                ),
                Some(Cut::TooLarge),
            ),
            FileError::Limited(limited) => (
                format!(
                    "not read: you have asked for too much processing for now; send it again \
                     in {} s",
                    limited.retry_after.as_secs().max(1)
                ),
                Some(Cut::Limited(limited)),
            ),
            FileError::Internal(e) => {
                tracing::error!(job = %upload.job_id, error = format!("{e:#}"), "storing an upload failed");
                (
                    "could not be stored (a server fault, logged); send it again".into(),
                    Some(Cut::Unavailable),
                )
            }
        }
    }
}

/// A user's file name, kept for display only: it never reaches a key or path.
/// Controls go, and so do Unicode format characters (general category Cf):
/// a right-to-left override can make `photo\u{202e}gpj.exe` show as
/// `photoexe.jpg`, and zero-width ones make two names look the same.
pub(super) fn display_name(raw: &str) -> String {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && c.general_category() != GeneralCategory::Format)
        .take(255)
        .collect();
    if clean.is_empty() {
        "unnamed".into()
    } else {
        clean
    }
}

/// One upload request in progress.
pub(super) struct Upload<'a> {
    pub(super) state: &'a AppState,
    pub(super) job_id: Uuid,
    pub(super) client: IpAddr,
    pub(super) recipes: &'a [Recipe],
    /// Set when the body went over the request's size limit: the multipart
    /// reader then reports a broken stream, which this tells apart.
    pub(super) over_size: AtomicBool,
}

/// The start of a file, and whether it was the whole file.
struct Head {
    bytes: BytesMut,
    complete: bool,
}

impl Upload<'_> {
    /// Whether `e` is the request going over its size limit (and notes it).
    pub(super) fn noticed(&self, e: &MultipartError) -> bool {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            self.over_size.store(true, Ordering::Relaxed);
        }
        self.over_size.load(Ordering::Relaxed)
    }

    /// Stores one file and records it, or says why not.
    pub(super) async fn store_file(
        &self,
        name: &str,
        mut field: Field<'_>,
    ) -> Result<Accepted, FileError> {
        let head = self.read_head(&mut field).await?;
        let format = self.judge(&head)?;
        let image_id = Uuid::new_v4();
        let key = protocol::source_key(self.job_id, image_id);
        let bytes = self.put(&key, format, head.bytes.freeze(), field).await?;
        let image = Image {
            id: image_id,
            name: name.to_owned(),
            bytes,
            content_type: format.to_mime_type().to_owned(),
            key: key.clone(),
        };
        let recorder = &self.state.recorder;
        let recorded = recorder.record(self.job_id, image, self.recipes).await;
        if !matches!(recorded, Ok(true)) {
            // The object is nobody's: delete it now rather than leave it to
            // the job's expiry.
            if let Err(e) = self.state.storage.delete(&key).await {
                tracing::warn!(key, error = %e, "deleting an unrecorded upload failed; it goes when its job expires");
            }
        }
        match recorded {
            Ok(true) => Ok(Accepted {
                id: image_id,
                name: name.to_owned(),
                bytes,
                format: format.extensions_str()[0].to_owned(),
            }),
            Ok(false) => Err(FileError::Rejected(job_full(
                self.state.settings.max_images_per_job,
            ))),
            Err(e) => Err(FileError::Internal(e)),
        }
    }

    /// Reads up to `SNIFF_BYTES` of the file.
    async fn read_head(&self, field: &mut Field<'_>) -> Result<Head, FileError> {
        let mut head = Head {
            bytes: BytesMut::new(),
            complete: false,
        };
        while head.bytes.len() < SNIFF_BYTES {
            match field.chunk().await {
                Ok(Some(chunk)) => head.bytes.extend_from_slice(&chunk),
                Ok(None) => {
                    head.complete = true;
                    break;
                }
                Err(e) if self.noticed(&e) => return Err(FileError::TooLarge),
                Err(e) => return Err(FileError::Rejected(format!("upload interrupted: {e}"))),
            }
        }
        if head.bytes.is_empty() {
            return Err(FileError::Rejected("file is empty".into()));
        }
        Ok(head)
    }

    /// Judges the file by its head: an image of a format we read, within
    /// the limits, whose work the client may still ask for.
    fn judge(&self, head: &Head) -> Result<ImageFormat, FileError> {
        let limits = &self.state.settings.limits;
        let format =
            probe::sniff_format(&head.bytes).map_err(|e| FileError::Rejected(e.to_string()))?;
        match probe::probe(&head.bytes, limits) {
            Ok(probe) => self.charge(&probe)?,
            // A header cut by our read window says nothing yet: the worker
            // checks the whole file again before decoding.
            Err(ProbeError::Corrupt(_)) if !head.complete => {}
            Err(e) => return Err(FileError::Rejected(e.to_string())),
        }
        Ok(format)
    }

    /// Streams the file to `key`: its head, then the rest as it arrives.
    async fn put(
        &self,
        key: &str,
        format: ImageFormat,
        head: Bytes,
        field: Field<'_>,
    ) -> Result<u64, FileError> {
        let rest = field.inspect(|chunk| {
            if let Err(e) = chunk {
                self.noticed(e);
            }
        });
        let limits = &self.state.settings.limits;
        self.state
            .storage
            .put_stream(key, format.to_mime_type(), head, rest, limits.max_bytes)
            .await
            .map_err(|e| match e {
                _ if self.over_size.load(Ordering::Relaxed) => FileError::TooLarge,
                StorageError::TooLarge { limit } => {
                    FileError::Rejected(format!("file is over the limit of {limit} bytes"))
                }
                StorageError::Source(m) => FileError::Rejected(format!("upload interrupted: {m}")),
                e => FileError::Internal(e.into()),
            })
    }

    /// Charges the work this image will cost with every recipe of the job
    /// to the client's work rate.
    fn charge(&self, probe: &Probe) -> Result<(), FileError> {
        let work: u64 = self
            .recipes
            .iter()
            .map(|r| probe::estimate(probe, 0, &r.ops, None).megapixel_passes() + PER_MESSAGE)
            .sum();
        let rates = &self.state.settings.rates;
        if !self.state.rates.payable(work, rates) {
            return Err(FileError::Rejected(format!(
                "this {}×{} image with this job's recipes costs {work} megapixel passes of work, \
                 more than a client may ask for in a minute ({}, DARKROOM_RATE_LIMIT_WORK); use \
                 a smaller image or fewer recipes",
                probe.width, probe.height, rates.work_per_minute
            )));
        }
        self.state
            .rates
            .work(self.client, work)
            .map_err(FileError::Limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_drop_paths_and_controls() {
        assert_eq!(display_name("../../x.jpg"), "x.jpg");
        assert_eq!(display_name("C:\\pics\\a\nb.png"), "ab.png");
        assert_eq!(display_name("/"), "unnamed");
    }

    #[test]
    fn display_names_drop_unicode_format_characters() {
        assert_eq!(display_name("photo\u{202e}gpj.exe"), "photogpj.exe");
        assert_eq!(display_name("a\u{200b}b\u{feff}.png"), "ab.png");
        assert_eq!(display_name("\u{2066}\u{2069}"), "unnamed");
    }
}
