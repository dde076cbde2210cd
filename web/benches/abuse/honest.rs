//! The honest client: `JOBS` jobs started `PACE` apart, each timed from
//! its creation to its last output being final, with a webhook to a
//! healthy receiver whose `job.done` lag is measured too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::multipart::Part;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{create_job_from, form, job_get, upload};
use crate::{JOBS, PACE, client_from};

/// Where each webhook delivery's body arrived, and when.
type Deliveries = Arc<Mutex<Vec<(String, Instant)>>>;

fn honest_recipes() -> Value {
    json!([
        {"name": "thumb", "ops": [{"op": "thumbnail", "width": 256, "height": 256}]},
        {"name": "web", "ops": [{"op": "resize", "width": 1600, "height": 1200}]}
    ])
}

/// One honest job: create (with a webhook to `hook`), upload, wait for
/// every output. Returns its time, whether every output is done, and how
/// long after it was seen done its `job.done` webhook had arrived.
async fn honest_job(
    client: &reqwest::Client,
    base: &str,
    photo: &[u8],
    hook: &Hook,
) -> (Duration, bool, Duration) {
    let started = Instant::now();
    let body = json!({"recipes": honest_recipes(), "webhook": hook.url});
    let job = loop {
        match create_job_from(client, base, &body).await {
            Ok(job) => break job,
            Err(0) => panic!("darkroom-web did not answer"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    loop {
        let part = Part::bytes(photo.to_vec()).file_name("photo.jpg");
        let res = upload(client, base, &job, form([part])).await.unwrap();
        match res.status().as_u16() {
            201 => break,
            429 | 503 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!(
                "honest upload answered {other}: {}",
                res.text().await.unwrap()
            ),
        }
    }
    loop {
        let res = job_get(client, base, &job, "").await.unwrap();
        if res.status() == 200 {
            let status: Value = res.json().await.unwrap();
            if status["state"] == "done" {
                let took = started.elapsed();
                let lag = hook.lag(&job.id, Instant::now()).await;
                return (took, status["counts"]["failed"] == 0, lag);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the honest client measured: each job's time and its webhook's lag
/// (both sorted), and how many jobs failed.
pub struct Measured {
    pub times: Vec<Duration>,
    pub lags: Vec<Duration>,
    pub failed: usize,
}

/// The honest workload: `JOBS` jobs started `PACE` apart.
pub async fn honest(base: &str, photo: Arc<Vec<u8>>, hook: &Hook) -> Measured {
    let client = client_from("127.0.0.2");
    let mut tasks = Vec::new();
    for i in 0..JOBS {
        let (client, base, photo, hook) =
            (client.clone(), base.to_owned(), photo.clone(), hook.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(PACE * i as u32).await;
            honest_job(&client, &base, &photo, &hook).await
        }));
    }
    let mut m = Measured {
        times: Vec::new(),
        lags: Vec::new(),
        failed: 0,
    };
    for t in tasks {
        let (took, ok, lag) = t.await.unwrap();
        m.times.push(took);
        m.lags.push(lag);
        m.failed += usize::from(!ok);
    }
    m.times.sort();
    m.lags.sort();
    m
}

/// A healthy webhook receiver on loopback.
#[derive(Clone)]
pub struct Hook {
    pub url: String,
    arrived: Deliveries,
}

impl Hook {
    pub async fn start() -> Self {
        let arrived: Deliveries = Arc::default();
        let record = arrived.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: String| {
                let record = record.clone();
                async move { record.lock().unwrap().push((body, Instant::now())) }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, arrived }
    }

    /// How long after `seen_done` job `id`'s `job.done` arrived (0 if
    /// before); 60 s when it has not within a minute.
    async fn lag(&self, id: &str, seen_done: Instant) -> Duration {
        let deadline = seen_done + Duration::from_secs(60);
        while Instant::now() < deadline {
            let arrived = self.arrived.lock().unwrap().iter().find_map(|(body, at)| {
                (body.contains(id) && body.contains("job.done")).then_some(*at)
            });
            if let Some(at) = arrived {
                return at.saturating_duration_since(seen_done);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Duration::from_secs(60)
    }
}

/// The `p` quantile of the `sorted` durations, in seconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64()
}
