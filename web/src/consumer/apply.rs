//! Applies worker responses to their output rows, a batch in one
//! statement (`web/sql/apply_responses.sql`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use common::protocol::{self, Outcome, OutputState, Response};
use sqlx::PgConnection;
use tracing::warn;
use uuid::Uuid;

/// An output row a response moved.
#[derive(Debug)]
pub struct Applied {
    pub job_id: Uuid,
    pub image_id: Uuid,
    pub recipe: String,
    pub state: OutputState,
    /// From the image's upload to this change.
    pub seconds: f64,
}

/// The columns of output rows that responses set, one array per column; an
/// outcome leaves null the columns it does not have.
#[derive(Default)]
struct Columns {
    job: Vec<Uuid>,
    image: Vec<Uuid>,
    recipe: Vec<String>,
    state: Vec<&'static str>,
    /// The states each row may move from, comma-separated.
    below: Vec<String>,
    width: Vec<Option<i32>>,
    height: Vec<Option<i32>>,
    bytes: Vec<Option<i64>>,
    format: Vec<Option<String>>,
    key: Vec<Option<String>>,
    error: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, r: Response) {
        let state = r.outcome.state();
        self.job.push(r.job_id);
        self.image.push(r.image_id);
        self.recipe.push(r.recipe);
        self.state.push(state.as_str());
        let below: Vec<&str> = state.below().into_iter().map(OutputState::as_str).collect();
        self.below.push(below.join(","));
        let (mut width, mut height, mut bytes, mut format, mut key, mut error) =
            (None, None, None, None, None, None);
        match r.outcome {
            Outcome::Processing => {}
            Outcome::Done {
                width: w,
                height: h,
                bytes: b,
                format: f,
                key: k,
            } => {
                (width, height) = (Some(w as i32), Some(h as i32));
                (bytes, format, key) = (Some(b as i64), Some(f.as_str().to_owned()), Some(k));
            }
            Outcome::Failed { error: e } => error = Some(e),
        }
        self.width.push(width);
        self.height.push(height);
        self.bytes.push(bytes);
        self.format.push(format);
        self.key.push(key);
        self.error.push(error);
    }
}

/// Applies responses to their output rows in one statement; returns the rows
/// that changed.
pub async fn apply_responses(
    conn: &mut PgConnection,
    responses: &[Response],
) -> sqlx::Result<Vec<Applied>> {
    // One row can be the target of only one change per statement: of a
    // batch's responses for the same output, the one highest on the ladder
    // is the one that counts.
    let mut highest: HashMap<(Uuid, String), Response> = HashMap::new();
    for r in responses.iter().map(own_key_only) {
        match highest.entry((r.image_id, r.recipe.clone())) {
            Entry::Occupied(mut e) if r.outcome.state() > e.get().outcome.state() => {
                e.insert(r);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(e) => {
                e.insert(r);
            }
        }
    }
    let mut c = Columns::default();
    for r in highest.into_values() {
        c.push(r);
    }
    let rows = sqlx::query_file!(
        "sql/apply_responses.sql",
        &c.job,
        &c.image,
        &c.recipe,
        &c.state as &[&str],
        &c.below,
        &c.width as &[Option<i32>],
        &c.height as &[Option<i32>],
        &c.bytes as &[Option<i64>],
        &c.format as &[Option<String>],
        &c.key as &[Option<String>],
        &c.error as &[Option<String>],
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Applied {
            job_id: r.job_id,
            image_id: r.image_id,
            recipe: r.recipe,
            state: r.state,
            seconds: r.seconds,
        })
        .collect())
}

/// The response, or, when it names a result key that is not its output's, a
/// failure: downloads serve the key stored here, so only the one the ids give
/// may be stored, or a response could hand this job another job's object.
fn own_key_only(r: &Response) -> Response {
    match &r.outcome {
        Outcome::Done { key, .. }
            if *key != protocol::output_key(r.job_id, r.image_id, &r.recipe) =>
        {
            warn!(job = %r.job_id, image = %r.image_id, recipe = r.recipe, key, "response names a result key that is not its output's; refused");
            Response {
                outcome: Outcome::Failed {
                    error: "the worker reported its result under a key that is not this \
                            output's; refused"
                        .into(),
                },
                ..r.clone()
            }
        }
        _ => r.clone(),
    }
}
