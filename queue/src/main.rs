//! `darkroom-queue`: admin CLI for Darkroom's message queue.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use queue::{QueueAttributes, QueueKind, Queues};
use sqlx::postgres::PgPoolOptions;

/// Administer Darkroom's Postgres message queues.
#[derive(Parser)]
#[command(name = "darkroom-queue", version)]
struct Cli {
    /// Postgres connection URL (required).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a queue, or update its attributes.
    Create {
        name: String,
        /// concurrent or ordered (default concurrent).
        #[arg(long, default_value = "concurrent")]
        kind: String,
        /// Default lock of a receive, in seconds (default 30).
        #[arg(long, default_value_t = 30)]
        visibility_timeout: u64,
    },
    /// Print a queue's message counts as JSON.
    Stats { name: String },
    /// Send one message per BODY; prints the ids.
    Send { name: String, body: Vec<String> },
    /// Receive messages and print them as JSON lines (they stay leased).
    Receive {
        name: String,
        /// Most messages to receive (1 to 1000, default 1).
        #[arg(long, default_value_t = 1)]
        max: usize,
        /// Lock in seconds (default: the queue's visibility timeout).
        #[arg(long)]
        lock: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database_url.context(
        "DATABASE_URL is not set: export DATABASE_URL=postgres://user:pass@host:5432/db \
         or pass --database-url",
    )?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .context("cannot connect to Postgres at DATABASE_URL")?;
    queue::MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations")?;
    let queues = Queues::new(pool);
    match cli.command {
        Command::Create {
            name,
            kind,
            visibility_timeout,
        } => {
            let kind = match kind.as_str() {
                "concurrent" => QueueKind::Concurrent,
                "ordered" => QueueKind::Ordered,
                other => anyhow::bail!("unknown kind `{other}`: use concurrent or ordered"),
            };
            let attrs = QueueAttributes {
                kind,
                visibility_timeout: Duration::from_secs(visibility_timeout),
                ..Default::default()
            };
            let (_, put) = queues.put(&name, &attrs).await?;
            println!("{name}: {put:?}");
        }
        Command::Stats { name } => {
            let stats = queues.open(&name).await?.stats().await?;
            println!("{}", serde_json::to_string(&stats)?);
        }
        Command::Send { name, body } => {
            let queue = queues.open(&name).await?;
            let messages: Vec<_> = body.into_iter().map(queue::NewMessage::new).collect();
            for id in queue.send_batch(&messages).await? {
                println!("{id}");
            }
        }
        Command::Receive { name, max, lock } => {
            let queue = queues.open(&name).await?;
            let lock = lock.map_or(queue.attributes().visibility_timeout, Duration::from_secs);
            for m in queue.receive(max, lock).await? {
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
        }
    }
    Ok(())
}
