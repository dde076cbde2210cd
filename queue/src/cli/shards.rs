//! `darkroom-queue shard …` and `darkroom-queue queue …`: where queues live.

use std::time::Duration;

use clap::Subcommand;
use queue::Router;

#[derive(Subcommand, Debug)]
pub enum ShardCommand {
    /// List the cluster at URL as a shard named NAME (its queue tables are
    /// created there).
    Add { name: String, url: String },
    /// List the shards and how many queues live on each.
    List,
}

#[derive(Subcommand, Debug)]
pub enum PlaceCommand {
    /// Put a queue on one shard; where it lived before drains and retires.
    Place { name: String, shard: String },
    /// Spread a queue over several shards; parts not named drain and retire.
    Spread {
        name: String,
        #[arg(required = true, num_args = 1..)]
        shards: Vec<String>,
    },
    /// Move a queue to one shard and wait until its old parts are drained
    /// and retired (receivers must be running to drain them).
    Move {
        name: String,
        to: String,
        /// Give up waiting after this many seconds (default 600); the move
        /// still completes later.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Retire the parts that are drained (the server's maintenance does
    /// this too).
    Settle,
}

pub async fn shard(router: &Router, command: ShardCommand) -> anyhow::Result<()> {
    match command {
        ShardCommand::Add { name, url } => {
            let s = router.add_shard(&name, &url).await?;
            println!("shard {} added as {}", s.id, s.name);
        }
        ShardCommand::List => {
            for s in router.shards().await? {
                let url = s.url.as_deref().map_or("(control database)".into(), redact);
                println!("{}\t{}\t{} queues\t{url}", s.id, s.name, s.queues);
            }
        }
    }
    Ok(())
}

pub async fn place(router: &Router, command: PlaceCommand) -> anyhow::Result<()> {
    match command {
        PlaceCommand::Place { name, shard } => {
            router.place(&name, &[&shard]).await?;
            println!("{name}: sends go to {shard}; other parts drain");
        }
        PlaceCommand::Spread { name, shards } => {
            let shards: Vec<&str> = shards.iter().map(String::as_str).collect();
            router.place(&name, &shards).await?;
            println!("{name}: spread over {}", shards.join(", "));
        }
        PlaceCommand::Move { name, to, timeout } => {
            router.place(&name, &[&to]).await?;
            println!("{name}: sends go to {to}; waiting for the old parts to drain");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            while !router.settled(&name).await? {
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!("{name} is still draining; it retires once receivers empty it");
                }
                for (queue, shard) in router.settle().await? {
                    println!("{queue}: part on {shard} retired");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            println!("{name}: moved to {to}");
        }
        PlaceCommand::Settle => {
            for (queue, shard) in router.settle().await? {
                println!("{queue}: part on {shard} retired");
            }
        }
    }
    Ok(())
}

/// The URL without its passwords, for printing: libpq and sqlx take one in
/// the userinfo and in query parameters (`password`, `sslpassword`) alike.
fn redact(url: &str) -> String {
    let url = hide_userinfo_password(url);
    match url.split_once('?') {
        Some((base, query)) => format!("{base}?{}", hide_password_parameters(query)),
        None => url,
    }
}

fn hide_userinfo_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `query` with the value of every parameter whose name holds `password`
/// masked; names are read percent-decoded, as the URL's readers do.
fn hide_password_parameters(query: &str) -> String {
    let hide = |pair: &str| match pair.split_once('=') {
        Some((name, _)) if names_a_password(name) => format!("{name}=***"),
        _ => pair.to_owned(),
    };
    query.split('&').map(hide).collect::<Vec<_>>().join("&")
}

fn names_a_password(name: &str) -> bool {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    name.to_ascii_lowercase().contains("password")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_userinfo_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/darkroom"),
            "postgres://app@db:5432/darkroom"
        );
    }

    #[test]
    fn redact_hides_passwords_in_query_parameters() {
        let shown = redact(
            "postgres://app@db/darkroom?sslmode=require&password=s3cret&SSLPassword=k3y&pass%77ord=x1",
        );
        assert_eq!(
            shown,
            "postgres://app@db/darkroom?sslmode=require&password=***&SSLPassword=***&pass%77ord=***"
        );
    }

    #[test]
    fn redact_hides_both_passwords_of_one_url() {
        let shown = redact("postgres://app:s3cret@db/darkroom?password=other");
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
    }

    #[test]
    fn redact_keeps_a_url_without_passwords() {
        let url = "postgres://db/darkroom?application_name=darkroom&sslmode=disable";
        assert_eq!(redact(url), url);
    }
}
