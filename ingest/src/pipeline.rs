//! Decoding NDJSON on several threads while keeping the records in their order.
//!
//! Design: a reader thread cuts the input into blocks at line ends and deals them out
//! round-robin to the decoder threads; the consumer takes decoded blocks back in the
//! same round-robin order, so records come out exactly in input order (corrections
//! must follow the versions they replace) while JSON parsing, the dominant cost, runs
//! in parallel. Channels are bounded, so memory stays a few blocks per thread.

use crate::decode::{decode_line, Reason};
use model::Event;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

/// A line set aside: its 1-based number, why, and its text (lossily UTF-8).
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub line: u64,
    pub reason: Reason,
    pub raw: String,
}

/// One input line's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    Record { line: u64, event: Event },
    Rejected(Rejected),
}

const BLOCK_BYTES: usize = 1 << 20;

struct Block {
    first_line: u64,
    bytes: Vec<u8>,
}

/// Decodes `reader` on `threads` threads; yields blocks of decoded lines in input order.
/// Blank lines are skipped. An IO error ends the stream with that error.
pub fn read_ndjson<R: Read + Send + 'static>(
    reader: R,
    threads: usize,
) -> impl Iterator<Item = io::Result<Vec<Decoded>>> {
    let threads = threads.max(1);
    let mut block_senders = Vec::new();
    let mut result_receivers = Vec::new();
    for _ in 0..threads {
        let (block_tx, block_rx) = sync_channel::<Block>(2);
        let (result_tx, result_rx) = sync_channel::<io::Result<Vec<Decoded>>>(2);
        thread::spawn(move || decode_blocks(block_rx, result_tx));
        block_senders.push(block_tx);
        result_receivers.push(result_rx);
    }
    let (error_tx, error_rx) = sync_channel::<io::Error>(1);
    thread::spawn(move || {
        if let Err(error) = cut_blocks(reader, &block_senders) {
            let _ = error_tx.send(error);
        }
    });
    InOrder {
        receivers: result_receivers,
        next: 0,
        error: Some(error_rx),
    }
}

struct InOrder {
    receivers: Vec<Receiver<io::Result<Vec<Decoded>>>>,
    next: usize,
    error: Option<Receiver<io::Error>>,
}

impl Iterator for InOrder {
    type Item = io::Result<Vec<Decoded>>;

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.next % self.receivers.len();
        self.next += 1;
        match self.receivers[index].recv() {
            Ok(result) => Some(result),
            // Every decoder has finished: report a read error, if the reader had one.
            Err(_) => self
                .error
                .take()
                .and_then(|error| error.recv().ok())
                .map(Err),
        }
    }
}

fn cut_blocks<R: Read>(mut reader: R, senders: &[SyncSender<Block>]) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line = 1u64;
    let mut index = 0usize;
    let mut eof = false;
    while !eof {
        let mut bytes = std::mem::take(&mut carry);
        bytes.reserve(BLOCK_BYTES);
        let start = bytes.len();
        bytes.resize(start + BLOCK_BYTES, 0);
        let mut filled = start;
        while filled < bytes.len() {
            match reader.read(&mut bytes[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
        }
        bytes.truncate(filled);
        if !eof {
            // Keep the partial last line for the next block (a line longer than a block
            // simply makes the next block longer).
            match bytes.iter().rposition(|&b| b == b'\n') {
                Some(end) => carry = bytes.split_off(end + 1),
                None => {
                    carry = bytes;
                    continue;
                }
            }
        }
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let block = Block {
            first_line: next_line,
            bytes,
        };
        next_line += lines;
        if senders[index % senders.len()].send(block).is_err() {
            return Ok(()); // the consumer has gone away
        }
        index += 1;
    }
    Ok(())
}

fn decode_blocks(blocks: Receiver<Block>, results: SyncSender<io::Result<Vec<Decoded>>>) {
    for block in blocks {
        let decoded = decode_block(&block);
        if results.send(Ok(decoded)).is_err() {
            return;
        }
    }
}

fn decode_block(block: &Block) -> Vec<Decoded> {
    let mut out = Vec::with_capacity(block.bytes.len() / 120);
    for (offset, line) in block.bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = block.first_line + offset as u64;
        out.push(match decode_line(line) {
            Ok(event) => Decoded::Record {
                line: number,
                event,
            },
            Err(reason) => Decoded::Rejected(Rejected {
                line: number,
                reason,
                raw: String::from_utf8_lossy(line).into_owned(),
            }),
        });
    }
    out
}
