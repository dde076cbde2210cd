use super::*;
use queue::{Queues, Router};

/// A recorder on the test's request queue, `max_images` to a job.
async fn recorder(pool: &PgPool, max_images: u32) -> Recorder {
    let router = Router::new(Queues::new(pool.clone()));
    let (requests, _) = common::protocol::declare_queues(&router).await.unwrap();
    Recorder::start(pool.clone(), requests, max_images)
}

async fn job(pool: &PgPool, recipes: &[Recipe]) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into jobs (id, token_hash, recipes, expires_at)
         values ($1, '', $2, now() + interval '1 hour')",
    )
    .bind(id)
    .bind(serde_json::to_value(recipes).unwrap())
    .execute(pool)
    .await
    .unwrap();
    id
}

fn image(n: usize) -> Image {
    Image {
        id: Uuid::new_v4(),
        name: format!("{n}.jpg"),
        bytes: 1,
        content_type: "image/jpeg".into(),
        key: format!("key-{n}"),
        header: None,
    }
}

fn recipes() -> Vec<Recipe> {
    let json = serde_json::json!({"name": "t", "ops": [{"op": "flip", "axis": "horizontal"}]});
    vec![Recipe::from_json(&json, "recipe").unwrap()]
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn images_recorded_together_share_one_transaction(pool: PgPool) {
    let recorder = recorder(&pool, 1000).await;
    let recipes = recipes();
    let job = job(&pool, &recipes).await;
    // All five wait before the recorder's task first runs.
    let recorded =
        futures::future::join_all((0..5).map(|n| recorder.record(job, image(n), &recipes))).await;
    assert!(recorded.into_iter().all(|r| r.unwrap()));
    assert_eq!(count(&pool, "select count(*) from images").await, 5);
    assert_eq!(count(&pool, "select count(*) from outputs").await, 5);
    // One send made their requests: one live row of five messages.
    let rows = "select count(*) from queue_messages m join queue_queues q on q.id = m.queue_id
                where q.name = 'darkroom.requests'";
    assert_eq!(count(&pool, rows).await, 1);
    let placed = "select image_count::int8 from jobs";
    assert_eq!(count(&pool, placed).await, 5);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn images_of_jobs_with_room_are_recorded_and_announced_per_job(pool: PgPool) {
    let recorder = recorder(&pool, 10).await;
    let json = serde_json::json!({"name": "u", "ops": [{"op": "flip", "axis": "vertical"}]});
    let mut two = recipes();
    two.push(Recipe::from_json(&json, "recipe").unwrap());
    let (first, second) = (job(&pool, &two).await, job(&pool, &two).await);
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen(crate::events::CHANNEL).await.unwrap();
    let calls = (0..4).map(|n| {
        let job = if n % 2 == 0 { first } else { second };
        recorder.record(job, image(n), &two)
    });
    let recorded = futures::future::join_all(calls).await;
    assert!(recorded.into_iter().all(|r| r.unwrap()));
    assert_eq!(count(&pool, "select count(*) from outputs").await, 8);
    let per_job = "select count(*) from outputs o join images i on i.id = o.image_id
                   where i.job_id = o.job_id";
    assert_eq!(count(&pool, per_job).await, 8);
    let placed = "select sum(image_count)::int8 from jobs";
    assert_eq!(count(&pool, placed).await, 4);
    let mut announced = Vec::new();
    while announced.len() < 2 {
        let n = listener.recv().await.unwrap();
        announced.push(n.payload().parse::<Uuid>().unwrap());
    }
    announced.sort_unstable();
    let mut expected = vec![first, second];
    expected.sort_unstable();
    assert_eq!(announced, expected);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn an_image_gets_the_recipes_its_job_has_when_it_is_recorded(pool: PgPool) {
    let recorder = recorder(&pool, 10).await;
    let json = serde_json::json!({"name": "u", "ops": [{"op": "flip", "axis": "vertical"}]});
    let mut now = recipes();
    now.push(Recipe::from_json(&json, "recipe").unwrap());
    // Its upload read the job when it had one recipe; a second was added since.
    let job = job(&pool, &now).await;
    let mut preview = recipes();
    preview.push(Recipe::before());
    assert!(recorder.record(job, image(0), &preview).await.unwrap());
    let names = "select string_agg(recipe, ',' order by recipe) from outputs";
    let names: String = sqlx::query_scalar(names).fetch_one(&pool).await.unwrap();
    assert_eq!(names, ".before,t,u");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn a_job_with_fewer_places_than_images_takes_the_first_ones(pool: PgPool) {
    let recorder = recorder(&pool, 3).await;
    let recipes = recipes();
    let (full, other) = (job(&pool, &recipes).await, job(&pool, &recipes).await);
    let calls = (0..5).map(|n| {
        let job = if n == 2 { other } else { full };
        recorder.record(job, image(n), &recipes)
    });
    let recorded: Vec<bool> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(recorded, [true, true, true, true, false]);
    let images = "select count(*) from images";
    assert_eq!(count(&pool, images).await, 4);
}
