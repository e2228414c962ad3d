//! Ingest: from bytes to fact changes. Decodes NDJSON lines into validated canonical
//! records ([`decode_line`]), sets rejected lines aside with their reasons, and turns
//! corrections and withdrawals into retractions ([`Upsert`]). [`read_ndjson`] decodes a
//! file or stream on several threads and hands the records back in their order.
//!
//! ```
//! let event = ingest::decode_line(br#"{"type":"attendance","id":"a1","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","status":"absent_excused"}"#).unwrap();
//! let mut upsert = ingest::Upsert::new();
//! let mut changes = Vec::new();
//! upsert.apply(&event, &mut changes);
//! assert_eq!(changes.len(), 1);
//! ```

mod decode;
mod fetch_queue;
pub mod kafka;
mod mapping;
mod pipeline;
mod upsert;

pub use decode::{decode_line, Reason};
pub use mapping::map_record;
pub use pipeline::{read_ndjson, Decoded, Rejected};
pub use upsert::{Names, SectionEntry, StaffEntry, Upsert, UpsertStats};
