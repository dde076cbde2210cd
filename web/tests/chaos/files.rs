//! The files the suite uploads: good photos, corrupt ones and bombs.

use crate::GOOD_IMAGES;
use crate::support::{photo, png_bomb};

/// Files that pass the upload's header checks but fail to decode.
pub fn corrupt_files() -> Vec<(String, Vec<u8>)> {
    let jpeg = photo("rocket.jpg");
    let png = photo("chelsea.png");
    let mut files = Vec::new();
    for i in 0..8 {
        // Cut inside the entropy-coded data: no end-of-image marker.
        let cut = jpeg.len() * (40 + i * 5) / 100;
        files.push((format!("truncated-{i}.jpg"), jpeg[..cut].to_vec()));
    }
    for i in 0..7 {
        // Scramble bytes in the middle of the compressed pixel data.
        let mut bad = png.clone();
        let at = png.len() / 3 + i * 997;
        for b in &mut bad[at..at + 64] {
            *b ^= 0x5a;
        }
        files.push((format!("scrambled-{i}.png"), bad));
    }
    files
}

/// PNG headers claiming 100000×100000 pixels: refused at upload.
pub fn bombs() -> Vec<(String, Vec<u8>)> {
    (0..5)
        .map(|i| (format!("bomb-{i}.png"), png_bomb(100_000, 100_000)))
        .collect()
}

pub fn good_files() -> Vec<(String, Vec<u8>)> {
    let sources = ["rocket.jpg", "chelsea.png", "coffee.png", "astronaut.png"];
    (0..GOOD_IMAGES)
        .map(|i| {
            let name = sources[i % sources.len()];
            (format!("{i:03}-{name}"), photo(name))
        })
        .collect()
}
