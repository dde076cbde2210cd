//! Who may do what on the SQS endpoint: the headers a signature must
//! cover, and the bound on what is read before a signature is checked.
//! Each test over its own database.

use std::time::Duration;

use hmac::{Hmac, Mac};
use queue::{QueueAttributes, Queues, Router, SqsConfig};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
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
    let app = queue::sqs_router(router.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, router)
}

fn key((id, secret): (&str, &str)) -> String {
    format!("{id}:{secret}")
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
