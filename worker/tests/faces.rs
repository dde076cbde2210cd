//! Face detection on real photos: every face of a group, none where there
//! are none.

mod support;

use std::time::Instant;

use worker::engine::faces::{Face, find_faces};

fn faces_in(name: &str) -> Vec<Face> {
    let img = support::decode(&support::photo(name));
    let started = Instant::now();
    let faces = find_faces(&img);
    eprintln!(
        "{name}: {} faces in {:?} ({}×{})",
        faces.len(),
        started.elapsed(),
        img.width(),
        img.height()
    );
    faces
}

#[test]
fn finds_every_face_of_a_group_photo() {
    // The 1927 Solvay conference: 29 people in three rows, faces about 70 px
    // wide on a 3000 px photo.
    let faces = faces_in("faces/solvay-1927.jpg");
    assert!(
        (27..=29).contains(&faces.len()),
        "{} faces: {faces:?}",
        faces.len()
    );
}

#[test]
fn finds_the_face_of_a_portrait() {
    let faces = faces_in("astronaut.png");
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = faces[0];
    // Her eyes (pupils at 204,101 and 247,103) and mouth (about 225,145) are inside.
    assert!(
        f.x < 200 && f.x + f.width > 250 && f.y < 100 && f.y + f.height > 150,
        "{f:?}"
    );
}

#[test]
fn finds_no_face_where_there_is_none() {
    for name in ["rocket.jpg", "coffee.png", "chelsea.png"] {
        assert_eq!(faces_in(name), [], "{name}");
    }
}

#[test]
fn face_model_is_the_copy_rustface_ships_on_crates_io() {
    use sha2::{Digest, Sha256};
    let model = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/seeta_fd_frontal_v1.0.bin"
    ))
    .unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&model)),
        "c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d"
    );
}
