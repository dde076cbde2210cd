//! The attacker: the heaviest jobs the budget lets through and ones over
//! it, tiny PNGs blown up, bombs, garbage and far headers, progress streams
//! held open, floods of GETs, webhooks to a black hole and trickled uploads,
//! each answer tallied by status.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

use crate::client_from;
use crate::support::{Job, create_job, create_job_from, form, job_get, upload};

/// Within the cost budget on the largest image: a 49 MP upscale, then the
/// slowest op there is, encoded as PNG.
fn heavy_recipe(name: &str) -> Value {
    json!({"name": name, "ops": [
        {"op": "resize", "width": 7000, "height": 7000, "fit": "fill"},
        {"op": "teeth_whiten", "strength": 1.0},
        {"op": "format", "format": "png"}
    ]})
}

/// A webhook endpoint that drops everything: it accepts connections and
/// never reads nor answers, so each delivery waits for its timeout.
pub async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    url
}

/// A 64×64 PNG: nothing to upload, everything to blow up.
fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 90]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A 64×64 JPEG, black.
fn small_jpeg() -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::RgbImage::new(64, 64)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    jpeg
}

/// A 64×64 JPEG behind 32 full metadata segments (2 MiB): its frame header
/// is past what the web reads to find it.
fn far_header_jpeg() -> Vec<u8> {
    let jpeg = small_jpeg();
    let mut padded = jpeg[..2].to_vec();
    for _ in 0..32 {
        padded.extend_from_slice(&[0xff, 0xe1, 0xff, 0xff]);
        padded.extend_from_slice(&[0u8; 0xffff - 2]);
    }
    padded.extend_from_slice(&jpeg[2..]);
    padded
}

/// A PNG whose header claims 100000×100000 pixels.
fn bomb() -> Vec<u8> {
    let mut png = tiny_png();
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

pub type Tally = Arc<Mutex<BTreeMap<String, usize>>>;

fn note(tally: &Tally, what: &str, status: u16) {
    *tally
        .lock()
        .unwrap()
        .entry(format!("{what} → {status}"))
        .or_default() += 1;
}

/// The status of a job creation's answer (0 when there was none).
fn created(job: &Result<Job, u16>) -> u16 {
    job.as_ref().map_or_else(|status| *status, |_| 201)
}

/// Uploads `bytes` as one file; returns the answer's status, or 0.
async fn upload_file(client: &reqwest::Client, base: &str, job: &Job, bytes: Vec<u8>) -> u16 {
    let part = Part::bytes(bytes).file_name("x.png");
    let res = upload(client, base, job, form([part])).await;
    res.map_or(0, |r| r.status().as_u16())
}

/// One attacker connection: the worst requests it can find, round after
/// round, until `until`.
pub async fn attacker(
    base: String,
    until: Instant,
    tally: Tally,
    streams: Arc<Mutex<Vec<reqwest::Response>>>,
) {
    let client = client_from("127.0.0.1");
    let many: Vec<Value> = (0..16).map(|i| heavy_recipe(&format!("h{i}"))).collect();
    let over: Vec<Value> = (0..31)
        .map(|_| json!({"op": "blur", "sigma": 100.0}))
        .collect();
    let garbage = vec![0x5au8; 64 << 20];
    let (png, bomb, far) = (tiny_png(), bomb(), far_header_jpeg());
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        // Jobs with the heaviest recipes allowed, and over the budget.
        let heavy = create_job(&client, &base, &json!(many)).await;
        note(&tally, "create job, 16 heavy recipes", created(&heavy));
        let refused = create_job(&client, &base, &json!([{"name": "b", "ops": over}])).await;
        note(&tally, "create job, over budget", created(&refused));
        let single = create_job(&client, &base, &json!([heavy_recipe("one")])).await;
        for (job, what) in [(heavy, "16 heavy recipes"), (single, "1 heavy recipe")] {
            let Ok(job) = job else { continue };
            let status = upload_file(&client, &base, &job, png.clone()).await;
            note(&tally, &format!("tiny PNG, {what}"), status);
            let status = upload_file(&client, &base, &job, bomb.clone()).await;
            note(&tally, "decompression bomb", status);
            let status = upload_file(&client, &base, &job, far.clone()).await;
            note(&tally, &format!("header past 1 MiB, {what}"), status);
            if round.is_multiple_of(8) {
                let status = upload_file(&client, &base, &job, garbage.clone()).await;
                note(&tally, "64 MB of garbage", status);
            }
            if let Ok(res) = job_get(&client, &base, &job, "/events").await {
                note(&tally, "open progress stream", res.status().as_u16());
                streams.lock().unwrap().push(res);
            }
        }
        for path in [
            "/api/jobs/00000000-0000-0000-0000-000000000000",
            "/nope",
            "/",
        ] {
            for _ in 0..20 {
                let status = client
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16());
                note(&tally, "flood of GETs", status);
            }
        }
    }
}

/// Quick jobs, so their events are due at once, whose webhook never
/// answers, until `until`; from an address of its own (127.0.0.3), so the
/// other attacks' rates do not hold it back.
pub async fn black_holer(base: String, until: Instant, tally: Tally, hole: String) {
    let client = client_from("127.0.0.3");
    let body = json!({
        "recipes": [{"name": "f", "ops": [{"op": "flip", "axis": "vertical"}]}],
        "webhook": hole,
    });
    while Instant::now() < until {
        let job = create_job_from(&client, &base, &body).await;
        note(&tally, "create job, black-holed webhook", created(&job));
        match job {
            Ok(job) => {
                let status = upload_file(&client, &base, &job, tiny_png()).await;
                note(&tally, "tiny PNG, black-holed webhook", status);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// One slow upload after another until `until`: the request's head, 8 MiB
/// − 1 bytes of its body (a small JPEG, then zeros: cheap work, so the
/// work rate lets it through), then a byte a second; from an address of
/// its own (127.0.0.4).
pub async fn trickler(base: SocketAddr, job: Job, until: Instant, tally: Tally) {
    let mut body =
        b"--B\r\ncontent-disposition: form-data; name=\"file\"; filename=\"t.jpg\"\r\n\r\n"
            .to_vec();
    body.extend_from_slice(&small_jpeg());
    body.resize((8 << 20) - 1, 0);
    let head = format!(
        "POST /api/jobs/{}/images HTTP/1.1\r\nhost: {base}\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=B\r\ncontent-length: {}\r\n\r\n",
        job.id,
        job.token,
        body.len() + 4096
    );
    while Instant::now() < until {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.4:0".parse().unwrap()).unwrap();
        let Ok(mut conn) = socket.connect(base).await else {
            continue;
        };
        let sent = async {
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(&body).await
        };
        let answer = match sent.await {
            Ok(()) => trickle_until(&mut conn, until).await,
            // The server answered before the body was all sent.
            Err(_) => "refused before its body was sent".into(),
        };
        *tally
            .lock()
            .unwrap()
            .entry(format!("trickled upload → {answer}"))
            .or_default() += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sends a byte a second until the server answers (its status line's
/// code) or `until` (then "held to the end").
async fn trickle_until(conn: &mut tokio::net::TcpStream, until: Instant) -> String {
    let mut answer = [0u8; 12];
    loop {
        tokio::select! {
            read = conn.read(&mut answer) => return match read {
                Ok(n) if n >= 12 => String::from_utf8_lossy(&answer[9..12]).into_owned(),
                _ => "connection closed".into(),
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if Instant::now() >= until {
                    return "held to the end".into();
                }
                let _ = conn.write_all(b"\0").await;
            }
        }
    }
}
