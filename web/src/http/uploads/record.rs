//! Recording a stored image: its row, its outputs' rows and their request
//! messages, in one transaction (see `record_image` for shards).

use common::protocol::Request;
use common::recipe::Recipe;
use queue::NewMessage;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::AppState;

/// An image stored in S3, to record.
pub(super) struct Image<'a> {
    pub(super) id: Uuid,
    pub(super) name: &'a str,
    pub(super) bytes: u64,
    pub(super) content_type: &'a str,
    pub(super) key: &'a str,
}

/// Records the image and its outputs and enqueues their requests atomically:
/// either all of them exist afterwards or none does. Returns false, having
/// recorded nothing, when the job is full.
pub(super) async fn record_image(
    state: &AppState,
    job_id: Uuid,
    image: &Image<'_>,
    recipes: &[Recipe],
) -> anyhow::Result<bool> {
    let mut tx = state.pool.begin().await?;
    if !claim_place(&mut tx, job_id, state.settings.max_images_per_job).await? {
        return Ok(false);
    }
    insert_rows(&mut tx, job_id, image, recipes).await?;
    let messages = recipes
        .iter()
        .map(|recipe| {
            let request = Request {
                job_id,
                image_id: image.id,
                image_name: image.name.to_owned(),
                recipe: recipe.clone(),
                source_key: image.key.to_owned(),
            };
            serde_json::to_string(&request).map(NewMessage::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // With the request queue in this database (always, without shards) the
    // requests commit with the rows. Placed on other shards, they are sent
    // before the rows commit: if the commit then fails, a worker processes
    // an image no job has, and the response consumer deletes that output.
    // Work is repeated, never lost.
    match state.requests.sends_on(0).await? {
        Some(here) => {
            here.send_batch_in(&mut tx, &messages).await?;
            here.notify_in(&mut tx).await?;
        }
        None => drop(state.requests.send_batch(&messages).await?),
    }
    tx.commit().await?;
    Ok(true)
}

/// Claims a place in the job: concurrent uploads to one job take turns on
/// its row here, so the quota holds whatever their number.
async fn claim_place(conn: &mut PgConnection, job_id: Uuid, max: u32) -> sqlx::Result<bool> {
    let claimed = sqlx::query_scalar!(
        r#"
        update jobs set image_count = image_count + 1
        where id = $1 and image_count < $2
        returning image_count
        "#,
        job_id,
        i32::try_from(max).unwrap_or(i32::MAX)
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(claimed.is_some())
}

/// The image's row and one output row per recipe.
async fn insert_rows(
    conn: &mut PgConnection,
    job_id: Uuid,
    image: &Image<'_>,
    recipes: &[Recipe],
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"
        insert into images (id, job_id, name, bytes, content_type, storage_key)
        values ($1, $2, $3, $4, $5, $6)
        "#,
        image.id,
        job_id,
        image.name,
        image.bytes as i64,
        image.content_type,
        image.key
    )
    .execute(&mut *conn)
    .await?;
    let names: Vec<String> = recipes.iter().map(|r| r.name.clone()).collect();
    sqlx::query!(
        r#"
        insert into outputs (image_id, recipe, job_id)
        select $1, r, $2 from unnest($3::text[]) as r
        "#,
        image.id,
        job_id,
        &names
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
