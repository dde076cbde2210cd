//! What the fuzz target runs an input with, shared with its regression test
//! (`worker/tests/fuzz.rs`) so that a finding replays exactly as found.

use common::Limits;
use common::recipe::{Axis, Encoding, Metadata, Op, OutputFormat};

/// Small limits keep each run fast; a bomb must still be refused before it
/// allocates.
pub fn limits() -> Limits {
    Limits {
        max_pixels: 4_000_000,
        max_bytes: 4 * 1024 * 1024,
        max_dimension: 4096,
        ..Limits::default()
    }
}

/// The ops for an input's selector byte: a thumbnail (the shrink-on-load
/// path for JPEGs) or a flip (the full decode), then, when the second bit
/// asks, a format op keeping all metadata and the profile, so the EXIF and
/// ICC readers and writers see the file.
pub fn recipe(selector: u8) -> Vec<Op> {
    let op = if selector & 1 == 0 {
        Op::Thumbnail {
            width: 64,
            height: 64,
        }
    } else {
        Op::Flip {
            axis: Axis::Horizontal,
        }
    };
    let mut ops = vec![op];
    if selector & 2 != 0 {
        ops.push(Op::Format(Encoding {
            metadata: Some(Metadata::All),
            keep_icc: true,
            ..Encoding::of(OutputFormat::Png)
        }));
    }
    ops
}
