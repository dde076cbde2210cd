//! Untrusted bytes through the whole engine: sniff, header probe, limits,
//! decode (shrink-on-load or full), an op, encode. Decoder panics are caught
//! by `process` and reported as corrupt files, like in production; what the
//! fuzzer looks for is what is not: aborts, hangs and runaway memory.
//!
//! `scripts/fuzz [seconds]` runs it; findings become regression tests in
//! `worker/tests/fuzz.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use common::Limits;
use worker::engine::process;
use common::recipe::{Axis, Op};

fuzz_target!(
    init: {
        // libfuzzer-sys aborts on every panic, even one `process` catches.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let Some((&selector, image)) = data.split_first() else {
            return;
        };
        // Small limits keep each run fast; a bomb must still be refused
        // before it allocates.
        let limits = Limits {
            max_pixels: 4_000_000,
            max_bytes: 4 * 1024 * 1024,
            max_dimension: 4096,
        ..Limits::default()
        };
        // Thumbnails take the shrink-on-load path for JPEGs; a flip needs
        // the full decode.
        let op = if selector & 1 == 0 {
            Op::Thumbnail { width: 64, height: 64 }
        } else {
            Op::Flip { axis: Axis::Horizontal }
        };
        let _ = process(image, &[op], &limits, None);
    }
);
