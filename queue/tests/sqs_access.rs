//! Who may do what on the SQS endpoint: keys' grants (queue prefixes,
//! actions, the product's `darkroom.` queues), the headers a signature
//! must cover, and the bound on what is read before a signature is
//! checked. Each test over its own database.

mod common;

use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use hmac::{Hmac, Mac};
use queue::{QueueAttributes, Queues, Router, SqsConfig};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use testkit::sqs::{client_with, create, receive, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: (&str, &str) = ("AKIDADMIN", "admin-secret-1");

/// Serves the endpoint with `keys` (as `DARKROOM_SQS_ACCESS_KEYS` has
/// them), the product's two queues made beside, as the web makes them.
async fn serve_with_keys(pool: &PgPool, keys: &str) -> (String, Router) {
    let router = Router::new(Queues::new(pool.clone()));
    for name in ["darkroom.requests", "darkroom.responses"] {
        router.put(name, &QueueAttributes::default()).await.unwrap();
    }
    let config = SqsConfig {
        keys: keys.parse().unwrap(),
        ..SqsConfig::default()
    };
    testkit::sqs::serve_config(router, config).await
}

fn key((id, secret): (&str, &str)) -> String {
    format!("{id}:{secret}")
}

fn queue_url(url: &str, name: &str) -> String {
    format!("{url}/000000000000/{name}")
}

/// The refusal AWS gives: 403, AccessDenied, a message naming `words`
/// (the key, the action, the queue).
fn assert_denied<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, SdkError<E, HttpResponse>>,
    words: &[&str],
) {
    let err = result.expect_err("the request should be refused");
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(403), "{err:?}");
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
    let message = err.message().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "`{message}` does not name {word}");
    }
}

async fn listed(sqs: &aws_sdk_sqs::Client) -> Vec<String> {
    let out = sqs.list_queues().send().await.unwrap();
    out.queue_urls().to_vec()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_key_limited_to_a_prefix_uses_its_queues_and_no_other(pool: PgPool) {
    let orders = ("AKIDORDERS", "orders-secret-1");
    let keys = format!("{},{}:queues=orders-*", key(ADMIN), key(orders));
    let (url, _) = serve_with_keys(&pool, &keys).await;
    let admin = client_with(&url, ADMIN.0, ADMIN.1);
    let sqs = client_with(&url, orders.0, orders.1);

    let own = create(&sqs, "orders-eu").await;
    send(&sqs, &own, "mine").await;
    assert_eq!(receive(&sqs, &own).await.messages()[0].body(), Some("mine"));
    let billing = create(&admin, "billing").await;

    let sent = sqs
        .send_message()
        .queue_url(&billing)
        .message_body("not mine")
        .send()
        .await;
    assert_denied(sent, &[orders.0, "sqs:SendMessage", "billing"]);
    let purged = sqs.purge_queue().queue_url(&billing).send().await;
    assert_denied(purged, &[orders.0, "sqs:PurgeQueue", "billing"]);
    let made = sqs.create_queue().queue_name("billing-2").send().await;
    assert_denied(made, &["sqs:CreateQueue", "billing-2"]);
    let found = sqs.get_queue_url().queue_name("billing").send().await;
    assert_denied(found, &["sqs:GetQueueUrl", "billing"]);
    assert_eq!(listed(&sqs).await, [own]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_key_without_the_exact_name_cannot_touch_nor_see_the_darkroom_queues(pool: PgPool) {
    let star = ("AKIDSTAR", "star-secret-1");
    let prefix = ("AKIDPREFIX", "prefix-secret-1");
    let keys = format!(
        "{},{}:queues=*,{}:queues=darkroom.*|darkroom.requests*",
        key(ADMIN),
        key(star),
        key(prefix)
    );
    let (url, router) = serve_with_keys(&pool, &keys).await;
    let responses = queue_url(&url, "darkroom.responses");
    let requests = queue_url(&url, "darkroom.requests");
    for (id, secret) in [ADMIN, star, prefix] {
        let sqs = client_with(&url, id, secret);
        let shortened = sqs
            .set_queue_attributes()
            .queue_url(&responses)
            .attributes(QueueAttributeName::MessageRetentionPeriod, "60")
            .send()
            .await;
        assert_denied(
            shortened,
            &[id, "sqs:SetQueueAttributes", "darkroom.responses"],
        );
        let forged = sqs
            .send_message()
            .queue_url(&requests)
            .message_body("{\"forged\": true}")
            .send()
            .await;
        assert_denied(forged, &[id, "sqs:SendMessage", "darkroom.requests"]);
        let looked = sqs
            .get_queue_url()
            .queue_name("darkroom.requests")
            .send()
            .await;
        assert_denied(looked, &[id, "darkroom.requests"]);
        let names = listed(&sqs).await;
        assert!(names.iter().all(|u| !u.contains("darkroom.")), "{names:?}");
    }
    let kept = router.open("darkroom.responses").await.unwrap();
    let retention = kept.attributes().await.unwrap().retention;
    assert_eq!(retention, QueueAttributes::default().retention);
    let untouched = router.open("darkroom.requests").await.unwrap();
    assert_eq!(untouched.stats().await.unwrap().visible, 0);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_plain_key_cannot_reach_darkroom_requests_through_dead_letters_or_moves(pool: PgPool) {
    let (url, _) = serve_with_keys(&pool, &key(ADMIN)).await;
    let sqs = client_with(&url, ADMIN.0, ADMIN.1);
    let policy = serde_json::json!({
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:darkroom.requests",
        "maxReceiveCount": 1,
    })
    .to_string();
    let made = sqs
        .create_queue()
        .queue_name("poison")
        .attributes(QueueAttributeName::RedrivePolicy, policy.clone())
        .send()
        .await;
    assert_denied(made, &["sqs:SendMessage", "darkroom.requests"]);
    let own = create(&sqs, "poison").await;
    let redirected = sqs
        .set_queue_attributes()
        .queue_url(&own)
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await;
    assert_denied(redirected, &["sqs:SendMessage", "darkroom.requests"]);

    let dlq = create(&sqs, "poison-dlq").await;
    let own_policy = serde_json::json!({
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:poison-dlq",
        "maxReceiveCount": 1,
    });
    sqs.set_queue_attributes()
        .queue_url(&own)
        .attributes(QueueAttributeName::RedrivePolicy, own_policy.to_string())
        .send()
        .await
        .unwrap();
    send(&sqs, &dlq, "{\"forged\": true}").await;
    let moved = sqs
        .start_message_move_task()
        .source_arn("arn:aws:sqs:us-east-1:000000000000:poison-dlq")
        .destination_arn("arn:aws:sqs:us-east-1:000000000000:darkroom.requests")
        .send()
        .await;
    assert_denied(moved, &["sqs:SendMessage", "darkroom.requests"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_key_granted_darkroom_requests_by_name_uses_it_and_no_other_darkroom_queue(pool: PgPool) {
    let web = ("AKIDWEB", "web-secret-1");
    let keys = format!("{}:queues=darkroom.requests", key(web));
    let (url, router) = serve_with_keys(&pool, &keys).await;
    let sqs = client_with(&url, web.0, web.1);
    let requests = queue_url(&url, "darkroom.requests");
    send(&sqs, &requests, "a request").await;
    let native = router.open("darkroom.requests").await.unwrap();
    assert_eq!(native.stats().await.unwrap().visible, 1);
    assert_eq!(listed(&sqs).await, [requests]);
    let responses = queue_url(&url, "darkroom.responses");
    let read = sqs.receive_message().queue_url(&responses).send().await;
    assert_denied(read, &[web.0, "sqs:ReceiveMessage", "darkroom.responses"]);
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn an_action_outside_the_grant_is_refused(pool: PgPool) {
    let worker = ("AKIDWORKER", "worker-secret-1");
    let keys = format!(
        "{},{}:actions=sqs:SendMessage|Receive*|DeleteMessage",
        key(ADMIN),
        key(worker)
    );
    let (url, _) = serve_with_keys(&pool, &keys).await;
    let q = create(&client_with(&url, ADMIN.0, ADMIN.1), "jobs").await;
    let sqs = client_with(&url, worker.0, worker.1);
    send(&sqs, &q, "one").await;
    // A batch is granted by its single action, as in IAM.
    let entry = SendMessageBatchRequestEntry::builder()
        .id("two")
        .message_body("two")
        .build()
        .unwrap();
    sqs.send_message_batch()
        .queue_url(&q)
        .entries(entry)
        .send()
        .await
        .unwrap();
    let got = receive(&sqs, &q).await;
    let receipt = got.messages()[0].receipt_handle().unwrap();
    testkit::sqs::delete(&sqs, &q, receipt).await;

    let purged = sqs.purge_queue().queue_url(&q).send().await;
    assert_denied(purged, &[worker.0, "sqs:PurgeQueue", "jobs"]);
    let tuned = sqs
        .set_queue_attributes()
        .queue_url(&q)
        .attributes(QueueAttributeName::DelaySeconds, "5")
        .send()
        .await;
    assert_denied(tuned, &["sqs:SetQueueAttributes", "jobs"]);
    let deleted = sqs.delete_queue().queue_url(&q).send().await;
    assert_denied(deleted, &["sqs:DeleteQueue", "jobs"]);
    let listing = sqs.list_queues().send().await;
    assert_denied(listing, &[worker.0, "sqs:ListQueues"]);
}

/// A JSON protocol ListQueues signed over `signed` headers only (among
/// content-type, host, x-amz-date, x-amz-target), as SigV4 signs.
fn list_queues_signed_over(
    url: &str,
    (id, secret): (&str, &str),
    signed: &[&str],
) -> reqwest::RequestBuilder {
    let host = url.trim_start_matches("http://");
    let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let headers = [
        ("content-type", "application/x-amz-json-1.0"),
        ("host", host),
        ("x-amz-date", amz_date.as_str()),
        ("x-amz-target", "AmazonSQS.ListQueues"),
    ];
    let body = "{}";
    let chosen: Vec<_> = headers.iter().filter(|(n, _)| signed.contains(n)).collect();
    let canonical_headers: String = chosen.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names = chosen.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(";");
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{names}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let date = &amz_date[..8];
    let scope = format!("{date}/us-east-1/sqs/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical))
    );
    let hmac = |key: &[u8], data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let mut signing_key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in ["us-east-1", "sqs", "aws4_request"] {
        signing_key = hmac(&signing_key, part);
    }
    let signature = hex::encode(hmac(&signing_key, &to_sign));
    let mut request = reqwest::Client::new().post(url).body(body).header(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={id}/{scope}, SignedHeaders={names}, Signature={signature}"
        ),
    );
    for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
        request = request.header(*name, *value);
    }
    request
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn a_signature_that_leaves_out_x_amz_target_or_content_type_is_refused(pool: PgPool) {
    let (url, _) = serve_with_keys(&pool, &key(ADMIN)).await;
    let all = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let signed = list_queues_signed_over(&url, ADMIN, &all)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200, "{:?}", signed.text().await);
    for left_out in ["x-amz-target", "content-type"] {
        let some: Vec<&str> = all.iter().copied().filter(|h| *h != left_out).collect();
        let answer = list_queues_signed_over(&url, ADMIN, &some)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{left_out}");
        assert_eq!(
            answer.headers()["x-amzn-query-error"],
            "IncompleteSignature;Sender"
        );
        let body = answer.text().await.unwrap();
        assert!(body.contains(left_out), "{body}");
    }
}

/// The bound on what is read before a signature is checked: SQS's largest
/// message three times over, and 64 KiB for the rest.
const MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;

/// Writes an unsigned request's head and `body`, and reads the answer's
/// head; a server still waiting for the body fails the test.
async fn raw_request(url: &str, framing: &str, body: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: AmazonSQS.ListQueues\r\n\
         content-type: application/x-amz-json-1.0\r\n{framing}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer: the server is still reading the body"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[sqlx::test(migrator = "queue::MIGRATOR")]
async fn an_oversized_body_is_refused_before_authentication(pool: PgPool) {
    let (url, _) = serve_with_keys(&pool, &key(ADMIN)).await;
    let refused = |answer: &str| {
        answer.starts_with("HTTP/1.1 413") && answer.contains("RequestEntityTooLarge;Sender")
    };
    // Up to the bound a body is read, and then its missing signature
    // refused.
    let fits = vec![b' '; MAX_REQUEST_BYTES];
    let framing = format!("content-length: {}\r\n", fits.len());
    let answer = raw_request(&url, &framing, &fits).await;
    assert!(answer.contains("MissingAuthenticationToken"), "{answer}");
    // A gibibyte declared and never sent: refused from its length alone.
    let answer = raw_request(&url, "content-length: 1073741824\r\n", b"").await;
    assert!(refused(&answer), "{answer}");
    // No length declared: refused once what arrived passes the bound, the
    // rest never awaited.
    let chunk = format!("{:x}\r\n", MAX_REQUEST_BYTES + 1).into_bytes();
    let mut body = chunk;
    body.resize(body.len() + MAX_REQUEST_BYTES + 1, b' ');
    let answer = raw_request(&url, "transfer-encoding: chunked\r\n", &body).await;
    assert!(refused(&answer), "{answer}");
}
