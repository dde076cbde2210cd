use super::*;

#[test]
fn fit_inside_keeps_aspect() {
    assert_eq!(fit_inside(640, 427, 256, 256), (256, 171));
    assert_eq!(fit_inside(300, 600, 100, 100), (50, 100));
}

fn testdata(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn heic_and_avif_are_told_from_their_boxes_and_a_video_is_not_an_image() {
    let heic = probe(&testdata("heif/rocket.heic"), &Limits::default()).unwrap();
    // HEVC codes 428 rows, which the file's clean aperture crops to 427:
    // the probe's size is a bound, the decoder's the exact one.
    assert_eq!(
        (heic.format, heic.width, heic.height),
        (InputFormat::Heic, 640, 428)
    );
    let avif = probe(&testdata("heif/rocket.avif"), &Limits::default()).unwrap();
    assert_eq!(avif.format, InputFormat::Avif);
    let mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41\0\0\0\x08free";
    assert!(matches!(
        probe(mp4, &Limits::default()),
        Err(ProbeError::NotAnImage)
    ));
}

#[test]
fn jpeg_xl_is_told_bare_and_in_its_container_with_its_size() {
    for name in ["jxl/rocket.jxl", "jxl/rocket-from-jpeg.jxl"] {
        let jxl = probe(&testdata(name), &Limits::default()).unwrap();
        assert_eq!(
            (jxl.format, jxl.width, jxl.height, jxl.bytes_per_pixel),
            (InputFormat::Jxl, 640, 427, 3),
            "{name}"
        );
    }
    assert_eq!(
        InputFormat::from_mime_type("image/jxl"),
        Some(InputFormat::Jxl)
    );
    let tight = Limits {
        max_pixels: 100_000,
        ..Limits::default()
    };
    assert!(matches!(
        probe(&testdata("jxl/rocket.jxl"), &tight),
        Err(ProbeError::TooManyPixels { .. })
    ));
}

#[test]
fn garbage_is_not_an_image() {
    assert!(matches!(
        probe(b"hello, world, this is text", &Limits::default()),
        Err(ProbeError::NotAnImage)
    ));
}

#[test]
fn a_thumbnail_decodes_a_jpeg_at_an_eighth() {
    assert_eq!(dct_scale(4000, 3000, 256, 192), 8);
    assert_eq!(dct_scale(4000, 3000, 1600, 1200), 2);
    assert_eq!(dct_scale(4000, 3000, 3000, 2250), 1);
}

#[test]
fn a_dct_scale_leaves_both_sides_at_least_as_large_as_asked() {
    // An eighth is wide enough (500 ≥ 256) but too short (125 < 200).
    assert_eq!(dct_scale(4000, 1000, 256, 200), 4);
}
