//! `darkroom-queue`: administer Darkroom's Postgres message queues from the
//! command line, or serve their HTTP API (see the `queue` crate).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use queue::{AdminToken, NewMessage, QueueKind, Queues, RewindTo, Router};

mod shards;
mod topics;

/// Administer Darkroom's Postgres message queues, or serve their HTTP API.
#[derive(Parser, Debug)]
#[command(name = "darkroom-queue", version)]
struct Cli {
    /// Postgres connection URL (required): the queues' database, and the
    /// control database that says where queues placed on shards live.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a queue, or update the attributes given.
    Create(CreateArgs),
    /// Print a queue's attributes and message counts as JSON.
    Stats { name: String },
    /// Send one message per BODY; prints the ids.
    Send {
        name: String,
        body: Vec<String>,
        /// Message group (ordered queues).
        #[arg(long)]
        group: Option<String>,
        /// Delay in seconds.
        #[arg(long)]
        delay: Option<u64>,
    },
    /// Receive messages and print them as JSON lines (they stay leased
    /// until the lock expires unless --delete).
    Receive(ReceiveArgs),
    /// Deliver deleted messages again from a time (RFC 3339) or an id.
    Rewind {
        name: String,
        #[arg(long, conflicts_with = "to_id", required_unless_present = "to_id")]
        to_time: Option<DateTime<Utc>>,
        #[arg(long)]
        to_id: Option<i64>,
    },
    /// Move this queue's dead letters back into it.
    Redrive { name: String },
    /// Delete every live message of a queue.
    Purge { name: String },
    /// Shards: other Postgres clusters queues can be placed on.
    Shard {
        #[command(subcommand)]
        command: shards::ShardCommand,
    },
    /// Where a queue lives: place, spread or move it over shards.
    Queue {
        #[command(subcommand)]
        command: shards::PlaceCommand,
    },
    /// Topics: publish once, deliver to every subscription.
    Topic {
        #[command(subcommand)]
        command: topics::TopicCommand,
    },
    /// Serve the queue HTTP API and the SQS endpoint, run maintenance and
    /// push topics' HTTP deliveries.
    Serve {
        /// Listen address (default 127.0.0.1:8081).
        #[arg(long, env = "DARKROOM_QUEUE_BIND", default_value = "127.0.0.1:8081")]
        bind: String,
        /// Bearer token of the API; unset: every call answers 403.
        #[arg(long, env = "DARKROOM_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// The SQS endpoint, at `POST /`.
        #[command(flatten)]
        sqs: queue::SqsArgs,
        /// Seconds a topic's HTTP delivery may take before it counts as
        /// failed (default 10); each is leased for three times that.
        #[arg(long, env = "DARKROOM_TOPIC_PUSH_TIMEOUT", default_value_t = 10)]
        push_timeout: u64,
    },
}

/// `darkroom-queue create`: attributes left out keep their value.
#[derive(clap::Args, Debug)]
struct CreateArgs {
    name: String,
    /// concurrent or ordered (default concurrent).
    #[arg(long)]
    kind: Option<String>,
    /// Default lock of a receive, in seconds (default 30).
    #[arg(long)]
    visibility_timeout: Option<u64>,
    /// Receives without delete before dead-lettering (default: never).
    #[arg(long, requires = "dead_letter_queue")]
    max_receive_count: Option<u32>,
    /// Queue that takes dead letters.
    #[arg(long, requires = "max_receive_count")]
    dead_letter_queue: Option<String>,
    /// How long an undeleted message is kept, in seconds, or `forever`
    /// (default 345600).
    #[arg(long, value_parser = parse_retention)]
    retention: Option<Retention>,
    /// How far back a rewind may go, in seconds (default 86400).
    #[arg(long)]
    rewind_window: Option<u64>,
    /// Delay of new messages, in seconds (default 0).
    #[arg(long)]
    delay: Option<u64>,
    /// Create the queue spread over these shards (comma-separated names)
    /// rather than in the control database.
    #[arg(long, value_delimiter = ',')]
    shards: Vec<String>,
    /// Largest message body, in bytes (default 1048576).
    #[arg(long)]
    max_message_bytes: Option<u32>,
    /// Default long-poll wait of a receive, in seconds (default 0).
    #[arg(long)]
    polling_wait: Option<u64>,
}

/// `darkroom-queue receive`.
#[derive(clap::Args, Debug)]
struct ReceiveArgs {
    name: String,
    /// Most messages (1 to 1000, default 1).
    #[arg(long, default_value_t = 1)]
    max: usize,
    /// Lock in seconds (default: the queue's visibility timeout).
    #[arg(long)]
    lock: Option<u64>,
    /// Long-poll up to this many seconds (default 0).
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// Delete what was received.
    #[arg(long)]
    delete: bool,
}

/// Resolves on SIGTERM (what service managers and `docker stop` send) or
/// Ctrl-C. Installed before the server announces itself, so a signal right
/// after start-up is not lost to the default action.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
}

/// A retention: seconds, or `forever` (`None`).
#[derive(Clone, Copy, Debug)]
struct Retention(Option<Duration>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    if s == "forever" {
        return Ok(Retention(None));
    }
    s.parse()
        .map(|secs| Retention(Some(Duration::from_secs(secs))))
        .map_err(|_| format!("`{s}` is neither a number of seconds nor `forever`"))
}

/// Runs the command line.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let pool = queue::connect(cli.database_url.as_deref(), 16, &queue::MIGRATOR).await?;
    let queues = Queues::new(pool.clone());
    let router = Router::new(queues.clone());
    match cli.command {
        Command::Create(args) => create(&router, args).await?,
        Command::Stats { name } => {
            let q = router.open(&name).await?;
            let stats = q.stats().await?;
            println!("{}", serde_json::json!({ "name": name, "stats": stats }));
        }
        Command::Send {
            name,
            body,
            group,
            delay,
        } => {
            let q = router.open(&name).await?;
            let messages: Vec<_> = body
                .into_iter()
                .map(|body| NewMessage {
                    body,
                    delay: delay.map(Duration::from_secs),
                    group: group.clone(),
                })
                .collect();
            for id in q.send_batch(&messages).await? {
                println!("{id}");
            }
        }
        Command::Receive(args) => receive(&router, args).await?,
        Command::Rewind {
            name,
            to_time,
            to_id,
        } => {
            let to = match (to_time, to_id) {
                (Some(t), _) => RewindTo::Time(t),
                (None, Some(id)) => RewindTo::Id(id),
                (None, None) => anyhow::bail!("give --to-time or --to-id"),
            };
            let restored = router.open(&name).await?.rewind(to).await?;
            println!("{restored} messages will be delivered again");
        }
        Command::Redrive { name } => {
            let moved = router.open(&name).await?.redrive().await?;
            println!("{moved} messages moved back to {name}");
        }
        Command::Purge { name } => {
            let purged = router.open(&name).await?.purge().await?;
            println!("{purged} messages purged from {name}");
        }
        Command::Shard { command } => shards::shard(&router, command).await?,
        Command::Queue { command } => shards::place(&router, command).await?,
        Command::Topic { command } => topics::topic(&router, command).await?,
        Command::Serve {
            bind,
            admin_token,
            sqs,
            push_timeout,
        } => {
            let push_timeout = Duration::from_secs(push_timeout.max(1));
            serve(router, &bind, admin_token, sqs.into(), push_timeout).await?
        }
    }
    Ok(())
}

/// Creates the queue, or updates the attributes given.
async fn create(router: &Router, args: CreateArgs) -> anyhow::Result<()> {
    let CreateArgs {
        name,
        kind,
        visibility_timeout,
        max_receive_count,
        dead_letter_queue,
        retention,
        rewind_window,
        delay,
        shards,
        max_message_bytes,
        polling_wait,
    } = args;
    let existing = match router.open(&name).await {
        Ok(q) => Some(q.attributes().await?),
        Err(queue::Error::QueueNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let created = existing.is_none();
    let mut a = existing.unwrap_or_default();
    if let Some(kind) = kind {
        a.kind = match kind.as_str() {
            "concurrent" => QueueKind::Concurrent,
            "ordered" => QueueKind::Ordered,
            other => anyhow::bail!("unknown kind `{other}`: use concurrent or ordered"),
        };
    }
    let secs = Duration::from_secs;
    a.visibility_timeout = visibility_timeout.map_or(a.visibility_timeout, secs);
    if max_receive_count.is_some() {
        a.max_receive_count = max_receive_count;
        a.dead_letter_queue = dead_letter_queue;
    }
    if let Some(Retention(r)) = retention {
        a.retention = r;
    }
    a.rewind_window = rewind_window.map_or(a.rewind_window, secs);
    a.delay = delay.map_or(a.delay, secs);
    a.max_message_bytes = max_message_bytes.unwrap_or(a.max_message_bytes);
    a.polling_wait = polling_wait.map_or(a.polling_wait, secs);
    match (created, shards.as_slice()) {
        (_, []) => router.put(&name, &a).await?,
        (true, shards) => {
            let shards: Vec<&str> = shards.iter().map(String::as_str).collect();
            router.create_on(&name, &a, &shards).await?
        }
        (false, _) => {
            anyhow::bail!("{name} exists: use `darkroom-queue queue spread` to change its shards")
        }
    }
    println!("{name}: {}", if created { "created" } else { "updated" });
    Ok(())
}

/// Receives messages and prints them as JSON lines.
async fn receive(router: &Router, args: ReceiveArgs) -> anyhow::Result<()> {
    let ReceiveArgs {
        name,
        max,
        lock,
        wait,
        delete,
    } = args;
    let q = router.open(&name).await?;
    let lock = lock.map_or(
        q.attributes().await?.visibility_timeout,
        Duration::from_secs,
    );
    let messages = q.receive_wait(max, lock, Duration::from_secs(wait)).await?;
    for m in &messages {
        let line = serde_json::json!({
            "id": m.id,
            "body": m.body,
            "receipt": m.receipt.to_string(),
            "receive_count": m.receive_count,
            "enqueued_at": m.enqueued_at,
            "first_received_at": m.first_received_at,
        });
        println!("{line}");
    }
    if delete && !messages.is_empty() {
        let receipts: Vec<_> = messages.iter().map(|m| m.receipt).collect();
        q.delete_batch(&receipts).await?;
    }
    Ok(())
}

/// Serves the HTTP API and runs maintenance until SIGTERM or Ctrl-C.
async fn serve(
    router: Router,
    bind: &str,
    admin_token: Option<String>,
    sqs: queue::SqsConfig,
    push_timeout: Duration,
) -> anyhow::Result<()> {
    let admin_token = admin_token
        .filter(|t| !t.is_empty())
        .map(|t| AdminToken::new(&t))
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let shutdown = CancellationToken::new();
    let maintenance = tokio::spawn({
        let (router, shutdown) = (router.clone(), shutdown.clone());
        async move { router.maintain(Duration::from_secs(10), shutdown).await }
    });
    let pusher = tokio::spawn({
        let pusher = queue::Pusher::new(router.control().clone()).timeout(push_timeout);
        pusher.run(shutdown.clone())
    });
    let signal = shutdown_signal()?;
    let addr = listener.local_addr()?;
    println!("queue API on http://{addr}/api/queues, SQS endpoint on http://{addr}/");
    let stop = shutdown.clone();
    let app = queue::http_router(router.clone(), admin_token).merge(queue::sqs_router(router, sqs));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            signal.await;
            tracing::info!("shutting down");
            stop.cancel();
        })
        .await?;
    shutdown.cancel();
    maintenance.await?;
    pusher.await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
