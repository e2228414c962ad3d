//! `wholechild produce`: publishes records to a configured topic, keyed `type:id`, for
//! loading history, tests and benchmarks.
//!
//! A line of a mapped topic (`[sources.TOPIC]`) is keyed by the record its mapping makes;
//! a canonical line by its own `type` and `id`. A line that cannot be decoded is
//! published as it is, without a key: the engine dead-letters it, as it would a
//! malformed record from any district system. With `tombstones`, a withdrawal
//! (`deleted: true`) is published as a Kafka tombstone (its key and an empty value).

use anyhow::{anyhow, bail, Context, Result};
use config::Config;
use ingest::kafka::{record_key, Publisher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

pub struct ProduceOptions {
    pub config: Config,
    /// NDJSON, one record a line; `-` reads standard input.
    pub events: PathBuf,
    /// The topic (default: the first of `kafka.topics`); must be one of `kafka.topics`.
    pub topic: Option<String>,
    pub tombstones: bool,
    /// Create the topic with this many partitions first, if it does not exist.
    pub create_partitions: Option<i32>,
}

#[derive(Debug, Default)]
pub struct ProduceSummary {
    pub messages: u64,
    pub tombstones: u64,
    pub unkeyed: u64,
}

pub fn produce(options: ProduceOptions) -> Result<ProduceSummary> {
    let kafka = options.config.kafka.as_ref().ok_or_else(|| anyhow!("the configuration has no [kafka] section"))?;
    let topic = options.topic.clone().unwrap_or_else(|| kafka.topics[0].clone());
    if !kafka.topics.contains(&topic) {
        bail!("topic `{topic}` is not one of kafka.topics ({})", kafka.topics.join(", "));
    }
    let mapping = options.config.sources.iter().find(|mapping| mapping.topic == topic);
    let reader: Box<dyn Read> = if options.events == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&options.events).with_context(|| format!("opening {}", options.events.display()))?)
    };
    if let Some(partitions) = options.create_partitions {
        create_topic(kafka, &topic, partitions)?;
    }
    let publisher = Publisher::connect(kafka, &topic)?;
    let summary = publish_lines(BufReader::with_capacity(1 << 20, reader), &publisher, mapping, options.tombstones)?;
    let refused = publisher.finish()?;
    if refused > 0 {
        bail!("the broker refused {refused} of {} messages", summary.messages);
    }
    Ok(summary)
}

/// Publishes each line of `reader`, keyed by its record (see the module's comment).
pub fn publish_lines(
    mut reader: impl BufRead,
    publisher: &Publisher,
    mapping: Option<&config::SourceMapping>,
    tombstones: bool,
) -> Result<ProduceSummary> {
    let mut summary = ProduceSummary::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let decoded = match mapping {
            Some(mapping) => ingest::map_record(mapping, text),
            None => ingest::decode_line(text),
        };
        match decoded {
            Ok(event) => {
                let key = record_key(&event.key);
                if tombstones && event.body.is_none() {
                    publisher.send(Some(key.as_bytes()), &[])?;
                    summary.tombstones += 1;
                } else {
                    publisher.send(Some(key.as_bytes()), text)?;
                }
            }
            Err(_) => {
                publisher.send(None, text)?;
                summary.unkeyed += 1;
            }
        }
        summary.messages += 1;
    }
    Ok(summary)
}

/// Creates `topic` with `partitions` partitions (replication 1), unless it exists.
fn create_topic(kafka: &config::KafkaConfig, topic: &str, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> =
        ingest::kafka::client_config(kafka, &[]).create().context("creating the Kafka admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let results = runtime.block_on(admin.create_topics(&[new_topic], &options)).context("creating the topic")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic `{name}`: {code}"),
        }
    }
    Ok(())
}
