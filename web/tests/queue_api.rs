//! The queue HTTP API as mounted by `darkroom-web`: its admin token, queues
//! and their messages, shards, topics and the SQS endpoint beside it. A
//! receive that waits, woken by a send, is in `queue_api_long_poll.rs`.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{TestApp, app_with_admin, assert_error, expect_json, spawn_app};
use testkit::{cluster, sqs};

const TOKEN: &str = "queue-api-test-token-3f9a1c7e5b2d";

/// Makes every lease expire now, instead of sleeping through it. Stats see
/// expiry by the clock alone; moved back in time like this, their counters
/// must be told.
async fn expire_leases(pool: &PgPool) {
    support::sql(
        pool,
        "update queue_messages set visible_at = now() - interval '1 second';
         update queue_counters set leased = 0, delayed = 0",
    )
    .await;
}

/// The queue API of an app whose admin token is `TOKEN`; every call
/// returns the status and the JSON body (`null` when there is none).
struct Api(TestApp);

impl Api {
    async fn new(pool: PgPool) -> Self {
        Api(app_with_admin(pool, TOKEN).await)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, &format!("/api/queues{path}"), body)
            .await
    }

    /// A call of the topics' API: `/api/topics` followed by `path`.
    async fn topics(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, &format!("/api/topics{path}"), body)
            .await
    }

    async fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.0.admin_url(path);
        let mut req = self.0.client.request(method.parse().unwrap(), url);
        req = req.bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GET `/api/queues` followed by `path`.
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    /// Creates or updates `queue` with `attributes`.
    async fn put(&self, queue: &str, attributes: Value) -> (u16, Value) {
        self.call("PUT", &format!("/{queue}"), Some(attributes))
            .await
    }

    async fn delete(&self, queue: &str) -> u16 {
        self.call("DELETE", &format!("/{queue}"), None).await.0
    }

    /// POST `/api/queues/{queue}/{action}` with `body`.
    async fn post(&self, queue: &str, action: &str, body: Value) -> (u16, Value) {
        self.call("POST", &format!("/{queue}/{action}"), Some(body))
            .await
    }

    /// POST `/api/queues/{queue}/{action}` without a body.
    async fn act(&self, queue: &str, action: &str) -> (u16, Value) {
        self.call("POST", &format!("/{queue}/{action}"), None).await
    }

    /// Sends one message of each of `bodies` to `queue`.
    async fn send(&self, queue: &str, bodies: &[&str]) -> (u16, Value) {
        let messages: Vec<Value> = bodies.iter().map(|b| json!({ "body": b })).collect();
        let body = json!({ "messages": messages });
        self.post(queue, "messages", body).await
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn without_admin_token_configured_everyone_gets_403(pool: PgPool) {
    let app = spawn_app(pool).await;
    let res = app.admin_get("/api/queues", Some("anything")).await;
    assert_error(&expect_json(res, 403).await, &["DARKROOM_ADMIN_TOKEN"]);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn wrong_or_missing_admin_token_is_401(pool: PgPool) {
    let app = app_with_admin(pool, TOKEN).await;
    for token in [None, Some("wrong")] {
        let res = app.admin_get("/api/queues", token).await;
        assert_eq!(res.status(), 401, "{token:?}");
    }
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn send_receive_delete_round_trip(pool: PgPool) {
    let api = Api::new(pool).await;
    let (status, created) = api.put("orders", json!({"visibility_timeout": 45})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["visibility_timeout"], 45.0);
    let (status, _) = api.put("orders", json!({"delay": 0})).await;
    assert_eq!(status, 200, "updating an existing queue");

    let (status, sent) = api.send("orders", &["one", "two"]).await;
    assert_eq!(status, 200, "{sent}");
    let ids = sent["ids"].as_array().unwrap();
    assert!(ids[0].as_i64() < ids[1].as_i64());

    let (status, got) = api
        .post("orders", "receive", json!({"max": 10, "lock": 30}))
        .await;
    assert_eq!(status, 200);
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["body"], "one");
    assert_eq!(messages[0]["receive_count"], 1);
    let receipts: Vec<_> = messages.iter().map(|m| m["receipt"].clone()).collect();

    let (status, stats) = api.get("/orders").await;
    assert_eq!(status, 200);
    assert_eq!(stats["stats"]["in_flight"], 2);

    let receipts = json!({"receipts": receipts});
    let (status, deleted) = api.post("orders", "delete", receipts.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"].as_array().unwrap().len(), 2);
    assert_eq!(deleted["stale"], json!([]));

    // Deleting again: both receipts are now stale.
    let (_, again) = api.post("orders", "delete", receipts).await;
    assert_eq!(again["stale"].as_array().unwrap().len(), 2);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn stale_receipt_visibility_change_is_409(pool: PgPool) {
    let api = Api::new(pool.clone()).await;
    api.put("q", json!({})).await;
    api.send("q", &["x"]).await;
    let (_, got) = api.post("q", "receive", json!({"lock": 30})).await;
    let change = json!({"receipt": got["messages"][0]["receipt"], "lock": 60});
    let (status, _) = api.post("q", "visibility", change.clone()).await;
    assert_eq!(status, 200);
    expire_leases(&pool).await;
    let (status, body) = api.post("q", "visibility", change).await;
    assert_eq!(status, 409, "{body}");
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn bad_input_gets_clear_errors(pool: PgPool) {
    let api = Api::new(pool).await;
    let (status, body) = api.get("/nope").await;
    assert_eq!(status, 404);
    assert_error(&body, &["nope"]);

    for attribute in [json!({"visibility_timeout": 0}), json!({"colour": "blue"})] {
        let (status, body) = api.put("q", attribute.clone()).await;
        assert_eq!(status, 400);
        let name = attribute.as_object().unwrap().keys().next().unwrap();
        assert_error(&body, &[name]);
    }

    api.put("small", json!({"max_message_bytes": 4})).await;
    let (status, _) = api.send("small", &["too long"]).await;
    assert_eq!(status, 413);

    let garbage = json!({"receipts":["garbage"]});
    let (status, body) = api.post("small", "delete", garbage).await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = api.post("small", "receive", json!({"max": 5000})).await;
    assert_eq!(status, 400);

    let (status, _) = api.post("small", "rewind", json!({})).await;
    assert_eq!(status, 400);
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn rewind_redrive_purge_and_delete_over_http(pool: PgPool) {
    let api = Api::new(pool.clone()).await;
    api.put("dead", json!({})).await;
    let attributes = json!({"max_receive_count": 1, "dead_letter_queue": "dead"});
    let (status, body) = api.put("main", attributes).await;
    assert_eq!(status, 201, "{body}");
    let (_, sent) = api.send("main", &["a"]).await;
    let id = sent["ids"][0].clone();

    // Received once, lock expires, next receive dead-letters it.
    api.post("main", "receive", json!({"lock": 30})).await;
    expire_leases(&pool).await;
    let (_, got) = api.post("main", "receive", json!({})).await;
    assert_eq!(got["messages"], json!([]));
    let (_, stats) = api.get("/main").await;
    assert_eq!(stats["stats"]["dead_lettered"], 1);

    let (status, moved) = api.act("main", "redrive").await;
    assert_eq!((status, moved["moved"].clone()), (200, json!(1)));
    let (_, got) = api.post("main", "receive", json!({})).await;
    let receipt = got["messages"][0]["receipt"].clone();
    api.post("main", "delete", json!({"receipts":[receipt]}))
        .await;

    let (status, rewound) = api.post("main", "rewind", json!({"to_id": id})).await;
    assert_eq!((status, rewound["restored"].clone()), (200, json!(1)));
    let (_, purged) = api.act("main", "purge").await;
    assert_eq!(purged["purged"], 1);

    assert_eq!(
        api.delete("dead").await,
        400,
        "still the dead letter queue of `main`"
    );
    assert_eq!(api.delete("main").await, 200);
    let (_, list) = api.get("").await;
    let names: Vec<_> = list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert!(!names.contains(&json!("main")));
}

#[sqlx::test(migrator = "common::MIGRATOR")]
async fn queue_api_follows_the_routing_table_to_shards(pool: PgPool) {
    let shard = cluster::Cluster::start();
    let router = queue::Router::new(queue::Queues::new(pool.clone()));
    router.add_shard("s1", &shard.url()).await.unwrap();
    router
        .create_on("spread", &Default::default(), &["s1"])
        .await
        .unwrap();
    let api = Api::new(pool).await;
    let (status, _) = api.put("spread", json!({"visibility_timeout": 20})).await;
    assert_eq!(status, 200, "updated on its shard");

    let (status, sent) = api.send("spread", &["one"]).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["shards"], json!([1]));
    let (_, got) = api.post("spread", "receive", json!({"max": 10})).await;
    let m = &got["messages"][0];
    assert_eq!(m["shard"], 1);
    assert!(m["receipt"].as_str().unwrap().starts_with("1:"), "{m}");
    let (_, stats) = api.get("/spread").await;
    assert_eq!(stats["stats"]["in_flight"], 1, "{stats}");
    let (_, deleted) = api
        .post("spread", "delete", json!({"receipts": [m["receipt"]]}))
        .await;
    assert_eq!(deleted["deleted"].as_array().unwrap().len(), 1);

    let (_, list) = api.get("").await;
    assert!(
        list["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "spread")
    );
    assert_eq!(api.delete("spread").await, 200);
    let (status, _) = api.get("/spread").await;
    assert_eq!(status, 404);
}

/// Topics over the HTTP API: a tag subscription into a queue, its backlog,
/// and the errors a client can make.
#[sqlx::test(migrator = "common::MIGRATOR")]
async fn topics_publish_to_their_subscribers_over_http(pool: PgPool) {
    let api = Api::new(pool).await;
    assert_eq!(api.put("inbox", json!({})).await.0, 201);
    let (status, _) = api
        .topics("PUT", "/events", Some(json!({"filter": "tag"})))
        .await;
    assert_eq!(status, 200);
    let sub = json!({"protocol": "queue", "endpoint": "inbox", "tags": ["red"]});
    let (status, body) = api
        .topics("PUT", "/events/subscriptions/reds", Some(sub))
        .await;
    assert_eq!(status, 200, "{body}");
    let messages = json!({"messages": [
        {"body": "red", "tags": ["red"]},
        {"body": "blue", "tags": ["blue"]},
    ]});
    let (status, body) = api.topics("POST", "/events/publish", Some(messages)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ids"].as_array().unwrap().len(), 2);
    let (_, subs) = api.topics("GET", "/events/subscriptions", None).await;
    assert_eq!(subs["subscriptions"][0]["backlog"], 1);
    let (_, got) = api.post("inbox", "receive", json!({"max": 10})).await;
    assert_eq!(got["messages"][0]["body"], "red");

    let (status, _) = api
        .topics(
            "POST",
            "/nope/publish",
            Some(json!({"messages": [{"body": "x"}]})),
        )
        .await;
    assert_eq!(status, 404);
    let bad = json!({"protocol": "http", "endpoint": "ftp://example.com"});
    let (status, body) = api
        .topics("PUT", "/events/subscriptions/hook", Some(bad))
        .await;
    assert_eq!(status, 400, "{body}");
    let bad = json!({"protocol": "http", "endpoint": "http://example.com", "retry": "SOMETIMES"});
    assert_eq!(
        api.topics("PUT", "/events/subscriptions/hook", Some(bad))
            .await
            .0,
        400
    );
    assert_eq!(api.topics("DELETE", "/events", None).await.0, 200);
}

/// The SQS endpoint answers on the admin listener, beside the queue API,
/// and sees the product's own queues to a key granted them by name; the
/// public listener does not serve it.
#[sqlx::test(migrator = "common::MIGRATOR")]
async fn sqs_endpoint_is_on_the_admin_listener_only(pool: PgPool) {
    let app = support::app_with(pool, |s| {
        s.sqs = queue::SqsConfig {
            keys: format!("{}:{}:queues=*|darkroom.requests", sqs::KEY_ID, sqs::SECRET)
                .parse()
                .unwrap(),
            ..Default::default()
        }
    })
    .await;
    let admin = sqs::client(&app.admin_url(""));
    let listed = admin.list_queues().send().await.unwrap();
    let requests = format!(
        "{}/000000000000/{}",
        app.admin_url(""),
        common::protocol::REQUEST_QUEUE
    );
    assert!(listed.queue_urls().contains(&requests), "{listed:?}");
    let q = sqs::create(&admin, "from-sqs").await;
    sqs::send(&admin, &q, "hi").await;
    let got = sqs::receive(&admin, &q).await;
    assert_eq!(got.messages()[0].body(), Some("hi"));

    let public = sqs::client(&app.url(""));
    assert!(public.list_queues().send().await.is_err());
}
