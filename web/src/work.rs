//! What work on an image costs a client: the image's header, read at upload
//! and kept with its row, priced with the recipes asked of it and charged to
//! the client's work rate. An upload, recipes added to a job later and a
//! retried output are charged alike.

use std::net::IpAddr;

use common::cost::{self, Estimate, Source};
use common::limits::Limits;
use common::probe::{self, InputFormat, Probe};
use common::recipe::{Op, Recipe};

use crate::AppState;
use crate::rate::{Limited, PER_MESSAGE};

/// The most of a file read to find its header. A JPEG may put many 64 KiB
/// metadata segments (EXIF, XMP, the pieces of an ICC profile) before its
/// frame header; a file whose header is further in still than this is
/// charged as the largest image the limits allow.
pub const HEADER_BYTES: usize = 1024 * 1024;

/// What an image's header said: its probe, or only its format when the
/// header was not within its first [`HEADER_BYTES`] (the worker reads the
/// whole file again before decoding).
#[derive(Clone, Copy, Debug)]
pub enum Header {
    Read(Probe),
    Unread(InputFormat),
}

/// Why work was not charged.
#[derive(Debug)]
pub enum Refused {
    /// More than a client may ask for in a minute, however long it waits.
    Unpayable(String),
    /// Over the client's rate now; it may come back later.
    Limited(Limited),
}

/// An image's header as its row keeps it (`images.content_type`, `width`,
/// `height`, `bytes_per_pixel`, `scalable`).
pub struct StoredHeader<'a> {
    pub content_type: &'a str,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub bytes_per_pixel: Option<i16>,
    pub scalable: Option<bool>,
}

impl Header {
    /// The header a stored image's row describes; an error for a content
    /// type no upload records.
    pub fn stored(row: &StoredHeader<'_>) -> anyhow::Result<Self> {
        let format = InputFormat::from_mime_type(row.content_type)
            .ok_or_else(|| anyhow::anyhow!("an image of unknown type `{}`", row.content_type))?;
        let read = || {
            Some(Probe {
                format,
                width: u32::try_from(row.width?).ok()?,
                height: u32::try_from(row.height?).ok()?,
                bytes_per_pixel: u8::try_from(row.bytes_per_pixel?).ok()?,
                scalable: row.scalable?,
            })
        };
        Ok(read().map_or(Header::Unread(format), Header::Read))
    }

    pub fn format(&self) -> InputFormat {
        match self {
            Header::Read(probe) => probe.format,
            Header::Unread(format) => *format,
        }
    }

    /// The probe, for the image's row.
    pub fn probe(&self) -> Option<&Probe> {
        match self {
            Header::Read(probe) => Some(probe),
            Header::Unread(_) => None,
        }
    }

    /// The most `ops` may cost on this image: on an image whose header is
    /// unread, what they cost on the largest one the limits allow.
    pub fn estimate(&self, limits: &Limits, ops: &[Op]) -> Estimate {
        match self {
            Header::Read(probe) => probe::estimate(probe, 0, ops, None),
            Header::Unread(format) => {
                let encoding = probe::output_encoding(ops, *format, None);
                let worst = Source::worst(limits.max_pixels, limits.max_bytes, format.decoding());
                cost::estimate(&worst, ops, &encoding)
            }
        }
    }

    /// Megapixel passes of work `recipes` ask of this image, each with the
    /// cost of its message.
    pub fn work<'r>(&self, limits: &Limits, recipes: impl IntoIterator<Item = &'r Recipe>) -> u64 {
        recipes
            .into_iter()
            .map(|r| self.estimate(limits, &r.ops).megapixel_passes() + PER_MESSAGE)
            .sum()
    }

    /// The image, as the client is told of it.
    pub fn describe(&self, limits: &Limits) -> String {
        match self {
            Header::Read(probe) => format!("this {}×{} image", probe.width, probe.height),
            Header::Unread(_) => format!(
                "an image whose header is not within its first {} KiB, charged as the largest \
                 allowed ({} pixels),",
                HEADER_BYTES / 1024,
                limits.max_pixels
            ),
        }
    }
}

/// Whether `work` megapixel passes asked of `what` (the image as
/// [`Header::describe`] says it, and with which recipes) can ever be paid;
/// if not, why, for the client.
pub fn payable(state: &AppState, work: u64, what: impl FnOnce() -> String) -> Result<(), String> {
    let rates = &state.settings.rates;
    if state.rates.payable(work, rates) {
        return Ok(());
    }
    Err(format!(
        "{} costs {work} megapixel passes of work, more than a client may ask for in a minute \
         ({}, DARKROOM_RATE_LIMIT_WORK); use a smaller image or fewer recipes",
        what(),
        rates.work_per_minute
    ))
}

/// Charges `work` megapixel passes asked of `what` to `client`, all or
/// nothing.
pub fn charge(
    state: &AppState,
    client: IpAddr,
    work: u64,
    what: impl FnOnce() -> String,
) -> Result<(), Refused> {
    payable(state, work, what).map_err(Refused::Unpayable)?;
    state.rates.work(client, work).map_err(Refused::Limited)
}
