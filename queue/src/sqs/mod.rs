//! An Amazon SQS endpoint over the queue: any AWS SDK pointed at it (its
//! `endpoint_url`) sends, receives and administers Darkroom queues.
//!
//! Served at `POST /` (and `POST /{account}/{queue}`, where the query
//! protocol may post; both also as `GET`, the query protocol in a URL) on
//! `darkroom-web`'s admin listener and by `darkroom-queue serve`. Every
//! request must carry an AWS Signature Version 4 (in its headers or,
//! presigned, in its query) made with a key of `DARKROOM_SQS_ACCESS_KEYS`;
//! with none configured, every request is refused. A key reaches the queues and
//! actions of its grant; the product's own `darkroom.` queues only when
//! they are granted by name (see `grants`).
//!
//! SQS concepts map onto the queue's: a standard queue is a concurrent
//! queue, a FIFO queue (`.fifo`) an ordered one with message groups, a
//! receipt handle is a receipt, a redrive policy is a dead letter queue.
//! What SQS keeps and the queue does not (message attributes, FIFO
//! deduplication, attributes such as `MaximumMessageSize`, tags) is kept
//! by this module: see `message` and `settings`.
//!
//! # Layout
//! - `keys`: the access keys and their secrets.
//! - `auth`: SigV4 verification, in headers or a presigned URL.
//! - `grants`: what each key may do, as `DARKROOM_SQS_ACCESS_KEYS` says.
//! - `access`: a request's queues judged by its key's grant.
//! - `body`: a request body, read up to what SQS can need.
//! - `protocol`: AWS JSON 1.0 and the query protocol, read into one shape.
//! - `input`: an action's input, read as either protocol sends it.
//! - `answer`: answers and errors in the request's protocol.
//! - `error`: SQS error codes.
//! - `claims`: what SQS allows once a minute: a purge, a name reused.
//! - `caller`: STS's GetCallerIdentity, for tools that look up the account.
//! - `purge`: PurgeQueue, once a minute.
//! - `regions`: each region's queues kept apart.
//! - `queues`: queue actions (CreateQueue, attributes, tags, dead letter sources).
//! - `moves`: message move tasks (redrive).
//! - `permissions`: AddPermission and RemovePermission, kept in `Policy`.
//! - `send`: SendMessage(Batch), FIFO deduplication included.
//! - `receive`: ReceiveMessage, DeleteMessage(Batch), ChangeMessageVisibility(Batch).
//! - `message`: bodies, message attributes, their digests.
//! - `contents`: the characters a body may hold.
//! - `settings`: SQS queue attributes and their native counterparts.
//! - `extra`: the SQS-only attributes and tags, and their cache.
//! - `fifo`: the deduplication window.

mod access;
mod answer;
mod auth;
mod body;
mod caller;
mod claims;
mod contents;
mod error;
mod extra;
mod fifo;
mod grants;
mod input;
mod keys;
mod message;
mod moves;
mod permissions;
mod protocol;
mod purge;
mod queues;
mod receive;
mod regions;
mod send;
mod settings;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;
use serde_json::{Map, Value};

pub use keys::AccessKeys;

use error::{SqsError, SqsResult};
use input::{Input, is_sqs_word};
use protocol::Protocol;

/// How the endpoint names itself in queue URLs and ARNs.
#[derive(Clone, Debug)]
pub struct SqsConfig {
    /// Keys requests may be signed with; empty: every request is refused.
    pub keys: AccessKeys,
    /// The account id in queue URLs and ARNs.
    pub account_id: String,
    /// The endpoint's own region: its queues keep their names; another
    /// region's are kept apart under that region's name (see `regions`).
    pub region: String,
}

impl Default for SqsConfig {
    fn default() -> Self {
        Self {
            keys: AccessKeys::default(),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }
}

/// The endpoint's settings on a command line (`darkroom-web`,
/// `darkroom-queue serve`).
#[derive(clap::Args, Clone, Debug)]
pub struct SqsArgs {
    /// Access keys of the SQS endpoint, comma-separated, each
    /// `ACCESS_KEY_ID:SECRET` (secrets of 8 characters or more) with an
    /// optional grant, `:queues=orders-*|billing;actions=SendMessage|Receive*`.
    /// A key without one may use every queue but the `darkroom.` ones,
    /// which only a grant naming them exactly reaches. Unset: the endpoint
    /// refuses every request.
    #[arg(long, env = "DARKROOM_SQS_ACCESS_KEYS", hide_env_values = true, value_parser = parse_keys)]
    pub sqs_access_keys: Option<AccessKeys>,
    /// Account id in the endpoint's queue URLs and ARNs (default
    /// 000000000000).
    #[arg(long, env = "DARKROOM_SQS_ACCOUNT_ID", default_value = "000000000000")]
    pub sqs_account_id: String,
    /// The endpoint's own region (default us-east-1): requests signed for it
    /// reach queues by their names; those signed for another region reach
    /// that region's queues, kept apart (`us-west-2.orders`).
    #[arg(long, env = "DARKROOM_SQS_REGION", default_value = "us-east-1")]
    pub sqs_region: String,
}

fn parse_keys(s: &str) -> Result<AccessKeys, String> {
    s.parse()
}

impl From<SqsArgs> for SqsConfig {
    fn from(args: SqsArgs) -> Self {
        Self {
            keys: args.sqs_access_keys.unwrap_or_default(),
            account_id: args.sqs_account_id,
            region: args.sqs_region,
        }
    }
}

struct Sqs {
    router: crate::Router,
    config: SqsConfig,
    extra: extra::ExtraCache,
    moves: Mutex<Vec<moves::MoveTask>>,
}

/// The SQS endpoint's routes over the queues `router` routes to.
pub fn router(router: crate::Router, config: SqsConfig) -> Router {
    let sqs = Arc::new(Sqs {
        router,
        config,
        extra: extra::ExtraCache::default(),
        moves: Mutex::default(),
    });
    // Older SDKs and presigned URLs send the query protocol as a GET.
    Router::new()
        .route("/", post(handle).get(handle))
        .route("/{account}/{queue}", post(handle).get(handle))
        .with_state(sqs)
}

/// Who asked, and where: what actions need besides their input.
struct Ctx<'a> {
    sqs: &'a Sqs,
    /// `http(s)://host` as the client reached us, for queue URLs.
    base_url: String,
    /// The region the request was signed for, in ARNs.
    region: String,
    /// Who signed the request, and what their key may do.
    access: access::Access<'a>,
    /// The request's `X-Amzn-Trace-Id`, which sends keep as
    /// `AWSTraceHeader`.
    trace_header: Option<String>,
}

impl Ctx<'_> {
    /// The endpoint's own region, whose queues keep their names.
    fn home(&self) -> &str {
        &self.sqs.config.region
    }

    /// The native queue behind the SQS queue `name` of the request's region.
    fn native(&self, name: &str) -> String {
        regions::native(name, &self.region, self.home())
    }

    /// The SQS name of the native queue `native`, when it is of the
    /// request's region.
    fn sqs_name<'n>(&'n self, native: &'n str) -> Option<&'n str> {
        let (region, name) = regions::split(native, self.home());
        (region == self.region).then_some(name)
    }

    /// The URL of the native queue `native` (of the request's region).
    fn queue_url(&self, native: &str) -> String {
        let (_, name) = regions::split(native, self.home());
        format!("{}/{}/{}", self.base_url, self.sqs.config.account_id, name)
    }

    /// The ARN of the native queue `native`, in its own region.
    fn arn(&self, native: &str) -> String {
        let (region, name) = regions::split(native, self.home());
        format!("arn:aws:sqs:{region}:{}:{name}", self.sqs.config.account_id)
    }

    /// `input` with the queue it names by URL or name (CreateQueue,
    /// GetQueueUrl) as the native queue of the request's region: actions
    /// work on native names, and turn them back into URLs and ARNs.
    fn in_own_region(&self, mut input: Input) -> Input {
        if let Ok(name) = input.queue() {
            let native = self.native(name);
            input.0.insert("QueueUrl".into(), Value::String(native));
        }
        if let Some(name) = input.str("QueueName") {
            let native = self.native(name);
            input.0.insert("QueueName".into(), Value::String(native));
        }
        input
    }

    /// The native queue an SQS queue ARN names.
    fn native_of_arn(&self, arn: &str) -> SqsResult<String> {
        regions::native_of_arn(arn, self.home())
    }

    fn control(&self) -> &sqlx::PgPool {
        self.sqs.router.control().pool()
    }
}

// The request whole, not its parts as extractors: those clone the headers.
async fn handle(State(sqs): State<Arc<Sqs>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let protocol = if target.is_some() {
        Protocol::Json
    } else {
        Protocol::Query
    };
    let mut action = String::new();
    let result = async {
        if sqs.config.keys.is_empty() {
            return Err(SqsError::missing_authentication());
        }
        let body = body::read(headers, body).await?;
        let keys = &sqs.config.keys;
        let signer = auth::verify(keys, method, uri, headers, &body, Utc::now())?;
        let grant = keys
            .grant(&signer.key_id)
            .ok_or_else(SqsError::unknown_key)?;
        let (name, mut input) = match target {
            Some(target) => protocol::parse_json(target, &body)?,
            None => protocol::parse_query(uri.query(), &body)?,
        };
        action = name;
        // The query protocol may post to the queue's URL instead of naming it.
        if !input.contains_key("QueueUrl")
            && let Some(queue) = uri.path().rsplit('/').next().filter(|q| !q.is_empty())
        {
            input.insert("QueueUrl".into(), Value::String(queue.to_owned()));
        }
        let scheme = match headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            Some("https") => "https",
            _ => "http",
        };
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let ctx = Ctx {
            sqs: &sqs,
            base_url: format!("{scheme}://{host}"),
            region: if signer.region.is_empty() {
                sqs.config.region.clone()
            } else {
                signer.region
            },
            access: access::Access::new(signer.key_id, grant),
            trace_header: headers
                .get("x-amzn-trace-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let input = ctx.in_own_region(Input(input));
        access::authorize(&ctx, &action, &input)?;
        dispatch(&ctx, &action, input).await
    }
    .await;
    match result {
        Ok(output) => answer::success(protocol, &action, output, &request_id),
        Err(e) => {
            tracing::debug!(action, code = e.code, message = %e.message, "SQS request refused");
            answer::failure(protocol, &e, &request_id)
        }
    }
}

async fn dispatch(ctx: &Ctx<'_>, action: &str, input: Input) -> SqsResult<Map<String, Value>> {
    match action {
        "CreateQueue" => queues::create(ctx, input).await,
        "GetQueueUrl" => queues::get_url(ctx, input).await,
        "ListQueues" => queues::list(ctx, input).await,
        "DeleteQueue" => queues::delete(ctx, input).await,
        "PurgeQueue" => purge::purge(ctx, input).await,
        "GetQueueAttributes" => queues::get_attributes(ctx, input).await,
        "SetQueueAttributes" => queues::set_attributes(ctx, input).await,
        "ListDeadLetterSourceQueues" => queues::dead_letter_sources(ctx, input).await,
        "TagQueue" => queues::tag(ctx, input).await,
        "UntagQueue" => queues::untag(ctx, input).await,
        "ListQueueTags" => queues::list_tags(ctx, input).await,
        "StartMessageMoveTask" => moves::start(ctx, input).await,
        "ListMessageMoveTasks" => moves::list(ctx, input).await,
        "CancelMessageMoveTask" => moves::cancel(ctx, input).await,
        "SendMessage" => send::send(ctx, input).await,
        "SendMessageBatch" => send::send_batch(ctx, input).await,
        "ReceiveMessage" => receive::receive(ctx, input).await,
        "DeleteMessage" => receive::delete(ctx, input).await,
        "DeleteMessageBatch" => receive::delete_batch(ctx, input).await,
        "ChangeMessageVisibility" => receive::change_visibility(ctx, input).await,
        "ChangeMessageVisibilityBatch" => receive::change_visibility_batch(ctx, input).await,
        "GetCallerIdentity" => caller::identity(ctx),
        "AddPermission" => permissions::add(ctx, input).await,
        "RemovePermission" => permissions::remove(ctx, input).await,
        other => Err(SqsError::invalid_action(other)),
    }
}

/// A failed batch entry, as SQS reports it.
fn batch_failure(id: &str, e: &SqsError) -> Value {
    serde_json::json!({
        "Id": id,
        "SenderFault": e.fault == error::Fault::Sender,
        "Code": e.code,
        "Message": e.message,
    })
}

/// A batch's answer.
fn batch_output(successful: Vec<Value>, failed: Vec<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("Successful".into(), Value::Array(successful));
    out.insert("Failed".into(), Value::Array(failed));
    out
}
