//! One queue that the fetched messages of every assigned partition are forwarded to, read
//! in batches: the only code of ours that calls librdkafka directly.
//!
//! Why: `BaseConsumer::poll` hands over one message per call, each a librdkafka event
//! with its own lock, allocation and clock reads: about a third of the reader thread's
//! time in a backfill (BENCHMARKS.md, "Kafka ingest"). librdkafka's
//! `rd_kafka_consume_batch_queue` takes many at once, but on the consumer's own queue it
//! would also serve the rebalance events that the rdkafka crate handles itself. So each
//! partition's fetch queue is forwarded to a queue of ours right after it is assigned
//! (as `BaseConsumer::split_partition_queue` does), the consumer's queue keeps only
//! events, and messages are read from ours in batches. A message stays in librdkafka's
//! memory until its [`RawMessage`] is dropped, so decoding needs no copy.

use rdkafka::bindings as rd;
use std::ffi::{CStr, CString};
use std::time::Duration;

/// A fetched message, owned until dropped (then given back to librdkafka).
pub struct RawMessage(*mut rd::rd_kafka_message_t);

// SAFETY: a librdkafka message may be read and destroyed on any thread; it is owned by
// exactly one `RawMessage`. Every `RawMessage` is dropped before the consumer is (the
// reader joins its decoder threads before it closes the consumer).
unsafe impl Send for RawMessage {}

impl RawMessage {
    fn message(&self) -> &rd::rd_kafka_message_t {
        // SAFETY: the pointer came from `rd_kafka_consume_batch_queue` and is not yet
        // destroyed.
        unsafe { &*self.0 }
    }

    /// librdkafka's error for this message (a failed fetch), if it is not a record.
    pub fn error(&self) -> Option<String> {
        if self.message().err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return None;
        }
        // SAFETY: librdkafka returns a static or message-owned C string.
        let text = unsafe { CStr::from_ptr(rd::rd_kafka_err2str(self.message().err)) };
        Some(text.to_string_lossy().into_owned())
    }

    /// The topic, as librdkafka's handle (the same pointer for every message of a topic).
    pub fn topic_handle(&self) -> usize {
        self.message().rkt as usize
    }

    pub fn topic_name(&self) -> String {
        // SAFETY: a message's topic handle lives as long as the message.
        unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(self.message().rkt)) }.to_string_lossy().into_owned()
    }

    pub fn partition(&self) -> i32 {
        self.message().partition
    }

    pub fn offset(&self) -> i64 {
        self.message().offset
    }

    pub fn key(&self) -> Option<&[u8]> {
        bytes(self.message().key, self.message().key_len)
    }

    pub fn payload(&self) -> Option<&[u8]> {
        bytes(self.message().payload, self.message().len)
    }

    /// The message's timestamp in milliseconds since the epoch, if it has one.
    pub fn timestamp_ms(&self) -> Option<i64> {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: reads the live message.
        let timestamp = unsafe { rd::rd_kafka_message_timestamp(self.0, &mut kind) };
        (kind != rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && timestamp >= 0).then_some(timestamp)
    }
}

fn bytes<'a>(pointer: *mut std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: librdkafka gives a pointer and length into the message, valid while it lives
    // (the borrow is tied to the `RawMessage` by the callers' signatures).
    (!pointer.is_null()).then(|| unsafe { std::slice::from_raw_parts(pointer as *const u8, len) })
}

impl Drop for RawMessage {
    fn drop(&mut self) {
        // SAFETY: owned, not destroyed before.
        unsafe { rd::rd_kafka_message_destroy(self.0) }
    }
}

/// The queue of ours that assigned partitions are forwarded to.
pub struct FetchQueue(*mut rd::rd_kafka_queue_t);

// SAFETY: librdkafka queues are thread-safe; the handle is destroyed once, on drop, and
// the reader drops it before the consumer.
unsafe impl Send for FetchQueue {}
unsafe impl Sync for FetchQueue {}

impl FetchQueue {
    /// A new queue on the client `client` (`BaseConsumer::client().native_ptr()`).
    pub fn new(client: *mut rd::rd_kafka_t) -> FetchQueue {
        // SAFETY: `client` is a live consumer's handle.
        FetchQueue(unsafe { rd::rd_kafka_queue_new(client) })
    }

    /// Sends the fetched messages of `topic` `partition` here instead of to the
    /// consumer's queue. Call before assigning the partition: librdkafka marks the
    /// forwarding as the application's, and starting the fetch then keeps it (rather
    /// than forwarding to the consumer's queue); and again after (as
    /// `BaseConsumer::split_partition_queue` asks), which changes nothing if the first held.
    pub fn forward_partition(&self, client: *mut rd::rd_kafka_t, topic: &str, partition: i32) {
        let Ok(topic) = CString::new(topic) else { return };
        // SAFETY: `client` is live; the partition queue handle is released right after
        // forwarding, which stays in force.
        unsafe {
            let partition_queue = rd::rd_kafka_queue_get_partition(client, topic.as_ptr(), partition);
            if !partition_queue.is_null() {
                rd::rd_kafka_queue_forward(partition_queue, self.0);
                rd::rd_kafka_queue_destroy(partition_queue);
            }
        }
    }

    /// Up to `max` messages: waits at most `wait` for the first, then takes what else is
    /// there without waiting (so a live record is not held back for a full batch).
    pub fn take(&self, max: usize, wait: Duration) -> Vec<RawMessage> {
        let mut messages = self.take_now(max, 0);
        if messages.is_empty() && !wait.is_zero() {
            messages = self.take_now(1, wait.as_millis().clamp(1, i32::MAX as u128) as i32);
            if !messages.is_empty() {
                messages.extend(self.take_now(max - 1, 0));
            }
        }
        messages
    }

    fn take_now(&self, max: usize, timeout_ms: i32) -> Vec<RawMessage> {
        let mut pointers: Vec<*mut rd::rd_kafka_message_t> = vec![std::ptr::null_mut(); max];
        // SAFETY: the buffer has room for `max` pointers; librdkafka fills the first n.
        let n = unsafe { rd::rd_kafka_consume_batch_queue(self.0, timeout_ms, pointers.as_mut_ptr(), max) };
        pointers.truncate(n.max(0) as usize);
        pointers.into_iter().map(RawMessage).collect()
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: created by `rd_kafka_queue_new`, destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}
