//! Recording stored images: each image's row, its outputs' rows and their
//! request messages, in one transaction with those of the other images
//! that finished uploading meanwhile.
//!
//! Records queue up for one task while it commits the previous ones, as
//! commits do in Postgres' group commit (and as the worker's reports do):
//! under load one transaction records many images, at rest each goes at
//! once. An image is recorded whole or not at all: its row, its outputs and
//! its requests commit together, with the announcement that wakes the
//! job's progress streams.

use std::collections::HashMap;

use common::probe::Probe;
use common::protocol::Request;
use common::recipe::Recipe;
use queue::Routed;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::requests;

/// Most images in one transaction.
const MOST: usize = 64;

/// An image stored in S3, to record.
pub(super) struct Image {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) bytes: u64,
    pub(super) content_type: String,
    pub(super) key: String,
    /// What its header said, when it was read.
    pub(super) header: Option<Probe>,
}

struct Record {
    job_id: Uuid,
    image: Image,
    /// The recipes the upload was charged for; the image gets its job's
    /// recipes as they are when it is recorded (see [`record_batch`]).
    recipes: Vec<Recipe>,
    /// Whether the image was recorded (false: its job is full), or why the
    /// transaction failed.
    reply: oneshot::Sender<Result<bool, String>>,
}

/// The handle to the task that records images; clones share it.
#[derive(Clone)]
pub struct Recorder {
    records: mpsc::Sender<Record>,
}

impl Recorder {
    /// Starts the task. `max_images` is the most images a job may hold.
    pub fn start(pool: PgPool, requests: Routed, max_images: u32) -> Self {
        let (records, rx) = mpsc::channel(MOST);
        tokio::spawn(run(rx, pool, requests, max_images));
        Self { records }
    }

    /// Records the image and its outputs and enqueues their requests
    /// atomically: either all of them exist afterwards or none does.
    /// Returns false, having recorded nothing, when the job is full.
    pub(super) async fn record(
        &self,
        job_id: Uuid,
        image: Image,
        recipes: &[Recipe],
    ) -> anyhow::Result<bool> {
        let (reply, answer) = oneshot::channel();
        let record = Record {
            job_id,
            image,
            recipes: recipes.to_vec(),
            reply,
        };
        let stopped = || anyhow::anyhow!("the upload recorder has stopped");
        self.records.send(record).await.map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(anyhow::Error::msg)
    }
}

async fn run(mut rx: mpsc::Receiver<Record>, pool: PgPool, requests: Routed, max_images: u32) {
    let mut batch = Vec::with_capacity(MOST);
    while rx.recv_many(&mut batch, MOST).await > 0 {
        match record_batch(&pool, &requests, max_images, &mut batch).await {
            Ok(recorded) => {
                for (r, ok) in batch.drain(..).zip(recorded) {
                    let _ = r.reply.send(Ok(ok));
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                for r in batch.drain(..) {
                    let _ = r.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Records `batch` in one transaction; returns, per record, whether its
/// image was recorded (false: its job had no place left).
async fn record_batch(
    pool: &PgPool,
    requests: &Routed,
    max_images: u32,
    batch: &mut [Record],
) -> anyhow::Result<Vec<bool>> {
    let mut tx = pool.begin().await?;
    take_current_recipes(&mut tx, batch).await?;
    let batch = &*batch;
    // Most batches fit their jobs: one statement claims their places,
    // writes their rows and announces them.
    let all: Vec<&Record> = batch.iter().collect();
    let whole = insert_if_room(&mut tx, &all, max_images).await?;
    let mut recorded: Vec<bool> = batch.iter().map(|r| whole.contains(&r.job_id)).collect();
    // A job without room for all: first come, first placed, while places
    // last. The statement locked its row, so the places read stay free.
    let short: Vec<Uuid> = batch
        .iter()
        .zip(&recorded)
        .filter_map(|(r, &ok)| (!ok).then_some(r.job_id))
        .collect();
    if !short.is_empty() {
        let mut left = places_left(&mut tx, &short, max_images).await?;
        let fitting: Vec<usize> = (0..batch.len())
            .filter(|&i| !recorded[i])
            .filter(|&i| match left.get_mut(&batch[i].job_id) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            })
            .collect();
        if !fitting.is_empty() {
            let fits: Vec<&Record> = fitting.iter().map(|&i| &batch[i]).collect();
            let placed = insert_if_room(&mut tx, &fits, max_images).await?;
            for i in fitting {
                recorded[i] = placed.contains(&batch[i].job_id);
            }
        }
    }
    let kept: Vec<&Record> = batch
        .iter()
        .zip(&recorded)
        .filter_map(|(r, &ok)| ok.then_some(r))
        .collect();
    if kept.is_empty() {
        return Ok(recorded);
    }
    let messages = kept
        .iter()
        .flat_map(|r| {
            r.recipes.iter().map(|recipe| {
                requests::message(&Request {
                    job_id: r.job_id,
                    image_id: r.image.id,
                    image_name: r.image.name.clone(),
                    recipe: recipe.clone(),
                    source_key: r.image.key.clone(),
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    requests.send_batch_in(&mut tx, &messages).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Locks the jobs of `batch` and gives each record its job's recipes as
/// they are now: recipes added to a job while an image was uploading are
/// then either seen here or, added after this commits, find the image
/// recorded. A record keeps its "before" preview. The rows are locked in id
/// order, as [`insert_if_room`] locks them.
async fn take_current_recipes(conn: &mut PgConnection, batch: &mut [Record]) -> anyhow::Result<()> {
    let jobs: Vec<Uuid> = batch.iter().map(|r| r.job_id).collect();
    let rows = sqlx::query!(
        "select id, recipes from jobs where id = any($1) order by id for update",
        &jobs
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut current = HashMap::with_capacity(rows.len());
    for row in rows {
        current.insert(row.id, serde_json::from_value::<Vec<Recipe>>(row.recipes)?);
    }
    for record in batch {
        let Some(recipes) = current.get(&record.job_id) else {
            continue;
        };
        let preview = record.recipes.iter().any(|r| r.name == Recipe::BEFORE);
        record.recipes.clone_from(recipes);
        if preview {
            record.recipes.push(Recipe::before());
        }
    }
    Ok(())
}

/// For each job of `batch` with room for all its images there: claims their
/// places, inserts their rows and their outputs' rows and announces them to
/// the job's progress streams, in one statement (`sql/record_images.sql`)
/// where they were four round trips. Returns those jobs; the others are
/// left untouched.
async fn insert_if_room(
    conn: &mut PgConnection,
    batch: &[&Record],
    max: u32,
) -> sqlx::Result<Vec<Uuid>> {
    let c = Columns::of(batch);
    sqlx::query_file_scalar!(
        "sql/record_images.sql",
        &c.ids,
        &c.jobs,
        &c.names as &[&str],
        &c.bytes,
        &c.types as &[&str],
        &c.keys as &[&str],
        i32::try_from(max).unwrap_or(i32::MAX),
        &c.output_images,
        &c.recipes as &[&str],
        &c.output_jobs,
        crate::events::CHANNEL,
        &c.widths as &[Option<i32>],
        &c.heights as &[Option<i32>],
        &c.bytes_per_pixel as &[Option<i16>],
        &c.scalable as &[Option<bool>],
    )
    .fetch_all(&mut *conn)
    .await
}

/// The places each of `jobs` has left under `max`, by job; a job that no
/// longer exists has none.
async fn places_left(
    conn: &mut PgConnection,
    jobs: &[Uuid],
    max: u32,
) -> sqlx::Result<HashMap<Uuid, usize>> {
    let rows = sqlx::query!(
        r#"select id, greatest($2 - image_count, 0) as "left!" from jobs where id = any($1)"#,
        jobs,
        i32::try_from(max).unwrap_or(i32::MAX),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, usize::try_from(r.left).unwrap_or(0)))
        .collect())
}

/// Records as the columns the inserts unnest: one entry per image, and one
/// per image and recipe for the outputs.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<Uuid>,
    jobs: Vec<Uuid>,
    names: Vec<&'a str>,
    bytes: Vec<i64>,
    types: Vec<&'a str>,
    keys: Vec<&'a str>,
    widths: Vec<Option<i32>>,
    heights: Vec<Option<i32>>,
    bytes_per_pixel: Vec<Option<i16>>,
    scalable: Vec<Option<bool>>,
    output_images: Vec<Uuid>,
    recipes: Vec<&'a str>,
    output_jobs: Vec<Uuid>,
}

impl<'a> Columns<'a> {
    fn of(records: &[&'a Record]) -> Self {
        let mut c = Self::default();
        for r in records {
            c.ids.push(r.image.id);
            c.jobs.push(r.job_id);
            c.names.push(&r.image.name);
            c.bytes
                .push(i64::try_from(r.image.bytes).unwrap_or(i64::MAX));
            c.types.push(&r.image.content_type);
            c.keys.push(&r.image.key);
            let header = r.image.header.as_ref();
            let int = |n: u32| i32::try_from(n).ok();
            c.widths.push(header.and_then(|h| int(h.width)));
            c.heights.push(header.and_then(|h| int(h.height)));
            c.bytes_per_pixel
                .push(header.map(|h| i16::from(h.bytes_per_pixel)));
            c.scalable.push(header.map(|h| h.scalable));
            for recipe in &r.recipes {
                c.output_images.push(r.image.id);
                c.recipes.push(&recipe.name);
                c.output_jobs.push(r.job_id);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests;
