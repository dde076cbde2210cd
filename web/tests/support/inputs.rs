//! What the tests send: recipes and photos.

use std::path::PathBuf;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// One recipe, `name`, that flips vertically: quick, and keeps the size.
pub fn flip(name: &str) -> Value {
    json!([{"name": name, "ops": [{"op": "flip", "axis": "vertical"}]}])
}

/// One recipe, `name`, of a thumbnail that fits in `size`×`size`.
pub fn thumbnail(name: &str, size: u32) -> Value {
    json!([{"name": name, "ops": [{"op": "thumbnail", "width": size, "height": size}]}])
}

/// The test photos `names`, each under its own name, for [`TestApp::upload`].
pub fn photos<'a>(names: &[&'a str]) -> Vec<(&'a str, Vec<u8>)> {
    names.iter().map(|name| (*name, photo(name))).collect()
}

/// Copies of the test photo `source`, one under each of `names`.
pub fn copies<'a>(names: &[&'a str], source: &str) -> Vec<(&'a str, Vec<u8>)> {
    names.iter().map(|name| (*name, photo(source))).collect()
}

/// A multipart form of `(file name, bytes)` pairs as `file` parts.
pub fn form<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Form {
    files.into_iter().fold(Form::new(), |form, (name, bytes)| {
        let part = Part::bytes(bytes.to_vec()).file_name(name.to_owned());
        form.part("file", part)
    })
}

pub fn photo(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A PNG whose header claims `width`×`height` pixels (a decompression
/// bomb): a real 1×1 image with its IHDR rewritten.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// `jpeg` with `count` full APP1 segments (64 KiB each) before its own, as a
/// camera's EXIF and XMP blocks can push the frame header deep into a file.
pub fn with_metadata_segments(jpeg: &[u8], count: usize) -> Vec<u8> {
    const SEGMENT: [u8; 4] = [0xff, 0xe1, 0xff, 0xff];
    let payload = [0u8; 0xffff - 2];
    let (soi, rest) = jpeg.split_at(2);
    let mut padded = soi.to_vec();
    for _ in 0..count {
        padded.extend_from_slice(&SEGMENT);
        padded.extend_from_slice(&payload);
    }
    padded.extend_from_slice(rest);
    padded
}
