//! Decoding NDJSON on several threads while keeping the records in their order.
//!
//! Design: a cutter thread splits the input into blocks of about 1 MiB at line ends and
//! deals them out round-robin to the decoder threads; the consumer takes decoded blocks
//! back in the same round-robin order, so records come out exactly in input order
//! (corrections must follow the versions they replace) while JSON parsing, the dominant
//! cost, runs in parallel. Decoders number the lines of their block; the consumer adds
//! the count of lines before it. Channels are bounded, so memory stays a few blocks per
//! thread. (Memory-mapping files was tried: no faster here, and it makes the process's
//! resident size include the whole file.)

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

/// A block of whole lines.
struct Block(Vec<u8>);

/// A decoded block: its newline count (to number the lines of later blocks) and its
/// lines, numbered from 1 within the block.
struct DecodedBlock {
    newlines: u64,
    lines: Vec<Decoded>,
}

/// Decodes a stream on `threads` threads; yields blocks of decoded lines in input order.
/// Blank lines are skipped. An IO error ends the stream with that error.
pub fn read_ndjson<R: Read + Send + 'static>(
    reader: R,
    threads: usize,
) -> impl Iterator<Item = io::Result<Vec<Decoded>>> {
    spawn(threads, move |senders| cut_stream(reader, senders))
}

fn spawn<F>(threads: usize, cutter: F) -> InOrder
where
    F: FnOnce(&[SyncSender<Block>]) -> io::Result<()> + Send + 'static,
{
    let threads = threads.max(1);
    let mut block_senders = Vec::new();
    let mut result_receivers = Vec::new();
    for _ in 0..threads {
        let (block_tx, block_rx) = sync_channel::<Block>(2);
        let (result_tx, result_rx) = sync_channel::<DecodedBlock>(2);
        thread::Builder::new()
            .name(String::from("wholechild-decode"))
            .spawn(move || decode_blocks(block_rx, result_tx))
            .expect("spawning a decoder thread");
        block_senders.push(block_tx);
        result_receivers.push(result_rx);
    }
    let (error_tx, error_rx) = sync_channel::<io::Error>(1);
    thread::Builder::new()
        .name(String::from("wholechild-read"))
        .spawn(move || {
            if let Err(error) = cutter(&block_senders) {
                let _ = error_tx.send(error);
            }
        })
        .expect("spawning the reader thread");
    InOrder { receivers: result_receivers, next: 0, lines_before: 0, error: Some(error_rx) }
}

struct InOrder {
    receivers: Vec<Receiver<DecodedBlock>>,
    next: usize,
    lines_before: u64,
    error: Option<Receiver<io::Error>>,
}

impl Iterator for InOrder {
    type Item = io::Result<Vec<Decoded>>;

    fn next(&mut self) -> Option<Self::Item> {
        let index = self.next % self.receivers.len();
        self.next += 1;
        match self.receivers[index].recv() {
            Ok(mut block) => {
                for decoded in &mut block.lines {
                    match decoded {
                        Decoded::Record { line, .. } => *line += self.lines_before,
                        Decoded::Rejected(rejected) => rejected.line += self.lines_before,
                    }
                }
                self.lines_before += block.newlines;
                Some(Ok(block.lines))
            }
            // Every decoder has finished: report a read error, if the reader had one.
            Err(_) => self.error.take().and_then(|error| error.recv().ok()).map(Err),
        }
    }
}

/// Cuts a stream into owned blocks of whole lines.
fn cut_stream<R: Read>(mut reader: R, senders: &[SyncSender<Block>]) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut index = 0usize;
    loop {
        let mut bytes = Vec::with_capacity(BLOCK_BYTES + carry.len());
        bytes.append(&mut carry);
        let read = (&mut reader).take(BLOCK_BYTES as u64).read_to_end(&mut bytes)?;
        let eof = read == 0;
        if !eof {
            // Keep the partial last line for the next block.
            match memchr::memrchr(b'\n', &bytes) {
                Some(end) => carry = bytes.split_off(end + 1),
                None => {
                    carry = bytes;
                    continue;
                }
            }
        }
        if !bytes.is_empty() {
            if senders[index % senders.len()].send(Block(bytes)).is_err() {
                return Ok(()); // the consumer has gone away
            }
            index += 1;
        }
        if eof {
            return Ok(());
        }
    }
}

fn decode_blocks(blocks: Receiver<Block>, results: SyncSender<DecodedBlock>) {
    for block in blocks {
        if results.send(decode_block(&block.0)).is_err() {
            return;
        }
    }
}

fn decode_block(bytes: &[u8]) -> DecodedBlock {
    let mut lines = Vec::with_capacity(bytes.len() / 120);
    let mut newlines = 0;
    let mut start = 0;
    while start <= bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |offset| start + offset);
        let line = &bytes[start..end];
        let number = newlines + 1;
        if end < bytes.len() {
            newlines += 1;
        }
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines.push(match decode_line(line) {
            Ok(event) => Decoded::Record { line: number, event },
            Err(reason) => {
                Decoded::Rejected(Rejected { line: number, reason, raw: String::from_utf8_lossy(line).into_owned() })
            }
        });
    }
    DecodedBlock { newlines, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(decoded: &[Decoded]) -> Vec<(u64, bool)> {
        decoded
            .iter()
            .map(|d| match d {
                Decoded::Record { line, .. } => (*line, true),
                Decoded::Rejected(rejected) => (rejected.line, false),
            })
            .collect()
    }

    fn sample(lines: usize) -> String {
        let mut text = String::new();
        for i in 0..lines {
            if i % 1000 == 7 {
                text.push_str("{not json\n");
            } else if i % 1000 == 8 {
                text.push('\n');
            } else {
                text.push_str(&format!(
                    "{{\"type\":\"health_visit\",\"id\":\"h{i}\",\"source\":\"nurse\",\"student_id\":\"s{i}\",\"school_id\":\"k\",\"date\":\"2026-09-01\",\"reason\":\"illness\"}}\n"
                ));
            }
        }
        text
    }

    #[test]
    fn lines_come_back_in_order_with_their_numbers_whatever_the_threads() {
        let text = sample(30_000); // several blocks
        let expected: Vec<(u64, bool)> =
            (0..30_000u64).filter(|i| i % 1000 != 8).map(|i| (i + 1, i % 1000 != 7)).collect();
        let from_stream: Vec<Decoded> =
            read_ndjson(std::io::Cursor::new(text.clone().into_bytes()), 3).flat_map(|b| b.unwrap()).collect();
        assert_eq!(numbered(&from_stream), expected);
        let with_one_thread: Vec<Decoded> =
            read_ndjson(std::io::Cursor::new(text.into_bytes()), 1).flat_map(|b| b.unwrap()).collect();
        assert_eq!(with_one_thread, from_stream);
    }

    #[test]
    fn a_last_line_without_newline_is_read() {
        let text = "\n{\"type\":\"school\"}\r\n{\"type\":\"bogus\",\"id\":\"1\",\"source\":\"x\"}";
        let decoded: Vec<Decoded> =
            read_ndjson(std::io::Cursor::new(text.as_bytes().to_vec()), 1).flat_map(|b| b.unwrap()).collect();
        assert_eq!(numbered(&decoded), vec![(2, false), (3, false)]);
    }
}
