//! One uploaded file: read its head, judge it, charge its work, stream it to
//! S3, record it. A file refused leaves nothing behind.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use common::probe::{self, InputFormat, ProbeError};
use common::protocol;
use common::recipe::Recipe;
use common::storage::StorageError;
use futures::StreamExt;

use uuid::Uuid;

use super::record::Image;
use super::{Accepted, Cut, job_full};
use crate::AppState;
use crate::rate::Limited;
use crate::work::{self, HEADER_BYTES, Header, Refused};

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
#[derive(Default)]
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
        let mut head = Head::default();
        let header = self.read_header(&mut head, &mut field).await?;
        let format = header.format();
        let recipes = with_preview(self.recipes, format);
        self.charge(&header, &recipes)?;
        let image_id = Uuid::new_v4();
        let key = protocol::source_key(self.job_id, image_id);
        let bytes = self.put(&key, format, head.bytes.freeze(), field).await?;
        let image = Image {
            id: image_id,
            name: name.to_owned(),
            bytes,
            content_type: format.mime_type().to_owned(),
            key: key.clone(),
            header: header.probe().copied(),
        };
        let recorder = &self.state.recorder;
        let recorded = recorder.record(self.job_id, image, &recipes).await;
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
                format: format.extension().to_owned(),
            }),
            Ok(false) => Err(FileError::Rejected(job_full(
                self.state.settings.max_images_per_job,
            ))),
            Err(e) => Err(FileError::Internal(e)),
        }
    }

    /// Reads the file into `head` until its header can be judged: an image
    /// of a format we read, within the limits. A header cut by the window
    /// read so far says nothing yet, so the window doubles up to
    /// `HEADER_BYTES`.
    async fn read_header(
        &self,
        head: &mut Head,
        field: &mut Field<'_>,
    ) -> Result<Header, FileError> {
        self.read_to(head, SNIFF_BYTES, field).await?;
        if head.bytes.is_empty() {
            return Err(FileError::Rejected("file is empty".into()));
        }
        let format =
            probe::sniff_format(&head.bytes).map_err(|e| FileError::Rejected(e.to_string()))?;
        loop {
            match probe::probe(&head.bytes, &self.state.settings.limits) {
                Ok(probe) => return Ok(Header::Read(probe)),
                Err(ProbeError::Corrupt(_)) if !head.complete => {
                    if head.bytes.len() >= HEADER_BYTES {
                        return Ok(Header::Unread(format));
                    }
                    let window = (head.bytes.len() * 2).min(HEADER_BYTES);
                    self.read_to(head, window, field).await?;
                }
                Err(e) => return Err(FileError::Rejected(e.to_string())),
            }
        }
    }

    /// Reads the file into `head` until it holds `len` bytes or the whole
    /// file.
    async fn read_to(
        &self,
        head: &mut Head,
        len: usize,
        field: &mut Field<'_>,
    ) -> Result<(), FileError> {
        while head.bytes.len() < len && !head.complete {
            match field.chunk().await {
                Ok(Some(chunk)) => head.bytes.extend_from_slice(&chunk),
                Ok(None) => head.complete = true,
                Err(e) if self.noticed(&e) => return Err(FileError::TooLarge),
                Err(e) => return Err(FileError::Rejected(format!("upload interrupted: {e}"))),
            }
        }
        Ok(())
    }

    /// Streams the file to `key`: its head, then the rest as it arrives.
    async fn put(
        &self,
        key: &str,
        format: InputFormat,
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
            .put_stream(key, format.mime_type(), head, rest, limits.max_bytes)
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

    /// Charges the work this image will cost with `recipes` (the job's, and
    /// its preview's) to the client's work rate.
    fn charge(&self, header: &Header, recipes: &[Recipe]) -> Result<(), FileError> {
        let limits = &self.state.settings.limits;
        let work = header.work(limits, recipes);
        let what = || format!("{} with this job's recipes", header.describe(limits));
        work::charge(self.state, self.client, work, what).map_err(|refused| match refused {
            Refused::Unpayable(why) => FileError::Rejected(why),
            Refused::Limited(limited) => FileError::Limited(limited),
        })
    }
}

/// The job's recipes for an image in `format`, with the "before" preview's
/// when browsers cannot show the original.
fn with_preview(recipes: &[Recipe], format: InputFormat) -> Cow<'_, [Recipe]> {
    if format.browsers_show() {
        return Cow::Borrowed(recipes);
    }
    let mut all = recipes.to_vec();
    all.push(Recipe::before());
    Cow::Owned(all)
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
