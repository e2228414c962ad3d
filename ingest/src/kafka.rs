//! Kafka: the district systems' topics in, records that cannot be used out to the
//! dead-letter topic, and canonical records published by `wholechild produce`.
//!
//! Design (see ARCHITECTURE.md, "Kafka"):
//! - A `BaseConsumer` in a consumer group, polled on a reader thread of its own for its
//!   events (rebalances, commits); the fetched messages of every assigned partition are
//!   forwarded to a queue of ours and read from it in batches (`fetch_queue`), handed in
//!   turn to decoder threads that decode (or map) and dead-letter them, and their results
//!   reach the timely worker in the order read (`BaseConsumer` is several times faster
//!   than `StreamConsumer` on small messages; `shared/design/performance-notes.md`).
//! - State is rebuilt from the topics: a partition this process has not read before is
//!   read from its beginning; one it read before (and lost in a rebalance) resumes where
//!   this process stopped, since its records are still in force here. Re-reading a record
//!   is harmless: the upsert stage replaces a version by itself. So offsets are never the
//!   position to resume from; the group's committed offsets say how far the group's
//!   effects reach: lag for operators, and where dead-lettering starts again after a
//!   restart.
//! - Offsets are committed only after the records before them are applied to the
//!   dataflows and every dead letter among them is acknowledged by the broker (a commit
//!   asked for while dead letters are in flight waits for them, without holding up
//!   reading).
//! - Key `type:id`; an empty value is a tombstone: the record of its key is withdrawn.
//! - Record contents never go to the log: reasons name fields and domains, never values.

use crate::decode::{decode_line, Reason};
use crate::fetch_queue::{FetchQueue, RawMessage};
use crate::mapping::map_record;
use crate::pipeline::{Decoded, Rejected};
use config::{KafkaConfig, SourceMapping};
use model::{Event, RecordKey, RecordType};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A topic and partition.
pub type Partition = (String, i32);

/// Errors of the Kafka client, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("{doing}: {source}")]
    Client {
        doing: &'static str,
        #[source]
        source: KafkaError,
    },
}

fn client_error(doing: &'static str) -> impl FnOnce(KafkaError) -> KafkaSourceError {
    move |source| KafkaSourceError::Client { doing, source }
}

/// The Prometheus metrics of ingest, per topic and partition.
#[derive(Clone)]
pub struct SourceMetrics {
    pub consumed: IntCounterVec,
    pub rejected: IntCounterVec,
    pub dead_letter_failures: IntCounterVec,
    pub lag: IntGaugeVec,
    pub rebalances: IntCounterVec,
    pub effect_latency: HistogramVec,
}

impl SourceMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<SourceMetrics> {
        let tp = &["topic", "partition"];
        let metrics = SourceMetrics {
            consumed: IntCounterVec::new(
                Opts::new("wholechild_records_consumed_total", "Records consumed from Kafka (valid or not)."),
                tp,
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "wholechild_records_rejected_total",
                    "Records that failed to decode or map, sent to the dead-letter topic.",
                ),
                tp,
            )?,
            dead_letter_failures: IntCounterVec::new(
                Opts::new(
                    "wholechild_dead_letter_failures_total",
                    "Dead letters the broker did not accept (offsets stop being committed until restart).",
                ),
                &["topic"],
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "wholechild_consumer_lag_records",
                    "Records in the partition after this consumer's position (librdkafka statistics).",
                ),
                tp,
            )?,
            rebalances: IntCounterVec::new(
                Opts::new("wholechild_rebalances_total", "Consumer group rebalances seen, by kind."),
                &["kind"],
            )?,
            effect_latency: HistogramVec::new(
                HistogramOpts::new(
                    "wholechild_record_effect_latency_seconds",
                    "From a record's Kafka timestamp to its effect on every indicator (epoch closed).",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                ]),
                &["topic"],
            )?,
        };
        registry.register(Box::new(metrics.consumed.clone()))?;
        registry.register(Box::new(metrics.rejected.clone()))?;
        registry.register(Box::new(metrics.dead_letter_failures.clone()))?;
        registry.register(Box::new(metrics.lag.clone()))?;
        registry.register(Box::new(metrics.rebalances.clone()))?;
        registry.register(Box::new(metrics.effect_latency.clone()))?;
        Ok(metrics)
    }
}

/// Builds a librdkafka configuration: brokers, then the engine's settings, then the
/// operator's raw `[kafka.options]`, which win.
pub fn client_config(kafka: &KafkaConfig, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    for (key, value) in &kafka.options {
        config.set(key, value);
    }
    config.set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// State shared between the consumer's callbacks and its owner.
#[derive(Default)]
struct Shared {
    /// Next offset to read per partition this process has read (its records are in force).
    positions: BTreeMap<Partition, i64>,
    /// Partitions assigned now.
    assigned: BTreeSet<Partition>,
    /// Partitions assigned since the owner last looked (their dead-letter floors are unknown).
    newly_assigned: Vec<Partition>,
}

/// The consumer's callbacks: the rebalance policy above, statistics to the lag gauge,
/// librdkafka's own warnings to standard error.
struct SourceContext {
    shared: Arc<Mutex<Shared>>,
    /// Set when partitions were assigned (so the reader need not lock to find out).
    assigned_since: Arc<AtomicBool>,
    metrics: SourceMetrics,
    /// Where assigned partitions' messages go (set once the consumer exists; taken away
    /// by the reader before it drops the consumer).
    fetch_queue: Arc<Mutex<Option<Arc<FetchQueue>>>>,
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            eprintln!("kafka: {facility}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("kafka: error: {error}: {reason}");
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                // -1 is librdkafka's "internal" partition and partitions not fetched.
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .lag
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let mut shared = self.shared.lock().expect("consumer state");
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                let mut assignment = TopicPartitionList::new();
                for element in partitions.elements() {
                    let key = (element.topic().to_string(), element.partition());
                    let offset = match shared.positions.get(&key) {
                        Some(&next) => Offset::Offset(next),
                        None => Offset::Beginning,
                    };
                    let _ = assignment.add_partition_offset(element.topic(), element.partition(), offset);
                    shared.assigned.insert(key.clone());
                    shared.newly_assigned.push(key);
                    self.assigned_since.store(true, Ordering::Release);
                }
                eprintln!("kafka: assigned {} partition(s): {}", shared.assigned.len(), describe(&shared.assigned));
                // Forwarded before `assign` (so no fetch can reach the consumer's queue
                // first) and again after it: see `fetch_queue`.
                self.forward(consumer, &assignment);
                if let Err(error) = consumer.assign(&assignment) {
                    eprintln!("kafka: error: assigning partitions: {error}");
                }
                self.forward(consumer, &assignment);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["revoke"]).inc();
                shared.assigned.clear();
                if let Err(error) = consumer.unassign() {
                    eprintln!("kafka: error: unassigning partitions: {error}");
                }
            }
            other => {
                eprintln!("kafka: error: rebalance failed: {other:?}");
                shared.assigned.clear();
                let _ = consumer.unassign();
            }
        }
    }
}

impl SourceContext {
    /// Sends the fetched messages of `partitions` to the fetch queue.
    fn forward(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) {
        if let Some(queue) = self.fetch_queue.lock().expect("fetch queue").as_ref() {
            for element in partitions.elements() {
                queue.forward_partition(consumer.client().native_ptr(), element.topic(), element.partition());
            }
        }
    }
}

fn describe(partitions: &BTreeSet<Partition>) -> String {
    let names: Vec<String> = partitions.iter().map(|(topic, partition)| format!("{topic}[{partition}]")).collect();
    names.join(", ")
}

/// Where one decoded record came from.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp, in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// A decoded record and where it came from (the topic as an index into `topics`).
struct ReadRecord {
    decoded: Decoded,
    topic: u16,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
}

/// What the engine asks of the reader thread.
enum Command {
    /// Flush the dead letters, then commit these next offsets (of partitions still
    /// assigned); `reply` says how it went.
    Commit {
        positions: Vec<(Partition, i64)>,
        mode: CommitMode,
        reply: Option<SyncSender<Result<(), KafkaSourceError>>>,
    },
    /// Leave the group and end the thread.
    Stop,
}

/// Records read per batch handed from the reader thread to a decoder thread.
const BATCH_RECORDS: usize = 8192;
/// Batches in flight to and from each decoder thread (bounds the memory a fast broker
/// can fill).
const BATCHES_IN_FLIGHT: usize = 8;

/// The district's topics, consumed in a group, with dead letters set aside.
///
/// A reader thread owns the consumer: it serves its events and reads fetched messages
/// in batches, which it deals in turn to `decode_threads` decoder threads; they decode
/// (or map) each message, send the ones that cannot be used to the dead-letter topic,
/// and hand the decoded records on, so that reading and decoding overlap the dataflow's
/// work. The engine takes the decoders' batches in the order they were dealt (so each
/// partition's records stay in order), applies them, and asks the reader thread to
/// commit the offsets of what it has applied (`commit_applied`).
pub struct KafkaSource {
    /// Each decoder thread's decoded batches; batch n comes from decoder n % len.
    batches: Vec<Receiver<Vec<ReadRecord>>>,
    /// The number of the next batch to apply.
    next_batch: usize,
    commands: SyncSender<Command>,
    reader: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Mutex<Shared>>,
    /// Topic names by index.
    topics: Vec<String>,
    /// Per (topic index, partition), the offset after the last record the engine applied
    /// (a short list: a search beats a map's hashing of topic names for every record).
    applied: Vec<((u16, i32), i64)>,
    metrics: SourceMetrics,
}

impl KafkaSource {
    /// Connects, subscribes to `[kafka].topics` and starts reading.
    pub fn connect(
        kafka: &KafkaConfig,
        mappings: &[SourceMapping],
        metrics: SourceMetrics,
        decode_threads: usize,
    ) -> Result<KafkaSource, KafkaSourceError> {
        let settings = [
            ("group.id", kafka.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("statistics.interval.ms", "1000"),
            // A live record waits at most this long in the broker for its fetch (the alert
            // latency budget, BENCHMARKS.md); a backfill never waits on it.
            ("fetch.wait.max.ms", "10"),
            ("max.partition.fetch.bytes", "4194304"),
            // A prefetch of ~50,000 messages (32 MiB) keeps the decoders fed in a backfill;
            // librdkafka re-fetches 2 ms after its queue falls below that, not the default
            // second, which left the engine waiting on fetches. A larger prefetch only
            // costs memory and page faults (BENCHMARKS.md, "Kafka ingest").
            ("queued.min.messages", "50000"),
            ("queued.max.messages.kbytes", "32768"),
            ("fetch.queue.backoff.ms", "2"),
            ("partition.assignment.strategy", "roundrobin"),
        ];
        let shared = Arc::new(Mutex::new(Shared::default()));
        let assigned_since = Arc::new(AtomicBool::new(false));
        let queue_slot = Arc::new(Mutex::new(None));
        let context = SourceContext {
            shared: shared.clone(),
            assigned_since: assigned_since.clone(),
            metrics: metrics.clone(),
            fetch_queue: queue_slot.clone(),
        };
        let consumer: BaseConsumer<SourceContext> = client_config(kafka, &settings)
            .create_with_context(context)
            .map_err(client_error("creating the Kafka consumer"))?;
        let fetch_queue = Arc::new(FetchQueue::new(consumer.client().native_ptr()));
        *queue_slot.lock().expect("fetch queue") = Some(fetch_queue.clone());
        let topics: Vec<&str> = kafka.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(client_error("subscribing to kafka.topics"))?;
        let dead_letters = Arc::new(DeadLetters::connect(kafka, metrics.clone())?);
        let decoder = Decoder {
            topics: kafka.topics.clone(),
            mappings: mappings.iter().map(|mapping| (mapping.topic.clone(), mapping.clone())).collect(),
            dead_letters: dead_letters.clone(),
            metrics: metrics.clone(),
        };
        let mut decoders = Vec::new();
        let mut batches = Vec::new();
        let mut blocks = Vec::new();
        for _ in 0..decode_threads.max(1) {
            let (block_sender, block_receiver) = sync_channel(BATCHES_IN_FLIGHT);
            let (batch_sender, batch_receiver) = sync_channel(BATCHES_IN_FLIGHT);
            let decoder = decoder.clone();
            let handle = std::thread::Builder::new()
                .name(String::from("kafka-decode"))
                .spawn(move || decoder.run(block_receiver, batch_sender))
                .expect("starting a Kafka decoder thread");
            decoders.push(handle);
            blocks.push(block_sender);
            batches.push(batch_receiver);
        }
        let reader = Reader {
            consumer,
            fetch_queue,
            queue_slot,
            shared: shared.clone(),
            assigned_since,
            topics: kafka.topics.clone(),
            topic_handles: Vec::new(),
            decoder,
            blocks,
            decoders,
            next_block: 0,
            dead_letters,
            dead_letter_floor: HashMap::new(),
            metrics: metrics.clone(),
            commits_stopped: false,
            deferred_commit: None,
        };
        let (commands, command_receiver) = sync_channel(64);
        let handle = std::thread::Builder::new()
            .name(String::from("kafka-reader"))
            .spawn(move || reader.run(command_receiver))
            .expect("starting the Kafka reader thread");
        Ok(KafkaSource {
            batches,
            next_batch: 0,
            commands,
            reader: Some(handle),
            shared,
            topics: kafka.topics.clone(),
            applied: Vec::new(),
            metrics,
        })
    }

    /// Whether the reader thread has stopped on its own (it only does when it fails):
    /// nothing more will arrive.
    pub fn reader_stopped(&self) -> bool {
        self.reader.as_ref().is_none_or(|handle| handle.is_finished())
    }

    /// Whether the engine has applied every partition up to `ends`.
    pub fn reached(&self, ends: &BTreeMap<Partition, i64>) -> bool {
        ends.iter().all(|((topic, partition), &end)| {
            let applied =
                self.applied.iter().find(|&&((t, p), _)| p == *partition && self.topics[t as usize] == *topic);
            end <= 0 || applied.is_some_and(|&(_, next)| next >= end)
        })
    }

    /// Takes batches of decoded records (or rejections, already dead-lettered) from the
    /// reader, waiting at most `timeout` for the first, until `max` records or none are
    /// waiting, and hands each to `apply`, in partition order. Returns how many it applied.
    pub fn poll<E>(
        &mut self,
        timeout: Duration,
        max: usize,
        mut apply: impl FnMut(Decoded, Origin<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut applied = 0;
        while applied < max {
            let next = &self.batches[self.next_batch % self.batches.len()];
            let batch = if applied == 0 {
                match next.recv_timeout(timeout) {
                    Ok(batch) => batch,
                    Err(_) => break,
                }
            } else {
                match next.try_recv() {
                    Ok(batch) => batch,
                    Err(_) => break,
                }
            };
            self.next_batch += 1;
            for record in batch {
                let topic = &self.topics[record.topic as usize];
                let origin = Origin {
                    topic,
                    partition: record.partition,
                    offset: record.offset,
                    timestamp_ms: record.timestamp_ms,
                };
                let key = (record.topic, record.partition);
                match self.applied.iter_mut().find(|(known, _)| *known == key) {
                    Some((_, next)) => {
                        debug_assert!(record.offset >= *next, "{topic}[{}] out of order", record.partition);
                        *next = record.offset + 1
                    }
                    None => self.applied.push((key, record.offset + 1)),
                }
                applied += 1;
                apply(record.decoded, origin)?;
            }
        }
        Ok(applied)
    }

    /// Commits, for every partition assigned now, the offset after the last record
    /// applied: call only once the records' effects are in the dataflows. The reader
    /// flushes the dead letters first, so no committed offset passes an unsent dead
    /// letter. `CommitMode::Sync` waits for the outcome.
    pub fn commit_applied(&mut self, mode: CommitMode) -> Result<(), KafkaSourceError> {
        let positions: Vec<(Partition, i64)> = self
            .applied
            .iter()
            .map(|&((topic, partition), next)| ((self.topics[topic as usize].clone(), partition), next))
            .collect();
        if positions.is_empty() {
            return Ok(());
        }
        let (reply, outcome) = match mode {
            CommitMode::Sync => {
                let (sender, receiver) = sync_channel(1);
                (Some(sender), Some(receiver))
            }
            CommitMode::Async => (None, None),
        };
        if self.commands.send(Command::Commit { positions, mode, reply }).is_err() {
            return Ok(()); // the reader has ended (its error is in the log)
        }
        match outcome.map(|receiver| receiver.recv()) {
            Some(Ok(result)) => result,
            _ => Ok(()),
        }
    }

    /// Records effects: each applied record's latency from its Kafka timestamp to now.
    pub fn observe_effects(&self, topic: &str, timestamps_ms: &mut Vec<i64>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64);
        // A local histogram: counted without atomics, added to the shared one at once.
        let histogram = self.metrics.effect_latency.with_label_values(&[topic]).local();
        for timestamp_ms in timestamps_ms.drain(..) {
            histogram.observe((now - timestamp_ms).max(0) as f64 / 1000.0);
        }
        histogram.flush();
    }

    /// The partitions assigned to this process now.
    pub fn assignment(&self) -> Vec<Partition> {
        self.shared.lock().expect("consumer state").assigned.iter().cloned().collect()
    }

    /// Leaves the group cleanly (its partitions go to the other members at once).
    pub fn close(mut self) {
        let _ = self.commands.send(Command::Stop);
        // Records still in flight are dropped unapplied (and uncommitted): the reader
        // and the decoders may be waiting to hand over a batch.
        while let Some(handle) = self.reader.as_ref() {
            if handle.is_finished() {
                break;
            }
            for batches in &self.batches {
                while batches.try_recv().is_ok() {}
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(handle) = self.reader.take() {
            let _ = handle.join();
        }
    }
}

/// The end offset of every partition of `topics`, as of now (what a backfill must
/// reach), read with a client of its own outside the group.
pub fn end_offsets(
    kafka: &KafkaConfig,
    topics: &[String],
    timeout: Duration,
) -> Result<BTreeMap<Partition, i64>, KafkaSourceError> {
    let client: BaseConsumer = client_config(kafka, &[("group.id", kafka.group_id.as_str())])
        .create()
        .map_err(client_error("creating a client for end offsets"))?;
    let mut ends = BTreeMap::new();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), timeout).map_err(client_error("reading topic metadata"))?;
        for topic_metadata in metadata.topics() {
            for partition in topic_metadata.partitions() {
                let (_, high) = client
                    .fetch_watermarks(topic, partition.id(), timeout)
                    .map_err(client_error("reading end offsets"))?;
                ends.insert((topic.clone(), partition.id()), high);
            }
        }
    }
    Ok(ends)
}

/// The reader thread's side: the consumer, the fetch queue, dealing batches to the
/// decoders, and commits.
struct Reader {
    consumer: BaseConsumer<SourceContext>,
    fetch_queue: Arc<FetchQueue>,
    /// The consumer context's reference to the fetch queue (emptied before closing).
    queue_slot: Arc<Mutex<Option<Arc<FetchQueue>>>>,
    shared: Arc<Mutex<Shared>>,
    assigned_since: Arc<AtomicBool>,
    topics: Vec<String>,
    /// librdkafka's topic handles seen, with the topic's index in `topics`.
    topic_handles: Vec<(usize, u16)>,
    /// For the rare message the consumer's own queue delivers (fetched before its
    /// partition was forwarded): decoded here.
    decoder: Decoder,
    /// The decoder threads' inputs; batch n goes to `blocks[n % len]`.
    blocks: Vec<SyncSender<Block>>,
    decoders: Vec<std::thread::JoinHandle<()>>,
    next_block: usize,
    dead_letters: Arc<DeadLetters>,
    /// Offsets below which this partition's dead letters were already sent (the
    /// group's committed offset when this process first got the partition).
    dead_letter_floor: HashMap<Partition, i64>,
    metrics: SourceMetrics,
    /// Set when a dead letter was not accepted: no offset is committed after that.
    commits_stopped: bool,
    /// An asynchronous commit waiting for dead letters in flight to be acknowledged
    /// (the newest asked for), so that reading never waits on them.
    deferred_commit: Option<Vec<(Partition, i64)>>,
}

/// What a decoder thread is handed: fetched messages in order, with the dead-letter
/// floor of each message's partition; or records the reader decoded itself.
enum Block {
    Fetched(Vec<(RawMessage, u16, i64)>),
    Decoded(Vec<ReadRecord>),
}

impl Reader {
    fn run(mut self, commands: Receiver<Command>) {
        loop {
            if !self.handle_commands(&commands) {
                break;
            }
            self.commit_deferred();
            // Messages the consumer's own queue holds are older than any in the fetch
            // queue: they all go first, in order.
            let early = self.serve_events();
            let more_early = early.len() == BATCH_RECORDS;
            if !early.is_empty() && !self.deal(Block::Decoded(early), &commands) {
                break;
            }
            if more_early {
                continue;
            }
            if self.assigned_since.swap(false, Ordering::Acquire) {
                self.learn_new_assignments();
            }
            let messages = self.fetch_queue.take(BATCH_RECORDS, Duration::from_millis(20));
            if messages.is_empty() {
                continue;
            }
            let block = self.account(messages);
            if !self.deal(block, &commands) {
                break;
            }
        }
        self.close()
    }

    /// Hands `block` to the next decoder, still answering commands while they are busy;
    /// false once told to stop or orphaned.
    fn deal(&mut self, block: Block, commands: &Receiver<Command>) -> bool {
        let mut block = block;
        let decoder = self.next_block % self.blocks.len();
        loop {
            match self.blocks[decoder].try_send(block) {
                Ok(()) => {
                    self.next_block += 1;
                    return true;
                }
                Err(TrySendError::Full(back)) => {
                    block = back;
                    if !self.handle_commands(commands) {
                        return false;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }

    /// Carries out waiting commands; false once told to stop (or orphaned).
    fn handle_commands(&mut self, commands: &Receiver<Command>) -> bool {
        loop {
            match commands.try_recv() {
                Ok(Command::Commit { positions, mode: CommitMode::Async, reply: None })
                    if self.dead_letters.in_flight() > 0 =>
                {
                    self.deferred_commit = Some(positions);
                }
                Ok(Command::Commit { positions, mode, reply }) => {
                    self.deferred_commit = None; // these positions are newer
                    let result = self.commit(&positions, mode);
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(result);
                        }
                        None => {
                            if let Err(error) = result {
                                eprintln!("kafka: error: {error}");
                            }
                        }
                    }
                }
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    /// Makes the deferred commit once no dead letter is in flight.
    fn commit_deferred(&mut self) {
        if self.deferred_commit.is_some() && self.dead_letters.in_flight() == 0 {
            let positions = self.deferred_commit.take().expect("checked");
            if let Err(error) = self.commit(&positions, CommitMode::Async) {
                eprintln!("kafka: error: {error}");
            }
        }
    }

    /// Serves the consumer's events (rebalances, commit results, errors, statistics).
    /// Returns the records of any messages its queue still held, decoded.
    fn serve_events(&mut self) -> Vec<ReadRecord> {
        let mut records = Vec::new();
        while records.len() < BATCH_RECORDS {
            let Some(result) = self.consumer.poll(Duration::ZERO) else { break };
            let message = match result {
                Ok(message) => message,
                Err(error) => {
                    eprintln!("kafka: error: consuming: {error}");
                    break;
                }
            };
            let topic = self.topics.iter().position(|known| known == message.topic()).unwrap_or(0) as u16;
            let (partition, offset) = (message.partition(), message.offset());
            let floor = self.floor(topic, partition);
            let timestamp_ms = message.timestamp().to_millis();
            records.push(self.decoder.record(
                topic,
                partition,
                offset,
                message.key(),
                message.payload(),
                timestamp_ms,
                floor,
            ));
            self.note_read(&[(topic, partition, 1, offset + 1)]);
        }
        records
    }

    /// Names each message's topic and partition, counts them, and notes how far each
    /// partition has been read; messages that are fetch errors are logged and dropped.
    fn account(&mut self, messages: Vec<RawMessage>) -> Block {
        // Per partition read: (topic, partition, consumed, next offset).
        let mut counts: Vec<(u16, i32, u64, i64)> = Vec::new();
        let mut fetched = Vec::with_capacity(messages.len());
        for message in messages {
            if let Some(error) = message.error() {
                eprintln!("kafka: error: fetching: {error}");
                continue;
            }
            let topic = self.topic_index(&message);
            let (partition, offset) = (message.partition(), message.offset());
            match counts.iter_mut().find(|(t, p, ..)| *t == topic && *p == partition) {
                Some(entry) => {
                    entry.2 += 1;
                    entry.3 = offset + 1;
                }
                None => counts.push((topic, partition, 1, offset + 1)),
            }
            fetched.push((message, topic, 0));
        }
        // One look-up per partition (the map's keys are owned names), not per message.
        let floors: Vec<(u16, i32, i64)> =
            counts.iter().map(|&(topic, partition, ..)| (topic, partition, self.floor(topic, partition))).collect();
        for (message, topic, floor) in &mut fetched {
            let partition = message.partition();
            *floor = floors.iter().find(|&&(t, p, _)| t == *topic && p == partition).map_or(0, |&(.., f)| f);
        }
        self.note_read(&counts);
        Block::Fetched(fetched)
    }

    /// Records how far partitions have been read (their records are in force here).
    fn note_read(&mut self, counts: &[(u16, i32, u64, i64)]) {
        let mut shared = self.shared.lock().expect("consumer state");
        for &(topic, partition, consumed, next) in counts {
            let topic = self.topics[topic as usize].clone();
            self.metrics.consumed.with_label_values(&[topic.as_str(), &partition.to_string()]).inc_by(consumed);
            shared.positions.insert((topic, partition), next);
        }
    }

    fn topic_index(&mut self, message: &RawMessage) -> u16 {
        let handle = message.topic_handle();
        if let Some(&(_, index)) = self.topic_handles.iter().find(|(known, _)| *known == handle) {
            return index;
        }
        let name = message.topic_name();
        let index = self.topics.iter().position(|known| *known == name).unwrap_or(0) as u16;
        self.topic_handles.push((handle, index));
        index
    }

    fn floor(&self, topic: u16, partition: i32) -> i64 {
        let key = (self.topics[topic as usize].clone(), partition);
        self.dead_letter_floor.get(&key).copied().unwrap_or(0)
    }

    /// For partitions assigned since the last look, reads the group's committed offset:
    /// the records before it were dead-lettered already, by this process or another.
    fn learn_new_assignments(&mut self) {
        let newly: Vec<Partition> = std::mem::take(&mut self.shared.lock().expect("consumer state").newly_assigned);
        if newly.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &newly {
            list.add_partition(topic, *partition);
        }
        match self.consumer.committed_offsets(list, Duration::from_secs(10)) {
            Ok(committed) => {
                for element in committed.elements() {
                    let floor = match element.offset() {
                        Offset::Offset(offset) => offset,
                        _ => 0,
                    };
                    let key = (element.topic().to_string(), element.partition());
                    self.dead_letter_floor.entry(key).and_modify(|f| *f = (*f).max(floor)).or_insert(floor);
                }
            }
            Err(error) => eprintln!("kafka: warning: reading committed offsets: {error} (dead letters may repeat)"),
        }
    }

    /// Commits `positions` for the partitions assigned now, after flushing dead letters.
    fn commit(&mut self, positions: &[(Partition, i64)], mode: CommitMode) -> Result<(), KafkaSourceError> {
        if self.commits_stopped {
            return Ok(());
        }
        if !self.dead_letters.flush() {
            self.commits_stopped = true;
            eprintln!(
                "kafka: error: a dead letter was not accepted by the broker; offsets are no longer committed, so a restart sends every later dead letter again"
            );
            return Ok(());
        }
        let list = {
            let shared = self.shared.lock().expect("consumer state");
            let mut list = TopicPartitionList::new();
            for (partition, next) in positions {
                if shared.assigned.contains(partition) {
                    let _ = list.add_partition_offset(&partition.0, partition.1, Offset::Offset(*next));
                }
            }
            list
        };
        if list.count() == 0 {
            return Ok(());
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => Ok(()),
            // A rebalance in progress: the next commit carries the same offsets.
            Err(KafkaError::ConsumerCommit(code)) => {
                eprintln!("kafka: warning: offsets not committed this time: {code}");
                Ok(())
            }
            Err(error) => Err(client_error("committing offsets")(error)),
        }
    }

    /// Lets the decoders finish, then leaves the group and flushes the dead letters.
    fn close(mut self) {
        self.blocks.clear();
        for decoder in self.decoders.drain(..) {
            let _ = decoder.join();
        }
        // No message of librdkafka's is held now; the fetch queue goes before the consumer.
        self.queue_slot.lock().expect("fetch queue").take();
        self.consumer.unsubscribe();
        let _ = self.dead_letters.producer.flush(Duration::from_secs(10));
        let Reader { consumer, fetch_queue, .. } = self;
        drop(fetch_queue);
        drop(consumer);
    }
}

/// Decodes (or maps) messages into records, and sends those that cannot be used to the
/// dead-letter topic; one per decoder thread, and one on the reader thread.
#[derive(Clone)]
struct Decoder {
    topics: Vec<String>,
    mappings: HashMap<String, SourceMapping>,
    dead_letters: Arc<DeadLetters>,
    metrics: SourceMetrics,
}

impl Decoder {
    /// A decoder thread: decodes each block in turn and hands on its records, until the
    /// reader or the engine goes away.
    fn run(self, blocks: Receiver<Block>, batches: SyncSender<Vec<ReadRecord>>) {
        for block in blocks {
            let records = match block {
                Block::Decoded(records) => records,
                Block::Fetched(messages) => messages
                    .into_iter()
                    .map(|(message, topic, floor)| {
                        let timestamp_ms = message.timestamp_ms();
                        let (partition, offset) = (message.partition(), message.offset());
                        self.record(topic, partition, offset, message.key(), message.payload(), timestamp_ms, floor)
                    })
                    .collect(),
            };
            if batches.send(records).is_err() {
                return;
            }
        }
    }

    /// One message as a record; dead-lettered (unless below `floor`, sent before) when it
    /// cannot be used.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        topic: u16,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        timestamp_ms: Option<i64>,
        floor: i64,
    ) -> ReadRecord {
        let topic_name = self.topics[topic as usize].as_str();
        let decoded = self.decode(key, payload, topic_name, offset);
        if let Decoded::Rejected(rejected) = &decoded {
            self.metrics.rejected.with_label_values(&[topic_name, &partition.to_string()]).inc();
            if offset >= floor {
                let origin = Origin { topic: topic_name, partition, offset, timestamp_ms: None };
                self.dead_letters.send(&origin, key, payload, &rejected.reason);
            }
        }
        ReadRecord { decoded, topic, partition, offset, timestamp_ms }
    }

    /// A message as a canonical record, or the reason it is not one.
    fn decode(&self, key: Option<&[u8]>, payload: Option<&[u8]>, topic: &str, offset: i64) -> Decoded {
        let result = match payload {
            None | Some([]) => tombstone(key),
            Some(payload) => match self.mappings.get(topic) {
                Some(mapping) => map_record(mapping, payload),
                None => decode_line(payload),
            },
        };
        let line = offset.max(0) as u64;
        match result {
            Ok(event) => Decoded::Record { line, event },
            Err(reason) => Decoded::Rejected(Rejected {
                line,
                reason,
                raw: String::from_utf8_lossy(payload.unwrap_or_default()).into_owned(),
            }),
        }
    }
}

/// A tombstone's withdrawal: the key `type:id` names the record withdrawn.
fn tombstone(key: Option<&[u8]>) -> Result<Event, Reason> {
    let key = key.and_then(|key| std::str::from_utf8(key).ok()).ok_or(Reason::TombstoneKey)?;
    let (record_type, id) = key.split_once(':').ok_or(Reason::TombstoneKey)?;
    let record_type = RecordType::parse(record_type).ok_or(Reason::TombstoneKey)?;
    if id.is_empty() {
        return Err(Reason::TombstoneKey);
    }
    Ok(Event { key: RecordKey { record_type, id: id.into() }, source: "kafka-tombstone".into(), body: None })
}

/// Counts dead letters the broker refused, so offsets are not committed past them.
struct DeliveryCounter {
    failures: Arc<AtomicU64>,
    metrics: SourceMetrics,
}

impl ClientContext for DeliveryCounter {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            eprintln!("kafka (dead letters): {facility}: {message}");
        }
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            self.failures.fetch_add(1, Ordering::SeqCst);
            self.metrics.dead_letter_failures.with_label_values(&[message.topic()]).inc();
            eprintln!("kafka: error: dead letter not accepted: {error}");
        }
    }
}

/// The dead-letter topic: the original key and value, with headers naming the reason,
/// the source topic, partition and offset.
struct DeadLetters {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    failures: Arc<AtomicU64>,
    /// Failures already reported by `flush`.
    failures_seen: AtomicU64,
}

impl DeadLetters {
    fn connect(kafka: &KafkaConfig, metrics: SourceMetrics) -> Result<DeadLetters, KafkaSourceError> {
        let failures = Arc::new(AtomicU64::new(0));
        let settings = [("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5")];
        let producer = client_config(kafka, &settings)
            .create_with_context(DeliveryCounter { failures: failures.clone(), metrics })
            .map_err(client_error("creating the dead-letter producer"))?;
        Ok(DeadLetters { producer, topic: kafka.dead_letter_topic.clone(), failures, failures_seen: AtomicU64::new(0) })
    }

    fn send(&self, origin: &Origin<'_>, key: Option<&[u8]>, payload: Option<&[u8]>, reason: &Reason) {
        let reason = reason.to_string();
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "wholechild.reason", value: Some(reason.as_bytes()) })
            .insert(Header { key: "wholechild.source_topic", value: Some(origin.topic.as_bytes()) })
            .insert(Header { key: "wholechild.source_partition", value: Some(partition.as_bytes()) })
            .insert(Header { key: "wholechild.source_offset", value: Some(offset.as_bytes()) });
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => {
                    self.failures.fetch_add(1, Ordering::SeqCst);
                    eprintln!("kafka: error: queueing a dead letter: {error}");
                    return;
                }
            }
        }
    }

    /// Dead letters queued and not yet acknowledged.
    fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits until every dead letter is acknowledged; false if any was refused.
    fn flush(&self) -> bool {
        if self.producer.in_flight_count() > 0 {
            if let Err(error) = self.producer.flush(Duration::from_secs(30)) {
                eprintln!("kafka: error: flushing dead letters: {error}");
                return false;
            }
        }
        let failures = self.failures.load(Ordering::SeqCst);
        self.failures_seen.swap(failures, Ordering::SeqCst) == failures
    }
}

/// Reads the dead-letter headers of a message (for tests and tools).
pub fn dead_letter_headers(message: &impl Message) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
            out.insert(header.key.to_string(), value);
        }
    }
    out
}

/// Publishes canonical records, keyed `type:id`, to one topic (`wholechild produce`).
pub struct Publisher {
    producer: ThreadedProducer<DeliveryCounter>,
    topic: String,
    failures: Arc<AtomicU64>,
}

impl Publisher {
    pub fn connect(kafka: &KafkaConfig, topic: &str) -> Result<Publisher, KafkaSourceError> {
        let failures = Arc::new(AtomicU64::new(0));
        let settings = [
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "10"),
            ("batch.size", "1000000"),
            ("compression.type", "lz4"),
            ("queue.buffering.max.kbytes", "1048576"),
        ];
        let metrics = SourceMetrics::register(&Registry::new()).expect("fresh registry");
        let producer = client_config(kafka, &settings)
            .create_with_context(DeliveryCounter { failures: failures.clone(), metrics })
            .map_err(client_error("creating the producer"))?;
        Ok(Publisher { producer, topic: topic.to_string(), failures })
    }

    /// Queues one message (an empty `value` is a tombstone), waiting while the queue is full.
    pub fn send(&self, key: Option<&[u8]>, value: &[u8]) -> Result<(), KafkaSourceError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !value.is_empty() {
            record = record.payload(value);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => return Err(client_error("queueing a message")(error)),
            }
        }
    }

    /// Waits for every message to be acknowledged; returns how many were refused.
    pub fn finish(self) -> Result<u64, KafkaSourceError> {
        self.producer.flush(Duration::from_secs(120)).map_err(client_error("flushing the producer"))?;
        Ok(self.failures.load(Ordering::SeqCst))
    }
}

/// The Kafka key of a canonical record: `type:id`.
pub fn record_key(key: &RecordKey) -> String {
    format!("{}:{}", key.record_type.as_str(), key.id)
}
