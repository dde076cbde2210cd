use super::*;

const MP: u64 = 1_000_000;

fn photo(pixels: u64) -> Source {
    Source {
        pixels,
        decoded_pixels: pixels,
        bytes_per_pixel: 3,
        file_bytes: pixels / 4,
        decoding: DECODING,
    }
}

#[test]
fn a_thumbnail_costs_little_more_than_decoding() {
    let e = estimate(
        &photo(12 * MP),
        &[Op::Thumbnail {
            width: 256,
            height: 256,
        }],
        &Encoding::of(OutputFormat::Jpeg),
    );
    assert_eq!(e.largest_output, 256 * 256);
    assert!(e.passes_over(12 * MP) < 8.0, "{e:?}");
}

#[test]
fn heavy_blurs_cost_in_proportion_to_sigma() {
    let one = estimate(
        &photo(12 * MP),
        &[Op::Blur { sigma: 100.0 }],
        &Encoding::of(OutputFormat::Jpeg),
    );
    let many = estimate(
        &photo(12 * MP),
        &vec![Op::Blur { sigma: 100.0 }; 31],
        &Encoding::of(OutputFormat::Jpeg),
    );
    assert!(one.passes_over(12 * MP) > 200.0, "{one:?}");
    assert!(many.work > 30 * one.work / 2, "{many:?}");
}

#[test]
fn ops_after_a_thumbnail_are_charged_on_the_small_image() {
    let e = estimate(
        &photo(12 * MP),
        &[
            Op::Thumbnail {
                width: 256,
                height: 256,
            },
            Op::Blur { sigma: 100.0 },
        ],
        &Encoding::of(OutputFormat::Jpeg),
    );
    assert!(e.passes_over(12 * MP) < 10.0, "{e:?}");
}

#[test]
fn an_enlarging_resize_reports_its_output_and_memory() {
    let e = estimate(
        &photo(MP),
        &[Op::Resize {
            width: 10_000,
            height: 10_000,
            fit: Fit::Fill,
        }],
        &Encoding::of(OutputFormat::Png),
    );
    assert_eq!(e.largest_output, 100 * MP);
    assert!(e.memory > 400 * MP, "{e:?}");
}

/// A forged request's σ must be refused as over budget: wrapping
/// arithmetic would make it nearly free in a release build (and panic
/// in a debug one).
#[test]
fn a_huge_blur_saturates_to_the_most_work_there_is() {
    for sigma in [1e30, f32::MAX, f32::INFINITY] {
        let e = estimate(
            &Source::worst(50 * MP, 50 << 20, DECODING),
            &[Op::Blur { sigma }, Op::Blur { sigma }],
            &Encoding::of(OutputFormat::Png),
        );
        assert_eq!(e.work, u64::MAX.div_ceil(10), "σ {sigma}: {e:?}");
        assert!(crate::Limits::default().check(&e).is_err(), "σ {sigma}");
    }
}

#[test]
fn shrink_on_load_needs_less_memory() {
    let full = photo(48 * MP);
    let shrunk = Source {
        decoded_pixels: 3 * MP,
        ..full
    };
    let ops = [Op::Thumbnail {
        width: 256,
        height: 256,
    }];
    let a = estimate(&full, &ops, &Encoding::of(OutputFormat::Jpeg));
    let b = estimate(&shrunk, &ops, &Encoding::of(OutputFormat::Jpeg));
    assert!(b.memory * 4 < a.memory, "{a:?} {b:?}");
}

#[test]
fn a_jpeg_xl_costs_its_slower_decoder_in_work_and_memory() {
    let jpeg = photo(12 * MP);
    let jxl = Source {
        decoding: JXL_DECODING,
        ..jpeg
    };
    let ops = [Op::Flip {
        axis: crate::recipe::Axis::Vertical,
    }];
    let a = estimate(&jpeg, &ops, &Encoding::of(OutputFormat::Jpeg));
    let b = estimate(&jxl, &ops, &Encoding::of(OutputFormat::Jpeg));
    assert_eq!(b.work - a.work, 42 * 12 * MP);
    // The RGB image it makes and its float planes, held at once.
    assert!(
        b.memory > a.memory && b.memory >= 35 * 12 * MP,
        "{a:?} {b:?}"
    );
}
