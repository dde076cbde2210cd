//! The suite's client of `darkroom-web`, a process of its own: it waits
//! through outages instead of failing on the first refused request.

use std::time::Duration;

use reqwest::RequestBuilder;
use serde_json::{Value, json};

use crate::support::{Job, form, poll_every};
use crate::{PHASE_LIMIT, recipes};

/// How often the suite asks how a job is doing.
const POLL: Duration = Duration::from_millis(200);

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    /// A GET of `path` with the job's token.
    fn get(&self, job: &Job, path: &str) -> RequestBuilder {
        let url = format!("{}{path}", self.base);
        self.http.get(url).bearer_auth(&job.token)
    }

    pub async fn create_job(&self) -> Job {
        let req = self.http.post(format!("{}/api/jobs", self.base));
        let res = req.json(&json!({ "recipes": recipes() })).send().await;
        let res = res.unwrap();
        assert_eq!(res.status(), 201);
        Job::from_created(&res.json().await.unwrap())
    }

    /// Uploads in requests of 20 files; returns (accepted, rejected) names.
    pub async fn upload(&self, job: &Job, files: &[(String, Vec<u8>)]) -> (usize, Vec<Value>) {
        let mut accepted = 0;
        let mut rejected = Vec::new();
        for chunk in files.chunks(20) {
            let form = form(chunk.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
            let url = format!("{}/api/jobs/{}/images", self.base, job.id);
            let req = self.http.post(url).bearer_auth(&job.token).multipart(form);
            let res = req.send().await.unwrap();
            assert!(
                res.status() == 201 || res.status() == 400,
                "upload: {}",
                res.status()
            );
            let body: Value = res.json().await.unwrap();
            accepted += body["images"].as_array().map_or(0, Vec::len);
            rejected.extend(body["errors"].as_array().cloned().unwrap_or_default());
        }
        (accepted, rejected)
    }

    /// The job's status, or `None` while the server cannot answer (its
    /// database may be down on purpose).
    pub async fn status(&self, job: &Job) -> Option<Value> {
        let req = self.get(job, &format!("/api/jobs/{}?limit=1000", job.id));
        let res = req.timeout(Duration::from_secs(5)).send().await.ok()?;
        if res.status() != 200 {
            return None;
        }
        res.json().await.ok()
    }

    pub async fn done_count(&self, job: &Job) -> u64 {
        self.status(job).await.map_or(0, |s| {
            s["counts"]["done"].as_u64().unwrap() + s["counts"]["failed"].as_u64().unwrap()
        })
    }

    /// Polls until at least `n` outputs are final.
    pub async fn wait_final(&self, job: &Job, n: u64) {
        poll_every(POLL, PHASE_LIMIT, async || {
            match self.done_count(job).await >= n {
                true => Ok(()),
                false => Err(format!("fewer than {n} outputs final")),
            }
        })
        .await
    }

    pub async fn wait_done(&self, job: &Job) -> Value {
        poll_every(POLL, PHASE_LIMIT, async || {
            let status = self.status(job).await.unwrap_or_default();
            match status["state"] == "done" {
                true => Ok(status),
                false => Err(format!("job {} not done: {:#}", job.id, status["counts"])),
            }
        })
        .await
    }

    pub async fn download(&self, job: &Job, url: &str) -> Vec<u8> {
        let res = self.get(job, url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        res.bytes().await.unwrap().to_vec()
    }
}
