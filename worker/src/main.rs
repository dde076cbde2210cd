//! `darkroom-worker`: leases request messages and processes their images
//! (see the `worker` crate); `apply` runs a recipe on a local file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::Limits;
use common::health::Dependencies;
use common::protocol::{declare_queues, open_queues};
use common::recipe::{Op, OutputFormat};
use common::storage::{Storage, StorageArgs};
use common::{db, telemetry};
use queue::{Queues, Router};
use tokio_util::sync::CancellationToken;
use worker::engine;
use worker::health::{self, Probes};
use worker::isolate::{self, Confinement, Isolation};
use worker::runtime::{Worker, WorkerSettings};
use worker::sandbox::Sandbox;

/// Darkroom worker: leases request messages and processes images.
#[derive(Parser, Debug)]
#[command(name = "darkroom-worker", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a recipe on a local file, with no database or S3.
    Apply {
        /// An op as JSON, e.g. '{"op":"thumbnail","width":256,"height":256}'; repeat for a chain.
        #[arg(long = "op", required = true)]
        ops: Vec<String>,
        /// Input image.
        input: PathBuf,
        /// Output image; its extension picks the format unless a `format` op does.
        output: PathBuf,
    },
    /// Tell the worker in this pod or host to stop leasing, as SIGTERM does
    /// (a Kubernetes preStop hook): a POST to /drain on 127.0.0.1 at the
    /// port of DARKROOM_WORKER_METRICS_BIND.
    Drain,
    /// Process one image for a worker (its child process; see `isolate`).
    #[command(name = "engine", hide = true)]
    Engine {
        /// Memory ceiling, in bytes.
        #[arg(long)]
        memory: u64,
        /// CPU niceness, 0 to 19.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=19))]
        nice: u8,
        /// The worker's process id; the child exits when it is gone.
        #[arg(long)]
        parent: u32,
        /// Whether to sandbox itself (see `sandbox`).
        #[arg(long, value_enum, default_value_t = Sandbox::On)]
        sandbox: Sandbox,
        /// What to do with the image on stdin, as JSON.
        #[arg(long, required_unless_present = "check_sandbox")]
        task: Option<String>,
        /// Instead of an image, try each way out of the sandbox and report.
        #[arg(long)]
        check_sandbox: bool,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Postgres connection URL (required to run the worker).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Who migrates the database and declares the queues: `apply` (this
    /// worker, the default) or `wait` (the web server; for a worker whose
    /// Postgres role may not change the schema, see DARKROOM_WORKER_DB_ROLE
    /// on darkroom-web).
    #[arg(long, env = "DARKROOM_WORKER_SCHEMA", value_enum, default_value_t)]
    schema: db::Schema,
    #[command(flatten)]
    storage: StorageArgs,
    /// Images processed at once (default: number of cores).
    #[arg(long, env = "DARKROOM_WORKER_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Messages leased beyond the concurrency, whose originals download
    /// while every slot is busy (default 1; 0: lease only for free slots).
    #[arg(long, env = "DARKROOM_WORKER_PREFETCH", default_value_t = 1)]
    prefetch: usize,
    /// Lock taken on each request message, in seconds (default 60); a
    /// heartbeat renews it every third of that while the work runs.
    #[arg(long, env = "DARKROOM_WORKER_LOCK", default_value_t = 60)]
    lock: u64,
    /// How long transient failures (S3 or Postgres down) are retried in
    /// place before the message is released, in seconds (default 600).
    #[arg(long, env = "DARKROOM_WORKER_RETRY_FOR", default_value_t = 600)]
    retry_for: u64,
    /// How long messages in hand may take to finish after SIGTERM, in
    /// seconds (default 30); the rest are released for other workers.
    #[arg(long, env = "DARKROOM_WORKER_SHUTDOWN_GRACE", default_value_t = 30)]
    shutdown_grace: u64,
    /// How long an image is worked on before its output shows
    /// `processing`, in seconds (default 1; 0: at once). Quicker images go
    /// from queued to their outcome, a response message fewer each.
    #[arg(long, env = "DARKROOM_WORKER_PROCESSING_NOTICE", default_value_t = 1)]
    processing_notice: u64,
    /// Longest one image may be processed, in seconds (default 120); past
    /// it the processing is stopped and the output fails.
    #[arg(long, env = "DARKROOM_WORKER_DEADLINE", default_value_t = 120)]
    deadline: u64,
    /// Memory the images processed at once may use together, in MiB
    /// (default 2048); an image is started only when its estimated need
    /// fits, and one that needs more than this fails.
    #[arg(long, env = "DARKROOM_WORKER_MAX_MEMORY", default_value_t = 2048)]
    max_memory: u64,
    /// Largest image, width × height, read or made (default 50 000 000).
    #[arg(long, env = "DARKROOM_MAX_PIXELS", default_value_t = 50_000_000)]
    max_pixels: u64,
    /// Most work one recipe may cost, in passes over a DARKROOM_MAX_PIXELS
    /// image (default 64; see the README).
    #[arg(long, env = "DARKROOM_MAX_RECIPE_COST", default_value_t = 64)]
    max_recipe_cost: u32,
    /// Whether the engine's child processes sandbox themselves: `on`
    /// (default; seccomp required, Landlock where the kernel has it; the
    /// worker will not start where seccomp cannot be installed) or `off`
    /// (not recommended: an exploited codec could reach the network).
    #[arg(long, env = "DARKROOM_WORKER_SANDBOX", value_enum, default_value_t = Sandbox::On)]
    sandbox: Sandbox,
    /// Address of the worker's listener for Prometheus and probes (default:
    /// none): /metrics, /livez, /healthz (ready), POST /drain (loopback).
    #[arg(long, env = "DARKROOM_WORKER_METRICS_BIND")]
    metrics_bind: Option<String>,
    /// Log JSON lines instead of text (default false).
    #[arg(long, env = "DARKROOM_LOG_JSON")]
    log_json: bool,
}

/// `apply` and `engine` run on this thread alone: a one-shot command has no
/// use for an async runtime and its worker threads.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Apply { ops, input, output }) => {
            apply(&ops, &input, &output).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Engine {
            memory,
            nice,
            parent,
            sandbox,
            task,
            check_sandbox,
        }) => {
            let confinement = Confinement {
                memory,
                nice,
                parent,
                sandbox,
            };
            Ok(match task {
                Some(task) if !check_sandbox => isolate::child_main(&confinement, &task),
                _ => isolate::check_sandbox_main(&confinement),
            })
        }
        Some(Command::Drain) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(drain(cli.run.metrics_bind.as_deref())))
            .map(|()| ExitCode::SUCCESS),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(run_worker(cli.run)))
            .map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

fn apply(ops: &[String], input: &PathBuf, output: &PathBuf) -> anyhow::Result<()> {
    let ops = ops
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let value: serde_json::Value =
                serde_json::from_str(s).with_context(|| format!("--op #{}: not JSON", i + 1))?;
            Op::from_json(&value, &format!("--op #{}", i + 1)).map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let format = output
        .extension()
        .and_then(|e| e.to_str())
        .and_then(OutputFormat::from_extension);
    let out = engine::process(&bytes, &ops, &Limits::default(), format)
        .with_context(|| format!("processing {}", input.display()))?;
    std::fs::write(output, &out.bytes).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

async fn run_worker(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_json);
    // A process of this user may read a dumpable process's environment and
    // memory (/proc/PID/environ, /mem): an engine child on a host without
    // Landlock must not find this worker's secrets there.
    nix::sys::prctl::set_dumpable(false).context("making the worker non-dumpable")?;
    telemetry::metrics();
    let shutdown = CancellationToken::new();
    let probes = Probes::new(shutdown.clone());
    if let Some(bind) = &args.metrics_bind {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind} (DARKROOM_WORKER_METRICS_BIND)"))?;
        tokio::spawn(health::serve(listener, probes.clone()));
    }
    let pool = db::connect(args.database_url.as_deref(), 4, args.schema).await?;
    let storage = Storage::connect(&args.storage).await?;
    let router = Router::new(Queues::new(pool.clone()));
    let (requests, responses) = match args.schema {
        db::Schema::Apply => declare_queues(&router).await?,
        db::Schema::Wait => open_queues(&router, db::OWNER_PATIENCE).await?,
    };
    let mut settings = WorkerSettings {
        lock: Duration::from_secs(args.lock.max(1)),
        retry_for: Duration::from_secs(args.retry_for),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        processing_notice: Duration::from_secs(args.processing_notice),
        isolation: Isolation {
            program: std::env::current_exe().context("finding this program's path")?,
            deadline: Duration::from_secs(args.deadline.max(1)),
            sandbox: args.sandbox,
        },
        max_memory: args.max_memory.max(1) << 20,
        prefetch: args.prefetch,
        limits: Limits {
            max_pixels: args.max_pixels,
            max_recipe_cost: args.max_recipe_cost,
            ..Limits::default()
        },
        ..Default::default()
    };
    if let Some(n) = args.concurrency {
        settings.concurrency = n.max(1);
    }
    check_sandbox(&settings.isolation).await?;
    probes.connected(Dependencies {
        pool,
        storage: storage.clone(),
    });
    let signal = telemetry::shutdown_signal();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        signal.await;
        trigger.cancel();
    });
    Worker::new(requests, responses, storage, settings)
        .run(shutdown)
        .await;
    Ok(())
}

/// Asks the worker listening on `bind`'s port of this host to drain.
async fn drain(bind: Option<&str>) -> anyhow::Result<()> {
    let bind =
        bind.context("DARKROOM_WORKER_METRICS_BIND is not set: no worker listener to ask")?;
    let addr: std::net::SocketAddr = bind
        .parse()
        .with_context(|| format!("DARKROOM_WORKER_METRICS_BIND={bind}: not an address"))?;
    let url = format!("http://127.0.0.1:{}/drain", addr.port());
    let answer = reqwest::Client::new()
        .post(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("asking {url}"))?;
    anyhow::ensure!(
        answer.status().is_success(),
        "{url} answered {}",
        answer.status()
    );
    Ok(())
}

/// Refuses to start where engine children cannot sandbox themselves,
/// rather than fail every image; says how far the sandbox goes.
async fn check_sandbox(isolation: &Isolation) -> anyhow::Result<()> {
    if isolation.sandbox == Sandbox::Off {
        tracing::warn!(
            "DARKROOM_WORKER_SANDBOX=off: engine children run without seccomp or Landlock; a \
             codec exploited by a crafted image could reach the network and this host's files"
        );
        return Ok(());
    }
    let report = isolation.check_sandbox().await.context(
        "the engine's child cannot sandbox itself on this host; set DARKROOM_WORKER_SANDBOX=off \
         to run without (not recommended)",
    )?;
    let escaped = report.escaped();
    if !escaped.is_empty() || report.threads_failed.is_some() {
        anyhow::bail!(
            "the engine's sandbox does not hold on this host: its child could {} (threads: \
             {:?}); set DARKROOM_WORKER_SANDBOX=off to run without (not recommended)",
            escaped.join(", "),
            report.threads_failed
        );
    }
    if report.enforced.landlock.restricts_files() {
        tracing::info!(landlock = ?report.enforced.landlock, "engine children run under seccomp and Landlock");
    } else {
        tracing::warn!(
            "this kernel has no Landlock: engine children run under seccomp (no network, no \
             programs) but may read the files this worker's user can"
        );
    }
    Ok(())
}
