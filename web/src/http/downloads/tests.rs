use super::*;

#[test]
fn download_names_are_sanitised() {
    assert_eq!(
        download_name("../../etc/passwd", "thumb", "jpg"),
        "passwd-thumb.jpg"
    );
    assert_eq!(
        download_name("rocket.jpg", "thumb", "jpg"),
        "rocket-thumb.jpg"
    );
}

#[test]
fn only_the_jobs_files_and_stream_are_signable() {
    let job = Uuid::new_v4();
    let image = Uuid::new_v4();
    for rest in ["archive", "events", &format!("images/{image}/original")] {
        assert!(signable(job, &format!("/api/jobs/{job}/{rest}")), "{rest}");
    }
    let other = Uuid::new_v4();
    for path in [
        format!("/api/jobs/{job}"),
        format!("/api/jobs/{job}/images"),
        format!("/api/jobs/{other}/archive"),
        format!("/api/jobs/{job}/images/{image}/../../archive"),
        format!("/api/jobs/{job}/images/{image}/thumb?x=1"),
        format!("/api/jobs/{job}/archive/"),
    ] {
        assert!(!signable(job, &path), "{path}");
    }
}

#[test]
fn archive_names_never_collide() {
    let mut taken = HashSet::new();
    let names: Vec<_> = ["a-t.jpg", "a-t.jpg", "a-t.jpg", "a-t-2.jpg"]
        .into_iter()
        .map(|n| unique_name(n.to_owned(), &mut taken))
        .collect();
    assert_eq!(names, ["a-t.jpg", "a-t-2.jpg", "a-t-3.jpg", "a-t-2-2.jpg"]);
}
