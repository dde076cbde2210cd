//! `darkroom-queue topic …`: topics, their subscriptions, publishing.

use std::time::Duration;

use clap::{Args, Subcommand};
use queue::{
    BodyFormat, Publication, RetryPolicy, Router, SubscriptionSpec, TopicFilter, TopicSettings,
    Topics,
};

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic, or change its settings.
    Create {
        name: String,
        /// `tag` (default) or `routing`.
        #[arg(long, default_value = "tag")]
        filter: String,
        /// Seconds an HTTP delivery is retried (default 86400).
        #[arg(long, default_value_t = 86400)]
        lifetime: u64,
    },
    /// List the topics.
    List,
    /// Delete a topic and its subscriptions.
    Delete { name: String },
    /// Subscribe a queue (--queue) or an HTTP endpoint (--http).
    Subscribe(Subscription),
    /// Remove a subscription.
    Unsubscribe { topic: String, name: String },
    /// List a topic's subscriptions with their backlog.
    Subscriptions { topic: String },
    /// Publish one message.
    Publish {
        topic: String,
        body: String,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        routing_key: Option<String>,
    },
}

/// What `topic subscribe` is given.
#[derive(Args, Debug)]
pub struct Subscription {
    topic: String,
    name: String,
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    queue: Option<String>,
    #[arg(long)]
    http: Option<String>,
    /// A tag taken (repeat for up to 5; none: every message).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A binding key taken (routing topics; repeat for more).
    #[arg(long = "binding-key")]
    binding_keys: Vec<String>,
    /// Retry failed pushes every this many seconds, 3 times
    /// (BACKOFF_RETRY); default: 1 s, 2 s, 4 s… for the message's
    /// lifetime (EXPONENTIAL_DECAY_RETRY).
    #[arg(long)]
    backoff: Option<u64>,
    /// Push the body alone instead of a JSON object.
    #[arg(long)]
    simplified: bool,
    /// Key of the x-cmq-signature header.
    #[arg(long)]
    secret: Option<String>,
}

pub async fn topic(router: &Router, command: TopicCommand) -> anyhow::Result<()> {
    let topics = Topics::new(router.control().clone());
    match command {
        TopicCommand::Create {
            name,
            filter,
            lifetime,
        } => {
            topics
                .put_topic(&name, &topic_settings(&filter, lifetime)?)
                .await?;
            println!("topic {name} ready");
        }
        TopicCommand::List => list_topics(&topics).await?,
        TopicCommand::Delete { name } => {
            topics.delete_topic(&name).await?;
            println!("topic {name} deleted");
        }
        TopicCommand::Subscribe(subscription) => {
            let Subscription { topic, name, .. } = &subscription;
            topics.subscribe(topic, name, &subscription.spec()?).await?;
            println!("{name} subscribed to {topic}");
        }
        TopicCommand::Unsubscribe { topic, name } => {
            topics.unsubscribe(&topic, &name).await?;
            println!("{name} unsubscribed from {topic}");
        }
        TopicCommand::Subscriptions { topic } => list_subscriptions(&topics, &topic).await?,
        TopicCommand::Publish {
            topic,
            body,
            tags,
            routing_key,
        } => {
            let publication = Publication {
                body,
                tags,
                routing_key,
            };
            for id in topics.publish(&topic, &[publication]).await? {
                println!("{id}");
            }
        }
    }
    Ok(())
}

async fn list_topics(topics: &Topics) -> anyhow::Result<()> {
    for t in topics.topics().await? {
        println!(
            "{}\t{:?}\t{} subscriptions",
            t.name, t.filter, t.subscriptions
        );
    }
    Ok(())
}

async fn list_subscriptions(topics: &Topics, topic: &str) -> anyhow::Result<()> {
    for s in topics.subscriptions(topic).await? {
        println!(
            "{}\t{:?}\t{}\tbacklog {}",
            s.name, s.protocol, s.endpoint, s.backlog
        );
    }
    Ok(())
}

/// The settings `topic create` asks for.
fn topic_settings(filter: &str, lifetime: u64) -> anyhow::Result<TopicSettings> {
    let filter = match filter {
        "tag" => TopicFilter::Tag,
        "routing" => TopicFilter::Routing,
        other => anyhow::bail!("--filter is tag or routing, not `{other}`"),
    };
    Ok(TopicSettings {
        filter,
        message_lifetime: Duration::from_secs(lifetime),
        ..TopicSettings::default()
    })
}

impl Subscription {
    /// The subscription these arguments ask for.
    fn spec(&self) -> anyhow::Result<SubscriptionSpec> {
        let mut spec = match (&self.queue, &self.http) {
            (Some(q), _) => SubscriptionSpec::queue(q),
            (None, Some(url)) => SubscriptionSpec::http(url),
            (None, None) => anyhow::bail!("give --queue or --http"),
        };
        spec.tags = self.tags.clone();
        spec.binding_keys = self.binding_keys.clone();
        if let Some(secs) = self.backoff {
            spec.retry = RetryPolicy::Backoff {
                interval: Duration::from_secs(secs),
            };
        }
        if self.simplified {
            spec.format = BodyFormat::Simplified;
        }
        spec.secret = self.secret.clone();
        Ok(spec)
    }
}
